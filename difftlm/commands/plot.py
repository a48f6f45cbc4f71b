"""`difftlm plot`: redraw a figure from saved results (results.json)."""

from __future__ import annotations

import os

from difftlm.results_io import load_results
from models.errors import ConfigError


def register(sub) -> None:
    from plots import KINDS

    p = sub.add_parser("plot", help="draw a figure from saved results (results.json)")
    p.add_argument("results", metavar="RESULTS", help="results.json (or the directory holding it)")
    p.add_argument("--kind", choices=KINDS, default="breakdown", help="figure kind (default: breakdown)")
    p.add_argument("--design", metavar="NAME", help="design for the timeline (default: the first)")
    p.add_argument("--out", metavar="FILE", help="output file, .png/.svg/.pdf (default: <kind>.png "
                                                 "beside the results)")
    p.set_defaults(func=run)


def run(args) -> int:
    from plots import make, save_figure

    results = load_results(args.results)
    if not results:
        raise ConfigError(f"{args.results}: no results in the file")
    if args.kind == "speedup" and "dense" not in results:
        raise ConfigError("speedup needs a 'dense' result in the file")
    if args.kind == "timeline" and args.design and args.design not in results:
        raise ConfigError(f"--design {args.design!r}: not in the results ({', '.join(results)})")
    out = args.out
    if out is None:
        base = args.results if os.path.isdir(args.results) else os.path.dirname(os.path.abspath(args.results))
        out = os.path.join(base, f"{args.kind}.png")
    if os.path.splitext(out)[1].lower() not in (".png", ".svg", ".pdf"):
        raise ConfigError(f"--out {out}: use a .png, .svg or .pdf file name")
    if os.path.isdir(out):
        raise ConfigError(f"--out {out}: is a directory; give a .png, .svg or .pdf file name")
    save_figure(make(args.kind, results, args.design), out)
    print(f"wrote {out}")
    return 0
