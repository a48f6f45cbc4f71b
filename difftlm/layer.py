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


def tiled_cycles(op: OpRecord, hw: HardwareConfig, acc_bytes: int = 4) -> int:
    """Stall-free compute time of `op` on the dense design's buffers: the tiler's plan, each tile
    timed by the PE array model (what an ideal-memory replay spends on the PE array)."""
    from models.components.pe_array import broadcast_cycles, systolic_cycles
    from models.tiling import Precision, plan_tiles

    b, pe = hw.buffers, hw.pe_array
    budget = {n: (c.capacity_bytes // 2 if c.double_buffer else c.capacity_bytes)
              for n, c in (("act", b.activation), ("w", b.weight), ("out", b.output))}
    plan = plan_tiles(op, Precision(1.0, 1.0, 1.0, acc_bytes), budget["act"], budget["w"], budget["out"],
                      pe.cols, pe_rows=pe.rows)
    total = 0
    for t in plan.tiles:
        work = plan.work(t)
        if pe.model == "broadcast":
            total += broadcast_cycles(work, pe.rows, pe.cols, pe.lanes)
        else:
            total += systolic_cycles(work, pe.rows, pe.cols, pe.dataflow)
    return total


# --- SCALE-Sim cross-check (its own venv; numpy < 2.4) ---------------------------------------

SCALESIM_SRAM_KIB = 64
"""SCALE-Sim's configuration used by `difftlm layer --scalesim`: ifmap/filter/ofmap SRAM of
64 KiB each, double buffered, 1-byte words."""

_SCALESIM_DRIVER = r'''
import contextlib
import io
import json
import os
import sys
import tempfile


def main() -> int:
    rows, cols, dataflow, sram_kib = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
    layers = json.load(sys.stdin)
    from scalesim.scale_sim import scalesim

    with tempfile.TemporaryDirectory() as tmp:
        cfg = os.path.join(tmp, "run.cfg")
        topo = os.path.join(tmp, "layers.csv")
        layout = os.path.join(tmp, "layout.csv")
        with open(layout, "w") as f:
            f.write("Layer name,\n")  # custom layouts are off: header only
        with open(cfg, "w") as f:
            f.write(
                "[general]\nrun_name = difftlm\n\n"
                "[architecture_presets]\n"
                f"ArrayHeight : {rows}\nArrayWidth : {cols}\n"
                f"IfmapSramSzkB : {sram_kib}\nFilterSramSzkB : {sram_kib}\nOfmapSramSzkB : {sram_kib}\n"
                "IfmapOffset : 0\nFilterOffset : 10000000\nOfmapOffset : 20000000\n"
                f"Dataflow : {dataflow}\nBandwidth : 10\nReadRequestBuffer : 32\nWriteRequestBuffer : 32\n\n"
                "[layout]\nIfmapCustomLayout : False\nIfmapSRAMBankBandwidth : 10\nIfmapSRAMBankNum : 10\n"
                "IfmapSRAMBankPort : 2\nFilterCustomLayout : False\nFilterSRAMBankBandwidth : 10\n"
                "FilterSRAMBankNum : 10\nFilterSRAMBankPort : 2\n\n"
                "[sparsity]\nSparsitySupport : false\nSparseRep : ellpack_block\nOptimizedMapping : false\n"
                "BlockSize : 8\nRandomNumberGeneratorSeed : 40\n\n"
                "[run_presets]\nInterfaceBandwidth : CALC\nUseRamulatorTrace : False\n"
            )
        with open(topo, "w") as f:
            f.write("Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, Num Filter, Strides,\n")
            for name, h, w, r, s, c, k, stride in layers:
                f.write(f"{name}, {h}, {w}, {r}, {s}, {c}, {k}, {stride},\n")
        with contextlib.redirect_stdout(io.StringIO()):
            sim = scalesim(save_disk_space=True, verbose=False, config=cfg, topology=topo, layout=layout,
                           input_type_gemm=False)
            sim.run_scale(top_path=os.path.join(tmp, "out"))
        out = []
        for (name, *_), layer in zip(layers, sim.runner.single_layer_sim_object_list):
            comp = layer.get_compute_report_items()
            det = layer.get_detail_report_items()
            out.append({"name": name, "cycles": int(comp[1]),
                        "sram_reads": {"ifmap": int(det[2]), "filter": int(det[5])},
                        "sram_writes": {"ofmap": int(det[8])},
                        "dram_reads": {"ifmap": int(det[11]), "filter": int(det[14])},
                        "dram_writes": {"ofmap": int(det[17])}})
    json.dump(out, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
'''


def scalesim_python() -> str | None:
    """The interpreter of a venv with `scalesim` installed: $DIFFTLM_SCALESIM_PYTHON, else
    `.venv-scalesim/bin/python` in the current directory or the source checkout; None if absent."""
    env = os.environ.get("DIFFTLM_SCALESIM_PYTHON")
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    for cand in ([env] if env else []) + [os.path.join(os.getcwd(), ".venv-scalesim", "bin", "python"),
                                          os.path.join(here, ".venv-scalesim", "bin", "python")]:
        if cand and os.path.exists(cand):
            return cand
    return None


def scalesim_layer(op: OpRecord) -> list:
    """[name, H, W, R, S, C, K, stride] of a valid conv or GEMM (M×1 image, 1×1 filters)."""
    if op.kind == "conv2d":
        if op.pad:
            raise ConfigError(f"op {op.op_id} ({op.name}): SCALE-Sim models valid convolutions only (pad 0)")
        return [op.name, op.h, op.w, op.r, op.s, op.c, op.k, op.stride]
    m, n, k = gemm_dims(op)
    return [op.name, m, 1, 1, 1, k, n, 1]


def run_scalesim(ops: list[OpRecord], rows: int, cols: int, dataflow: str, python: str,
                 sram_kib: int = SCALESIM_SRAM_KIB, timeout: float = 600) -> list[dict]:
    """SCALE-Sim's per-layer cycles, SRAM and DRAM word counts (1-byte words)."""
    import json
    import subprocess

    layers = [scalesim_layer(op) for op in ops]
    proc = subprocess.run([python, "-c", _SCALESIM_DRIVER, str(rows), str(cols), dataflow, str(sram_kib)],
                          input=json.dumps(layers), capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise ConfigError(f"SCALE-Sim ({python}) failed: {proc.stderr.strip().splitlines()[-1:]}")
    return json.loads(proc.stdout)
