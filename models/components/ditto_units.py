"""Ditto's own units (dataflows.md §6): the Encoding Unit and the nibble PE array.

- `EncodingUnit`: subtracts the previous step's int8 input from the current one, classifies each
  difference as zero / 4-bit / 8-bit and queues the non-zero nibbles with their shift bit. Cycle
  model (assumption A-34): `lane_groups` groups of 4 elements per cycle plus a fixed latency per
  tile; it runs in the "pre" stage, so it overlaps the PE array of the previous tile.
- `NibblePeArray`: `n_pe` PEs of four 4-bit × 8-bit multipliers; an 8-bit datum takes two nibble
  slots, a 9-bit difference three. Each PE holds one output (outputs are spread over the PEs in
  waves) and consumes 4 queued nibble slots per cycle: `cycles = ⌈outputs / n_pe⌉ · ⌈slots / 4⌉`
  with `slots` the nibble slots of one output's reduction after zero-skip (ideal balance, as the
  paper's model; queue imbalance is not modelled).
"""

from __future__ import annotations

import attrs

from tlm import Module

from ..config import ceil_div


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


