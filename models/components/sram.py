"""`Sram`: an on-chip buffer with a capacity, a port width and occupancy accounting.

Tiles allocate space before they are loaded and release it when their last user is done (now, or
at a future time such as the end of a write-back); a full buffer blocks the allocating stage
(that is how double buffering and back-pressure emerge). An
allocation larger than the whole buffer can never succeed and is a configuration error. A buffer
that serves transactions (the global buffer: resident weights and on-chip activations) also
exposes a target socket.
"""

from __future__ import annotations

import heapq

import simpy

from tlm import ActivityRecorder, Clock, Module, Status, TargetSocket, Transaction

from ..config import BufferConfig, kib
from ..errors import ConfigError


class Sram(Module):
    def __init__(self, name: str, parent: Module, env: simpy.Environment, cfg: BufferConfig,
                 clock: Clock, recorder: ActivityRecorder | None = None, serves: bool = False):
        super().__init__(name, parent)
        self.env = env
        self.cfg = cfg
        self.clock = clock
        self.capacity = cfg.capacity_bytes
        self.free = self.capacity
        self.peak = 0
        self.read_bytes = 0
        self.write_bytes = 0
        self._pending: list[tuple[int, int]] = []  # heap of (release time ps, bytes)
        self._wakeup: simpy.Event | None = None
        self._port_free_ps = 0
        self.target = TargetSocket(self, "target", self.transport) if serves else None
        self.comp = recorder.register(self.name, "memory") if (recorder and serves) else None
        self.recorder = recorder

    @property
    def used(self) -> int:
        return self.capacity - self.free - sum(n for _, n in self._pending)

    @property
    def tile_budget(self) -> int:
        """Largest tile the tiler may plan: half the buffer when double buffered."""
        return self.capacity // 2 if self.cfg.double_buffer else self.capacity

    def _settle(self) -> None:
        now = self.env.now
        while self._pending and self._pending[0][0] <= now:
            self.free += heapq.heappop(self._pending)[1]

    def allocate(self, nbytes: int, what: str = "tile"):
        """Generator: wait until `nbytes` are free, then hold them (one allocator at a time)."""
        if nbytes > self.capacity:
            raise ConfigError(
                f"{what} of {kib(nbytes)} cannot fit {self.name} ({kib(self.capacity)}); "
                f"increase its capacity_kib or use smaller tiles"
            )
        if not nbytes:
            return
        while True:
            self._settle()
            if self.free >= nbytes:
                break
            self._wakeup = self.env.event()
            if self._pending:
                yield self._wakeup | self.env.timeout(self._pending[0][0] - self.env.now)
            else:
                yield self._wakeup
            self._wakeup = None
        self.free -= nbytes
        self.peak = max(self.peak, self.capacity - self.free)
        self.write_bytes += nbytes

    def release(self, nbytes: int) -> None:
        """Give back `nbytes` now."""
        if nbytes:
            self.free += nbytes
            if self._wakeup is not None and not self._wakeup.triggered:
                self._wakeup.succeed()

    def release_at(self, time_ps: int, nbytes: int) -> None:
        """Give back `nbytes` at a future time (e.g. when a write-back completes)."""
        if time_ps <= self.env.now:
            self.release(nbytes)
        elif nbytes:
            heapq.heappush(self._pending, (time_ps, nbytes))
            if self._wakeup is not None and not self._wakeup.triggered:
                self._wakeup.succeed()  # a waiter re-arms with the new release time

    def drain(self):
        """Generator: wait until every timed release has happened."""
        self._settle()
        if self._pending:
            yield self.env.timeout(max(t for t, _ in self._pending) - self.env.now)
            self._settle()

    def report(self) -> dict:
        """Energy events: bytes written into (fills, allocations) and read out of the buffer."""
        events = {f"sram.{self.basename}.{k}": float(v) for k, v in
                  (("read_bytes", self.read_bytes), ("write_bytes", self.write_bytes)) if v}
        return {"component": "sram", "events": events}

    def port_ps(self, nbytes: int) -> int:
        """Time to stream `nbytes` through the port, ps."""
        return self.clock.cycles_to_ps(-(-nbytes // self.cfg.bytes_per_cycle))

    def transport(self, txn: Transaction, delay_ps: int) -> int:
        """Serve a read or write at port speed (one port, first come first served): the global
        buffer holding resident weights and the activations the residency rule keeps on chip.
        A scatter-gather's runs stream back to back, each rounded to whole port words."""
        now = self.env.now
        start = max(now + delay_ps, self._port_free_ps)
        if txn.segments is None:
            done = start + self.port_ps(txn.nbytes)
        else:
            words = -(-txn.segments[1] // self.cfg.bytes_per_cycle)
            done = start + self.clock.cycles_to_ps(int(words.sum()))
        self._port_free_ps = done
        txn.issued_ps, txn.accepted_ps, txn.first_data_ps, txn.done_ps = now + delay_ps, start, start, done
        txn.status = Status.OK
        if txn.is_write:
            self.write_bytes += txn.nbytes
        else:
            self.read_bytes += txn.nbytes
        if self.recorder is not None:
            self.recorder.record(self.comp, start, done)
        return done - now
