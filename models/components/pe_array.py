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
  A fold streams T operand vectors in T cycles; the rest is fill and drain: in OS the skewed
  inputs need R − 1 + C − 1 cycles to reach the far corner (the −2: the first element enters and
  the last result leaves in the same cycle as their neighbours' hand-off); WS and IS add R cycles
  to preload the stationary operand into the R rows, hence 2R + C − 2.

Continuing folds: a tiler may split the T dimension (OS: the reduction, WS: the output rows, IS:
the output columns) across consecutive tiles that keep the same stationary block (OS: the same
accumulators, WS: the same weights, IS: the same inputs). The array then carries on streaming
instead of refilling, so only the first tile of such a chain pays the fill/drain term: flags
`first_k` (OS), `first_m` (WS) and `first_n` (IS) of `GemmTile`, all True by default (every tile
a fresh fold). Tiles whose other two dimensions are whole multiples of the array's (the tiler's
alignment) then add up exactly to the whole op's closed form.
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
    first_k: bool = True
    """OS: first reduction chunk of its output block (pays fill/drain)."""
    first_m: bool = True
    """WS: first row tile of its weight block (pays fill/drain)."""
    first_n: bool = True
    """IS: first column block of its input block (pays fill/drain)."""

    @property
    def macs(self) -> int:
        return self.m * self.n * self.k


def broadcast_cycles(t: GemmTile, rows: int, cols: int, lanes: int) -> int:
    return Mapping(rows, cols).cycles(t.m, t.n, t.k, lanes)


def systolic_cycles(t: GemmTile, rows: int, cols: int, dataflow: str) -> int:
    if dataflow == "os":
        sr, sc, tt, fill, first = t.m, t.n, t.k, rows, t.first_k
    elif dataflow == "ws":
        sr, sc, tt, fill, first = t.k, t.n, t.m, 2 * rows, t.first_m
    else:  # "is"
        sr, sc, tt, fill, first = t.k, t.m, t.n, 2 * rows, t.first_n
    folds = ceil_div(sr, rows) * ceil_div(sc, cols)
    return folds * (tt + (fill + cols - 2 if first else 0))


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
