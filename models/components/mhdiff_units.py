"""MHDiff's special units: bitmask module, packer (count → sort → merge, LUT), packed PE array
and the LUT scatter on the write path (dataflows.md §4; assumptions A-11, A-12, A-16..A-20).

The data functions are pure numpy over real per-pixel data from the trace:

- `normalise_l1`, `first_layer_mask`: the first-layer focal bitmask from the per-pixel L1 map.
- `footprint_mask`: the fine-tuning convolution of a bitmask by a layer's normalised kernel at
  its stride, thresholded (rule A-18: "kernel" = the paper's normalised kernel, "any" = dilation
  by the footprint, "majority" = a uniform kernel at 0.5).
- `fit_mask`: carries a mask through layout changes (tokens ↔ pixels, up/down-sampling).
- `window_need`: per output position, the int8 identifier vector over its C·R·S window.
- `greedy_pack`: the paper's greedy packer; `max_pairs`: the best possible pairing (maximum
  matching on the compatibility graph), for reporting how close greedy gets.

The unit classes are `Module`s with a `cycles(work)` cycle model and an `energy_events(work)`
energy model, as the pipeline expects; the PE array maps on the common grid (`models.mapping`).
"""

from __future__ import annotations

import math

import attrs
import numpy as np

from tlm import Module

from ..config import ceil_div
from ..mapping import Mapping

_POP = np.array([bin(i).count("1") for i in range(256)], dtype=np.int32)
"""Population count of every byte value."""


def popcount_rows(bits: np.ndarray) -> np.ndarray:
    """Set bits per row of a packed (m, B) uint8 array."""
    if bits.shape[0] == 0:
        return np.zeros(0, dtype=np.int64)
    return _POP[bits].sum(axis=1)


# ------------------------------------------------------------------ bitmask module
L1_NORMS = ("image_max", "code_mean", "code_sum", "image_mean")


def normalise_l1(l1: np.ndarray, channels: int, mode: str) -> np.ndarray:
    """The L1 map (n, h, w) on the scale `bias` is compared with (the paper's normalisation is
    NOT FOUND): `image_max` divides each image's map by its maximum (values in [0, 1]);
    `code_mean` is the trace's value, the per-pixel mean |Δ| of int8 codes over channels;
    `code_sum` multiplies by C (Eq. 1 taken literally in int8 codes); `image_mean` divides by the
    image's mean."""
    x = np.asarray(l1, dtype=np.float64)
    if mode == "code_mean":
        return x
    if mode == "code_sum":
        return x * channels
    per = x.reshape(x.shape[0], -1)
    ref = per.max(axis=1) if mode == "image_max" else per.mean(axis=1)
    ref = np.where(ref > 0, ref, 1.0)
    return (per / ref[:, None]).reshape(x.shape)


def first_layer_mask(l1: np.ndarray, channels: int, bias: float, mode: str) -> np.ndarray:
    """Focal bitmask (n, h, w), True = focal: normalised L1 >= bias. With bias = 0 every pixel is
    focal; a bias above the normalised maximum makes every pixel peripheral."""
    return normalise_l1(l1, channels, mode) >= bias


MASK_RULES = ("kernel", "any", "majority")


def footprint_mask(mask: np.ndarray, r: int, s: int, stride: int, pad: int, out_h: int,
                   out_w: int, rule: str, profile: tuple[float, ...] | np.ndarray = (),
                   threshold: float = 0.5) -> np.ndarray:
    """Fine-tuning (A-18): convolve the (n, h, w) bitmask with the layer's kernel at its stride,
    giving the mask of the output grid. `kernel`: weights = the layer's normalised kernel
    `profile` (r·s values; uniform when empty), focal if the focal share of the in-image
    weight exceeds `threshold`; `majority`: the same with a uniform kernel and threshold 0.5;
    `any`: focal if any tap is focal (the region dilates by the footprint). Padding never votes,
    so an all-focal map stays focal. A 1×1 stride-1 kernel is the identity (A-21c)."""
    n, h, w = mask.shape
    if r == 1 and s == 1 and stride == 1 and pad == 0:
        return mask.copy()
    padded = np.zeros((n, h + 2 * pad, w + 2 * pad), dtype=np.float64)
    padded[:, pad:pad + h, pad:pad + w] = mask
    win = np.lib.stride_tricks.sliding_window_view(padded, (r, s), axis=(1, 2))
    win = win[:, ::stride, ::stride][:, :out_h, :out_w]
    if rule == "any":
        return win.sum(axis=(3, 4)) > 0
    if rule == "kernel" and len(profile):
        weights = np.asarray(profile, dtype=np.float64).reshape(r, s)
    else:
        weights, threshold = np.ones((r, s)), (threshold if rule == "kernel" else 0.5)
    valid = np.zeros((1, h + 2 * pad, w + 2 * pad), dtype=np.float64)
    valid[:, pad:pad + h, pad:pad + w] = 1
    vwin = np.lib.stride_tricks.sliding_window_view(valid, (r, s), axis=(1, 2))
    vwin = vwin[:, ::stride, ::stride][:, :out_h, :out_w]
    focal_w = np.einsum("nhwrs,rs->nhw", win, weights)
    valid_w = np.einsum("nhwrs,rs->nhw", vwin, weights)
    return focal_w > threshold * valid_w


