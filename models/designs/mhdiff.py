"""`mhdiff`: focal-pixel-aware mixed precision with packing (dataflows.md §4, A-11..A-21).

Per step: at the first layer (the first conv reading the network input) the bitmask module reads
the previous step's input map from DRAM and thresholds the trace's per-pixel L1 map against
`bias` (focal: normalised L1 >= bias). Every conv/linear layer then fine-tunes the mask by its
kernel footprint and stride (A-18), giving the mask of its output positions; vector ops carry
masks through (OR over inputs, resampling), so a layer's input mask is its producer's output mask.
Focal output positions compute in int8; peripheral ones in int4 with int8 where the trace's
per-pixel int8-need bits say so. Per tile the packer pairs peripheral positions greedily on their
C·R·S identifier vectors; the packed PE array maps packed vectors × output channels on the common
32 × 32 grid, one 8-bit slot per position per cycle (A-11/A-12, A-37). Attention matmuls and ops
outside the spatial mask (time embedding) run int8 (all focal).

Everything else is the shared rules of `Design`: tiling, weight residency and activation
residency (A-38) with int8 containers (A-15). MHDiff's own traffic is the cross-step state of
the paper: the previous first-layer input read and the current copy written at the first layer
(A-13, `prev_act`, in a DRAM region after the address map). With `act_format = "compact"`
(A-15b) a conv/linear layer reads its input from DRAM at the compact mixed format's bytes per
element (its `formats`); on chip tensors stay int8 containers.

Variants: `mhdiff.no_packing` (A-16 ablation) and the neutral `mhdiff.all_focal`: the bitmask
module off (no prediction, no previous-map traffic), every pixel focal at every layer and step,
so nothing is packed and no bitmask, packer or LUT work runs: a dense int8 array on the same grid.
"""

from __future__ import annotations

from typing import Any, Iterator

import attrs
import numpy as np

from workloads import OpRecord, Trace
from workloads.trace import StepStats

from ..components.mhdiff_units import (
    L1_NORMS, MASK_RULES, BitmaskUnit, BitmaskWork, LutScatter, PackedPeArray, PackedTile, Packer, PackWork,
    ScatterWork, first_layer_mask, fit_mask, footprint_mask, greedy_pack, popcount_rows,
    window_need,
)
from ..components.vector_unit import VectorUnit
from ..config import BufferConfig, BuffersConfig, HardwareConfig, MemoryConfig, PeArrayConfig, ceil_div
from ..errors import ConfigError
from ..jobs import Formats
from ..pipeline import Access, TileJob
from ..tiling import Precision
from .base import Design, design, register_variant

_in = attrs.validators.in_


