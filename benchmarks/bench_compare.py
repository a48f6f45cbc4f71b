"""Benchmark: the SD v1.5 zoo trace replayed on every design; wall time and SimPy events/s.

    python benchmarks/bench_compare.py --steps 2 [--designs dense,mhdiff] [--trace PATH]

Generates the trace with `difftlm trace zoo sd15 --steps N` unless --trace is given. Also times
the no-argument `difftlm compare` (bundled tiny traces, every design) with --tiny.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=2, help="SD v1.5 denoising steps (default 2)")
    ap.add_argument("--designs", help="comma-separated designs (default: all registered)")
    ap.add_argument("--trace", help="use this trace instead of generating the SD v1.5 zoo trace")
    ap.add_argument("--tiny", action="store_true", help="time the no-argument `difftlm compare` instead")
    args = ap.parse_args()
    import difftlm
    from models.designs import available_designs

    if args.tiny:
        with tempfile.TemporaryDirectory() as d:
            t0 = time.perf_counter()
            subprocess.run([sys.executable, "-m", "difftlm.cli", "compare", "--out", d],
                           check=True, stdout=subprocess.DEVNULL)
            print(f"difftlm compare (no arguments, {len(available_designs())} designs): "
                  f"{time.perf_counter() - t0:.1f} s wall")
        return 0
    names = args.designs.split(",") if args.designs else available_designs()
    with tempfile.TemporaryDirectory() as d:
        trace = args.trace
        if trace is None:
            trace = os.path.join(d, "sd15.trace.zip")
            t0 = time.perf_counter()
            subprocess.run([sys.executable, "-m", "difftlm.cli", "trace", "zoo", "sd15", "--steps",
                            str(args.steps), "--out", trace], check=True, stdout=subprocess.DEVNULL)
            print(f"trace: sd15, {args.steps} steps, generated in {time.perf_counter() - t0:.1f} s")
        print(f"{'design':<24}{'wall_s':>9}{'s/step':>9}{'simpy_events':>14}{'events/s':>11}{'cycles':>16}")
        for n in names:
            t0 = time.perf_counter()
            r = difftlm.replay(trace, n)
            wall = time.perf_counter() - t0
            ev = r.summary["simpy_events"]
            print(f"{n:<24}{wall:>9.1f}{wall / r.trace['steps']:>9.1f}{ev:>14,}{ev / wall:>11,.0f}"
                  f"{r.summary['total_cycles']:>16,.0f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