def fit_mask(mask: np.ndarray, n: int, h: int, w: int, rule: str,
             threshold: float = 0.5) -> np.ndarray | None:
    """The mask on an (n, h, w) grid: same pixels (any layout of the same count, e.g. tokens),
    nearest up-sampling, or block down-sampling (`any`: a focal pixel makes the block focal;
    otherwise focal when the block's focal share exceeds `threshold`, 0.5 for `majority`);
    None if it does not map."""
    mn, mh, mw = mask.shape
    if mn != n:
        return None
    if mh * mw == h * w:
        return mask.reshape(n, h, w)
    if h % mh == 0 and w % mw == 0 and h // mh == w // mw:
        f = h // mh
        return np.repeat(np.repeat(mask, f, axis=1), f, axis=2)
    if mh % h == 0 and mw % w == 0 and mh // h == mw // w:
        f = mh // h
        blocks = mask.reshape(n, h, f, w, f).sum(axis=(2, 4))
        if rule == "any":
            return blocks > 0
        return blocks > (threshold if rule == "kernel" else 0.5) * f * f
    return None


def window_need(need: np.ndarray, focal_in: np.ndarray, h: int, w: int, r: int, s: int,
                stride: int, pad: int, out_h: int, out_w: int, channels: int) -> np.ndarray:
    """Identifier vectors of one image's output positions: (out_h·out_w, R·S·B) packed bits.

    `need` (h·w, B) holds the int8-need bits of each input pixel (packed along C, B = ⌈C/8⌉);
    focal input pixels are int8 in every channel. Window elements in the padding need nothing.
    """
    b = need.shape[1]
    eff = need.reshape(h, w, b).copy()
    if focal_in.any():
        full = np.packbits(np.ones(channels, dtype=bool))
        eff[focal_in] = full
    if r == 1 and s == 1 and stride == 1 and pad == 0:
        return eff.reshape(h * w, b)
    padded = np.zeros((h + 2 * pad, w + 2 * pad, b), dtype=np.uint8)
    padded[pad:pad + h, pad:pad + w] = eff
    win = np.lib.stride_tricks.sliding_window_view(padded, (r, s), axis=(0, 1))
    win = win[::stride, ::stride][:out_h, :out_w]  # (oh, ow, B, r, s)
    return np.ascontiguousarray(win.transpose(0, 1, 3, 4, 2)).reshape(out_h * out_w, r * s * b)


# ------------------------------------------------------------------ packer
@attrs.frozen
class PackResult:
    pairs: np.ndarray
    """(n_pair, 2) indices into the packed pixels: (the one with more int8 values, its partner)."""
    singles: np.ndarray
    """Indices of pixels left unpaired (each takes a vector alone, format int8+0 / int4+0)."""
    retries: int
    """Candidates rejected by the AND check (conflicts) before a pair formed or a pixel gave up."""
    counts: np.ndarray
    """int8 elements per pixel (count units)."""

    @property
    def n_pair(self) -> int:
        return len(self.pairs)

    @property
    def n_single(self) -> int:
        return len(self.singles)

    def lut(self) -> np.ndarray:
        """Lookup table, one row per packed vector: (packed flag, first pixel, second pixel or -1)."""
        rows = np.full((self.n_pair + self.n_single, 3), -1, dtype=np.int64)
        rows[:self.n_pair, 0] = 1
        rows[:self.n_pair, 1:] = self.pairs
        rows[self.n_pair:, 0] = 0
        rows[self.n_pair:, 1] = self.singles
        return rows


