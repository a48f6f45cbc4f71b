"""Quantum keeper: accumulate local time and synchronise with the kernel only when needed.

An initiator adds annotated delays to its local offset (`inc`) and calls `sync()` at a quantum
boundary or when its results must be visible to others. Quantum 0 means "sync on every
`need_sync` check" (exact timing).
"""

from __future__ import annotations

import simpy


class QuantumKeeper:
    def __init__(self, env: simpy.Environment, quantum_ps: int = 0):
        if quantum_ps < 0:
            raise ValueError(f"quantum_ps must be >= 0, got {quantum_ps}")
        self.env = env
        self.quantum_ps = quantum_ps
        self.local_ps = 0

    @property
    def current_time_ps(self) -> int:
        """Kernel time plus the local offset: the initiator's notion of now."""
        return self.env.now + self.local_ps

    def set(self, local_ps: int) -> None:
        self.local_ps = local_ps

    def inc(self, delta_ps: int) -> None:
        self.local_ps += delta_ps

    def need_sync(self) -> bool:
        return self.local_ps > self.quantum_ps or (self.quantum_ps == 0 and self.local_ps > 0)

    def sync(self):
        """SimPy event that advances the kernel by the local offset (then resets it)."""
        delay, self.local_ps = self.local_ps, 0
        return self.env.timeout(delay)
