"""Replay speed of the dense design on a Stable-Diffusion-sized synthetic trace, next to a bare
SimPy pipeline of the same shape (loader -> bounded channel -> compute -> bounded channel ->
writer, one timeout per stage and item) as the ceiling.

    python benchmarks/bench_replay.py [--steps 1] [--memory lpddr4-3200-4ch] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time

import simpy

from models.config import COMMON, MemoryConfig
from models.replay import replay
from workloads.synthetic import SD_LIKE, write_synthetic_trace


def bare_pipeline(n_items: int) -> tuple[float, int]:
    """Wall seconds and SimPy events for n_items through a 3-stage bounded pipeline."""
    env = simpy.Environment()
    a, b = simpy.Store(env, capacity=1), simpy.Store(env, capacity=1)

    def loader():
        for i in range(n_items):
            yield env.timeout(3)
            yield a.put(i)

    def compute():
        for _ in range(n_items):
            item = yield a.get()
            yield env.timeout(5)
            yield b.put(item)

    def writer():
        for _ in range(n_items):
            yield b.get()
            yield env.timeout(2)

    for p in (loader, compute, writer):
        env.process(p())
    t0 = time.perf_counter()
    env.run()
    return time.perf_counter() - t0, next(env._eid)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=1)
    ap.add_argument("--memory", default="lpddr4-3200-4ch")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "sd_like.trace.zip")
        write_synthetic_trace(path, SD_LIKE, steps=args.steps)
        res = replay(path, "dense", COMMON.evolve(memory=MemoryConfig(args.memory)))
    s = res.summary
    jobs = s["tile_jobs"]
    bare_wall, bare_events = bare_pipeline(min(jobs, 200_000))
    out = {
        "trace": "synthetic SD-like U-Net (SD_LIKE)", "steps": args.steps, "ops_per_step": s["op_steps"] // args.steps,
        "memory": args.memory,
        "dense_wall_s": res.wall_s, "dense_op_steps_per_s": s["op_steps"] / res.wall_s,
        "dense_tile_jobs": jobs, "dense_tile_jobs_per_s": jobs / res.wall_s,
        "dense_simpy_events": s["simpy_events"], "dense_events_per_s": s["simpy_events"] / res.wall_s,
        "bare_items": min(jobs, 200_000), "bare_items_per_s": min(jobs, 200_000) / bare_wall,
        "bare_events_per_s": bare_events / bare_wall,
    }
    if args.json:
        print(json.dumps(out, indent=1))
    else:
        for k, v in out.items():
            print(f"{k:>24}: {v:,.1f}" if isinstance(v, float) else f"{k:>24}: {v}")


if __name__ == "__main__":
    main()