def greedy_pack(bits: np.ndarray) -> PackResult:
    """The paper's greedy packer over identifier vectors `bits` (m, B) (packed, 1 = int8).

    Count units give each pixel's int8 count; the sort engine orders pixels by it (most first,
    ties by index); the merge unit takes the pixel with the most int8 values and tries partners
    from the one with the fewest upwards, skipping any whose AND with it is non-zero (two int8
    values in one slot); a pixel with no compatible partner stays single.
    """
    bits = np.asarray(bits, dtype=np.uint8)
    m = bits.shape[0]
    counts = popcount_rows(bits)
    order = np.argsort(-counts, kind="stable")
    zeros = int((counts == 0).sum())
    nz = m - zeros
    pairs: list[np.ndarray] = []
    if zeros >= nz:
        # every pixel with int8 values meets a partner with none: no AND check can fail
        k = m // 2
        pairs.append(np.stack([order[:k], order[::-1][:k]], axis=1))
        singles = order[k:k + 1] if m % 2 else order[:0]
        return PackResult(np.concatenate(pairs).reshape(-1, 2), singles, 0, counts)
    # the first `zeros` pixels (most int8 values) take the zero-count pixels from the back
    pairs.append(np.stack([order[:zeros], order[::-1][:zeros]], axis=1))
    rest = order[zeros:nz]  # still sorted, most int8 values first, all with count > 0
    alive = np.ones(len(rest), dtype=bool)
    rbits = bits[rest]
    extra, singles, retries = [], [], 0
    for i in range(len(rest)):
        if not alive[i]:
            continue
        alive[i] = False
        cand = np.flatnonzero(alive)[::-1]  # fewest int8 values first
        if len(cand):
            ok = ~np.any(rbits[cand] & rbits[i], axis=1)
            hit = np.flatnonzero(ok)
            if len(hit):
                j = cand[hit[0]]
                retries += int(hit[0])
                alive[j] = False
                extra.append((rest[i], rest[j]))
                continue
            retries += len(cand)
        singles.append(rest[i])
    if extra:
        pairs.append(np.asarray(extra, dtype=order.dtype))
    return PackResult(np.concatenate(pairs).reshape(-1, 2), np.asarray(singles, dtype=order.dtype),
                      retries, counts)


def compatible(bits: np.ndarray) -> np.ndarray:
    """(m, m) compatibility matrix: two pixels can share a vector when their ANDs are all zero."""
    b = np.asarray(bits, dtype=np.uint8)
    conflict = np.any(b[:, None, :] & b[None, :, :], axis=2)
    ok = ~conflict
    np.fill_diagonal(ok, False)
    return ok


def max_pairs(bits: np.ndarray) -> int:
    """The most pairs any packer can form: a maximum matching on the compatibility graph
    (networkx's blossom algorithm; a brute-force search where networkx is missing, m ≤ 14)."""
    ok = compatible(bits)
    m = len(ok)
    try:
        import networkx as nx
    except ImportError:  # pragma: no cover - networkx is installed in the project venv
        if m > 14:
            raise ValueError("max_pairs without networkx is limited to 14 pixels")
        return _brute_pairs(ok, tuple(range(m)))
    g = nx.Graph()
    g.add_nodes_from(range(m))
    iu = np.argwhere(np.triu(ok, 1))
    g.add_edges_from(map(tuple, iu.tolist()))
    return len(nx.max_weight_matching(g, maxcardinality=True))


def _brute_pairs(ok: np.ndarray, left: tuple[int, ...]) -> int:
    if len(left) < 2:
        return 0
    a, rest = left[0], left[1:]
    best = _brute_pairs(ok, rest)  # a stays single
    for i, b in enumerate(rest):
        if ok[a, b]:
            best = max(best, 1 + _brute_pairs(ok, rest[:i] + rest[i + 1:]))
    return best


# ------------------------------------------------------------------ units (cycle and energy models)
@attrs.frozen
class BitmaskWork:
    first: bool
    """First layer of the step: L1 units over the previous and current input maps."""
    in_pixels: int
    channels: int
    out_pixels: int
    footprint: int
    """R·S of the fine-tuning convolution (1 for 1×1 / linear layers: identity, no work)."""

    @property
    def l1_adds(self) -> int:
        return self.in_pixels * self.channels if self.first else 0

    @property
    def conv_macs(self) -> int:
        return self.out_pixels * self.footprint if self.footprint > 1 else 0


class BitmaskUnit(Module):
    """L1 units + adder tree + comparator (first layer) and the 1×9-MAC conv unit (fine-tuning).

    A-17: first layer `⌈P·C / l1_adders⌉`; fine-tuning `⌈P'·R·S / conv_macs⌉` (charged at every
    layer that has a mask and a kernel larger than 1×1, the first layer included: it gives the
    output-grid mask the layer's packer and write-back use).
    Energy: one `add.int8` per L1 add (P·C) and per fine-tuning MAC (P'·R·S: a 1-bit mask value
    times a normalised kernel tap is an add)."""

    def __init__(self, name: str, parent: Module, l1_adders: int, conv_macs: int):
        super().__init__(name, parent)
        self.l1_adders, self.conv_macs = l1_adders, conv_macs

    def cycles(self, work: BitmaskWork) -> int:
        return ceil_div(work.l1_adds, self.l1_adders) + ceil_div(work.conv_macs, self.conv_macs)

    def energy_events(self, work: BitmaskWork) -> dict[str, float]:
        return {"add.int8": work.l1_adds + work.conv_macs}


