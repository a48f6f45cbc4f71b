"""A flat DRAM address map: one aligned region per tensor (network input, each op's output,
each op's weights), so transactions carry realistic, distinct addresses for the memory model.

Tiles are assumed stored in a tiled layout in which each tile slice is contiguous; a slice's
address is its tensor's base plus the slice's offset in that layout.
"""

from __future__ import annotations

import math

from workloads.schema import OpRecord


class AddressMap:
    def __init__(self, ops: list[OpRecord], act_bytes: float, weight_bytes: float, align: int = 4096):
        self._next = 0
        self.align = align
        first = ops[0]
        self.network_input = self.alloc(first.in_elems * act_bytes)
        self.output = [self.alloc(op.out_elems * act_bytes) for op in ops]
        self.weight = [
            self.alloc(op.w_elems * weight_bytes) if op.kind in ("conv2d", "linear") else -1
            for op in ops
        ]

    def alloc(self, nbytes: float) -> int:
        """Base address of a new aligned region of `nbytes` after everything allocated so far
        (the tensors above, then any state a design keeps in DRAM)."""
        base = self._next
        self._next += -(-math.ceil(nbytes) // self.align) * self.align or self.align
        return base

    @property
    def size(self) -> int:
        return self._next
