"""`difftlm replay`: one trace on one design."""

from __future__ import annotations

import sys

from difftlm.api import replay
from models.config import load_hw

from .common import (
    add_design_args, add_fast_args, add_memory_args, check_out_file, fast_report, design_params_for, hw_with_residency, parse_params, print_json,
    summary_text,
)


def register(sub) -> None:
    p = sub.add_parser("replay", help="replay a trace on one design")
    p.add_argument("--trace", metavar="tiny|small|PATH",
                   help="a bundled model's trace, tiny (default) or small (the ReLU twin for designs "
                        "assuming ReLU), or a trace file")
    p.add_argument("--design", default="dense", help="design name (default: dense)")
    p.add_argument("--hw", metavar="FILE.toml", help="hardware config (default: common)")
    add_memory_args(p)
    add_design_args(p)
    add_fast_args(p)
    p.add_argument("--chrome-trace", metavar="FILE", help="write a Chrome/Perfetto traceEvents JSON")
    p.add_argument("--quantum-ps", type=int, default=0, help="quantum keeper quantum, ps (0 = exact)")
    p.add_argument("--out", metavar="FILE.json", help="save the full result (atomic write)")
    p.add_argument("--progress", action="store_true", help="show a progress bar on a terminal")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run)


def run(args) -> int:
    check_out_file(args.out, "--out")
    check_out_file(args.chrome_trace, "--chrome-trace")
    params = design_params_for(args.design_param, [args.design])[args.design]
    res = replay(args.trace, args.design, hw_with_residency(load_hw(args.hw), args.residency), args.memory,
                 parse_params(args.memory_param), design_params=params, chrome_trace=args.chrome_trace,
                 quantum_ps=args.quantum_ps, progress=args.progress, exact=args.exact)
    if args.out:
        res.save_json(args.out)
    if args.json:
        print_json({**res.summary, "trace_id": res.trace["trace_id"],
                    "synthetic_stats": res.trace["synthetic_stats"], "notes": res.notes})
    else:
        print(summary_text(res))
    if args.fast_report:
        print(fast_report(res.design, res.summary), file=sys.stderr if args.json else sys.stdout)
    return 0
