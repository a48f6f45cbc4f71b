"""SQ-DM's own units: the heterogeneous dense/sparse PE pools, the time-step-aware sparsity
detector, and the DRAM runs of SQ-DM's channel-last / channel-first / weight layouts.

- `HeteroPe` (dataflows.md §5.4): a dense pool of `n_dpe` MACs (MAERI-like) and a sparse pool of
  `n_spe` MACs (SIGMA-like: only the non-zero products of sparse channels, at efficiency `eta`),
  both mapped on the common output grid (`models.mapping`, A-37): the dense pool has
  `n_dpe / positions` lanes per position (3 four-bit MACs in `common`), the sparse pool
  `n_spe · eta / positions` (fractional). A tile of m × n outputs takes
  `max(grid.cycles(m, n, k_dense / rate, lanes_dpe), grid.cycles(m, n, nnz / rate, lanes_spe))`
  plus `merge_cycles` when both pools work on it (A-25; the partial-sum merge is free, A-26);
  `nnz` = non-zero products per output. MXINT8 tiles run at `rate` (1/2, A-22c) on both pools.
  Energy: one MAC of the tile's precision per product actually computed (dense products +
  non-zero sparse products).
- `SparsityDetector`: zero counters per channel of each ReLU output; labels a channel sparse when
  its zero fraction exceeds the threshold; labels observed at step t apply at step t+1 (A-27)
  or at the same step. It is not a pipeline unit: its work (one int8 compare-add per counted
  element) is reported from its `report()` under component "sparsity_detector".
- `byte_runs` and the layout helpers (`plane_runs`, `pixel_runs`, `weight_runs`): the contiguous
  byte runs a tile touches, computed with numpy (no per-channel Python loop).
"""

from __future__ import annotations

from typing import Sequence

import attrs
import numpy as np

from tlm import Module

from ..mapping import Mapping


@attrs.frozen
class HeteroWork:
    """One tile on the two pools."""

    m: int
    """Output rows of the tile on the grid (pixels or tokens)."""
    n: int
    """Output columns of the tile (filters)."""
    k_dense: int
    """Reduction length per output on the dense pool (dense channels × R·S)."""
    nnz: float = 0.0
    """Non-zero products per output of the sparse channels (sparse-pool work per output)."""
    rate: float = 1.0
    """Products per multiplier per cycle relative to the pool's native width (MXINT8: 0.5, A-22c)."""
    mac: str = "mac.int4x4"
    """Energy event of one product (the tile's precision)."""

    @property
    def products(self) -> float:
        """Products actually computed: dense products + non-zero sparse products."""
        return self.m * self.n * (self.k_dense + self.nnz)


class HeteroPe(Module):
    """Dense and sparse PE pools sharing one tile, both on the common grid."""

    def __init__(self, name: str, parent: Module, grid: Mapping, n_dpe: int, n_spe: int, eta: float,
                 merge_cycles: int = 0):
        super().__init__(name, parent)
        self.grid = grid
        self.n_dpe, self.n_spe, self.eta, self.merge_cycles = n_dpe, n_spe, eta, merge_cycles
        self.lanes_dpe = grid.lanes_for(n_dpe, name)
        self.lanes_spe = n_spe * eta / grid.positions if n_spe else 0.0
        self.dpe_cycles = 0
        self.spe_cycles = 0

    @property
    def macs_per_cycle(self) -> int:
        return self.n_dpe + self.n_spe

    def pool_cycles(self, w: HeteroWork) -> tuple[int, int]:
        """(dense-pool, sparse-pool) cycles of a tile."""
        td = self.grid.cycles(w.m, w.n, w.k_dense / w.rate, self.lanes_dpe)
        ts = 0
        if w.nnz > 0:
            if not self.lanes_spe:
                raise ValueError(f"{self.name}: sparse work but no sparse pool")
            ts = self.grid.cycles(w.m, w.n, w.nnz / w.rate, self.lanes_spe)
        return td, ts

    def cycles(self, w: HeteroWork) -> int:
        td, ts = self.pool_cycles(w)
        self.dpe_cycles += td
        self.spe_cycles += ts
        return max(td, ts) + (self.merge_cycles if td and ts else 0)

    def energy_events(self, w: HeteroWork) -> dict[str, float]:
        return {w.mac: w.products}


