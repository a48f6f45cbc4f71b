"""`run_sweep`: plan a spec, skip points already stored, run the rest, write the store."""

from __future__ import annotations

import os
import time
from typing import Any

import attrs

from .engine import connect, default_jobs, execute
from .points import Point, plan
from .spec import Spec
from .store import Store, is_sweep_dir, read_record

SECONDS_PER_OP_STEP = 5e-4
"""Rough replay cost of one op of one step (the bundled tiny trace, one core of the reference
machine); dry runs use the measured rate of an existing store instead when there is one."""


@attrs.frozen
class SweepReport:
    out: str
    points: int
    skipped: int
    ok: int
    failed: int
    wall_s: float
    table: str

    def to_dict(self) -> dict[str, Any]:
        return attrs.asdict(self)


def run_sweep(spec: Spec, out: str, jobs: int | None = None, scheduler: str | None = None,
              resume: bool = False, progress: bool = False) -> SweepReport:
    """Run every point of `spec` not yet stored in `out` (with `resume`) and write the store.
    Points run in `jobs` local processes (default: all cores) or on the Dask cluster at
    `scheduler`; the store does not depend on which, nor on the order points finish in."""
    t0 = time.perf_counter()
    points = plan(spec)
    client = connect(scheduler) if scheduler else None  # before anything is written
    try:
        with Store(out, resume) as store:
            counts, skipped = _run(store, spec, points, jobs, client, progress)
            table = store.write_table(points)
    finally:
        if client is not None:
            client.close()
    return SweepReport(out, len(points), skipped, counts["ok"], counts["failed"],
                       time.perf_counter() - t0, table)


def _run(store: Store, spec: Spec, points: list[Point], jobs: int | None, client,
         progress: bool) -> tuple[dict[str, int], int]:
    """Store every point not finished yet; (ok/failed counts, points skipped)."""
    store.write_manifest(spec, points)
    done = store.finished()
    todo = [p for p in points if p.config_hash not in done]
    by_hash = {p.config_hash: p for p in todo}
    bar = _bar(progress, len(points), len(points) - len(todo))
    counts = {"ok": 0, "failed": 0}
    try:
        for p in todo:
            if p.error is not None:
                store.write_point(p, {"status": "failed", "error": p.error, "wall_s": 0.0})
                counts["failed"] += 1
                _tick(bar, counts, len(todo))
        runnable = [p.task() for p in todo if p.error is None]
        for outcome in execute(runnable, jobs, client) if runnable else ():
            rec = store.write_point(by_hash[outcome["config_hash"]], outcome)
            counts[rec["status"]] += 1
            _tick(bar, counts, len(todo))
    finally:
        if bar is not None:
            bar.close()
    return counts, len(points) - len(todo)


def _bar(progress: bool, total: int, skipped: int):
    if not progress:
        return None
    from tqdm import tqdm

    return tqdm(total=total, initial=skipped, desc="sweep", unit="point", disable=None)


def _tick(bar, counts: dict[str, int], todo: int) -> None:
    if bar is None:
        return
    left = todo - counts["ok"] - counts["failed"]
    bar.set_postfix_str(f"ok {counts['ok']}, failed {counts['failed']}, left {left}", refresh=False)
    bar.update(1)


def estimate(spec: Spec, out: str | None = None, jobs: int | None = None) -> dict[str, Any]:
    """The points of `spec` and what running them would cost: op-steps to replay, CPU seconds
    (at the rate measured in `out`'s store when it has finished points), wall seconds on `jobs`
    processes, and how many points `--resume` into `out` would skip."""
    from workloads import Trace

    points = plan(spec)
    sizes = {p.trace_path: None for p in points}
    for path in sizes:
        tr = Trace(path)
        sizes[path] = tr.n_steps * len(tr.ops)
    ok = _stored_ok(out, points)
    rate, source = SECONDS_PER_OP_STEP, "built-in rate"
    if ok:
        rate = sum(w for w in ok.values()) / sum(sizes[p.trace_path] for p in points if p.config_hash in ok)
        source = f"rate measured over {len(ok)} stored points"
    todo = [p for p in points if p.error is None and p.config_hash not in ok]
    op_steps = sum(sizes[p.trace_path] for p in todo)
    workers = max(1, min(jobs or default_jobs(), len(todo)))
    return {"points": [_describe(p) for p in points], "to_run": len(todo), "skipped": len(ok),
            "invalid": sum(1 for p in points if p.error), "op_steps": op_steps,
            "cpu_s": op_steps * rate, "wall_s": op_steps * rate / workers, "jobs": workers,
            "rate_s_per_op_step": rate, "rate_source": source}


def _stored_ok(out: str | None, points: list[Point]) -> dict[str, float]:
    """config hash → wall seconds of the points of `points` stored as ok in sweep `out`."""
    if not out or not is_sweep_dir(out):
        return {}
    recs = {p.config_hash: read_record(os.path.join(out, "points"), p.config_hash) for p in points}
    return {h: r["wall_s"] for h, r in recs.items() if r is not None and r["status"] == "ok"}


def _describe(p: Point) -> dict[str, Any]:
    return {"point": p.index, "config_hash": p.config_hash, "design": p.design, "trace": p.trace,
            "values": p.values, "error": p.error}
