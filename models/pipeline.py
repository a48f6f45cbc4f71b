"""The pipeline every design runs: loader → pre → main → post → write-back.

Every design runs the same three compute stages (so pipeline depth never differs between the
designs compared); designs differ only in the `TileJob`s they emit and the units they contain.
`pre` holds pre-processing (bitmask, packer, encoder), `main` the PE array or vector unit, `post`
post-processing (restore, LUT scatter, sign mask); a stage without work for a job passes it on.
A job names the buffer space its loads take, the reads (from DRAM or an on-chip source), the work
of each stage on which unit(s), the space freed after compute, and the writes with the output
space they free. A `Barrier` in the job stream makes the loader wait until every earlier job has
retired and its writes completed (for designs whose later jobs depend on measured timing).

- loader: allocates buffer space (blocks when full: double buffering and back-pressure),
  issues the job's reads through its sockets, and hands the job on. Its `QuantumKeeper` holds the
  time until the reads complete: with quantum 0 it waits for the data before handing over (exact),
  with a larger quantum it hands over at once and the first stage waits for the data instead.
- each compute stage: waits for the job's data, runs its work on the unit for the unit's cycle
  count, records the busy interval and passes the job on. The last stage frees the job's input
  space and issues its writes; the output space is released when the writes complete (a timed
  release, so write-back costs no SimPy event of its own).
"""

from __future__ import annotations

from typing import Any, Iterable

import attrs
import numpy as np
import simpy

from tlm import (
    ActivityRecorder, Channel, Clock, Command, InitiatorSocket, Module, QuantumKeeper, Transaction,
)

from .components.sram import Sram
from .errors import ConfigError


@attrs.define(slots=True)
class Access:
    """One transaction of a job: from/to `source` ("dram" or an on-chip source). With
    `segments` ((addresses, lengths) arrays) it is a scatter-gather of those runs: `address` is
    the first run's, `nbytes` their total (`tlm.Transaction.segments`)."""

    source: str
    kind: str
    address: int
    nbytes: int
    segments: Any = None

    @property
    def runs(self) -> int:
        """Contiguous runs it moves."""
        return 1 if self.segments is None else len(self.segments[0])


def gather(source: str, kind: str, addresses, lengths) -> Access:
    """One access for the runs (`addresses`, `lengths`: int arrays, in order): a plain access
    for one run, else a scatter-gather with contiguous neighbours joined."""
    addr = np.asarray(addresses, dtype=np.int64)
    n = np.asarray(lengths, dtype=np.int64)
    if len(addr) > 1:
        head = np.concatenate(([True], addr[1:] != addr[:-1] + n[:-1]))
        if not head.all():
            idx = np.flatnonzero(head)
            addr, n = addr[idx], np.add.reduceat(n, idx)
    if len(addr) == 1:
        return Access(source, kind, int(addr[0]), int(n[0]))
    return Access(source, kind, int(addr[0]), int(n.sum()), (addr, n))


STAGES = ("pre", "main", "post")


class Barrier:
    """Job-stream marker: the loader waits until all earlier jobs retired and their writes landed."""

    __slots__ = ()


@attrs.define(slots=True)
class TileJob:
    step: int
    op_id: int
    work: dict[str, Any]
    """Per compute stage: (unit name, what the unit's cycle model needs, e.g. a `GemmTile`), or a
    list of such pairs run one after another within the stage."""
    macs: int = 0
    loads: list[tuple[str, int]] = attrs.field(factory=list)
    reads: list[Access] = attrs.field(factory=list)
    frees: list[tuple[str, int]] = attrs.field(factory=list)
    out_alloc: int = 0
    writes: list[Access] = attrs.field(factory=list)
    out_free: int = 0
    sram_reads: tuple[tuple[str, int], ...] = ()
    """Operand bytes the units read from each buffer (from the tile plan), for the energy ledger."""
    fills: tuple[tuple[str, int], ...] = ()
    """Bytes written into each buffer beyond the space `loads` takes (a macro job's tiles fill
    it once each), and into the output buffer beyond `out_alloc` (key "out"), for the ledger."""
    tiles: int = 1
    """Tiles the job stands for: > 1 for a macro job of the fast path (`models.fastpath`), whose
    stages stream: each runs the tiles' shares of its work in order as their data arrives and
    passes the job on when the first is done (`Pipeline._stream`)."""
    ready_ps: int = 0
    """When the job's (first tile's) data is available to the next stage."""
    arrivals: list[int] | None = None
    """A macro job's per-tile data arrival times at the next stage."""