@attrs.frozen
class MhdiffParams:
    bias: float = attrs.field(default=0.6, validator=attrs.validators.ge(0))
    """Bitmask threshold `Bias` (paper default 0.6): a pixel is focal when its normalised L1
    change is >= bias (so bias = 0 makes every pixel focal)."""
    l1_norm: str = attrs.field(default="image_max", validator=_in(L1_NORMS))
    """How the per-pixel L1 map is normalised before the comparison with `bias` (NOT FOUND in
    the paper): `image_max` = L1 / max L1 of the image; `code_mean` = the trace's mean |Δ| of
    int8 codes over channels; `code_sum` = that × C; `image_mean` = L1 / mean L1 of the image."""
    mask_rule: str = attrs.field(default="kernel", validator=_in(MASK_RULES))
    """Fine-tuning, assumption A-18. `kernel` (the paper's description): convolve the bitmask
    with the layer's normalised kernel profile from the trace (`OpRecord.kernel_profile`;
    uniform where the trace has none) and threshold at `kernel_threshold`. `any`: focal if any
    tap of the footprint is focal (the region dilates by the kernel; the variant
    `mhdiff.any_rule`). `majority`: a uniform kernel at 0.5."""
    kernel_threshold: float = attrs.field(default=0.5, validator=[attrs.validators.gt(0),
                                                                  attrs.validators.lt(1)])
    """Binarisation threshold of the `kernel` rule (the paper gives none): an output position is
    focal when more than this share of its kernel's weight magnitude over in-image taps falls on
    focal input pixels. 0.5 rounds the convolved value to the nearer of 0 and 1: it keeps the
    focal area of a smooth mask about constant from layer to layer (no systematic dilation or
    erosion) and, with a uniform kernel, is the `majority` rule."""
    bitmask: bool = True
    """Run the bitmask module (first-layer prediction, fine-tuning, previous-map traffic A-13).
    False: no prediction, every pixel focal at every layer and step, the module idle (the neutral
    variant `mhdiff.all_focal`)."""
    packing: bool = True
    """Pack peripheral pixels in pairs; off = assumption A-16 (unpacked, one PE-cycle per element
    plus per pixel group the lane imbalance max − mean of int8 counts)."""
    pe_mults: int = attrs.field(default=2, validator=attrs.validators.gt(0))
    """Multipliers per PE, assumption A-11 (one packed 8-bit activation slot per cycle)."""
    mult_act_bits: int = 4
    """Activation width of one PE multiplier (A-11: 4-bit × 8-bit multipliers)."""
    mult_weight_bits: int = 8
    """Weight width of one PE multiplier (A-11)."""
    act_format: str = attrs.field(default="int8", validator=_in(("int8", "compact")))
    """Activation format in DRAM: assumption A-15 `int8` containers, or A-15b `compact` (int4 for
    peripheral elements, int8 outliers, one flag bit per peripheral pixel per channel) for the
    inputs conv/linear layers read from DRAM."""
    act_bytes: float = 1.0
    """Bytes per activation in buffers, the residency store and (A-15) DRAM; outputs are written
    requantised as int8 containers."""
    weight_bytes: float = 1.0
    """Bytes per weight, assumption A-14 (int8; the paper's port text says int16: set 2)."""
    prev_fm_bytes: float = 1.0
    """Bytes per element of the previous-step first-layer map, assumption A-13 (8 bits)."""
    keep_fm_copy: bool = True
    """Write the current first-layer input for the next step, assumption A-13 (W_keep_fm)."""
    acc_bytes: int = 4
    """Bytes per int32 accumulator in the output buffer."""
    l1_adders: int = 128
    """L1 adders of the bitmask module, assumption A-17: first layer ⌈P·C/128⌉ cycles."""
    conv_macs: int = 9
    """MACs of the fine-tuning conv unit (1×9), assumption A-17: ⌈P'·R·S/9⌉ cycles."""
    packer_units: int = 128
    """Comparators/adders of the packing module, assumption A-19: ⌈P_p·C/128⌉ + ⌈P_p·log2 P_p/128⌉."""
    pack_rows: int = 0
    """Packing granularity, assumption A-20: 0 = all peripheral pixels of one activation-buffer
    tile (one packing per image and output-row tile)."""
    need_seed: int = 0
    """Seed for drawing int8-need vectors where a trace has only the marginal
    `raw.int4_outlier_frac` (reported in the notes)."""


def first_layer(ops: list[OpRecord]) -> OpRecord | None:
    """The first layer of a step: the first conv reading the network input (else the first conv)."""
    return next((op for op in ops if op.kind == "conv2d" and not op.preds),
                next((op for op in ops if op.kind == "conv2d"), None))


def layer_shape(op: OpRecord) -> tuple[int, ...]:
    """(r, s, stride, pad, h, w, out_h, out_w) of a conv, or of a linear as 1×1 over tokens."""
    if op.kind == "conv2d":
        return op.r, op.s, op.stride, op.pad, op.h, op.w, op.out_h, op.out_w
    return 1, 1, 1, 0, op.h * op.w, 1, op.h * op.w, 1


