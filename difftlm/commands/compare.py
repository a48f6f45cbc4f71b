"""`difftlm compare`: the same trace on several designs, side by side, with tables and figures."""

from __future__ import annotations

import os
import sys

from difftlm.api import compare
from difftlm.results_io import check_out_dir
from models.designs import available_designs, get_design
from models.config import load_hw
from models.errors import ConfigError

from .common import (
    add_design_args, add_fast_args, add_memory_args, design_params_for, fast_report, fmt_bytes, hw_with_residency, parse_params,
    print_json,
)

DEFAULT_OUT = "difftlm-results"


def register(sub) -> None:
    p = sub.add_parser("compare", help="replay one trace on every design and compare them")
    p.add_argument("--trace", metavar="tiny|small|PATH",
                   help="a bundled model's traces, tiny (default) or small (designs assuming ReLU get "
                        "the ReLU twin), or a trace file")
    p.add_argument("--designs", metavar="LIST", help="comma-separated design names (default: all)")
    p.add_argument("--hw", metavar="common|paper|FILE.toml",
                   help="hardware config (default: common); 'paper' runs each design in its own "
                        "paper configuration (numbers then not comparable across designs)")
    add_memory_args(p)
    add_design_args(p, per_design=True)
    add_fast_args(p)
    p.add_argument("--verbose", action="store_true",
                   help="print every design's full notes (assumptions in force, not modelled, trace used)")
    p.add_argument("--out", metavar="DIR", default=DEFAULT_OUT,
                   help=f"directory for results.json, CSV/Parquet tables and figures "
                        f"(default: {DEFAULT_OUT}/; '-' writes nothing)")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of tables")
    p.add_argument("--chrome-trace", metavar="DIR_OR_PREFIX",
                   help="write one Chrome/Perfetto trace per design (DIR/<design>.trace.json, or "
                        "PREFIX<design>.trace.json)")
    p.add_argument("--timeline-design", metavar="NAME",
                   help="design shown in the per-step timeline figure (default: the first)")
    p.add_argument("--no-figures", action="store_true", help="write tables only, no figures")
    p.add_argument("--quality", action="store_true",
                   help="also sample the bundled tiny model with each design's arithmetic and add "
                        "image-quality columns (PSNR/SSIM vs fp32) and a speed/energy-vs-quality "
                        "figure (needs torch; bundled trace only)")
    p.add_argument("--quality-samples", type=int, default=16, metavar="N",
                   help="samples per design for --quality (default: 16)")
    p.add_argument("--seed", type=int, default=0, help="sampling seed for --quality (default: 0)")
    p.set_defaults(func=run)


def _pct(v: float, tot: float) -> str:
    return f"{v:,.0f} ({100 * v / tot:.0f}%)" if tot else f"{v:,.0f}"


