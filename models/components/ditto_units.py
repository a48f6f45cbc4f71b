"""Ditto's own units (dataflows.md §6): the Encoding Unit, the nibble PE array, and a pipeline
that can hold back the loader at a barrier and records when each (step, op) finished.

- `EncodingUnit`: subtracts the previous step's int8 input from the current one, classifies each
  difference as zero / 4-bit / 8-bit and queues the non-zero nibbles with their shift bit. Cycle
  model (assumption A-34): `lane_groups` groups of 4 elements per cycle plus a fixed latency per
  tile; it runs in the "pre" stage, so it overlaps the PE array of the previous tile.
- `NibblePeArray`: `n_pe` PEs of four 4-bit × 8-bit multipliers; an 8-bit datum takes two nibble
  slots, a 9-bit difference three. Each PE holds one output (outputs are spread over the PEs in
  waves) and consumes 4 queued nibble slots per cycle: `cycles = ⌈outputs / n_pe⌉ · ⌈slots / 4⌉`
  with `slots` the nibble slots of one output's reduction after zero-skip (ideal balance, as the
  paper's model; queue imbalance is not modelled).
- `DittoPipeline`: the shared pipeline plus a `Barrier` marker in the job stream: the loader
  waits until every job before it has retired and its writes completed. Defo uses it so that the
  step-3 decisions read only completed step-1/2 measurements (the loader otherwise runs a few
  tiles ahead of the compute stages). The loader body repeats `Pipeline._loader` with the barrier
  added (see the report: a barrier hook in the shared loader would remove the copy).
"""

from __future__ import annotations

import attrs

from tlm import Command, Module, QuantumKeeper, Transaction

from ..config import ceil_div
from ..pipeline import Pipeline


@attrs.frozen
class EncodeWork:
    elements: int
    """Int8 elements classified (current − previous differences, or raw values under A-33b)."""


@attrs.frozen
class NibbleGemm:
    outputs: int
    """Outputs of the tile (m · n)."""
    slots: int
    """Nibble slots one output's reduction takes after zero-skip (k · (f4 + 2·f8 + 3·f9))."""

    @property
    def products(self) -> int:
        return self.outputs * self.slots


class EncodingUnit(Module):
    def __init__(self, name: str, parent: Module, lane_groups: int, elements_per_group: int,
                 latency_cycles: int):
        super().__init__(name, parent)
        self.lane_groups, self.per_group, self.latency = lane_groups, elements_per_group, latency_cycles

    @property
    def elements_per_cycle(self) -> int:
        return self.lane_groups * self.per_group

    def cycles(self, work: EncodeWork) -> int:
        if not work.elements:
            return 0
        return ceil_div(work.elements, self.elements_per_cycle) + self.latency


class NibblePeArray(Module):
    """`n_pe` PEs × `multipliers` 4-bit × 8-bit multipliers; `macs_per_cycle` counts nibble products."""

    def __init__(self, name: str, parent: Module, n_pe: int, multipliers: int):
        super().__init__(name, parent)
        self.n_pe, self.multipliers = n_pe, multipliers

    @property
    def macs_per_cycle(self) -> int:
        return self.n_pe * self.multipliers

    def cycles(self, work: NibbleGemm) -> int:
        if not work.slots or not work.outputs:
            return 0
        return ceil_div(work.outputs, self.n_pe) * ceil_div(work.slots, self.multipliers)


class Barrier:
    """A marker in a design's job stream: the loader waits until all earlier jobs are done."""

    __slots__ = ()


class DittoPipeline(Pipeline):
    """The shared pipeline whose loader also understands `Barrier` markers in the job stream.

    At a barrier the loader waits until every earlier job has retired and the DRAM front has
    completed every transaction issued so far (the writes of those jobs included), then goes on.
    The time each barrier released is kept in `barrier_ps`; the time spent waiting (pipeline
    drain) is real simulated time and shows up in the run's totals.
    """

    def __init__(self, *args, dram=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.dram_front = dram
        self.barrier_ps: list[int] = []
        self._retired = None

    def _retire(self, job) -> None:
        super()._retire(job)
        # `Sram.release_at` queues a future release without waking an allocator that is already
        # waiting with no release pending; with a separate "post" stage the main stage can be that
        # waiter, and would sleep forever. Wake it so it re-arms with the pending release time.
        wake = self.out_buffer._wakeup
        if wake is not None and not wake.triggered:
            wake.succeed()
        if self._retired is not None and not self._retired.triggered:
            self._retired.succeed()

    def _loader(self, jobs):
        env = self.env
        qk = QuantumKeeper(env, self.quantum_ps)
        out = self.channels[0]
        submitted = 0
        for job in jobs:
            if isinstance(job, Barrier):
                if qk.local_ps:
                    yield qk.sync()
                while self.jobs_done < submitted:
                    self._retired = env.event()
                    yield self._retired
                self._retired = None
                last = self.dram_front.last_done_ps if self.dram_front is not None else 0
                if last > env.now:
                    yield env.timeout(last - env.now)
                self.barrier_ps.append(env.now)
                submitted += 1
                self.jobs_done += 1  # the replay counts every item of the stream as a job
                continue
            submitted += 1
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
            yield out.put(job)
        yield out.put(None)
