"""Benchmark: points per minute of the 12-point sweep (examples/sweeps/sram_size.toml: 2 designs
x 3 SRAM sizes x 2 DRAM presets on the bundled trace) with 1 and 2 local jobs.

    python benchmarks/bench_sweep.py [--jobs 1,2] [--spec SPEC.toml]

Each run is a fresh `difftlm sweep` process (its start-up counted); the stores of all runs are
checked to hold the same figures.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time

SPEC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "examples", "sweeps", "sram_size.toml")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--jobs", default="1,2", help="comma-separated job counts (default 1,2)")
    ap.add_argument("--spec", default=SPEC, help="sweep spec (default: examples/sweeps/sram_size.toml)")
    args = ap.parse_args()
    import pyarrow.parquet as pq

    tables = []
    print(f"{'jobs':>4}{'points':>8}{'wall_s':>9}{'points/min':>12}")
    with tempfile.TemporaryDirectory() as d:
        for jobs in (int(j) for j in args.jobs.split(",")):
            out = os.path.join(d, f"j{jobs}.sweep")
            t0 = time.perf_counter()
            subprocess.run([sys.executable, "-m", "difftlm.cli", "sweep", args.spec, "--out", out,
                            "--jobs", str(jobs)], check=True, stdout=subprocess.DEVNULL)
            wall = time.perf_counter() - t0
            table = pq.read_table(os.path.join(out, "points.parquet")).drop_columns(["wall_s"])
            tables.append(table)
            print(f"{jobs:>4}{table.num_rows:>8}{wall:>9.1f}{60 * table.num_rows / wall:>12.1f}", flush=True)
    if any(not t.equals(tables[0]) for t in tables):
        print("error: the stores differ between job counts", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
