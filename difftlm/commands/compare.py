"""`difftlm compare`: the same trace on several designs, side by side."""

from __future__ import annotations

import sys

from difftlm.api import compare
from difftlm.results_io import save_results
from models.config import load_hw

from .common import add_memory_args, fmt_bytes, parse_params, print_json


def register(sub) -> None:
    p = sub.add_parser("compare", help="replay one trace on every design and compare them")
    p.add_argument("--trace", metavar="PATH", help="trace file (default: the bundled tiny-model trace)")
    p.add_argument("--designs", metavar="LIST", help="comma-separated design names (default: all)")
    p.add_argument("--hw", metavar="common|FILE.toml", help="hardware config (default: common)")
    add_memory_args(p)
    p.add_argument("--out", metavar="DIR", help="write results.json and per-design CSV tables")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run)


def table(results) -> str:
    base = results.get("dense")
    head = (f"{'design':<22}{'cycles':>14}{'time_us':>11}{'speedup':>9}{'compute%':>10}"
            f"{'memory%':>9}{'overlap%':>10}{'idle%':>7}{'PE_util%':>10}{'DRAM_rd':>12}{'DRAM_wr':>12}")
    lines = [head, "-" * len(head)]
    for name, r in results.items():
        s = r.summary
        tot = s["total_cycles"] or 1.0
        speed = f"{base.summary['total_cycles'] / tot:.2f}x" if base else "-"
        lines.append(
            f"{name:<22}{s['total_cycles']:>14,.0f}{s['total_ns'] / 1e3:>11,.1f}{speed:>9}"
            f"{100 * s['compute_cycles'] / tot:>10.1f}{100 * s['memory_cycles'] / tot:>9.1f}"
            f"{100 * s['overlap_cycles'] / tot:>10.1f}{100 * s['idle_cycles'] / tot:>7.1f}"
            f"{100 * s['pe_utilization']:>10.1f}{fmt_bytes(s['dram_read_bytes']):>12}"
            f"{fmt_bytes(s['dram_write_bytes']):>12}"
        )
    return "\n".join(lines)


def run(args) -> int:
    designs = [d.strip() for d in args.designs.split(",")] if args.designs else None
    results = compare(args.trace, designs, load_hw(args.hw), args.memory,
                      parse_params(args.memory_param), progress=sys.stderr.isatty())
    if args.out:
        save_results(results, args.out)
    if args.json:
        print_json({name: {**r.summary, "notes": r.notes, "trace_id": r.trace["trace_id"],
                           "synthetic_stats": r.trace["synthetic_stats"]}
                    for name, r in results.items()})
        return 0
    first = next(iter(results.values()))
    print(f"trace {first.trace['model']}: {first.trace['steps']} steps, id {first.trace['trace_id']}, "
          f"synthetic_stats = {str(first.trace['synthetic_stats']).lower()}")
    print(f"hardware {first.config['hw']['name']} @ {first.summary['clock_mhz']:g} MHz, "
          f"memory {first.config['memory']['name']}; cycles are accelerator cycles, bytes are DRAM bytes")
    print(table(results))
    for name, r in results.items():
        for note in r.notes:
            print(f"note [{name}]: {note}")
    if args.out:
        print(f"results written to {args.out}/")
    return 0
