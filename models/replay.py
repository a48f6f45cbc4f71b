"""`replay`: run one trace on one design and measure where the time goes.

The walk: trace reader → design.jobs(step, op) → pipeline (loader → compute → writer) →
activity recorder → `Result`. Every number in the result comes from the recorded activity and the
components' counters; after the run the invariants are checked (all transactions and jobs
complete, buffers drained and never over capacity, compute + memory − overlap + idle = total).
"""

from __future__ import annotations

import platform
import time
from collections import defaultdict
from importlib import metadata
from typing import Any

import attrs
import numpy as np
import simpy

from tlm import ActivityRecorder, Module, elaborate, write_json_atomic
from workloads import Trace

from .config import COMMON, HardwareConfig
from .designs import create_design
from .energy import energy_summary
from .errors import ConfigError
from .memory import create_memory_model, memory_model_config
from .fastpath import FastPath, FastStats, OpReuse, compress, reuse_plan
from .pipeline import Barrier
from .result import Result


def _versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for pkg in ("difftlm", "simpy", "numpy", "attrs"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = "unknown"
    return out


def _progress_bar(enabled: bool, total: int, desc: str):
    """A tqdm bar (silent when not on a terminal) whose `update(step)` advances one step."""
    if not enabled:
        return None
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="step", leave=False, disable=None)


def replay(trace: Trace | str, design: str = "dense", hw: HardwareConfig = COMMON,
           memory: str | None = None, memory_params: dict[str, Any] | None = None,
           design_params: dict[str, Any] | None = None, quantum_ps: int = 0,
           chrome_trace: str | None = None, progress: bool = False, exact: bool = False,
           fast: FastPath | None = None) -> Result:
    """Replay `trace` on `design` with hardware `hw` and a memory model (default: the config's).
    `exact=True` turns the fast path off (`models.fastpath`); `fast` sets its sizes."""
    if not isinstance(trace, Trace):
        trace = Trace(trace)
    if not isinstance(quantum_ps, int) or isinstance(quantum_ps, bool) or quantum_ps < 0:
        raise ConfigError(f"quantum_ps: must be an integer >= 0 (0 = exact), got {quantum_ps!r}")
    fp = FastPath.exact() if exact else (fast if fast is not None else FastPath())
    trace.validate_steps()  # every statistic checked, whether or not the design reads it
    wall0 = time.perf_counter()
    d = create_design(design, hw, design_params)
    mem_name = memory or hw.memory.model
    mem_params = memory_params if memory is not None else {**hw.memory.params, **(memory_params or {})}
    mem = create_memory_model(mem_name, mem_params)
    if not fp.memory_fast_forward:
        mem.set_exact()
    env = simpy.Environment()
    recorder = ActivityRecorder()
    top = Module("acc")
    d.build(env, top, recorder, mem, trace, quantum_ps)
    elaborate(top)
    d.prepare(trace)
    n_steps = trace.n_steps
    keys = [d.step_key(trace, s) for s in range(n_steps)] if fp.step_reuse or fp.op_reuse else []
    classes = [d.step_class(trace, s) for s in range(n_steps)] if fp.step_block > 1 else None
    steps, runs = (reuse_plan(keys, fp.min_reuse_run, classes, fp.step_block) if fp.step_reuse
                   else (list(range(n_steps)), []))
    reuse = _Reuse(runs, top, d)
    bar = _progress_bar(progress, n_steps, design)
    fast_stats = FastStats()
    tick = (lambda s: bar.update(1 + reuse.skipped_after(s))) if bar else None
    if fp.op_reuse and d.op_jobs_pure:  # compresses op by op itself
        counted = _Counter(d.jobs(trace, steps, progress=tick,
                                  per_op=OpReuse({s: keys[s] for s in steps}, d.units, fp, fast_stats)))
    else:
        jobs = d.jobs(trace, steps, progress=tick)
        counted = _Counter(compress(jobs, d.units, fp, fast_stats) if fp.macro_jobs else jobs)
    d.pipeline.run(counted)
    env.run()
    if bar:
        bar.close()
    wall = time.perf_counter() - wall0
    result = _collect(trace, d, top, hw, mem_name, mem, recorder, env, counted, wall, reuse,
                      {"exact": fp.is_exact, **attrs.asdict(fp), **attrs.asdict(fast_stats),
                       "steps_simulated": len(steps), "steps_reused": n_steps - len(steps),
                       "steps_sampled": sum(hi - lo for src, lo, hi, _ in runs
                                            if any(keys[s] != keys[src] for s in range(lo, hi + 1))),
                       "memory": mem.fast_stats()})
    if chrome_trace:
        names = [f"s{s}:{op.name}" for s in range(trace.n_steps) for op in trace.ops]
        write_json_atomic(chrome_trace, recorder.chrome_trace(names))
    return result


