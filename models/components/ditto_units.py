"""Ditto's own units (dataflows.md §6): the Encoding Unit and the nibble PE array.

- `EncodingUnit`: subtracts the previous step's int8 input from the current one, classifies each
  difference as zero / 4-bit / 8-bit and queues the non-zero nibbles with their shift bit. Cycle
  model (assumption A-34): `lane_groups` groups of `elements_per_group` elements per cycle plus a
  fixed latency per tile; it runs in the "pre" stage, so it overlaps the PE array of the previous
  tile. Energy: two `add.int8` per element (the subtract and the classify compare); raw-value
  classification (A-33b, the Defo+ stand-in) and already-differenced inputs are charged the same.
- `NibblePeArray`: `n_pe` PEs of `multipliers` 4-bit × 8-bit multipliers, spread over the common
  grid (parity rule 1, A-37): `lanes = n_pe · multipliers / (rows · cols)` nibble slots per grid
  position per cycle (common: 512 · 4 / 1024 = 2). An 8-bit datum takes two nibble slots, a
  9-bit difference three, a zero none; one output's reduction of k MACs takes
  `slots = ⌈k · slots_per_mac⌉` slots after zero-skip, and
  `cycles = grid.cycles(m, n, slots, lanes) = ⌈m/rows⌉ · ⌈n/cols⌉ · ⌈slots/lanes⌉`
  (ideal queue balance within a position, as the paper's model). ACT mode (2 slots per MAC) on
  2 lanes is exactly the dense int8 array. Energy: one `mac.int4x8` per nibble product.
"""

from __future__ import annotations

import attrs

from tlm import Module

from ..config import ceil_div
from ..mapping import Mapping


@attrs.frozen
class EncodeWork:
    elements: int
    """Int8 elements classified (current − previous differences, or raw values under A-33b)."""


@attrs.frozen
class NibbleGemm:
    m: int
    """Output rows of the tile (pixels or tokens)."""
    n: int
    """Output columns of the tile (filters)."""
    slots: int
    """Nibble slots one output's reduction takes after zero-skip (k · (f4 + 2·f8 + 3·f9), or 2k)."""
    accumulates: int = 0
    """Non-zero values of one output's reduction (each one accumulation of its nibble products)."""

    @property
    def products(self) -> int:
        return self.m * self.n * self.slots


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

    def energy_events(self, work: EncodeWork) -> dict[str, float]:
        """Two int8 adds per element: the subtract `curr − prev` and the classify compare."""
        return {"add.int8": 2.0 * work.elements} if work.elements else {}


class NibblePeArray(Module):
    """Nibble PEs on the common grid; `macs_per_cycle` counts nibble products."""

    def __init__(self, name: str, parent: Module, grid: Mapping, n_pe: int, multipliers: int):
        super().__init__(name, parent)
        self.grid, self.n_pe, self.multipliers = grid, n_pe, multipliers
        self.lanes = grid.lanes_for(n_pe * multipliers, name)
        """Nibble slots per grid position per cycle (A-37, may be fractional)."""

    @property
    def macs_per_cycle(self) -> int:
        return self.n_pe * self.multipliers

    def cycles(self, work: NibbleGemm) -> int:
        return self.grid.cycles(work.m, work.n, work.slots, self.lanes)

    def energy_events(self, work: NibbleGemm) -> dict[str, float]:
        """One 4-bit × 8-bit multiply per nibble product and one 32-bit accumulate per non-zero
        value (its nibbles are shift-added first), so an int8 value costs what dense's int8 MAC
        costs under the bit-product proxy (2 × 4·8 = 8·8)."""
        if not work.products:
            return {}
        return {"mult.int4x8": work.products, "add.int32": work.m * work.n * work.accumulates}