@attrs.frozen
class PackWork:
    peripheral: int
    """Peripheral pixels (output positions) packed in this tile."""
    channels: int

    @property
    def count_ops(self) -> int:
        """Count-unit adds: one per element of every peripheral pixel (P_p·C)."""
        return self.peripheral * self.channels

    @property
    def sort_ops(self) -> int:
        """Sort-engine compares: ⌈P_p·log2 P_p⌉."""
        p = self.peripheral
        return int(math.ceil(p * math.log2(p))) if p > 1 else 0


class Packer(Module):
    """Count units → sort engine → merge unit. A-19: `⌈P_p·C/units⌉ + ⌈P_p·log2(P_p)/units⌉`.
    Energy: one `add.int8` per comparator/adder operation the cycle model counts
    (P_p·C + ⌈P_p·log2 P_p⌉)."""

    def __init__(self, name: str, parent: Module, units: int):
        super().__init__(name, parent)
        self.units = units

    def cycles(self, work: PackWork) -> int:
        if work.peripheral == 0:
            return 0
        return ceil_div(work.count_ops, self.units) + ceil_div(work.sort_ops, self.units)

    def energy_events(self, work: PackWork) -> dict[str, float]:
        return {"add.int8": work.count_ops + work.sort_ops} if work.peripheral else {}


@attrs.frozen
class PackedTile:
    """One tile on the packed PE array: `vectors` packed pixel vectors (mapped along the grid's
    rows), `n` output channels (columns), reduction length `k` (C·R·S slots per vector);
    `extra_cycles` per column block (the unpacked ablation's lane imbalance, A-16).

    `int8_macs` / `int4_macs`: the useful products of the tile by precision, from the packing
    (an int8 value uses both 4×8 multipliers of its PE and one accumulator; an int4 value one
    multiplier and one accumulator); multiplier activations = int4_macs + 2·int8_macs."""

    vectors: int
    n: int
    k: int
    macs: int
    extra_cycles: int = 0
    int8_macs: float | None = None
    """None: every product int8 (`macs` of them)."""
    int4_macs: float = 0.0

    @property
    def int8(self) -> float:
        return self.macs if self.int8_macs is None else self.int8_macs

    @property
    def multiplier_activations(self) -> float:
        return self.int4_macs + 2 * self.int8


class PackedPeArray(Module):
    """The packed PE array on the common grid (A-11/A-12, A-37): every position takes `lanes`
    8-bit activation slots per cycle (common: one PE of two 4×8 multipliers = one slot, an int8
    value or two int4 values of two pixels) and the broadcast weight of its column; packed
    vectors map along the rows, output channels along the columns, the array streams along C
    then R·S:

        cycles = grid.cycles(vectors, n, k, lanes) + ⌈n/cols⌉ · extra_cycles

    Energy: an int8 product = `mac.int8` (two 4×8 multipliers, 2·32/64 of the 8-bit multiplier
    under the A-35 proxy, plus one int32 accumulate: the same as an int8 MAC), an int4 product =
    `mac.int4x8` (one multiplier + its accumulator)."""

    def __init__(self, name: str, parent: Module, grid: Mapping, lanes: float = 1.0):
        super().__init__(name, parent)
        self.grid, self.lanes = grid, lanes

    @property
    def rows(self) -> int:
        return self.grid.rows

    @property
    def cols(self) -> int:
        return self.grid.cols

    @property
    def macs_per_cycle(self) -> float:
        """int8 MACs per cycle (a packed int4+int4 slot does two useful MACs)."""
        return self.grid.positions * self.lanes

    def cycles(self, t: PackedTile) -> int:
        return (self.grid.cycles(t.vectors, t.n, t.k, self.lanes)
                + ceil_div(t.n, self.grid.cols) * t.extra_cycles)

    def energy_events(self, t: PackedTile) -> dict[str, float]:
        ev = {"mac.int8": float(t.int8)}
        if t.int4_macs:
            ev["mac.int4x8"] = float(t.int4_macs)
        return ev


@attrs.frozen
class ScatterWork:
    positions: int
    n: int


class LutScatter(Module):
    """Post-processing on the write path of a tile holding packed vectors: place O1/O2 of each
    packed vector at their pixels through the LUT, limited by the output buffer port:
    `⌈positions · n · out_bytes / port_bytes_per_cycle⌉`. Energy: one `add.int8` per placed
    output element (the LUT-indexed address add of its write; the buffer write itself is the
    write-back every design does)."""

    def __init__(self, name: str, parent: Module, port_bytes_per_cycle: int, out_bytes: float):
        super().__init__(name, parent)
        self.port, self.out_bytes = port_bytes_per_cycle, out_bytes

    def cycles(self, w: ScatterWork) -> int:
        return ceil_div(int(math.ceil(w.positions * w.n * self.out_bytes)), self.port)

    def energy_events(self, w: ScatterWork) -> dict[str, float]:
        return {"add.int8": w.positions * w.n}
