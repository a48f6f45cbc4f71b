"""Bounded FIFO channels between pipeline stages: a full channel blocks its producer.

`put` and `get` are generators (`yield from ch.put(x)`, `x = yield from ch.get()`) that cost no
SimPy event when they need not wait: an item goes straight into free space, or straight to a
waiting consumer (one wake-up event); a consumer takes a ready item at once. Only a producer
facing a full channel or a consumer facing an empty one waits on an event. Order and capacity
behave as a SimPy `Store` of the same capacity.
"""

from __future__ import annotations

from collections import deque

import simpy


class Channel:
    def __init__(self, env: simpy.Environment, name: str, capacity: int = 1):
        if capacity < 1:
            raise ValueError(f"channel {name}: capacity must be >= 1, got {capacity}")
        self.env = env
        self.name = name
        self.capacity = capacity
        self._items: deque = deque()
        self._getters: deque[simpy.Event] = deque()
        self._putters: deque[tuple[simpy.Event, object]] = deque()

    def put(self, item):
        """Generator: deliver `item`, waiting while the channel is full."""
        if self._getters:  # the channel is empty and a consumer waits: hand over directly
            self._getters.popleft().succeed(item)
        elif len(self._items) < self.capacity:
            self._items.append(item)
        else:
            ev = self.env.event()
            self._putters.append((ev, item))
            yield ev

    def get(self):
        """Generator: the oldest item, waiting while the channel is empty."""
        if self._items:
            item = self._items.popleft()
            if self._putters:  # space freed: admit the oldest waiting producer's item
                ev, waiting = self._putters.popleft()
                self._items.append(waiting)
                ev.succeed()
            return item
        ev = self.env.event()
        self._getters.append(ev)
        return (yield ev)

    def __len__(self) -> int:
        return len(self._items)
