"""Benchmark: every design on the SD v1.5 zoo trace; wall time, s/step, SimPy events/s, peak RSS.

    python benchmarks/bench_compare.py [--steps 50] [--designs dense,ditto] [--exact-steps 1]
    python benchmarks/bench_compare.py --tiny     # the no-argument `difftlm compare`

Each design replays in its own process (so its peak RSS is its own), with the fast path on
(`models/fastpath.py`); `--exact-steps N` also replays an N-step trace with `exact=True` for the
figure beside it. Designs default to the five base designs; `--ablations` adds every variant.
The trace is generated with `difftlm trace zoo sd15 --steps N` unless --trace is given.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

RUN_ONE = """
import json, resource, sys, time
import difftlm
t0 = time.perf_counter()
r = difftlm.replay(sys.argv[1], sys.argv[2], exact=sys.argv[3] == "exact")
wall = time.perf_counter() - t0
s = r.summary
print(json.dumps({"wall_s": wall, "steps": r.trace["steps"], "simpy_events": s["simpy_events"],
                  "total_cycles": s["total_cycles"], "simulated_jobs": s["simulated_jobs"],
                  "tile_jobs": s["tile_jobs"], "fast_path": s["fast_path"],
                  "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def _zoo(d: str, steps: int) -> str:
    path = os.path.join(d, f"sd15-{steps}.trace.zip")
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "difftlm.cli", "trace", "zoo", "sd15", "--steps", str(steps),
                    "--out", path], check=True, stdout=subprocess.DEVNULL)
    print(f"trace: sd15, {steps} steps, generated in {time.perf_counter() - t0:.1f} s", flush=True)
    return path


def _run(trace: str, design: str, mode: str) -> dict:
    out = subprocess.run([sys.executable, "-c", RUN_ONE, trace, design, mode], check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=50, help="SD v1.5 denoising steps (default 50)")
    ap.add_argument("--designs", help="comma-separated designs (default: the five base designs)")
    ap.add_argument("--ablations", action="store_true", help="also every registered variant")
    ap.add_argument("--exact-steps", type=int, default=0,
                    help="also replay an N-step trace exactly (exact=True), for comparison")
    ap.add_argument("--trace", help="use this trace instead of generating the SD v1.5 zoo trace")
    ap.add_argument("--tiny", action="store_true", help="time the no-argument `difftlm compare` instead")
    args = ap.parse_args()
    from models.designs import available_designs

    if args.tiny:
        with tempfile.TemporaryDirectory() as d:
            t0 = time.perf_counter()
            subprocess.run([sys.executable, "-m", "difftlm.cli", "compare", "--out", d],
                           check=True, stdout=subprocess.DEVNULL)
            print(f"difftlm compare (no arguments, {len(available_designs())} designs): "
                  f"{time.perf_counter() - t0:.1f} s wall")
        return 0
    base = ["dense", "ditto", "mhdiff", "sqdm", "cambricon_d"]
    names = args.designs.split(",") if args.designs else base
    if args.ablations:
        names += [n for n in available_designs() if n not in names]
    with tempfile.TemporaryDirectory() as d:
        trace = args.trace or _zoo(d, args.steps)
        exact_trace = _zoo(d, args.exact_steps) if args.exact_steps else None
        head = (f"{'design':<22}{'mode':>7}{'steps':>6}{'wall_s':>9}{'s/step':>8}{'jobs_sim':>10}"
                f"{'tiles':>12}{'events':>11}{'events/s':>10}{'rss_MiB':>9}{'reused':>7}")
        print(head + "\n" + "-" * len(head), flush=True)
        total = 0.0
        for n in names:
            runs = [("fast", trace)] + ([("exact", exact_trace)] if exact_trace else [])
            for mode, tr in runs:
                r = _run(tr, n, mode)
                if mode == "fast":
                    total += r["wall_s"]
                ev = r["simpy_events"]
                print(f"{n:<22}{mode:>7}{r['steps']:>6}{r['wall_s']:>9.1f}{r['wall_s'] / r['steps']:>8.2f}"
                      f"{r['simulated_jobs']:>10,}{r['tile_jobs']:>12,}{ev:>11,}{ev / r['wall_s']:>10,.0f}"
                      f"{r['peak_rss_mib']:>9.0f}{r['fast_path']['steps_reused']:>7}", flush=True)
        print(f"total fast wall time, one after another: {total:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
