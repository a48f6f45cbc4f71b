"""Single layers on the dense design: shapes from flags or a SCALE-Sim topology CSV."""

from __future__ import annotations

import csv
import os
import tempfile

import attrs

from models.config import HardwareConfig, ceil_div
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
        with open(path, newline="") as f:
            rows = list(csv.reader(f))
    except OSError as exc:
        raise ConfigError(f"--topology {path}: {exc.strerror}") from None
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


# --- reference layers, SCALE-Sim's closed form and the tiler's compute time -----------------

REFERENCE_LAYERS: tuple[tuple[str, tuple], ...] = (
    # (name, ("gemm", M, N, K) or ("conv", H, W, C, K, R, S, stride)); convolutions are valid (pad 0)
    ("gemm 8x8x8", ("gemm", 8, 8, 8)),
    ("gemm M33 N17 K5", ("gemm", 33, 17, 5)),
    ("conv 6x6 3x3 4->8", ("conv", 6, 6, 4, 8, 3, 3, 1)),
    ("conv 18x18 3x3 4->320", ("conv", 18, 18, 4, 320, 3, 3, 1)),
    ("conv 6x6 3x3 320->320", ("conv", 6, 6, 320, 320, 3, 3, 1)),
    ("conv 17x17 3x3 s2 128->128", ("conv", 17, 17, 128, 128, 3, 3, 2)),
    ("conv 8x8 1x1 640->320", ("conv", 8, 8, 640, 320, 1, 1, 1)),
    ("gemm 64x320 . 320x320", ("gemm", 64, 320, 320)),
    ("gemm 256x40 . 40x256", ("gemm", 256, 256, 40)),
    ("gemm 256x256 . 256x40", ("gemm", 256, 40, 256)),
    ("gemm 77x768 . 768x320", ("gemm", 77, 320, 768)),
    ("gemm 64x1280 . 1280x320", ("gemm", 64, 320, 1280)),
    ("gemv 1x1280 . 1280x320", ("gemm", 1, 320, 1280)),
)


def spec_ops(spec: tuple) -> list[OpRecord]:
    if spec[0] == "gemm":
        return gemm_op(*spec[1:])
    h, w, c, k, r, s, stride = spec[1:]
    return conv_op(h, w, c, k, r, s, stride, 0)


def gemm_dims(op: OpRecord) -> tuple[int, int, int]:
    """(output pixels, filters, window) of a MAC op's im2col GEMM (SCALE-Sim's Sr/Sc/T inputs)."""
    if op.kind == "conv2d":
        return op.n * op.out_h * op.out_w, op.k, op.c * op.r * op.s
    if op.kind == "linear":
        return op.n * op.h * op.w, op.k, op.c
    raise ConfigError(f"op {op.op_id} ({op.name}): kind {op.kind!r} has no single-GEMM closed form")


def closed_form_cycles(op: OpRecord, rows: int, cols: int, dataflow: str) -> int:
    """SCALE-Sim's analytical fold model of the whole layer: folds · cycles per fold."""
    px, filters, window = gemm_dims(op)
    if dataflow == "os":
        sr, sc, per = px, filters, rows + cols + window - 2
    elif dataflow == "ws":
        sr, sc, per = window, filters, 2 * rows + cols + px - 2
    else:
        sr, sc, per = window, px, 2 * rows + cols + filters - 2
    return ceil_div(sr, rows) * ceil_div(sc, cols) * per


def tiled_cycles(op: OpRecord, hw: HardwareConfig) -> int:
    """Stall-free compute time of `op` on the dense design's buffers: the tiler's plan, each tile
    timed by the PE array model (what an ideal-memory replay spends on the PE array)."""
    from models.components.pe_array import broadcast_cycles, systolic_cycles
    from models.tiling import Precision, plan_tiles

    b, pe = hw.buffers, hw.pe_array
    budget = {n: (c.capacity_bytes // 2 if c.double_buffer else c.capacity_bytes)
              for n, c in (("act", b.activation), ("w", b.weight), ("out", b.output))}
    plan = plan_tiles(op, Precision(1.0, 1.0, 1.0, 4), budget["act"], budget["w"], budget["out"],
                      pe.cols, pe_rows=pe.rows)
    total = 0
    for t in plan.tiles:
        work = plan.work(t)
        if pe.model == "broadcast":
            total += broadcast_cycles(work, pe.rows, pe.cols, pe.lanes)
        else:
            total += systolic_cycles(work, pe.rows, pe.cols, pe.dataflow)
    return total
