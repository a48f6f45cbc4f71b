"""The fast path: macro jobs with exact edges, step reuse and sampling, op reuse;
`FastPath.exact()` is its twin.

Macro jobs (assumption A-40). The jobs of one (step, op) form a homogeneous run of tiles. In an
op of at least `min_op_jobs` jobs, the first `head_jobs` and the last `tail_jobs` are simulated
as they are; the interior is cut into macro jobs of at most `tiles_per_macro` tiles. A macro job
carries its tiles' summed work (each tile's cycles and energy events still come from its unit,
as `Lumped` work), on-chip reads, buffer fills and MACs, and their transfers: one stream per
(source, tensor kind, direction) where the tiles' accesses are long (`stream_min_bytes`), else
one scatter-gather of their runs. Its buffer space is the peak its tiles' loads and frees reach in order,
so held operands stay balanced across its edges. In the pipeline a macro job streams
(`TileJob.tiles`, `Pipeline._stream`): its data arrives tile by tile at the transfers' rate and
each stage runs the tiles' shares in order as their inputs arrive, so it behaves like the
double-buffered tiles it stands for (a memory-bound run keeps its stalls) and every busy
interval is still recorded on the timeline, from which overlap is measured as usual.

Step reuse (assumption A-41). Steps whose `Design.step_key` is equal replay identical job
streams. In a run of at least `min_reuse_run` such steps, the first two and the last are
simulated; the ones between are copies of the second, spliced into the timeline
(`ActivityRecorder.splice`) with their counters taken as that step's measured deltas.

Step sampling (assumption A-71). Consecutive steps of one `Design.step_class` whose keys differ
(statistics that change every step) keep their first and last step; the steps between are cut
into blocks of at most `step_block` steps, and each block's middle step is simulated and spliced
in for the rest of its block as in A-41 (see `reuse_plan`). Exact for a linear trend over each
block; what is left is the statistics' curvature and step-to-step noise.

Op reuse (assumption A-70; exact: the same job stream, so the same results). For a design whose
op jobs are pure (`Design.op_jobs_pure`), an op's jobs (compressed when macro jobs are on) are
made once per step key among the simulated steps and copied, with their step, into the later
simulated steps of that key, instead of being made and merged again.
"""

from __future__ import annotations

from collections import Counter
from typing import Any, Callable, Hashable, Iterable, Iterator, Sequence

import attrs
import numpy as np

from .pipeline import Access, Barrier, Lumped, TileJob, gather, work_cost


@attrs.frozen
class FastPath:
    """Switches and sample sizes of the fast path (defaults: fast; `exact()`: all off)."""

    macro_jobs: bool = True
    """Simulate each op's interior tiles as macro jobs (A-40)."""
    head_jobs: int = attrs.field(default=2, validator=attrs.validators.ge(0))
    """Jobs at the start of each op simulated exactly (the pipeline fill of the op)."""
    tail_jobs: int = attrs.field(default=2, validator=attrs.validators.ge(0))
    """Jobs at the end of each op simulated exactly (its drain)."""
    tiles_per_macro: int = attrs.field(default=64, validator=attrs.validators.ge(2))
    """Most tiles one macro job stands for."""
    stream_min_bytes: int = attrs.field(default=4096, validator=attrs.validators.ge(0))
    """A macro job times a tensor's transfers as one stream when its tiles' accesses average at
    least this many bytes; shorter scattered runs (e.g. SQ-DM's compressed layouts) keep their
    own accesses, whose per-access cost a stream would hide."""
    min_op_jobs: int = attrs.field(default=64, validator=attrs.validators.ge(1))
    """Ops with fewer jobs are simulated exactly (short ops gain little and keep their edges)."""
    step_reuse: bool = True
    """Reuse the measurements of a step for the following steps with an equal key (A-41)."""
    min_reuse_run: int = attrs.field(default=4, validator=attrs.validators.ge(4))
    """Fewest consecutive equal-key steps for which reuse is applied (also the fewest steps of
    one class that step sampling samples)."""
    step_block: int = attrs.field(default=5, validator=attrs.validators.ge(1))
    """Step sampling (A-71): consecutive steps of one `Design.step_class` whose statistics differ
    are simulated one per block of at most this many steps, the block's middle step standing
    for the rest; 1 turns it off."""
    memory_fast_forward: bool = True
    """Let the memory model extrapolate long transfers (its own fast path)."""
    op_reuse: bool = True
    """Copy an op's jobs into later simulated steps with an equal step key instead of making
    them again (A-70; designs with `op_jobs_pure`); results are identical either way."""

    @classmethod
    def exact(cls) -> "FastPath":
        return cls(macro_jobs=False, step_reuse=False, memory_fast_forward=False, op_reuse=False,
                   step_block=1)

    @property
    def is_exact(self) -> bool:
        return not (self.macro_jobs or self.step_reuse or self.memory_fast_forward or self.op_reuse
                    or self.step_block > 1)


