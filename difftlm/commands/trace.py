"""`difftlm trace`: capture, inspect, validate traces; build shape-only zoo traces."""

from __future__ import annotations

import os
import shlex
import time
import zipfile
from collections import Counter

from workloads.errors import TraceError
from workloads.trace import Trace

from .common import check_out_file, fmt_bytes, print_json


def register(sub) -> None:
    p = sub.add_parser("trace", help="capture, inspect and validate workload traces")
    tsub = p.add_subparsers(dest="trace_command", required=True, metavar="ACTION")

    c = tsub.add_parser("capture", help="capture a trace from a bundled or diffusers model (torch needed)")
    c.add_argument("--model", default="tiny-silu",
                   help="tiny-silu, tiny-relu, small-silu, small-relu or a checkpoint of theirs; a zoo name "
                        "(sd15, cifar10, ldm256: its diffusers U-Net with random weights); or a local diffusers "
                        "pipeline or U-Net directory (from_pretrained, offline)")
    c.add_argument("--steps", type=int, default=50, help="DDIM steps (default 50)")
    c.add_argument("--batch", type=int, default=4,
                   help="images per forward (default 4; classifier-free guidance doubles the forward batch)")
    c.add_argument("--seed", type=int, default=0, help="measurement seed (calibration uses seed+1000)")
    c.add_argument("--calib-seed", type=int, default=None, help="calibration seed (default seed+1000)")
    c.add_argument("--int4-clip-frac", type=float, default=0.01,
                   help="int4/uint4 clip rule: largest calibration fraction a shift may clip (default 0.01)")
    c.add_argument("--int3-outlier-frac", type=float, default=0.01,
                   help="Cambricon-D int3 scale rule: largest calibration fraction of outlier deltas (default 0.01)")
    c.add_argument("--no-int8-need", action="store_true", help="omit MHDiff per-pixel int8-need bits")
    c.add_argument("--max-stat-elems", type=int, default=2 ** 22, metavar="N",
                   help="attention matmuls with more elements take statistics on every k-th query row "
                        "(bounds memory at SD scale; 0 = every row; default 2^22)")
    c.add_argument("--out", required=True, help="output .trace.zip")
    c.set_defaults(func=run_capture)

    i = tsub.add_parser("info", help="summarise a trace")
    i.add_argument("path")
    i.add_argument("--json", action="store_true")
    i.set_defaults(func=run_info)

    v = tsub.add_parser("validate", help="read and check every table of a trace")
    v.add_argument("path")
    v.set_defaults(func=run_validate)

    z = tsub.add_parser("zoo", help="shape-only trace of a known model, statistics transferred from a tiny trace")
    z.add_argument("name", help="sd15, cifar10 or ldm256")
    z.add_argument("--steps", type=int, default=50)
    z.add_argument("--source", default=None, help="tiny trace to transfer statistics from (default: bundled)")
    z.add_argument("--arrays", action="store_true",
                   help="also transfer per-channel zero vectors and per-pixel L1 maps (large)")
    z.add_argument("--out", required=True)
    z.set_defaults(func=run_zoo)


def _command(action: str, args, *flags: str) -> str:
    """The canonical command line that reproduces this run (recorded in the manifest)."""
    parts = ["difftlm", "trace", action]
    if action == "zoo":
        parts.append(args.name)
    for flag in flags:
        value = getattr(args, flag.lstrip("-").replace("-", "_"))
        if value is True:
            parts.append(flag)
        elif value is not None and value is not False:
            parts += [flag, str(value)]
    return " ".join(shlex.quote(p) for p in parts)


