"""Single layers on the dense design: shapes from flags or a SCALE-Sim topology CSV."""

from __future__ import annotations

import csv
import os
import tempfile

import attrs

from models.config import HardwareConfig
from models.errors import ConfigError
from models.replay import replay
from models.result import Result
from workloads.optable import OpTableBuilder
from workloads.schema import OpRecord
from workloads.trace import StepStats, write_trace

TOPOLOGY_COLUMNS = ("Layer name", "IFMAP Height", "IFMAP Width", "Filter Height", "Filter Width",
                    "Channels", "Num Filter", "Strides")


def gemm_op(m: int, n: int, k: int) -> list[OpRecord]:
    """An M×K by K×N GEMM as a linear op (M rows, N output columns, reduction K)."""
    b = OpTableBuilder()
    b.linear("gemm", None, n, shape=(1, k, m, 1))
    return b.ops


def conv_op(h, w, c, k, r, s, stride=1, pad=0) -> list[OpRecord]:
    b = OpTableBuilder()
    b.conv("conv", None, k, r=r, s=s, stride=stride, pad=pad, shape=(1, c, h, w))
    return b.ops


def topology_ops(path: str) -> list[OpRecord]:
    """Layers of a SCALE-Sim topology CSV (IFMAP sizes include padding, so pad = 0)."""
    b = OpTableBuilder()
    try:
        with open(path, newline="", encoding="utf-8") as f:
            rows = list(csv.reader(f))
    except OSError as exc:
        raise ConfigError(f"--topology {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"--topology {path}: not a text CSV file (binary data)") from None
    except csv.Error as exc:
        raise ConfigError(f"--topology {path}: not a valid CSV file ({exc})") from None
    if not rows:
        raise ConfigError(f"--topology {path}: empty file")
    for lineno, row in enumerate(rows[1:], start=2):
        cells = [c.strip() for c in row if c.strip()]
        if not cells:
            continue
        if len(cells) < len(TOPOLOGY_COLUMNS):
            raise ConfigError(f"--topology {path} line {lineno}: expected columns {', '.join(TOPOLOGY_COLUMNS)}")
        try:
            h, w, r, s, c, k, stride = (int(x) for x in cells[1:8])
        except ValueError:
            raise ConfigError(f"--topology {path} line {lineno}: sizes must be integers") from None
        if r > h or s > w or min(h, w, r, s, c, k, stride) < 1:
            raise ConfigError(f"--topology {path} line {lineno}: impossible layer shape")
        b.conv(cells[0], None, k, r=r, s=s, stride=stride, pad=0, shape=(1, c, h, w))
    if not b.ops:
        raise ConfigError(f"--topology {path}: no layers")
    return b.ops


def run_layers(ops: list[OpRecord], hw: HardwareConfig, memory: str | None = None,
               memory_params: dict | None = None) -> Result:
    """Replay one step of `ops` (independent layers) on the dense design."""
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "layer.trace.zip")
        manifest = {"model": "layer", "steps": [0], "batch": 1, "synthetic_stats": True,
                    "provenance": {"generator": "difftlm layer"}}
        ops = [attrs.evolve(op, preds=()) for op in ops]
        write_trace(path, manifest, ops, [StepStats()])
        res = replay(path, "dense", hw, memory, memory_params)
    res.notes = [n for n in res.notes if "synthetic" not in n]
    return res