@attrs.define
class FastStats:
    """What the fast path did: jobs simulated exactly, macro jobs and the tiles they stood for."""

    exact_jobs: int = 0
    macro_jobs: int = 0
    macro_tiles: int = 0
    ops_reused: int = 0
    """(step, op)s whose jobs were copied from an earlier simulated step (A-70)."""


def reuse_plan(keys: Sequence[Any], min_run: int, classes: Sequence[Any] | None = None,
               block: int = 1) -> tuple[list[int], list[tuple[int, int, int, int]]]:
    """Steps to simulate and reuse runs (source, first, last, next simulated step): the source
    step's measured window stands for steps first..last (source among them).

    Step reuse (A-41): in each run of ≥ `min_run` equal consecutive `keys` [a, b], steps a,
    a + 1 and b are simulated and a + 2 .. b − 1 are copies of a + 1. Step sampling (A-71, when
    `block` > 1): a run [a, b] of ≥ `min_run` consecutive steps left simulated, of one of
    `classes` and none an edge of a reuse run, keeps a and b and cuts a + 1 .. b − 1 into blocks of
    at most `block` steps, each standing for its block from its middle step (with a linear trend
    the block's sum is its middle step's value times its length)."""
    simulate: list[int] = []
    runs: list[tuple[int, int, int, int]] = []
    n, a = len(keys), 0
    while a < n:
        b = a
        while b + 1 < n and keys[b + 1] == keys[a]:
            b += 1
        if b - a + 1 >= min_run:
            simulate += [a, a + 1, b]
            runs.append((a + 1, a + 1, b - 1, b))
        else:
            simulate += range(a, b + 1)
        a = b + 1
    if block > 1 and classes is not None:
        simulate, runs = _sample(simulate, runs, classes, min_run, block)
    return simulate, runs