def run_capture(args) -> int:
    check_out_file(args.out, "--out")
    try:
        from workloads.capture import capture_bundled
        from workloads.zoo import ZOO
    except ImportError as exc:
        raise TraceError(f"capture needs torch (pip install difftlm[capture]): {exc}") from None
    if args.steps < 1 or args.batch < 1:
        raise TraceError("--steps and --batch must be at least 1")
    from workloads.quant import QuantConfig

    for flag in ("int4_clip_frac", "int3_outlier_frac"):
        if not 0 <= getattr(args, flag) < 1:
            raise TraceError(f"--{flag.replace('_', '-')}: must be in [0, 1)")
    if args.max_stat_elems < 0:
        raise TraceError("--max-stat-elems: must be >= 0 (0 = every row)")
    cfg = QuantConfig(int4_clip_frac=args.int4_clip_frac, int3_outlier_frac=args.int3_outlier_frac,
                      max_stat_elems=args.max_stat_elems)
    kw = dict(steps=args.steps, batch=args.batch, seed=args.seed, calib_seed=args.calib_seed, out=args.out,
              int8_need=not args.no_int8_need,
              cfg=cfg, command=_command("capture", args, "--model", "--steps", "--batch", "--seed", "--calib-seed",
                                        "--int4-clip-frac", "--int3-outlier-frac", "--no-int8-need", "--max-stat-elems",
                                        "--out"))
    t0 = time.perf_counter()
    if args.model in ZOO or os.path.isdir(args.model):
        try:
            from workloads.diffusers_capture import capture_diffusers
        except ImportError as exc:
            raise TraceError(f"capture of diffusers U-Nets needs diffusers (pip install difftlm[capture]): "
                             f"{exc}") from None
        man = capture_diffusers(args.model, **kw)
    else:
        man = capture_bundled(args.model, **kw)
    print(f"wrote {args.out} ({fmt_bytes(os.path.getsize(args.out))}) in {time.perf_counter() - t0:.1f} s"
          + (f"; weights = {man['weights']}: its statistics mean nothing" if man.get("weights") == "random" else ""))
    return 0


def trace_info(path: str) -> dict:
    with Trace(path) as tr:
        kinds = Counter(op.kind for op in tr.ops)
        mac = [op for op in tr.ops if op.is_mac]
        with zipfile.ZipFile(path) as zf:
            step_bytes = sum(i.file_size for i in zf.infolist() if i.filename.startswith("steps/"))
        stats0 = tr.step(0)
        statsl = tr.step(tr.n_steps - 1)
        m = tr.manifest
        return {
            "path": str(path),
            "trace_id": tr.trace_id,
            "model": m["model"],
            "version": m["version"],
            "steps": tr.n_steps,
            "batch": m["batch"],
            "synthetic_stats": tr.synthetic_stats,
            "ops": len(tr.ops),
            "ops_by_kind": dict(sorted(kinds.items())),
            "mac_ops": len(mac),
            "gmac_per_forward": sum(op.macs for op in mac) / 1e9,
            "gmac_per_image": sum(op.macs for op in mac) / 1e9 / m["batch"],
            "file_bytes": os.path.getsize(path),
            "step_bytes": step_bytes,
            "stats": sorted(set(statsl.scalars) | set(statsl.arrays) | set(stats0.scalars) | set(stats0.arrays)),
            "stats_step0": sorted(set(stats0.scalars) | set(stats0.arrays)),
        }


def run_info(args) -> int:
    info = trace_info(args.path)
    if args.json:
        print_json(info)
        return 0
    print(f"trace {info['path']}  id {info['trace_id']}  schema v{info['version']}")
    print(f"  model {info['model']}  steps {info['steps']}  batch {info['batch']}  "
          f"synthetic_stats {str(info['synthetic_stats']).lower()}")
    print(f"  ops {info['ops']} ({', '.join(f'{k} {v}' for k, v in info['ops_by_kind'].items())})")
    print(f"  mac_ops {info['mac_ops']}  gmac_per_forward {info['gmac_per_forward']:.3f}  "
          f"gmac_per_image {info['gmac_per_image']:.3f}")
    print(f"  size {fmt_bytes(info['file_bytes'])} (step tables {fmt_bytes(info['step_bytes'])})")
    print(f"  stats {' '.join(info['stats'])}")
    return 0


def run_validate(args) -> int:
    with Trace(args.path) as tr:
        for i in range(tr.n_steps):
            tr.step(i)
        print(f"ok: {args.path}: {len(tr.ops)} ops, {tr.n_steps} steps, schema v{tr.manifest['version']}")
    return 0


def run_zoo(args) -> int:
    check_out_file(args.out, "--out")
    try:
        from workloads.zoo import write_zoo_trace
    except ImportError as exc:
        raise TraceError(f"zoo needs torch and diffusers (pip install difftlm[capture]): {exc}") from None
    t0 = time.perf_counter()
    write_zoo_trace(args.name, args.out, steps=args.steps, source=args.source, arrays=args.arrays,
                    command=_command("zoo", args, "--steps", "--source", "--arrays", "--out"))
    print(f"wrote {args.out} ({fmt_bytes(os.path.getsize(args.out))}) in {time.perf_counter() - t0:.1f} s")
    return 0