def tables(results) -> str:
    """The terminal report: time breakdown, DRAM traffic by kind, energy by component."""
    speed = results.speedups() if hasattr(results, "speedups") else {}
    names = list(results)
    w = max(12, max(len(n) for n in names) + 2)
    out = []
    head = (f"{'design':<{w}}{'cycles':>14}{'time_ms':>10}{'speedup':>9}{'compute_cyc':>20}"
            f"{'memory_cyc':>20}{'overlap_cyc':>20}{'idle_cyc':>17}{'PE_util%':>9}")
    out += ["run time (accelerator cycles; speedup = dense time / design time)", head, "-" * len(head)]
    for n in names:
        s = results[n].summary
        tot = s["total_cycles"]
        sp = f"{speed[n]:.2f}x" if n in speed else "-"
        out.append(f"{n:<{w}}{tot:>14,.0f}{s['total_ns'] / 1e6:>10.3f}{sp:>9}"
                   f"{_pct(s['compute_cycles'], tot):>20}{_pct(s['memory_cycles'], tot):>20}"
                   f"{_pct(s['overlap_cycles'], tot):>20}{_pct(s['idle_cycles'], tot):>17}"
                   f"{100 * s['pe_utilization']:>9.1f}")
    rk = sorted({k for n in names for k in results[n].summary["dram_read_bytes_by_kind"]})
    wk = sorted({k for n in names for k in results[n].summary["dram_write_bytes_by_kind"]})
    cols = [("read", k) for k in rk] + [("write", k) for k in wk]
    head = f"{'design':<{w}}" + "".join(f"{('rd' if d == 'read' else 'wr')}:{k}"[:13].rjust(14) for d, k in cols) + f"{'total':>14}"
    out += ["", "DRAM traffic by tensor kind (rd = read, wr = write; bytes)", head, "-" * len(head)]
    for n in names:
        s = results[n].summary
        vals = [s[f"dram_{d}_bytes_by_kind"].get(k, 0) for d, k in cols]
        out.append(f"{n:<{w}}" + "".join(f"{fmt_bytes(v):>14}" for v in vals)
                   + f"{fmt_bytes(s['dram_read_bytes'] + s['dram_write_bytes']):>14}")
    comps = ["pe", "sram", "vector", "dram"]
    comps += sorted({k for n in names for k in results[n].summary.get("energy_pj", {}) if k not in comps})
    base = results["dense"].summary.get("energy_total_pj") if "dense" in results else None
    head = f"{'design':<{w}}" + "".join(f"{c:>12}" for c in comps) + f"{'total':>12}{'vs_dense':>10}"
    node = results[names[0]].summary.get("energy_model", {}).get("node_nm", "?")
    out += ["", f"energy by component (uJ; on-chip tables scaled to {node} nm, DRAM from the memory model)",
            head, "-" * len(head)]
    for n in names:
        s = results[n].summary
        e = s.get("energy_pj", {})
        tot = s.get("energy_total_pj", 0.0)
        rel = f"{tot / base:.2f}x" if base else "-"
        out.append(f"{n:<{w}}" + "".join(f"{e.get(c, 0.0) / 1e6:>12,.1f}" for c in comps)
                   + f"{tot / 1e6:>12,.1f}{rel:>10}")
    if any("quality" in results[n].summary for n in names):
        q0 = next(results[n].summary["quality"] for n in names if results[n].summary.get("quality"))
        key, label, fmt = (("classifier_agree_frac", "agree", ">7.3f") if "classifier_agree_frac" in q0
                           else ("patch_swd", "SWD", ">9.1f"))
        out += ["", "image quality (bundled model, each design's arithmetic; PSNR/SSIM against the fp32 samples "
                "of the same seeds; " + ("agree = classifier picks the fp32 sample's digit)" if label == "agree"
                                         else "SWD = patch SWD x1000 to held-out crops, lower is better)"),
                f"{'design':<{w}}{'model':>11}{'PSNR_dB':>9}{'min_dB':>8}{'SSIM':>7}{label:>{fmt[1:-3]}}"
                f"{'time_ms':>10}{'energy_uJ':>11}"]
        out.append("-" * len(out[-1]))
        for n in names:
            s, q = results[n].summary, results[n].summary.get("quality")
            tail = f"{s['total_ns'] / 1e6:>10.3f}{s.get('energy_total_pj', 0.0) / 1e6:>11,.1f}"
            if q is None:
                out.append(f"{n:<{w}}{'not modelled (no numerics emulation)':>42}{tail}")
            else:
                out.append(f"{n:<{w}}{q['model']:>11}{q['psnr_db_mean']:>9.2f}{q['psnr_db_min']:>8.2f}"
                           f"{q['ssim_mean']:>7.3f}{q[key]:{fmt}}{tail}")
    return "\n".join(out)


table = tables  # the earlier name


def _notes_pointer(name: str, args) -> str:
    doc = f"docs/designs/{name.split('.')[0]}.md"
    if args.out and args.out != "-":
        return f"full notes: results.json in {os.path.normpath(args.out)} (or --verbose); design notes {doc}"
    return f"full notes: --verbose; design notes {doc}"


