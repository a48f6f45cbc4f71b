"""`difftlm quality`: image quality of each design's arithmetic against the fp32 samples."""

from __future__ import annotations

import math
import os

from difftlm.quality import DEFAULT_DESIGNS, DISTRIBUTION, MODELS, evaluate

from .common import add_design_args, check_out_file, design_params_for, print_json


def register(sub) -> None:
    p = sub.add_parser("quality", help="image quality of each design's arithmetic (PSNR/SSIM vs fp32)")
    p.add_argument("--model", default="tiny", help=f"bundled model ({', '.join(MODELS)}; default tiny)")
    p.add_argument("--designs", default=",".join(DEFAULT_DESIGNS),
                   help="comma-separated designs or variants (default: %(default)s)")
    p.add_argument("--samples", type=int, default=16, help="samples per arithmetic (default 16)")
    p.add_argument("--seed", type=int, default=0, help="seed of the sampler noise (default 0)")
    add_design_args(p, per_design=True)
    p.add_argument("--grid", metavar="FILE.png", help="write the grid figure (same seeds across rows)")
    p.add_argument("--out", metavar="FILE.json", help="save the table as JSON (atomic write)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run)


def _fmt(v: float) -> str:
    return "ref" if math.isinf(v) else f"{v:.2f}"


def run(args) -> int:
    import json

    from difftlm.results_io import write_text_atomic

    check_out_file(args.out, "--out")
    check_out_file(args.grid, "--grid")
    designs = [d for d in args.designs.split(",") if d]
    params = design_params_for(args.design_param, designs)
    res = evaluate(designs, model=args.model, samples=args.samples, seed=args.seed,
                   design_params=params, keep_images=bool(args.grid))
    images = res.pop("images", None)
    if args.grid:
        from plots.quality import quality_grid

        res["grid"] = quality_grid({k: v.numpy() for k, v in images.items()}, res["rows"], args.grid)
    if args.out:
        from .common import strict_json

        write_text_atomic(os.fspath(args.out), json.dumps(strict_json(res), indent=1) + "\n")
    if args.json:
        print_json(res)
        return 0
    print(f"quality on {args.model}: {args.samples} samples, seed {args.seed}, vs fp32 of the same model variant")
    dist = DISTRIBUTION[args.model]
    print(f"{'arithmetic':28s} {'PSNR dB':>8s} {'min dB':>7s} {'SSIM':>6s}"
          + "".join(f" {label:>9s}" for _, label in dist))
    for r in res["rows"]:
        print(f"{r['name']:28s} {_fmt(r['psnr_db_mean']):>8s} {_fmt(r['psnr_db_min']):>7s} "
              f"{r['ssim_mean']:6.3f}" + "".join(f" {r[key]:9.3f}" for key, _ in dist))
    return 0
