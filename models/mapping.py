"""One mapping model for every MAC array (parity rule 1 of ../shared/design/common-config.md).

A GEMM-shaped tile has m output rows (pixels or tokens), n output columns (filters) and a
reduction of `work` units per output. Every design spreads outputs the same way: m along the
rows and n along the columns of the common grid of PE positions (`hw.pe_array.rows × cols`,
32 × 32 in `common`), in folds of ⌈m/rows⌉ · ⌈n/cols⌉; each position consumes `lanes` reduction
units per cycle. Designs differ only in `lanes` (what their compute budget buys per position,
assumption A-37), in what one reduction unit is (an int8 MAC, a nibble slot, a non-zero
product) and in which units they skip — never in how outputs are spread:

    cycles = ⌈m/rows⌉ · ⌈n/cols⌉ · ⌈work/lanes⌉

Assumption A-37: a design whose PE is wider or narrower than one grid position (Ditto's
4-multiplier PE, Cambricon-D's 60-lane PE, SQ-DM's pools) is charged by its multipliers per
position, `lanes = multipliers / (rows · cols)`, which may be fractional.
"""

from __future__ import annotations

import math

import attrs

from .config import ceil_div
from .errors import ConfigError


@attrs.frozen
class Mapping:
    """The common output grid: `rows` × `cols` PE positions."""

    rows: int
    cols: int

    @property
    def positions(self) -> int:
        return self.rows * self.cols

    def folds(self, m: int, n: int) -> int:
        return ceil_div(m, self.rows) * ceil_div(n, self.cols)

    def cycles(self, m: int, n: int, work: float, lanes: float) -> int:
        """Cycles of an m × n tile whose outputs each need `work` units at `lanes` per cycle."""
        if m <= 0 or n <= 0 or work <= 0:
            return 0
        return self.folds(m, n) * math.ceil(work / lanes - 1e-9)

    def lanes_for(self, multipliers: float, who: str) -> float:
        """Reduction lanes per position when `multipliers` are spread over the grid (A-37)."""
        lanes = multipliers / self.positions
        if lanes <= 0:
            raise ConfigError(f"{who}: no multiplier fits the compute budget on the "
                              f"{self.rows}x{self.cols} grid")
        return lanes