class _Counter:
    """Counts the jobs a design emits as the loader consumes them, and the tiles they stand for
    per step (barriers are not jobs)."""

    def __init__(self, it):
        self._it = iter(it)
        self.n = 0
        self.tiles: dict[int, int] = defaultdict(int)

    def __iter__(self):
        for job in self._it:
            if not isinstance(job, Barrier):
                self.n += 1
                self.tiles[job.step] += job.tiles
            yield job


class _Reuse:
    """Step reuse (A-41) and sampling (A-71): snapshots of every additive counter when a run's
    source step and the step simulated after it start, and the splice of the source step's
    window standing for the run's steps."""

    def __init__(self, runs: list[tuple[int, int, int, int]], top: Module, d):
        self.runs, self.top, self.d = runs, top, d
        self.snaps: dict[int, dict[tuple, float]] = {}
        watch = {src for src, _, _, _ in runs} | {nxt for _, _, _, nxt in runs}
        if runs:
            d.pipeline.on_step = lambda step: (self.snaps.__setitem__(step, _counters(top, d))
                                               if step in watch else None)

    def skipped_after(self, step: int) -> int:
        """Steps not simulated that a simulated step `step` stands for."""
        return sum(hi - lo for src, lo, hi, _ in self.runs if src == step)

    def apply(self, recorder: ActivityRecorder, marks: list[tuple[int, int]], n_ops: int,
              dram_bytes: dict, counters: dict[tuple, float], tiles: dict[int, int]) -> tuple[int, list]:
        """Splice every run into the timeline, marks, DRAM bytes and counters; returns the total
        shift in ps and the new marks. Run (src, lo, hi, nxt): copy k = 0 .. hi − lo of src's
        window [start of src, start of nxt) is step lo + k; activity in it of an earlier step
        belongs to step lo + k − 1, of nxt (or later) to the step after the copy."""
        windows = []
        step_start = {}
        for t, lab in marks:
            step_start.setdefault(lab // n_ops, t)
        for src, lo, hi, nxt in reversed(self.runs):
            count = hi - lo
            t0, t1 = step_start[src], step_start[nxt]
            width = t1 - t0

            def relabel(labels: np.ndarray, k: int, src=src, lo=lo, nxt=nxt) -> np.ndarray:
                step, op = np.divmod(labels, n_ops)
                new = np.where(step < src, lo + k - 1,
                               np.where(step < nxt, lo + k, step - nxt + lo + k + 1))
                return new * n_ops + op

            windows.append((t0, t1, count, relabel))
            mt = np.fromiter((t for t, _ in marks), np.int64, len(marks))
            ml = np.fromiter((lab for _, lab in marks), np.int64, len(marks))
            inside = (mt >= t0) & (mt < t1)
            parts_t, parts_l = [mt[mt < t0]], [ml[mt < t0]]
            for k in range(count + 1):  # the window as copy 0, then its copies
                parts_t.append(mt[inside] + k * width)
                parts_l.append(relabel(ml[inside], k))
            parts_t.append(mt[mt >= t1] + count * width)
            parts_l.append(ml[mt >= t1])
            marks = list(zip(np.concatenate(parts_t).tolist(), np.concatenate(parts_l).tolist()))
            for (lab, kind, write), nbytes in list(dram_bytes.items()):
                if lab // n_ops == src:
                    del dram_bytes[(lab, kind, write)]
                    for k in range(count + 1):
                        dram_bytes[(lab + (lo + k - src) * n_ops, kind, write)] += nbytes
            a, b = self.snaps[src], self.snaps[nxt]
            for key in a.keys() | b.keys():
                counters[key] = counters.get(key, 0.0) + count * (b.get(key, 0.0) - a.get(key, 0.0))
            src_tiles = tiles[src]
            for k in range(count + 1):
                tiles[lo + k] = src_tiles
        return recorder.splice_many(windows[::-1]), marks


def _counters(top: Module, d, reports: tuple | None = None) -> dict[tuple, float]:
    """Every additive counter of the run so far, flat: energy events per component, numeric
    component reports (`reports`: `_module_reports` when already taken), unit cycles, MACs and the
    design's `step_counts`."""
    ledger, _, extra = reports or _module_reports(top, d)
    out: dict[tuple, float] = {("events", c, k): v for c, e in ledger.items() for k, v in e.items()}
    out.update({("extra", k): v for k, v in extra.items()
                if isinstance(v, (int, float)) and not isinstance(v, bool)})
    out.update({("unit_cycles", u): c for u, c in d.pipeline.unit_cycles.items()})
    out.update({("design", k): v for k, v in d.step_counts().items()})
    out[("macs",)] = d.pipeline.macs
    return out


def _check_invariants(d, env, recorder, n_jobs: int) -> None:
    problems = []
    if d.pipeline.jobs_done != n_jobs:
        problems.append(f"{n_jobs - d.pipeline.jobs_done} jobs did not complete")
    if d.dram.last_done_ps > env.now:
        problems.append("a DRAM transaction completed after the end of the run")
    for name, buf in d.buffers.items():
        if buf.used != 0:
            problems.append(f"{buf.name} still holds {buf.used} bytes")
        if buf.peak > buf.capacity:
            problems.append(f"{buf.name} peaked over capacity")
    if recorder.end_ps() > env.now:
        problems.append("activity recorded after the end of the run")
    if problems:
        raise RuntimeError("replay invariant violated: " + "; ".join(problems))


def _module_reports(top: Module, d) -> tuple[dict[str, dict[str, float]], dict[str, float], dict[str, Any]]:
    """Merge what every component reports through its result hook (`Module.report`): energy
    events per component (with the design's control events), component-priced events and
    summary keys."""
    ledger: dict[str, dict[str, float]] = defaultdict(dict)
    prices: dict[str, float] = {}
    extra: dict[str, Any] = {}

    def add(comp: str, events: dict[str, float]) -> None:
        led = ledger[comp]
        for k, v in events.items():
            led[k] = led.get(k, 0.0) + v

    for module in top.walk():
        rep = dict(module.report())
        comp = rep.pop("component", module.basename)
        add(comp, rep.pop("events", {}))
        for c, events in rep.pop("component_events", {}).items():
            add(c, events)
        prices.update(rep.pop("prices_pj", {}))
        extra.update(rep)
    add("control", d.events)
    return ledger, prices, extra


def _collect(trace: Trace, d, top: Module, hw: HardwareConfig, mem_name: str, mem, recorder: ActivityRecorder,
             env: simpy.Environment, counted: _Counter, wall_s: float, reuse: _Reuse,
             fast_info: dict[str, Any]) -> Result:
    _check_invariants(d, env, recorder, counted.n)
    clock = d.clock
    n_ops, n_steps = len(trace.ops), trace.n_steps
    n_labels = n_ops * n_steps
    cyc = clock.ps_to_cycles
    reports = _module_reports(top, d)
    counters = _counters(top, d, reports)
    dram_bytes = defaultdict(int, d.dram.bytes)
    tiles = dict(counted.tiles)
    shift, marks = reuse.apply(recorder, d.pipeline.marks, n_ops, dram_bytes, counters, tiles)
    total = int(env.now) + shift
    labels = [lab for _, lab in marks]
    bounds = [0] + [t for t, _ in marks[1:]] + [total]
    windows = recorder.breakdowns(bounds) if marks else []
    win_by_label = dict(zip(labels, windows))
    step_first = {}
    for t, lab in marks:
        step_first.setdefault(lab // n_ops, t)
    step_bounds = [0] + [step_first[s] for s in sorted(step_first)][1:] + [total]
    step_windows = dict(zip(sorted(step_first), recorder.breakdowns(step_bounds))) if marks else {}
    whole = recorder.breakdowns([0, total])[0]
    assert whole.compute_ps + whole.memory_ps - whole.overlap_ps + whole.idle_ps == whole.total_ps

    busy_label = recorder.busy_by_label(n_labels)
    zeros = np.zeros(n_labels, dtype=np.int64)
    pe_busy = busy_label.get(d.pe.name, zeros)
    vec_unit = d.units.get("vector")
    vec_busy = busy_label.get(vec_unit.name, zeros) if vec_unit is not None else zeros
    dram_busy = busy_label.get(d.dram.name, zeros)
    kinds = sorted({k for (_, k, _) in dram_bytes})
    by_label = defaultdict(dict)
    read_kind, write_kind = defaultdict(int), defaultdict(int)
    for (lab, kind, write), nbytes in dram_bytes.items():
        key = f"dram_{'write' if write else 'read'}_{kind}_bytes"
        by_label[lab][key] = by_label[lab].get(key, 0) + nbytes
        (write_kind if write else read_kind)[kind] += nbytes

    per_op = []
    macs_label = _macs_by_label(trace)
    for lab in range(n_labels):
        step, op_id = divmod(lab, n_ops)
        op = trace.ops[op_id]
        w = win_by_label.get(lab)
        row = {
            "step": step, "op_id": op_id, "name": op.name, "kind": op.kind,
            "window_cycles": cyc(w.total_ps) if w else 0.0,
            "compute_cycles": cyc(w.compute_ps) if w else 0.0,
            "memory_cycles": cyc(w.memory_ps) if w else 0.0,
            "overlap_cycles": cyc(w.overlap_ps) if w else 0.0,
            "idle_cycles": cyc(w.idle_ps) if w else 0.0,
            "pe_busy_cycles": cyc(int(pe_busy[lab])),
            "vector_busy_cycles": cyc(int(vec_busy[lab])),
            "dram_busy_ns": int(dram_busy[lab]) / 1000,
            "macs": macs_label[op_id],
        }
        for kind in kinds:
            for direction in ("read", "write"):
                key = f"dram_{direction}_{kind}_bytes"
                row[key] = by_label[lab].get(key, 0)
        per_op.append(row)

    per_step = []
    rd_keys = [f"dram_read_{k}_bytes" for k in kinds]
    wr_keys = [f"dram_write_{k}_bytes" for k in kinds]
    for s in range(n_steps):
        w = step_windows.get(s)
        rows = per_op[s * n_ops:(s + 1) * n_ops]
        per_step.append({
            "step": s, "t": trace.manifest["steps"][s],
            "total_cycles": cyc(w.total_ps) if w else 0.0,
            "compute_cycles": cyc(w.compute_ps) if w else 0.0,
            "memory_cycles": cyc(w.memory_ps) if w else 0.0,
            "overlap_cycles": cyc(w.overlap_ps) if w else 0.0,
            "idle_cycles": cyc(w.idle_ps) if w else 0.0,
            "dram_read_bytes": sum(r[k] for r in rows for k in rd_keys),
            "dram_write_bytes": sum(r[k] for r in rows for k in wr_keys),
            "macs": sum(r["macs"] for r in rows),
        })

    _, prices, reported = reports
    ledger: dict[str, dict[str, float]] = defaultdict(dict)
    unit_cycles = {}
    for key, v in counters.items():
        if key[0] == "events":
            ledger[key[1]][key[2]] = v
        elif key[0] == "extra":
            reported[key[1]] = v
        elif key[0] == "unit_cycles":
            unit_cycles[key[1]] = v
    ledger = {c: dict(sorted(e.items())) for c, e in sorted(ledger.items()) if e}
    d.set_step_counts({key[1]: v for key, v in counters.items() if key[0] == "design"})
    reported.update(d.report())
    pe = d.pe
    macs = counters[("macs",)]
    total_cycles = cyc(total)
    summary = {
        "design": d.name,
        "total_cycles": total_cycles,
        "total_ns": total / 1000,
        "total_ps": total,
        "compute_cycles": cyc(whole.compute_ps),
        "memory_cycles": cyc(whole.memory_ps),
        "overlap_cycles": cyc(whole.overlap_ps),
        "idle_cycles": cyc(whole.idle_ps),
        "compute_only_cycles": cyc(whole.compute_only_ps),
        "memory_only_cycles": cyc(whole.memory_only_ps),
        "compute_ps": whole.compute_ps, "memory_ps": whole.memory_ps,
        "overlap_ps": whole.overlap_ps, "idle_ps": whole.idle_ps,
        "pe_busy_cycles": unit_cycles[d.mac_unit],
        "vector_busy_cycles": unit_cycles.get("vector", 0),
        "unit_busy_cycles": dict(unit_cycles),
        "macs": macs,
        "pe_utilization": macs / (pe.macs_per_cycle * total_cycles) if total_cycles else 0.0,
        "pe_busy_utilization": macs / (pe.macs_per_cycle * unit_cycles[d.mac_unit]) if unit_cycles[d.mac_unit] else 0.0,
        "dram_read_bytes": sum(read_kind.values()),
        "dram_write_bytes": sum(write_kind.values()),
        "dram_read_bytes_by_kind": dict(sorted(read_kind.items())),
        "dram_write_bytes_by_kind": dict(sorted(write_kind.items())),
        "dram_peak_bandwidth_gbps": mem.peak_bandwidth_gbps(),
        "buffer_peak_bytes": {b.basename: b.peak for b in d.buffers.values()},
        "tile_jobs": sum(tiles.values()),
        "simulated_jobs": counted.n,
        "fast_path": fast_info,
        "op_steps": n_ops * n_steps,
        "clock_mhz": clock.freq_mhz,
        "simpy_events": _events_scheduled(env),
        "events_by_component": ledger,
        "event_prices_pj": prices,
        **reported,
    }
    summary.update(energy_summary(summary, hw.to_dict()))  # energy_pj by component, unpriced_events
    return Result(
        design=d.name,
        summary=summary,
        per_step=per_step,
        per_op=per_op,
        components={name: {"busy_ps": ps} for name, ps in recorder.busy_ps().items()},
        config={"hw": hw.to_dict(), "design": d.describe(), "memory": memory_model_config(mem_name, mem)},
        trace={"path": trace.path, "trace_id": trace.trace_id, "model": trace.manifest["model"],
               "steps": n_steps, "synthetic_stats": trace.synthetic_stats, "weights": trace.weights},
        versions=_versions(),
        notes=list(d.notes) + _fast_notes(fast_info, n_steps, sum(tiles.values()))
        + (["trace statistics are synthetic (synthetic_stats = true)"] if trace.synthetic_stats else [])
        + (["the trace was captured with random weights (weights = random): its statistics mean nothing"]
           if trace.weights == "random" else []),
        wall_s=wall_s,
    )


def _fast_notes(f: dict[str, Any], n_steps: int, tiles: int) -> list[str]:
    """What the fast path extrapolated, or nothing when the run is exact."""
    if f["exact"]:
        return []
    mem = f["memory"].get("extrapolated_bytes", 0)
    sampled = f.get("steps_sampled", 0)
    return [f"fast path: {f['steps_reused']} of {n_steps} steps reused ("
            f"{f['steps_reused'] - sampled} copies of a step with the same key, A-41; {sampled} "
            "stood for by the sampled middle step of their block, A-71), "
            f"{100 * f['macro_tiles'] / max(1, tiles):.1f} % of tiles in {f['macro_jobs']} macro jobs (A-40), "
            f"{mem:,} DRAM bytes extrapolated by the memory model"
            + (f", {f['ops_reused']} ops' jobs copied from an earlier step (A-70, exact)"
               if f.get("ops_reused") else "") + "; --exact simulates everything"]


def _events_scheduled(env: simpy.Environment) -> int:
    """SimPy events scheduled so far (SimPy numbers events with an internal counter)."""
    counter = getattr(env, "_eid", None)
    return next(counter) if counter is not None else -1


def _macs_by_label(trace: Trace) -> list[int]:
    return [op.macs for op in trace.ops]
