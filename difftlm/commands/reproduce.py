"""`difftlm reproduce PAPER`: a paper's ablation set beside the headline figures the design notes give."""

from __future__ import annotations

import json
import os

from difftlm.reproduce import PAPERS, paper_or_error, reproduce
from difftlm.results_io import write_text_atomic
from models.errors import ConfigError
from workloads import Trace

from .common import print_json, strict_json

DEFAULT_OUT = "difftlm-reproduce"


def register(sub) -> None:
    p = sub.add_parser("reproduce", help="run a paper's own ablation set next to its headline figures")
    p.add_argument("paper", metavar="PAPER", help=f"one of {', '.join(PAPERS)}")
    p.add_argument("--trace", metavar="PATH",
                   help="trace file for every run (default: the bundled tiny-model trace, ReLU twin where a "
                        "design assumes ReLU)")
    p.add_argument("--hw", default="paper", metavar="paper|common",
                   help="the paper's own hardware configuration (default) or the common one")
    p.add_argument("--out", metavar="DIR", default=DEFAULT_OUT,
                   help=f"directory for PAPER-HW.json and the figure (default: {DEFAULT_OUT}/; '-' writes nothing)")
    p.add_argument("--no-figures", action="store_true", help="write the JSON only")
    p.add_argument("--json", action="store_true", help="print the JSON document instead of the table")
    p.add_argument("--jobs", type=int, metavar="N", help="runs at once (default: one per CPU core)")
    p.set_defaults(func=run)


def _fmt(v) -> str:
    if v is None:
        return "not given"
    return f"{v:.3g}" if abs(v) < 1000 else f"{v:,.0f}"


def table(doc: dict) -> str:
    w = max(len(r["figure"]) for r in doc["rows"]) + 2
    s = max(len(r["source"]) for r in doc["rows"]) + 2
    head = f"{'figure':<{w}}{'paper':>11}  {'source':<{s}}{'ours':>10}{'ratio':>8}"
    out = [doc["title"], f"hardware: {doc['hw']}; baseline {doc['baseline']}",
           f"workload: {doc['workload']['stated']} -> ran {', '.join(doc['workload']['ours'])}", "",
           head, "-" * len(head)]
    for r in doc["rows"]:
        ratio = f"{r['ratio']:.2f}" if r["ratio"] is not None else "-"
        out.append(f"{r['figure']:<{w}}{_fmt(r['paper']):>11}  {r['source']:<{s}}{_fmt(r['ours']):>10}{ratio:>8}")
    out += ["", "runs (speedup over the baseline):"]
    for label, run in doc["runs"].items():
        out.append(f"  {label:<14}{run['design']:<28}{run['speedup_vs_baseline']:>7.3f}x  hw {run['hw']}, "
                   f"trace {run['trace_model']}")
    return "\n".join(out)


def run(args) -> int:
    paper_or_error(args.paper)
    if args.hw not in ("paper", "common"):
        raise ConfigError(f"--hw {args.hw!r}: expected 'paper' or 'common'")
    if args.jobs is not None and args.jobs < 1:
        raise ConfigError(f"--jobs {args.jobs}: must be at least 1")
    if args.trace is not None:
        with Trace(args.trace):  # a bad trace fails here, before any run
            pass
    if args.out != "-" and os.path.exists(args.out) and not os.path.isdir(args.out):
        raise ConfigError(f"--out {args.out}: exists and is not a directory; give a directory")
    doc = reproduce(args.paper, args.trace, args.hw, args.jobs)
    written = []
    if args.out != "-":
        stem = os.path.join(args.out, f"{args.paper}-{args.hw}")
        write_text_atomic(f"{stem}.json", json.dumps(strict_json(doc), indent=1, allow_nan=False) + "\n")
        written.append(f"{stem}.json")
        if not args.no_figures:
            from plots.reproduce import write_reproduce_figure

            written += write_reproduce_figure(doc, stem)
    if args.json:
        print_json({**doc, "written": written})
    else:
        print(table(doc))
        if written:
            print(f"\nwritten: {', '.join(written)}")
    return 0
