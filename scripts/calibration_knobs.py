"""How each design's result moves with the two calibration knobs of capture (issue 17 item 3).

Captures the bundled tiny model's twins (50 steps, the bundled traces' seeds) at several values of
`int4_clip_frac` (int4/uint4 shift rule: MHDiff's peripheral int8 share, SQ-DM's int4 clipping
and sparsity) and `int3_outlier_frac` (Cambricon-D's int3 scale rule: its outlier ratios and
compressed bytes), the other knob at its default, replays (exact: no sampled steps) the designs
that read them and writes docs/calibration-knobs.md. Nothing is tuned: the table shows the
sensitivity.

    python scripts/calibration_knobs.py [OUT.md]      # about 5 minutes on 2 cores
"""

from __future__ import annotations

import os
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VALUES = (0.001, 0.01, 0.05)
DEFAULT = 0.01
SILU = ("dense", "mhdiff", "mhdiff.no_packing")
RELU = ("dense", "sqdm", "cambricon_d")


def _capture(model: str, int4: float, int3: float, out: str) -> str:
    from workloads.capture import capture_bundled
    from workloads.quant import QuantConfig

    capture_bundled(model, steps=50, batch=4, seed=0, calib_seed=None, out=out, int8_need=True,
                 cfg=QuantConfig(int4_clip_frac=int4, int3_outlier_frac=int3),
                 command=f"scripts/calibration_knobs.py ({model}, int4_clip_frac={int4}, int3_outlier_frac={int3})")
    return out


def _row(knob: str, value: float, res: dict) -> str:
    s = {n: r.summary for n, r in res.items()}
    dense_silu, dense_relu = s["dense@silu"]["total_cycles"], s["dense@relu"]["total_cycles"]
    mh, mnp, sq, cd = s["mhdiff"], s["mhdiff.no_packing"], s["sqdm"], s["cambricon_d"]
    cd_bytes = cd["dram_read_bytes"] + cd["dram_write_bytes"]
    return (f"| `{knob}` = {value:g} | {dense_silu / mh['total_cycles']:.3f}× | {100 * mh['mhd_int4_elem_frac']:.1f} % "
            f"| {100 * mh['mhd_periph_int8_frac']:.2f} % "
            f"| {mnp['total_cycles'] / mh['total_cycles']:.3f}× | {dense_relu / sq['total_cycles']:.3f}× "
            f"| {dense_relu / cd['total_cycles']:.3f}× | {cd_bytes / 2**20:.2f} |")


def main(out_md: str = os.path.join(ROOT, "docs", "calibration-knobs.md")) -> None:
    import difftlm

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for knob in ("int4_clip_frac", "int3_outlier_frac"):
            for v in VALUES:
                int4, int3 = (v, DEFAULT) if knob == "int4_clip_frac" else (DEFAULT, v)
                silu = _capture("tiny-silu", int4, int3, os.path.join(tmp, f"silu-{knob}-{v}.trace.zip"))
                relu = _capture("tiny-relu", int4, int3, os.path.join(tmp, f"relu-{knob}-{v}.trace.zip"))
                res = {}
                for act, path, names in (("silu", silu, SILU), ("relu", relu, RELU)):
                    for name, r in difftlm.compare(path, list(names), jobs=1, exact=True).items():
                        res[f"{name}@{act}" if name == "dense" else name] = r
                rows.append(_row(knob, v, res))
                print(rows[-1], flush=True)
    text = "\n".join([
        "# Calibration knobs: how the results move",
        "",
        "Written by `scripts/calibration_knobs.py`. Two capture options decide statistics that",
        "designs read (`difftlm trace capture --int4-clip-frac F --int3-outlier-frac F`, recorded in",
        "the trace's `manifest.quantization.config`): `int4_clip_frac`, the largest fraction of",
        "calibration codes an int4/uint4 shift may clip (MHDiff's peripheral int8 share, SQ-DM's",
        "int4 clipping and sparsity), and `int3_outlier_frac`, the largest fraction of calibration",
        "deltas Cambricon-D's int3 scale may leave as outliers (its outlier ratios and compressed",
        "bytes). Each row recaptures the bundled tiny model's twins (50 steps, seed 0) with one knob",
        "changed and the other at its default (0.01, the bundled traces' value), on the `common`",
        "hardware. Speedups are against dense on the same twin; MHDiff's int4 share is of its conv",
        "input elements; packing cost is `mhdiff.no_packing` time over `mhdiff` time. No value here is",
        "tuned to a paper.",
        "",
        "| capture | MHDiff speedup | MHDiff int4 share | MHDiff peripheral int8 | packing gain | SQ-DM speedup | Cambricon-D speedup | Cambricon-D DRAM MiB |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
        *rows,
        "",
        "What moves: with the kernel fine-tuning rule (A-18 default) about 93 % of MHDiff's conv",
        "inputs are peripheral, so the int4 clip rule now decides its result: a rule that lets a shift",
        "clip more (0.05: a finer int4 scale, more outliers kept as int8) raises the peripheral int8 share to 2.4 %,",
        "blocks more pairs and takes the speedup from 1.28× to 1.18× (under the 'any' rule, 88 % of",
        "pixels were focal and the knob moved nothing). Cambricon-D's compute does not depend on",
        "statistics (§3.5), so the int3 rule moves only its compressed bytes, a small part of a run",
        "that fp16 weights from DRAM dominate. SQ-DM's int4 clipping changes only its sparsity",
        "counts, by little.",
        "",
    ])
    from difftlm.results_io import write_text_atomic

    write_text_atomic(out_md, text)
    print(f"wrote {out_md}")


if __name__ == "__main__":
    main(*sys.argv[1:2])