@attrs.frozen
class Lumped:
    """The summed cycles and energy events of many works of one unit (a macro job's share)."""

    cycles: int
    events: dict[str, float]


def work_cost(unit: Module, work: Any) -> tuple[int, dict[str, float]]:
    """(cycles, energy events) of `work` on `unit`; a `Lumped` work carries its own."""
    if type(work) is Lumped:
        return work.cycles, work.events
    return unit.cycles(work), unit.energy_events(work)


class Pipeline(Module):
    """The pipeline processes; sockets are bound by the design that builds it."""

    def __init__(self, name: str, parent: Module, env: simpy.Environment, clock: Clock,
                 recorder: ActivityRecorder, units: dict[str, Module], buffers: dict[str, Sram],
                 out_buffer: str, sources: Iterable[str], n_ops: int, quantum_ps: int = 0,
                 channel_depth: int = 1):
        super().__init__(name, parent)
        self.env, self.clock, self.recorder = env, clock, recorder
        self.units, self.buffers, self.out_buffer = units, buffers, buffers[out_buffer]
        self.n_ops = n_ops
        self.quantum_ps = quantum_ps
        self.stages = STAGES
        self.read_sockets = {src: InitiatorSocket(self, f"read_{src}") for src in sources}
        self.write_sockets = {src: InitiatorSocket(self, f"write_{src}") for src in sources}
        for key, unit in units.items():
            if not callable(getattr(unit, "energy_events", None)):
                raise ConfigError(f"unit {key!r} ({unit.name}, {type(unit).__name__}) has no energy table: "
                                  f"define energy_events(work) so the work it runs is priced")
        self.unit_events: dict[str, dict[str, float]] = {u: {} for u in units}
        """Energy events of the work each unit ran (the units price their own work)."""
        self.channels = [Channel(env, f"{self.name}.to_{s}", channel_depth) for s in STAGES]
        self.unit_comp = {u: recorder.register(m.name, "compute") for u, m in units.items()}
        self.unit_cycles = {u: 0 for u in units}
        self.macs = 0
        self.jobs_done = 0
        self.marks: list[tuple[int, int]] = []  # (time_ps, label) at the first main-stage work of a label
        self.barrier_ps: list[int] = []
        self._last_label = -1
        self._last_step = -1
        self.on_step = None
        """Called with the step number when a step's first job starts its main-stage work."""
        self._retired: simpy.Event | None = None

    def run(self, jobs: Iterable[TileJob]) -> list[simpy.Process]:
        env = self.env
        procs = [env.process(self._loader(jobs))]
        for i, stage in enumerate(self.stages):
            nxt = self.channels[i + 1] if i + 1 < len(self.stages) else None
            procs.append(env.process(self._stage(stage, self.channels[i], nxt)))
        return procs

    def _loader(self, jobs: Iterable[TileJob]):
        qk = QuantumKeeper(self.env, self.quantum_ps)
        out = self.channels[0]
        submitted = 0
        for job in jobs:
            if isinstance(job, Barrier):
                yield from self._barrier(submitted)
                continue
            submitted += 1
            for buf, nbytes in job.loads:
                yield from self.buffers[buf].allocate(nbytes, f"op {job.op_id} tile")
            wait = 0
            for a in job.reads:
                txn = Transaction(Command.READ, a.address, a.nbytes, a.kind, job.op_id, job.step,
                                  segments=a.segments)
                wait = max(wait, self.read_sockets[a.source].b_transport(txn, 0))
            n, now = job.tiles, self.env.now
            if n > 1:  # a macro job's data arrives at its transfers' rate, tile by tile
                job.arrivals = [now + wait * (j + 1) // n for j in range(n)]
                wait = job.arrivals[0] - now
            qk.set(wait)
            if qk.need_sync():
                yield qk.sync()
            job.ready_ps = qk.current_time_ps
            qk.set(0)
            yield from out.put(job)
            if n > 1 and job.arrivals[-1] > self.env.now and self.quantum_ps == 0:
                # as its tiles would: the next job's reads wait for this job's data
                yield self.env.timeout(job.arrivals[-1] - self.env.now)
        yield from out.put(None)

    def _barrier(self, submitted: int):
        """Wait until `submitted` jobs have retired and the output buffer has drained."""
        while self.jobs_done < submitted:
            self._retired = self.env.event()
            yield self._retired
        self._retired = None
        yield from self.out_buffer.drain()
        self.barrier_ps.append(self.env.now)

    def _stage(self, stage: str, inbox: Channel, outbox: Channel | None):
        env, clock = self.env, self.clock
        main = stage == "main"
        while True:
            job = yield from inbox.get()
            if job is None:
                break
            if main and job.out_alloc:
                yield from self.out_buffer.allocate(job.out_alloc, f"op {job.op_id} output tile")
            first = end = start = max(env.now, job.ready_ps)  # a stage without work passes it on
            todo = job.work.get(stage)
            if todo is not None:
                label = job.step * self.n_ops + job.op_id
                if main and label != self._last_label:
                    self.marks.append((start, label))
                    self._last_label = label
                    if self.on_step is not None and label // self.n_ops != self._last_step:
                        self._last_step = label // self.n_ops
                        self.on_step(self._last_step)
                costs = []
                for unit, work in (todo if isinstance(todo, list) else (todo,)):
                    cycles, events = work_cost(self.units[unit], work)
                    led = self.unit_events[unit]
                    for ev, count in events.items():
                        led[ev] = led.get(ev, 0.0) + count
                    self.unit_cycles[unit] += cycles
                    costs.append((unit, clock.cycles_to_ps(cycles)))
                if job.tiles == 1:
                    t = start
                    for unit, ps in costs:
                        self.recorder.record(self.unit_comp[unit], t, t + ps, label)
                        t += ps
                    first = end = job.ready_ps = t
                else:
                    first, end = self._stream(job, costs, start, label)
            if outbox is not None:
                if first > env.now:
                    yield env.timeout(first - env.now)
                yield from outbox.put(job)
            if end > env.now:
                yield env.timeout(end - env.now)
            if outbox is None:
                self._retire(job)
        if outbox is not None:
            yield from outbox.put(None)
        else:
            yield from self.out_buffer.drain()

    def _stream(self, job: TileJob, costs: list[tuple[str, int]], start: int, label: int) -> tuple[int, int]:
        """A macro job's stage: its tiles in order, each starting when the stage is free and its
        data has arrived (`job.arrivals`) and taking its share of each unit's time; the
        completions become the next stage's arrivals. Returns (first, last) completion."""
        n, rec, comp = job.tiles, self.recorder.record, self.unit_comp
        t, out = start, []
        for j, a in enumerate(job.arrivals):
            t = max(t, a)
            for unit, ps in costs:
                d = ps * (j + 1) // n - ps * j // n
                rec(comp[unit], t, t + d, label)
                t += d
            out.append(t)
        job.arrivals = out
        job.ready_ps = out[0]
        return out[0], out[-1]

    def report(self) -> dict:
        """The energy events of the work each unit ran, by unit name."""
        return {"component_events": {u: dict(e) for u, e in self.unit_events.items()}}

    def _retire(self, job: TileJob) -> None:
        """Free the job's inputs, issue its writes, release its outputs when they complete."""
        self.macs += job.macs
        buffers = self.buffers
        for buf, nbytes in job.frees:
            buffers[buf].release(nbytes)
        for buf, nbytes in job.sram_reads:
            buffers[buf].read_bytes += nbytes
        for buf, nbytes in job.fills:
            (self.out_buffer if buf == "out" else buffers[buf]).write_bytes += nbytes
        wait = 0
        for a in job.writes:
            self.out_buffer.read_bytes += a.nbytes  # write-back reads the output buffer
            txn = Transaction(Command.WRITE, a.address, a.nbytes, a.kind, job.op_id, job.step,
                              segments=a.segments)
            wait = max(wait, self.write_sockets[a.source].b_transport(txn, 0))
        self.out_buffer.release_at(self.env.now + wait, job.out_free)
        self.jobs_done += 1
        if self._retired is not None and not self._retired.triggered:
            self._retired.succeed()
