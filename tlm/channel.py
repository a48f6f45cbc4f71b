"""Bounded FIFO channels between pipeline stages: a full channel blocks its producer."""

from __future__ import annotations

import simpy


class Channel:
    """A SimPy `Store` with a capacity, for back-pressure between stages."""

    def __init__(self, env: simpy.Environment, name: str, capacity: int = 1):
        if capacity < 1:
            raise ValueError(f"channel {name}: capacity must be >= 1, got {capacity}")
        self.name = name
        self._store = simpy.Store(env, capacity=capacity)

    def put(self, item):
        return self._store.put(item)

    def get(self):
        return self._store.get()

    def __len__(self) -> int:
        return len(self._store.items)
