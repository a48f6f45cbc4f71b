"""`difftlm plot`: redraw a figure from saved results (results.json)."""

from __future__ import annotations

import os

from difftlm.results_io import load_results
from models.errors import ConfigError


def register(sub) -> None:
    from plots import KINDS
    from plots.sweep import SWEEP_KINDS

    p = sub.add_parser("plot", help="draw a figure from saved results (results.json) or a sweep directory")
    p.add_argument("results", metavar="RESULTS", help="results.json (or the directory holding it), or a "
                                                      "sweep directory (kinds " + "|".join(SWEEP_KINDS) + ")")
    p.add_argument("--kind", choices=KINDS + SWEEP_KINDS, default=None,
                   help="figure kind (default: breakdown; pareto for a sweep)")
    p.add_argument("--design", metavar="NAME", help="design for the timeline (default: the first)")
    p.add_argument("--out", metavar="FILE", help="output file, .png/.svg/.pdf (default: <kind>.png "
                                                 "beside the results)")
    p.set_defaults(func=run)


def run(args) -> int:
    from difftlm.sweep import is_sweep_dir

    if os.path.isdir(args.results) and is_sweep_dir(args.results):
        return _run_sweep(args)
    args.kind = args.kind or "breakdown"
    from plots import has_quality, make, save_figure
    from plots.sweep import SWEEP_KINDS

    if args.kind in SWEEP_KINDS:
        raise ConfigError(f"--kind {args.kind}: draws a sweep; give a sweep directory (difftlm sweep --out)")
    results = load_results(args.results)
    if not results:
        raise ConfigError(f"{args.results}: no results in the file")
    if args.kind == "speedup" and "dense" not in results:
        raise ConfigError("speedup needs a 'dense' result in the file")
    if args.kind == "quality" and not has_quality(results):
        raise ConfigError(f"{args.results}: no quality figures in these results; run `difftlm compare --quality`")
    if args.kind == "timeline" and args.design and args.design not in results:
        raise ConfigError(f"--design {args.design!r}: not in the results ({', '.join(results)})")
    out = _out_path(args)
    save_figure(make(args.kind, results, args.design), out)
    print(f"wrote {out}")
    return 0


def _out_path(args) -> str:
    out = args.out
    if out is None:
        base = args.results if os.path.isdir(args.results) else os.path.dirname(os.path.abspath(args.results))
        out = os.path.join(base, f"{args.kind}.png")
    if os.path.splitext(out)[1].lower() not in (".png", ".svg", ".pdf"):
        raise ConfigError(f"--out {out}: use a .png, .svg or .pdf file name")
    if os.path.isdir(out):
        raise ConfigError(f"--out {out}: is a directory; give a .png, .svg or .pdf file name")
    return out


def _run_sweep(args) -> int:
    """A figure from a sweep store (`difftlm sweep --out DIR`)."""
    from difftlm.sweep import load, load_manifest
    from plots import save_figure
    from plots.sweep import SWEEP_KINDS, make_sweep

    args.kind = args.kind or "pareto"
    if args.kind not in SWEEP_KINDS:
        raise ConfigError(f"--kind {args.kind}: a sweep directory draws {', '.join(SWEEP_KINDS)}")
    rows = load(args.results).to_pylist()
    if not any(r["status"] == "ok" for r in rows):
        raise ConfigError(f"{args.results}: no point of the sweep finished ok; nothing to draw")
    out = _out_path(args)
    try:
        fig = make_sweep(args.kind, rows, load_manifest(args.results)["spec"]["axes"])
    except ValueError as exc:
        raise ConfigError(f"--kind {args.kind}: {exc}") from None
    save_figure(fig, out)
    print(f"wrote {out}")
    return 0