class SparsityDetector(Module):
    """Per-channel zero counters on ReLU outputs and the dense/sparse labels they produce.

    Labels are kept per consumer op (the op whose input channels they describe).
    `timing = "next_step"`: labels observed at step t are used from step t+1 (A-27); at the
    first step there are no labels and every channel is dense. `"same_step"`: used at once.
    `static = True`: the labels observed first are kept for every step.
    """

    def __init__(self, name: str, parent: Module, threshold: float, timing: str = "next_step",
                 static: bool = False):
        super().__init__(name, parent)
        self.threshold, self.timing, self.static = threshold, timing, static
        self.current: dict[int, np.ndarray] = {}
        self.pending: dict[int, np.ndarray] = {}
        self.elements_counted = 0
        self.flips = 0

    def labels(self, op_id: int, n_channels: int) -> np.ndarray:
        """Boolean sparse labels in force now for `op_id`'s input channels."""
        lab = self.current.get(op_id)
        return lab if lab is not None else np.zeros(n_channels, dtype=bool)

    def observe(self, op_id: int, zero_frac: np.ndarray, elements: int) -> None:
        """Count zeros of one ReLU output (per-channel zero fractions) at this step."""
        self.elements_counted += elements
        if self.static and op_id in self.current:
            return
        lab = np.asarray(zero_frac) > self.threshold
        if self.timing == "same_step" or self.static:
            self._set(op_id, lab)
        else:
            self.pending[op_id] = lab

    def _set(self, op_id: int, lab: np.ndarray) -> None:
        old = self.current.get(op_id)
        if old is not None:
            self.flips += int(np.count_nonzero(old != lab))
        self.current[op_id] = lab

    def end_step(self) -> None:
        for op_id, lab in self.pending.items():
            self._set(op_id, lab)
        self.pending = {}

    def schedule(self, op_id: int, zero_fracs: Sequence[np.ndarray | None], n_channels: int,
                 elements: int) -> list[np.ndarray]:
        """Labels in force at each step for `op_id`'s input channels, running the counters over
        the steps in order (`zero_fracs[t]` = the ReLU output's zero fractions at step t; None =
        no statistics that step: every channel dense, nothing counted)."""
        out = []
        none = np.zeros(n_channels, dtype=bool)
        for z in zero_fracs:
            if z is None:
                out.append(none)
                continue
            before = self.labels(op_id, n_channels)
            self.observe(op_id, z, elements)
            out.append(before if self.timing == "next_step" and not self.static
                       else self.labels(op_id, n_channels))
            self.end_step()
        return out

    def report(self) -> dict:
        """The counters' work (one int8 compare-add per counted element) and label statistics."""
        out: dict = {"component": "sparsity_detector",
                     "sqdm_label_flips": self.flips, "sqdm_detector_elements": self.elements_counted}
        if self.elements_counted:
            out["events"] = {"add.int8": float(self.elements_counted)}
        return out


# ---------------------------------------------------------------------------- layouts
def byte_runs(start: np.ndarray, end: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Contiguous byte runs (offsets, lengths) of the byte ranges [start, end) given as
    fractional byte positions in element order (each rounded up to a whole byte, so the runs of
    neighbouring ranges neither overlap nor leave gaps); ranges that touch are merged."""
    a = np.ceil(np.asarray(start, dtype=np.float64) - 1e-9).astype(np.int64)
    b = np.ceil(np.asarray(end, dtype=np.float64) - 1e-9).astype(np.int64)
    keep = b > a
    a, b = a[keep], b[keep]
    if len(a) <= 1:
        return a, b - a
    heads = np.flatnonzero(np.concatenate(([True], a[1:] != b[:-1])))
    tails = np.concatenate((heads[1:], [len(a)])) - 1
    return a[heads], b[tails] - a[heads]


@attrs.frozen(eq=False)
class PlaneLayout:
    """A tensor stored channel plane by channel plane (channel-last in SQ-DM's terms: width
    fastest, then height, then channel), per image; channel c at `bpe[c]` bytes per element,
    planes packed back to back (compressed sparse planes included, A-24)."""

    plane: int
    """Elements of one channel plane of one image."""
    bpe: np.ndarray
    """Bytes per element of each channel."""
    cum: np.ndarray
    """Fractional byte position of each plane in an image (len channels + 1)."""

    @classmethod
    def of(cls, plane: int, bpe: np.ndarray) -> "PlaneLayout":
        bpe = np.asarray(bpe, dtype=np.float64)
        return cls(plane, bpe, np.concatenate(([0.0], np.cumsum(bpe * plane))))

    def total(self, images: int) -> int:
        """Stored bytes of `images` images."""
        return int(np.ceil(images * self.cum[-1] - 1e-9))


def plane_runs(lay: PlaneLayout, image: int, e0: int, e1: int, c0: int, c1: int):
    """Runs of elements [e0, e1) of every plane of channels [c0, c1) of one image."""
    img = image * lay.cum[-1]
    if e0 == 0 and e1 == lay.plane:
        return byte_runs([img + lay.cum[c0]], [img + lay.cum[c1]])
    pos, bpe = img + lay.cum[c0:c1], lay.bpe[c0:c1]
    return byte_runs(pos + e0 * bpe, pos + e1 * bpe)


def pixel_runs(bpe: float, channels: int, plane: int, image: int, e0: int, e1: int, c0: int, c1: int):
    """Channel-first (pixel vectors, channels fastest): pixels [e0, e1) of channels [c0, c1) of
    one image; every element at `bpe` bytes."""
    first = (image * plane + e0) * channels
    if c0 == 0 and c1 == channels:
        return byte_runs([first * bpe], [(first + (e1 - e0) * channels) * bpe])
    px = first + np.arange(e1 - e0, dtype=np.float64) * channels
    return byte_runs((px + c0) * bpe, (px + c1) * bpe)


def weight_runs(layout: str, bpe: float, n_out: int, red_ch: int, rs: int, n0: int, n1: int,
                c0: int, c1: int):
    """Weights of output channels [n0, n1) × input channels [c0, c1) × all R·S taps.

    `krc` (SQ-DM's channel-last: kernel tap → output channel → input channel, input channels
    fastest) or `kcr` (channel-first, OIHW: output → input → tap)."""
    full_c = c0 == 0 and c1 == red_ch
    if layout == "kcr":
        if full_c:
            return byte_runs([n0 * red_ch * rs * bpe], [n1 * red_ch * rs * bpe])
        k = np.arange(n0, n1, dtype=np.float64)
        return byte_runs((k * red_ch + c0) * rs * bpe, (k * red_ch + c1) * rs * bpe)
    if full_c and n0 == 0 and n1 == n_out:
        return byte_runs([0.0], [n_out * red_ch * rs * bpe])
    taps = np.arange(rs, dtype=np.float64)
    if full_c:
        return byte_runs((taps * n_out + n0) * red_ch * bpe, (taps * n_out + n1) * red_ch * bpe)
    row = (taps[:, None] * n_out + np.arange(n0, n1)[None, :]).ravel() * red_ch
    return byte_runs((row + c0) * bpe, (row + c1) * bpe)