def run(args) -> int:
    designs = None
    if args.designs is not None:
        designs = [d.strip() for d in args.designs.split(",")]
        if not all(designs):
            raise ConfigError(f"--designs {args.designs!r}: an empty design name; give comma-separated "
                              "names (`difftlm designs` lists them) or omit --designs for all")
        for d in designs:
            get_design(d)
    hw = hw_with_residency("paper" if args.hw == "paper" else load_hw(args.hw), args.residency)
    params = design_params_for(args.design_param, designs or available_designs())
    if args.out and args.out != "-":  # before any simulation: a bad --out fails now, not later
        check_out_dir(args.out)
        run_names = designs or available_designs()
        if args.timeline_design and args.timeline_design not in run_names:
            raise ConfigError(f"--timeline-design {args.timeline_design!r} is not among the designs "
                              f"run ({', '.join(run_names)})")
    results = compare(args.trace, designs, hw, args.memory, parse_params(args.memory_param),
                      progress=sys.stderr.isatty() and not args.json, chrome_trace=args.chrome_trace,
                      design_params=params, exact=args.exact, quality=args.quality,
                      quality_samples=args.quality_samples, quality_seed=args.seed)
    if args.fast_report:
        for name, r in results.items():
            print(fast_report(name, r.summary), file=sys.stderr if args.json else sys.stdout)
    written = []
    if args.out and args.out != "-":
        if args.timeline_design and args.timeline_design not in results:
            print(f"difftlm compare: error: --timeline-design {args.timeline_design!r} is not among "
                  f"the designs run ({', '.join(results)})", file=sys.stderr)
            return 2
        written = results.save(args.out, figures=not args.no_figures,
                               timeline_design=args.timeline_design)
    if args.json:
        print_json({"hw_mode": results.hw_mode, "comparable_across_designs": results.comparable,
                    "designs": {name: {**r.summary, "notes": r.notes, "trace_id": r.trace["trace_id"],
                                       "trace_model": r.trace["model"],
                                       "synthetic_stats": r.trace["synthetic_stats"]}
                                for name, r in results.items()},
                    "written": written})
        return 0
    if not results.comparable:
        print("WARNING: --hw paper: every design runs in its own paper configuration (different "
              "PE arrays, SRAM, clocks and memories); the numbers below are NOT comparable across "
              "designs, and speedups are ratios of run times of different machines.")
    traces = {}
    for name, r in results.items():
        t = r.trace
        traces.setdefault((t["model"], t["trace_id"], t["steps"], t["synthetic_stats"]), []).append(name)
    for (model, tid, steps, synth), who in traces.items():
        print(f"trace {model}: {steps} steps, id {tid}, synthetic_stats = {str(synth).lower()} "
              f"-> {', '.join(who)}")
        if results[who[0]].trace.get("weights") == "random":
            print(f"WARNING: trace {model} was captured with random weights (weights = random): its "
                  "statistics mean nothing, only its shapes do")
    hws = sorted({(r.config['hw']['name'], r.summary['clock_mhz'], r.config['memory']['name'])
                  for r in results.values()})
    for hname, mhz, mem in hws:
        print(f"hardware {hname} @ {mhz:g} MHz, memory {mem}")
    print()
    print(tables(results))
    print()
    for name, r in results.items():
        notes = list(r.notes) + [f"energy: {n}" for n in r.summary.get("energy_notes", [])]
        if args.verbose:
            for note in notes:
                print(f"note [{name}]: {note}")
        else:
            res = r.summary.get("residency", {})
            spilled = len(res.get("spilled_tensors", []))
            print(f"{name}: {len(notes)} notes ({spilled} tensors through DRAM, weights "
                  f"{'resident' if r.summary.get('weights_resident') else 'from DRAM'}); "
                  f"{_notes_pointer(name, args)}")
    if written:
        figs = [p for p in written if p.endswith((".png", ".svg", ".pdf"))]
        print(f"\nresults written to {os.path.normpath(args.out)}/: results.json, summary/per_op/per_step "
              f"tables (csv{', parquet' if any(p.endswith('.parquet') for p in written) else ''}), "
              f"{len(figs)} figure files")
    return 0
