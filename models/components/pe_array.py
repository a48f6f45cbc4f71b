"""`PeArray`: cycle models of the MAC array for one GEMM-shaped tile.

A tile is `GemmTile(m, n, k)`: m output rows (pixels or tokens), n output columns (filters),
k the reduction length (window C·R·S, or d_in). Two models:

- broadcast dot-product (the diffusion designs' organisation): rows × cols PEs, each a
  `lanes`-wide dot product per cycle; inputs broadcast along a row, per-PE weights along a column:
  the common mapping (`models.mapping`), cycles = ⌈m/rows⌉ · ⌈n/cols⌉ · ⌈k/lanes⌉.
- systolic fold model (SCALE-Sim's analytical model) for a rows(R) × cols(C) array, folds run one
  after another, folds = ⌈Sr/R⌉·⌈Sc/C⌉:
  OS: Sr = m, Sc = n, T = k, per fold R + C + T − 2;
  WS: Sr = k, Sc = n, T = m, per fold 2R + C + T − 2;
  IS: Sr = k, Sc = m, T = n, per fold 2R + C + T − 2.
"""

from __future__ import annotations

import attrs

from tlm import Module

from ..config import PeArrayConfig, ceil_div
from ..mapping import Mapping


@attrs.frozen
class GemmTile:
    m: int
    n: int
    k: int

    @property
    def macs(self) -> int:
        return self.m * self.n * self.k


def broadcast_cycles(t: GemmTile, rows: int, cols: int, lanes: int) -> int:
    return Mapping(rows, cols).cycles(t.m, t.n, t.k, lanes)


def systolic_cycles(t: GemmTile, rows: int, cols: int, dataflow: str) -> int:
    if dataflow == "os":
        sr, sc, tt, fill = t.m, t.n, t.k, rows
    elif dataflow == "ws":
        sr, sc, tt, fill = t.k, t.n, t.m, 2 * rows
    else:  # "is"
        sr, sc, tt, fill = t.k, t.m, t.n, 2 * rows
    folds = ceil_div(sr, rows) * ceil_div(sc, cols)
    return folds * (fill + cols + tt - 2)


class PeArray(Module):
    """The MAC array; `cycles(tile)` is its cycle model."""

    def __init__(self, name: str, parent: Module, cfg: PeArrayConfig, precision: str = "int8"):
        super().__init__(name, parent)
        self.cfg = cfg
        self.precision = precision
        self._mac_event = f"mac.{precision}"

    @property
    def macs_per_cycle(self) -> int:
        lanes = self.cfg.lanes if self.cfg.model == "broadcast" else 1
        return self.cfg.rows * self.cfg.cols * lanes

    def cycles(self, tile: GemmTile) -> int:
        c = self.cfg
        if c.model == "broadcast":
            return broadcast_cycles(tile, c.rows, c.cols, c.lanes)
        return systolic_cycles(tile, c.rows, c.cols, c.dataflow)

    def energy_events(self, tile: GemmTile) -> dict[str, float]:
        """One MAC of the array's precision per multiply-accumulate of the tile."""
        return {self._mac_event: tile.macs}
