"""`Sram`: an on-chip buffer with a capacity, a port width and occupancy accounting.

Tiles allocate space before they are loaded and release it when their last user is done; a full
buffer blocks the allocating stage (that is how double buffering and back-pressure emerge). An
allocation larger than the whole buffer can never succeed and is a configuration error. A buffer
that serves reads (the global buffer holding resident weights) also exposes a target socket.
"""

from __future__ import annotations

import simpy

from tlm import ActivityRecorder, Clock, Module, Status, TargetSocket, Transaction

from ..config import BufferConfig, kib
from ..errors import ConfigError


class Sram(Module):
    def __init__(self, name: str, parent: Module, env: simpy.Environment, cfg: BufferConfig,
                 clock: Clock, recorder: ActivityRecorder | None = None, serves_reads: bool = False):
        super().__init__(name, parent)
        self.env = env
        self.cfg = cfg
        self.clock = clock
        self.capacity = cfg.capacity_bytes
        self._space = simpy.Container(env, capacity=self.capacity, init=self.capacity)
        self.used = 0
        self.peak = 0
        self.read_bytes = 0
        self.write_bytes = 0
        self._port_free_ps = 0
        self.target = TargetSocket(self, "target", self.transport) if serves_reads else None
        self.comp = recorder.register(self.name, "other") if (recorder and serves_reads) else None
        self.recorder = recorder

    @property
    def tile_budget(self) -> int:
        """Largest tile the tiler may plan: half the buffer when double buffered."""
        return self.capacity // 2 if self.cfg.double_buffer else self.capacity

    def allocate(self, nbytes: int, what: str = "tile"):
        """Generator: wait until `nbytes` are free, then hold them."""
        if nbytes > self.capacity:
            raise ConfigError(
                f"{what} of {kib(nbytes)} cannot fit {self.name} ({kib(self.capacity)}); "
                f"increase its capacity_kib or use smaller tiles"
            )
        if nbytes:
            yield self._space.get(nbytes)
            self.used += nbytes
            self.peak = max(self.peak, self.used)
            self.write_bytes += nbytes

    def release(self, nbytes: int) -> None:
        if nbytes:
            self.used -= nbytes
            self._space.put(nbytes)

    def port_ps(self, nbytes: int) -> int:
        """Time to stream `nbytes` through the port, ps."""
        return self.clock.cycles_to_ps(-(-nbytes // self.cfg.bytes_per_cycle))

    def transport(self, txn: Transaction, delay_ps: int) -> int:
        """Serve a read from this buffer at port speed (one port, first come first served)."""
        now = self.env.now
        start = max(now + delay_ps, self._port_free_ps)
        done = start + self.port_ps(txn.nbytes)
        self._port_free_ps = done
        txn.issued_ps, txn.accepted_ps, txn.first_data_ps, txn.done_ps = now + delay_ps, start, start, done
        txn.status = Status.OK
        self.read_bytes += txn.nbytes
        if self.recorder is not None:
            self.recorder.record(self.comp, start, done)
        return done - now
