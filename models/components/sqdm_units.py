"""SQ-DM's own units: the heterogeneous dense/sparse PE pools, the time-step-aware sparsity
detector, and the address runs of the channel-last / channel-first layouts.

- `HeteroPe` (dataflows.md §5.4): a dense pool of `n_dpe` 4-bit MACs (MAERI-like: each output's
  dot product is a virtual neuron of `k` multipliers; `floor(n/k)` neurons run at once, a longer
  reduction folds) and a sparse pool of `n_spe` 4-bit MACs (SIGMA-like: only the non-zero
  products of sparse channels, at efficiency `eta`). Both pools run in parallel on one tile;
  the tile takes max(T_DPE, T_SPE) + `merge_cycles` (A-25; the partial-sum merge is free, A-26).
  MXINT8 tiles run at `rate` (1/2, A-22c) of the 4-bit rate on both pools.
- `SparsityDetector`: zero counters per channel of each ReLU output; labels a channel sparse when
  its zero fraction exceeds the threshold; labels observed at step t apply at step t+1 (A-27)
  or at the same step.
- `plane_runs` / `pixel_runs` / `weight_runs`: the contiguous DRAM runs a tile touches.
"""

from __future__ import annotations

import math

import attrs
import numpy as np

from tlm import Module

from ..config import ceil_div


@attrs.frozen
class HeteroWork:
    """One tile on the two pools."""

    outputs: int
    """Output elements of the tile (rows × pixels × output channels)."""
    k_dense: int
    """Reduction length per output on the dense pool (dense channels × R·S)."""
    sparse_nnz_macs: float
    """Non-zero products of the sparse channels (sparse pool work)."""
    rate: float = 1.0
    """MACs per multiplier per cycle relative to 4-bit (MXINT8: 0.5, A-22c)."""


def dpe_cycles(outputs: int, k: int, n_dpe: int, rate: float) -> int:
    """MAERI-style virtual-neuron mapping on `n_dpe` multipliers at `rate`."""
    if outputs == 0 or k == 0:
        return 0
    n_eff = int(n_dpe * rate)
    if n_eff < 1:
        raise ValueError("dense pool has no multiplier at this rate")
    vns = n_eff // k
    if vns >= 1:
        return ceil_div(outputs, vns)
    return outputs * ceil_div(k, n_eff)


def spe_cycles(nnz_macs: float, n_spe: int, rate: float, eta: float) -> int:
    """SIGMA-style: non-zero products only, at efficiency `eta`."""
    if nnz_macs <= 0:
        return 0
    return math.ceil(nnz_macs / (n_spe * rate * eta) - 1e-9)


class HeteroPe(Module):
    """Dense and sparse PE pools sharing one tile; `cycles(work)` is the tile's cycle count."""

    def __init__(self, name: str, parent: Module, n_dpe: int, n_spe: int, eta: float,
                 merge_cycles: int = 0):
        super().__init__(name, parent)
        self.n_dpe, self.n_spe, self.eta, self.merge_cycles = n_dpe, n_spe, eta, merge_cycles
        self.dpe_cycles = 0
        self.spe_cycles = 0

    @property
    def macs_per_cycle(self) -> int:
        return self.n_dpe + self.n_spe

    def cycles(self, w: HeteroWork) -> int:
        td = dpe_cycles(w.outputs, w.k_dense, self.n_dpe, w.rate)
        ts = spe_cycles(w.sparse_nnz_macs, self.n_spe, w.rate, self.eta) if w.sparse_nnz_macs > 0 else 0
        self.dpe_cycles += td
        self.spe_cycles += ts
        return max(td, ts) + (self.merge_cycles if td or ts else 0)


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


def _run(a: float, n: float) -> tuple[int, int]:
    return int(a), int(round(n))


def merge_runs(runs: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Merge runs that touch end to start."""
    out: list[list[int]] = []
    for a, n in runs:
        if n <= 0:
            continue
        if out and out[-1][0] + out[-1][1] == a:
            out[-1][1] += n
        else:
            out.append([a, n])
    return [(a, n) for a, n in out]


def plane_runs(img_base: float, off: np.ndarray, row_bytes: np.ndarray, rows: int, lo: int, hi: int,
               c0: int, c1: int) -> list[tuple[int, int]]:
    """Channel-last (channel plane by channel plane, width fastest): rows [lo, hi) of channels
    [c0, c1). `off[c]` is channel c's plane offset in the image (planes packed back to back,
    compressed planes included); `row_bytes[c]` its bytes per row."""
    if lo == 0 and hi == rows:
        return [_run(img_base + off[c0], off[c1] - off[c0])]
    return merge_runs([_run(img_base + off[c] + lo * row_bytes[c], (hi - lo) * row_bytes[c])
                       for c in range(c0, c1)])


def pixel_runs(img_base: float, ch_prefix: np.ndarray, row_px: int, lo: int, hi: int,
               c0: int, c1: int) -> list[tuple[int, int]]:
    """Channel-first (pixel by pixel, channels fastest): rows [lo, hi) of channels [c0, c1).
    `ch_prefix[c]` is the byte offset of channel c inside one pixel's vector."""
    pix = ch_prefix[-1]
    if c0 == 0 and c1 == len(ch_prefix) - 1:
        return [_run(img_base + lo * row_px * pix, (hi - lo) * row_px * pix)]
    seg = ch_prefix[c1] - ch_prefix[c0]
    return merge_runs([_run(img_base + p * pix + ch_prefix[c0], seg)
                       for p in range(lo * row_px, hi * row_px)])


def weight_runs(base: int, layout: str, n_out: int, red_ch: int, rs: int, bpe: float,
                n0: int, n1: int, c0: int, c1: int) -> list[tuple[int, int]]:
    """Weights of output channels [n0, n1) × input channels [c0, c1) × all R·S taps.

    `krc` (SQ-DM's channel-last: kernel tap → output channel → input channel, input channels
    fastest) or `kcr` (channel-first, OIHW: output → input → tap)."""
    full_c = c0 == 0 and c1 == red_ch
    if layout == "kcr":
        if full_c:
            return [_run(base + n0 * red_ch * rs * bpe, (n1 - n0) * red_ch * rs * bpe)]
        return merge_runs([_run(base + (k * red_ch + c0) * rs * bpe, (c1 - c0) * rs * bpe)
                           for k in range(n0, n1)])
    if full_c and n0 == 0 and n1 == n_out:
        return [_run(base, n_out * red_ch * rs * bpe)]
    if full_c:
        return merge_runs([_run(base + (t * n_out + n0) * red_ch * bpe, (n1 - n0) * red_ch * bpe)
                           for t in range(rs)])
    return merge_runs([_run(base + ((t * n_out + k) * red_ch + c0) * bpe, (c1 - c0) * bpe)
                       for t in range(rs) for k in range(n0, n1)])