def step_masks(p: MhdiffParams, ops: list[OpRecord], first_op: int,
               l1: np.ndarray | None) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """One step's focal masks, conv/linear op id → (input mask (n, h, w), output-position mask),
    from the first layer's L1 map `l1` (None: no prediction, every pixel focal). The bitmask
    thresholds `l1` against `p.bias`; each conv/linear fine-tunes its input mask by its footprint
    (A-18); vector ops carry masks through (OR over inputs, resampling); ops without a mask
    (time embedding, attention matmuls) are absent (all focal). Read by the timing model and by
    `workloads.numerics.mhdiff` alike."""
    layers: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    masks: dict[int, np.ndarray | None] = {}
    for op in ops:
        if op.kind in ("conv2d", "linear"):
            r, s, stride, pad, h, w, oh, ow = layer_shape(op)
            if op.op_id == first_op:
                in_mask = None if l1 is None else first_layer_mask(l1, op.c, p.bias, p.l1_norm)
            elif op.preds and masks.get(op.preds[0]) is not None:
                in_mask = fit_mask(masks[op.preds[0]], op.n, h, w, p.mask_rule, p.kernel_threshold)
            else:
                in_mask = None
            if in_mask is None:
                masks[op.op_id] = None
                continue
            focal_in = in_mask.reshape(op.n, h, w)
            focal_out = footprint_mask(focal_in, r, s, stride, pad, oh, ow, p.mask_rule,
                                       op.kernel_profile, p.kernel_threshold)
            layers[op.op_id] = (focal_in, focal_out)
            masks[op.op_id] = focal_out.reshape(op.n, op.out_h, op.out_w)
        elif op.is_mac:
            masks[op.op_id] = masks.get(op.preds[0]) if op.preds else None
        else:
            masks[op.op_id] = _combine(op, masks, p.mask_rule, p.kernel_threshold)
    return layers


def _combine(op: OpRecord, masks, rule: str, threshold: float) -> np.ndarray | None:
    """Mask of a vector op's output: OR of its inputs' masks on its output grid; inputs with
    no spatial mask (time embedding) are ignored when another input has one."""
    out = None
    for pr in op.preds:
        m = masks.get(pr)
        if m is None:
            continue
        m = fit_mask(m, op.n, op.out_h, op.out_w, rule, threshold)
        if m is None:
            continue
        out = m if out is None else out | m
    return out


@attrs.frozen
class _Packing:
    """One packing of an (image, output-row tile): vectors, peripheral positions, the unpacked
    ablation's extra cycles per full window, and the products by precision per output channel
    over the full C·R·S window."""

    vectors: int
    peripheral: int
    extra: int
    int8: float
    int4: float


_STATS = ("positions", "focal_positions", "pairs", "singles", "retries", "dropped_int4",
          "periph_int8_elems", "periph_int4_elems", "focal_elems", "vectors", "mult_acts")