def _sample(simulate: list[int], runs: list, classes: Sequence[Any], min_run: int, block: int):
    """`reuse_plan`'s step sampling over the steps it left simulated."""
    edges = {r[0] for r in runs} | {r[3] for r in runs}
    groups: list[list[int]] = []  # consecutive simulated steps of one class, edges alone
    for st in simulate:
        g = groups[-1] if groups else None
        if (g and st == g[-1] + 1 and st not in edges and g[-1] not in edges
                and classes[st] == classes[g[-1]]):
            g.append(st)
        else:
            groups.append([st])
    out: list[int] = []
    for g in groups:
        a, b = g[0], g[-1]
        if len(g) < min_run:
            out += g
            continue
        length = b - a - 1  # the interior a + 1 .. b - 1
        nb = -(-length // block)
        blocks = [(a + 1 + length * k // nb, a + length * (k + 1) // nb) for k in range(nb)]
        anchors = [(lo + hi) // 2 for lo, hi in blocks]
        out += [a, *anchors, b]
        runs = runs + [(anchors[k], lo, hi, anchors[k + 1] if k + 1 < nb else b)
                       for k, (lo, hi) in enumerate(blocks) if hi > lo]
    return out, sorted(runs)


class OpReuse:
    """`Design.jobs`'s `per_op` for op reuse (A-70): each (step key, op)'s jobs, compressed when
    macro jobs are on, are made once and copied into the later steps of that key (only keys
    that recur among the simulated steps are kept)."""

    def __init__(self, step_keys: dict[int, Hashable], units: dict[str, Any], fp: FastPath,
                 stats: FastStats):
        counts = Counter(step_keys.values())
        self.keys = {s: k for s, k in step_keys.items() if counts[k] > 1}
        self.units, self.fp, self.stats = units, fp, stats
        self.cache: dict[tuple, tuple[list, FastStats]] = {}

    def _made(self, make: Callable[[], Iterable]) -> Iterator:
        if self.fp.macro_jobs:
            return compress(make(), self.units, self.fp, self.stats)
        return make()

    def __call__(self, step: int, op, make: Callable[[], Iterable]) -> Iterator:
        key = self.keys.get(step)
        if key is None:
            yield from self._made(make)
            return
        got = self.cache.get((key, op.op_id))
        st = self.stats
        if got is not None:  # fresh copies: the pipeline writes a job's timing fields
            jobs, delta = got
            st.exact_jobs += delta.exact_jobs
            st.macro_jobs += delta.macro_jobs
            st.macro_tiles += delta.macro_tiles
            st.ops_reused += 1
            for j in jobs:
                yield j if isinstance(j, Barrier) else attrs.evolve(j, step=step)
            return
        before = attrs.evolve(st)
        jobs = list(self._made(make))
        delta = FastStats(st.exact_jobs - before.exact_jobs, st.macro_jobs - before.macro_jobs,
                          st.macro_tiles - before.macro_tiles)
        self.cache[(key, op.op_id)] = ([j if isinstance(j, Barrier) else attrs.evolve(j) for j in jobs],
                                       delta)
        yield from jobs


def compress(jobs: Iterable[TileJob | Barrier], units: dict[str, Any], fp: FastPath,
             stats: FastStats) -> Iterator[TileJob | Barrier]:
    """The job stream with each (step, op)'s interior replaced by macro jobs (A-40)."""
    group: list[TileJob] = []
    for job in jobs:
        if group and (isinstance(job, Barrier) or job.op_id != group[0].op_id or job.step != group[0].step):
            yield from _emit(group, units, fp, stats)
            group = []
        if isinstance(job, Barrier):
            yield job
        else:
            group.append(job)
    if group:
        yield from _emit(group, units, fp, stats)


def _emit(group: list[TileJob], units, fp: FastPath, stats: FastStats) -> Iterator[TileJob]:
    n = len(group)
    lo, hi = fp.head_jobs, n - fp.tail_jobs
    if n < fp.min_op_jobs or hi - lo < 2:
        stats.exact_jobs += n
        yield from group
        return
    stats.exact_jobs += n - (hi - lo)
    yield from group[:lo]
    costs: dict = {}  # per op: its tiles repeat, and the cache stays bounded by one op's works
    count = -(-(hi - lo) // fp.tiles_per_macro)
    for i in range(count):
        part = group[lo + (hi - lo) * i // count: lo + (hi - lo) * (i + 1) // count]
        stats.macro_jobs += 1
        stats.macro_tiles += len(part)
        yield merge(part, units, costs, fp.stream_min_bytes)
    yield from group[hi:]


def _peak(pairs: Iterable[tuple[int, int]]) -> tuple[int, int]:
    """(space to take first, space to give back last) for loads/frees taken in order."""
    occ = peak = 0
    for load, free in pairs:
        occ += load
        peak = max(peak, occ)
        occ -= free
    return peak, peak - occ


def _streams(accesses: Iterable[Access], min_bytes: int) -> list[Access]:
    """A macro job's transfers: per (source, kind), one stream at the first address with the
    summed bytes when its accesses' runs average at least `min_bytes` (long runs: one stream
    the memory model may fast-forward times them alike); else one scatter-gather of all their
    runs (short scattered runs keep their per-run cost; the target times or batches them)."""
    groups: dict[tuple[str, str], list[Access]] = {}
    for a in accesses:
        groups.setdefault((a.source, a.kind), []).append(a)
    out: list[Access] = []
    for (source, kind), accs in groups.items():
        total = sum(a.nbytes for a in accs)
        if total >= min_bytes * sum(a.runs for a in accs):
            out.append(Access(source, kind, accs[0].address, total))
            continue
        segs = [a.segments or ((a.address,), (a.nbytes,)) for a in accs]
        out.append(gather(source, kind, np.concatenate([s[0] for s in segs]),
                          np.concatenate([s[1] for s in segs])))
    return out


def merge(part: Sequence[TileJob], units: dict[str, Any], costs: dict, stream_min_bytes: int) -> TileJob:
    """One macro job standing for the tiles of `part` (jobs of one op, in order). `costs`
    caches each (unit, work)'s cycles and events (works are frozen values; tiles repeat);
    `stream_min_bytes`: see `_streams`."""
    first = part[0]
    work: dict[str, list] = {}
    for job in part:
        for stage, todo in job.work.items():
            per_unit = work.setdefault(stage, {})
            for unit, w in (todo if isinstance(todo, list) else (todo,)):
                acc = per_unit.get(unit)
                if acc is None:
                    acc = per_unit[unit] = [0, {}]
                got = costs.get((unit, w))
                if got is None:
                    got = costs[(unit, w)] = work_cost(units[unit], w)
                cycles, events = got
                acc[0] += cycles
                ev = acc[1]
                for k, v in events.items():
                    ev[k] = ev.get(k, 0.0) + v
    lumped = {stage: [(u, Lumped(c, e)) for u, (c, e) in per_unit.items()] for stage, per_unit in work.items()}
    bufs = sorted({b for j in part for b, _ in (*j.loads, *j.frees)})
    loads, frees, fills = [], [], []
    for b in bufs:
        pairs = [(sum(n for x, n in j.loads if x == b), sum(n for x, n in j.frees if x == b)) for j in part]
        take, give = _peak(pairs)
        if take:
            loads.append((b, take))
        if give:
            frees.append((b, give))
        if sum(p[0] for p in pairs) > take:
            fills.append((b, sum(p[0] for p in pairs) - take))
    out_alloc, out_free = _peak((j.out_alloc, j.out_free) for j in part)
    if sum(j.out_alloc for j in part) > out_alloc:
        fills.append(("out", sum(j.out_alloc for j in part) - out_alloc))
    sram: dict[str, int] = {}
    for j in part:
        for b, n in j.sram_reads:
            sram[b] = sram.get(b, 0) + n
    return TileJob(first.step, first.op_id, {s: (w[0] if len(w) == 1 else w) for s, w in lumped.items()},
                   sum(j.macs for j in part), loads, _streams((a for j in part for a in j.reads), stream_min_bytes), frees,
                   out_alloc, _streams((a for j in part for a in j.writes), stream_min_bytes), out_free,
                   tuple(sorted(sram.items())), tuple(fills), tiles=sum(j.tiles for j in part))
