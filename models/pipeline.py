"""The pipeline every design runs: loader → channel → compute → channel → writer.

Designs differ only in the `TileJob`s they emit and the units they contain. A job names the
buffer space its loads take, the reads (from DRAM or an on-chip source), the compute unit and
its work, the space freed after compute, and the writes with the output space they free.

- loader: allocates buffer space (blocks when full: double buffering and back-pressure),
  issues the job's reads through its sockets, and hands the job on. Its `QuantumKeeper` holds the
  time until the reads complete: with quantum 0 it waits for the data before handing over (exact),
  with a larger quantum it hands over at once and the compute stage waits for the data instead.
- compute: waits for the job's data, runs it on its unit for the unit's cycle count, records
  the busy interval, frees input space, passes the job to the writer.
- writer: issues the job's writes and frees its output space when they are done.
"""

from __future__ import annotations

from typing import Any, Iterable

import attrs
import simpy

from tlm import (
    ActivityRecorder, Channel, Clock, Command, InitiatorSocket, Module, QuantumKeeper, Transaction,
)

from .components.sram import Sram


@attrs.define(slots=True)
class Access:
    """One transaction of a job: from/to `source` ("dram" or an on-chip source)."""

    source: str
    kind: str
    address: int
    nbytes: int


@attrs.define(slots=True)
class TileJob:
    step: int
    op_id: int
    unit: str
    """Compute unit name (a key of `Pipeline.units`)."""
    work: Any
    """What the unit's cycle model needs (e.g. a `GemmTile`)."""
    macs: int = 0
    loads: list[tuple[str, int]] = attrs.field(factory=list)
    reads: list[Access] = attrs.field(factory=list)
    frees: list[tuple[str, int]] = attrs.field(factory=list)
    out_alloc: int = 0
    writes: list[Access] = attrs.field(factory=list)
    out_free: int = 0
    ready_ps: int = 0


class Pipeline(Module):
    """The three pipeline processes; sockets are bound by the design that builds it."""

    def __init__(self, name: str, parent: Module, env: simpy.Environment, clock: Clock,
                 recorder: ActivityRecorder, units: dict[str, Module], buffers: dict[str, Sram],
                 out_buffer: str, sources: Iterable[str], n_ops: int, quantum_ps: int = 0,
                 channel_depth: int = 1):
        super().__init__(name, parent)
        self.env, self.clock, self.recorder = env, clock, recorder
        self.units, self.buffers, self.out_buffer = units, buffers, buffers[out_buffer]
        self.n_ops = n_ops
        self.quantum_ps = quantum_ps
        self.read_sockets = {src: InitiatorSocket(self, f"read_{src}") for src in sources}
        self.write_socket = InitiatorSocket(self, "write_dram")
        self.to_compute = Channel(env, f"{self.name}.to_compute", channel_depth)
        self.to_writer = Channel(env, f"{self.name}.to_writer", channel_depth)
        self.unit_comp = {u: recorder.register(m.name, "compute") for u, m in units.items()}
        self.unit_cycles = {u: 0 for u in units}
        self.macs = 0
        self.jobs_done = 0
        self.marks: list[tuple[int, int]] = []  # (time_ps, label) at the first compute of a label
        self._last_label = -1

    def run(self, jobs: Iterable[TileJob]) -> list[simpy.Process]:
        env = self.env
        return [env.process(self._loader(jobs)), env.process(self._compute()), env.process(self._writer())]

    def _loader(self, jobs: Iterable[TileJob]):
        qk = QuantumKeeper(self.env, self.quantum_ps)
        for job in jobs:
            for buf, nbytes in job.loads:
                yield from self.buffers[buf].allocate(nbytes, f"op {job.op_id} tile")
            wait = 0
            for a in job.reads:
                txn = Transaction(Command.READ, a.address, a.nbytes, a.kind, job.op_id, job.step)
                wait = max(wait, self.read_sockets[a.source].b_transport(txn, 0))
            qk.set(wait)
            if qk.need_sync():
                yield qk.sync()
            job.ready_ps = qk.current_time_ps
            qk.set(0)
            yield self.to_compute.put(job)
        yield self.to_compute.put(None)

    def _compute(self):
        env, clock = self.env, self.clock
        while True:
            job = yield self.to_compute.get()
            if job is None:
                break
            if job.out_alloc:
                yield from self.out_buffer.allocate(job.out_alloc, f"op {job.op_id} output tile")
            cycles = self.units[job.unit].cycles(job.work)
            start = max(env.now, job.ready_ps)
            end = start + clock.cycles_to_ps(cycles)
            label = job.step * self.n_ops + job.op_id
            if label != self._last_label:
                self.marks.append((start, label))
                self._last_label = label
            yield env.timeout(end - env.now)
            self.recorder.record(self.unit_comp[job.unit], start, end, label)
            self.unit_cycles[job.unit] += cycles
            self.macs += job.macs
            for buf, nbytes in job.frees:
                self.buffers[buf].release(nbytes)
            if job.writes or job.out_free:
                yield self.to_writer.put(job)
            else:
                self.jobs_done += 1
        yield self.to_writer.put(None)

    def _writer(self):
        while True:
            job = yield self.to_writer.get()
            if job is None:
                break
            wait = 0
            for a in job.writes:
                txn = Transaction(Command.WRITE, a.address, a.nbytes, a.kind, job.op_id, job.step)
                wait = max(wait, self.write_socket.b_transport(txn, 0))
            if wait:
                yield self.env.timeout(wait)
            self.out_buffer.release(job.out_free)
            self.jobs_done += 1