@design("mhdiff")
class Mhdiff(Design):
    """MHDiff: bitmask module, pixel-adaptive quantization, packer, packed PE array, LUT scatter."""

    Params = MhdiffParams

    def __init__(self, hw: HardwareConfig, params: dict[str, Any] | None = None, **kw):
        super().__init__(hw, params, **kw)
        self.stats: dict[str, float] = {k: 0 for k in _STATS}
        self._drawn_ops: set[int] = set()
        self._no_l1: set[int] = set()
        self._compact: dict[int, float] = {}
        self._late_notes = False

    @classmethod
    def paper_hw(cls) -> HardwareConfig:
        """Table I: 32×32 PEs, 500 MHz, 360/132/48/132 KB; DRAM NOT FOUND → LPDDR4-3200 4 × 16 bit
        (the common choice, so paper runs differ from common ones only where the paper says so)."""
        return HardwareConfig(
            name="mhdiff-paper", freq_mhz=500.0, node_nm=28, pe_array=PeArrayConfig(rows=32, cols=32),
            buffers=BuffersConfig(BufferConfig(360), BufferConfig(132), BufferConfig(48), BufferConfig(132)),
            memory=MemoryConfig("lpddr4-3200-4ch"), compute_budget_units=32 * 32 * 2 * 4 * 8,
        )

    # ---------------------------------------------------------------- components
    def make_units(self, top):
        hw, p = self.hw, self.params
        pe_units = p.pe_mults * p.mult_act_bits * p.mult_weight_bits
        budget = hw.budget_units()
        if budget < pe_units or budget % pe_units:
            raise ConfigError(
                f"mhdiff: the compute budget ({budget} bit-product units, A-35) does not make whole PEs "
                f"with {p.pe_mults} {p.mult_act_bits}x{p.mult_weight_bits}-bit multipliers "
                f"({pe_units} units each; {budget / pe_units:g} PEs)"
            )
        pes = budget // pe_units
        lanes = self.grid.lanes_for(pes, "mhdiff")
        self.notes.append(
            f"packed PE array: {pes} PEs of {p.pe_mults} {p.mult_act_bits}x{p.mult_weight_bits} multipliers "
            f"({pes * pe_units} of {budget} bit-product units, A-11/A-35) on the common "
            f"{self.grid.rows}x{self.grid.cols} grid: {lanes:g} 8-bit slot(s) per position per cycle (A-37)"
        )
        out_port = hw.buffers.output.bytes_per_cycle
        return {
            "pe": PackedPeArray("pe_array", top, self.grid, lanes),
            "vector": VectorUnit("vector_unit", top, hw.vector),
            "bitmask": BitmaskUnit("bitmask_unit", top, p.l1_adders, p.conv_macs),
            "packer": Packer("packer", top, p.packer_units),
            "lut": LutScatter("lut_scatter", top, out_port, p.act_bytes),
        }

    # ---------------------------------------------------------------- formats
    def formats(self, op: OpRecord) -> Formats:
        """Stored formats; with A-15b a conv/linear reads its DRAM input at this step's compact
        bytes per element (set per op and step by `mac_jobs`)."""
        f = super().formats(op)
        bpe = self._compact.get(op.op_id)
        return f if bpe is None else attrs.evolve(f, act=bpe)

    def precision(self, op: OpRecord) -> Precision:
        """On chip every activation is an int8 container (A-15), whatever the DRAM format."""
        p = self.params
        return Precision(p.act_bytes, self.weight_bpe(op) if op.kind in ("conv2d", "linear") else p.act_bytes,
                         p.act_bytes, p.acc_bytes)

    # ---------------------------------------------------------------- run preparation
    def prepare(self, trace: Trace) -> None:
        p = self.params
        self._compact = {}
        super().prepare(trace)
        self.n_steps = trace.n_steps
        first = first_layer(trace.ops)
        self.first_op = first.op_id if first is not None else -1
        self.fm_bytes = int(first.in_elems * p.prev_fm_bytes) if (first is not None and p.bitmask) else 0
        self.prev_base = [self.addr.alloc(self.fm_bytes), self.addr.alloc(self.fm_bytes)]
        """Two DRAM slots (previous / current step) for the first-layer map, after the address map."""
        n = self.notes
        spatial = [op for op in trace.ops if op.kind in ("conv2d", "linear")]
        self._focal = {op.op_id: [1.0] * trace.n_steps for op in spatial}
        self._focal_steps: set[int] = set()
        self._trace = trace
        if p.bitmask:
            rule = (f"'kernel' (the layer's normalised kernel profile, focal above {p.kernel_threshold} of its "
                    f"in-image weight)" if p.mask_rule == "kernel" else repr(p.mask_rule))
            n += [
                f"bitmask: focal if normalised L1 >= bias = {p.bias} (l1_norm = {p.l1_norm!r}, NOT FOUND in the "
                f"paper); fine-tuning rule {rule} (A-18), charged at layers with a mask; first layer = "
                f"op {self.first_op}",
                "step 0 has no previous step: every pixel is focal (int8) there, no bitmask work",
                "the previous first-layer map (A-13) is read from / written to DRAM (prev_act) and streamed "
                "through the L1 units (no buffer space charged)",
            ]
            missing = [op for op in spatial if op.kind == "conv2d" and op.r * op.s > 1 and not op.kernel_profile]
            if p.mask_rule == "kernel" and missing:
                n.append(f"{len(missing)} of {len(spatial)} conv/linear layers have no kernel profile in the trace "
                         "(shape-only capture): their fine-tuning uses a uniform kernel")
        else:
            n.append("bitmask module off: every pixel focal (int8) at every layer and step, no previous-map "
                     "traffic, no bitmask/packer/LUT work")
        n += [
            "attention matmuls and the time-embedding path run int8 (no spatial mask)",
            "int4 values sharing a slot with an int8 value are dropped (format int8+0), counted in "
            "mhd_dropped_int4_elems",
            "the bitmask and packer run one after the other in the pre stage, pipelined against the PE array",
            "SRAM read events: the common tiler's int8 operand reads (packed-vector reads not modelled)",
            "packing uses each output position's C·R·S window identifier vector; one packing per (image, row "
            "tile), reused across output-channel blocks and reduction chunks",
            "PE energy: int8 products as mac.int8 (two 4x8 multipliers + one accumulator), int4 products as "
            "mac.int4x8; bitmask, packer and LUT scatter as add.int8 per operation",
        ]
        if p.packing:
            n.append("LUT scatter on the write path of tiles holding packed vectors, at the output buffer port "
                     "rate (latency NOT FOUND)")
        else:
            n.append("packing off (A-16): one PE-cycle per element + per pixel group max - mean int8 count")
        if p.act_format == "compact":
            n.append("A-15b: conv/linear inputs read from DRAM in the compact mixed format (bytes/element from "
                     "the step's mask and int8 fraction; addresses scale alike); resident tensors stay int8")

    # ---------------------------------------------------------------- masks (per step)
    def begin_step(self, trace: Trace, step: int) -> Iterator:
        """The step's masks (`step_masks`): per conv/linear its input and output-position masks."""
        self._st = st = trace.step(step)
        self._layer: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        if not self.params.bitmask:
            return iter(())
        l1 = st.arrays.get("mhd.l1_map", {}).get(self.first_op) if step > 0 else None
        if step > 0 and l1 is None:
            self._no_l1.add(step)
        self._layer = step_masks(self.params, trace.ops, self.first_op, l1)
        self._record_focal(step, self._layer)
        return iter(())

    def _record_focal(self, step: int, layers: dict[int, tuple[np.ndarray, np.ndarray]]) -> None:
        self._focal_steps.add(step)
        for op_id, (_, focal_out) in layers.items():
            self._focal[op_id][step] = float(focal_out.mean())

    def _focal_by_layer(self) -> dict[str, list[float]]:
        """Focal share of each conv/linear layer's output positions per step; steps the fast path
        reused (no `begin_step`) get their own masks computed here."""
        if self.params.bitmask:
            for step in range(1, self.n_steps):
                if step not in self._focal_steps:
                    l1 = self._trace.step(step).arrays.get("mhd.l1_map", {}).get(self.first_op)
                    self._record_focal(step, step_masks(self.params, self.ops, self.first_op, l1))
        return {self.ops[i].name: [round(f, 6) for f in fr] for i, fr in self._focal.items()}

    _shape = staticmethod(layer_shape)

    def _need(self, step: int, op: OpRecord) -> np.ndarray:
        arr = self._st.arrays.get("mhd.int8_need", {}).get(op.op_id)
        if arr is not None:
            return arr
        frac = self._st.scalars.get("raw.int4_outlier_frac", {}).get(op.op_id)
        if frac is None:
            raise ConfigError(
                f"mhdiff: op {op.op_id} ({op.name}) at step {step} has peripheral pixels but the trace has "
                f"neither mhd.int8_need nor raw.int4_outlier_frac for it"
            )
        self._drawn_ops.add(op.op_id)
        rng = np.random.default_rng([self.params.need_seed, step, op.op_id])
        bits = rng.random((op.n, op.h * op.w, op.c)) < frac
        return np.packbits(bits, axis=-1)

    # ---------------------------------------------------------------- MAC jobs
    def mac_jobs(self, step: int, op: OpRecord) -> Iterator[TileJob]:
        if op.kind in ("conv2d", "linear"):
            return self._mhd_jobs(step, op)
        return self._int8_jobs(step, op)

    def _int8_jobs(self, step: int, op: OpRecord) -> Iterator[TileJob]:
        """Attention matmuls: every position focal (int8), one vector per position."""
        plan = self.plans[op.op_id]
        g, fmt = plan.geom, self.formats(op)
        for t in plan.tiles:
            m, n, k = t.m * g.row_px, t.n1 - t.n0, (t.c1 - t.c0) * g.red_per_ch
            self.stats["mult_acts"] += 2 * m * n * k
            yield self.builder.mac_job(step, op, g, t, {"main": ("pe", PackedTile(m, n, k, m * n * k))},
                                       m * n * k, fmt)

    def _mhd_jobs(self, step: int, op: OpRecord) -> Iterator[TileJob]:
        p, stats = self.params, self.stats
        plan = self.plans[op.op_id]
        g = plan.geom
        r, s, stride, pad, h, w, oh, ow = self._shape(op)
        k_full = op.c * r * s
        layer = self._layer.get(op.op_id)
        need = None
        act_bpe = None
        if layer is None:  # no mask: all focal
            stats["focal_elems"] += op.n * h * w * op.c
        else:
            focal_in, focal_out = layer
            n_focal_in = int(focal_in.sum())
            stats["focal_elems"] += n_focal_in * op.c
            n8 = 0
            if not (focal_out.all() and focal_in.all()):
                need = self._need(step, op)
                per_pix = popcount_rows(need.reshape(-1, need.shape[-1])).reshape(op.n, h * w)
                periph = ~focal_in.reshape(op.n, h * w)
                n8 = int(per_pix[periph].sum())
                stats["periph_int8_elems"] += n8
                stats["periph_int4_elems"] += int(periph.sum()) * op.c - n8
            if p.act_format == "compact" and self.builder.source(self.builder.operand(op, 0)) == "dram":
                pf = n_focal_in
                pp = focal_in.size - pf
                o_p = n8 / (pp * op.c) if pp else 0.0
                compact = op.c * (pf + pp * (0.5 * (1 - o_p) + o_p)) + op.c * pp / 8
                act_bpe = p.act_bytes * compact / (op.c * focal_in.size)
        if act_bpe is None:
            self._compact.pop(op.op_id, None)
        else:
            self._compact[op.op_id] = act_bpe
        fmt = self.formats(op)
        windows: dict[int, np.ndarray] = {}
        packed: dict[tuple[int, int, int], _Packing] = {}
        first_tile = True
        is_first = op.op_id == self.first_op
        for t in plan.tiles:
            key = (t.image, t.r0, t.r1)
            work: dict[str, Any] = {}
            pre: list[tuple[str, Any]] = []
            res = packed.get(key)
            if res is None:
                res = packed[key] = self._pack_tile(op, t.image, t.r0, t.r1, ow, layer, need, windows, k_full)
                if res.peripheral and p.packing:
                    pre.append(("packer", PackWork(res.peripheral, op.c)))
            kt = (t.c1 - t.c0) * g.red_per_ch
            n = t.n1 - t.n0
            m = t.m * g.row_px
            extra = ceil_div(res.extra * kt, k_full) if res.extra else 0
            scale = n * kt / k_full
            tile = PackedTile(res.vectors, n, kt, m * n * kt, extra, res.int8 * scale, res.int4 * scale)
            stats["mult_acts"] += tile.multiplier_activations
            work["main"] = ("pe", tile)
            reads: list[Access] = []
            writes: list[Access] = []
            if first_tile:
                first_tile = False
                if layer is not None:
                    bw = BitmaskWork(is_first, op.n * h * w, op.c, op.n * oh * ow, r * s)
                    if bw.l1_adds or bw.conv_macs:
                        pre.insert(0, ("bitmask", bw))
                if is_first and self.fm_bytes:
                    if step > 0:
                        reads.append(Access("dram", "prev_act", self.prev_base[(step - 1) % 2], self.fm_bytes))
                    if p.keep_fm_copy and step + 1 < self.n_steps:
                        writes.append(Access("dram", "prev_act", self.prev_base[step % 2], self.fm_bytes))
            if pre:
                work["pre"] = pre
            if t.out_write and p.packing and res.peripheral:
                work["post"] = ("lut", ScatterWork(m, n))
            yield self.builder.mac_job(step, op, g, t, work, m * n * kt, fmt,
                                       extra_reads=reads, extra_writes=writes)

    def _pack_tile(self, op: OpRecord, image: int, r0: int, r1: int, ow: int, layer, need, windows,
                   k_full: int) -> _Packing:
        """Pack the peripheral output positions of rows [r0, r1) of one image."""
        p, stats = self.params, self.stats
        m = (r1 - r0) * ow
        stats["positions"] += m
        if layer is None:
            stats["focal_positions"] += m
            stats["vectors"] += m
            return _Packing(m, 0, 0, float(m * k_full), 0.0)
        focal_in, focal_out = layer
        fo = focal_out[image].reshape(-1)[r0 * ow:r1 * ow]
        m = len(fo)
        n_focal = int(fo.sum())
        stats["focal_positions"] += n_focal
        periph_idx = np.flatnonzero(~fo)
        if len(periph_idx) == 0:
            stats["vectors"] += m
            return _Packing(m, 0, 0, float(m * k_full), 0.0)
        win = windows.get(image)
        if win is None:
            r, s, stride, pad, h, w, oh, ow_ = self._shape(op)
            win = windows[image] = window_need(need[image], focal_in[image], h, w, r, s, stride, pad,
                                               oh, ow_, op.c)
        vec = win[r0 * ow:r1 * ow]
        n_periph = len(periph_idx)
        if not p.packing:
            counts = popcount_rows(vec)
            lane = np.where(fo, -1, counts)  # focal lanes run uniform int8
            rows = self.grid.rows
            lanes = np.concatenate([lane, np.full((-m) % rows, -1)]).reshape(-1, rows)
            extra = 0
            for grp in lanes:
                vals = grp[grp >= 0]
                if len(vals):
                    extra += int(np.ceil(vals.max() - vals.mean()))
            n8 = int(counts[periph_idx].sum())
            stats["vectors"] += m
            return _Packing(m, 0, extra, float(n_focal * k_full + n8), float(n_periph * k_full - n8))
        pr = greedy_pack(vec[periph_idx])
        n_pair, n_single = pr.n_pair, pr.n_single
        stats["pairs"] += n_pair
        stats["singles"] += n_single
        stats["retries"] += pr.retries
        n8_pair = int(pr.counts[pr.pairs].sum()) if n_pair else 0
        n8_single = int(pr.counts[pr.singles].sum()) if n_single else 0
        stats["dropped_int4"] += n8_pair
        vectors = n_focal + n_pair + n_single
        stats["vectors"] += vectors
        int8 = n_focal * k_full + n8_pair + n8_single
        int4 = 2 * (n_pair * k_full - n8_pair) + (n_single * k_full - n8_single)
        return _Packing(vectors, n_periph, 0, float(int8), float(int4))

    # ---------------------------------------------------------------- results
    def step_counts(self) -> dict[str, float]:
        return dict(self.stats)

    def set_step_counts(self, counts: dict[str, float]) -> None:
        self.stats.update(counts)

    def report(self) -> dict[str, Any]:
        if not self._late_notes:
            self._late_notes = True
            if self._drawn_ops:
                self.notes.append(f"int8-need vectors drawn (seed {self.params.need_seed}) from "
                                  f"raw.int4_outlier_frac for {len(self._drawn_ops)} ops without mhd.int8_need arrays")
            if self._no_l1:
                self.notes.append(f"no mhd.l1_map for the first layer at {len(self._no_l1)} steps > 0: all "
                                  "pixels focal there")
        s = self.stats
        pos = s["positions"] or 1
        periph = s["periph_int8_elems"] + s["periph_int4_elems"]
        elems = periph + s["focal_elems"]
        return {
            **super().report(),
            "mhd_focal_position_frac": s["focal_positions"] / pos,
            "mhd_int8_elem_frac": (s["focal_elems"] + s["periph_int8_elems"]) / elems if elems else 1.0,
            "mhd_int4_elem_frac": s["periph_int4_elems"] / elems if elems else 0.0,
            "mhd_periph_int8_frac": s["periph_int8_elems"] / periph if periph else 0.0,
            "mhd_pairs_count": int(s["pairs"]),
            "mhd_singles_count": int(s["singles"]),
            "mhd_conflict_retries_count": int(s["retries"]),
            "mhd_dropped_int4_elems": int(s["dropped_int4"]),
            "mhd_positions_per_vector": s["positions"] / s["vectors"] if s["vectors"] else 1.0,
            "mhd_multiplier_activations_count": s["mult_acts"],
            "mhd_slots_per_position_per_cycle": self.pe.lanes,
            "mhd_focal_frac_by_layer": self._focal_by_layer(),
        }


register_variant("mhdiff.no_packing", "mhdiff", "Ablation A-16: pixel-adaptive quantization without packing",
                 packing=False)
register_variant("mhdiff.any_rule", "mhdiff", "fine-tuning rule 'any' (A-18 before the kernel profile): a pixel "
                 "is focal when any tap of the layer's footprint is", mask_rule="any")
register_variant("mhdiff.all_focal", "mhdiff", "neutral variant: bitmask off, every pixel focal (int8) at every "
                 "layer and step, nothing packed, no bitmask/packer/LUT work (= dense on the same grid)",
                 bias=0.0, bitmask=False)
