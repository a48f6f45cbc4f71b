"""`mhdiff`: focal-pixel-aware mixed precision with packing (dataflows.md §4, A-11..A-21).

Per step: at the first layer (the first conv reading the network input) the bitmask module reads
the previous step's input map from DRAM and thresholds the trace's per-pixel L1 map against
`bias` (focal: normalised L1 >= bias). Every conv/linear layer then fine-tunes the mask by its
kernel footprint and stride (A-18), giving the mask of its output positions; vector ops carry
masks through (OR over inputs, resampling), so a layer's input mask is its producer's output mask.
Focal output positions compute in int8; peripheral ones in int4 with int8 where the trace's
per-pixel int8-need bits say so. Per tile the packer pairs peripheral positions greedily on their
C·R·S identifier vectors; the packed PE array spends one cycle per packed vector slot per weight.
Attention matmuls and ops outside the spatial mask (time embedding) run int8 (all focal).

Jobs reuse the common tiler, so DRAM traffic is the dense design's plus the previous-map read
and the current-map copy at the first layer (A-13); activations move as int8 containers (A-15)
or in the compact mixed format (A-15b).
"""

from __future__ import annotations

from typing import Any, Iterator

import attrs
import numpy as np

from workloads import OpRecord, Trace
from workloads.trace import StepStats

from ..components.mhdiff_units import (
    L1_NORMS, BitmaskUnit, BitmaskWork, LutScatter, PackedPeArray, PackedTile, Packer, PackWork,
    ScatterWork, first_layer_mask, fit_mask, footprint_mask, greedy_pack, popcount_rows,
    window_need,
)
from ..components.vector_unit import VectorUnit
from ..config import COMMON, BufferConfig, BuffersConfig, HardwareConfig, MemoryConfig, PeArrayConfig, ceil_div
from ..errors import ConfigError
from ..pipeline import Access, TileJob
from ..tiling import TilePlan
from .base import design
from .dense import Dense

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
    mask_rule: str = attrs.field(default="any", validator=_in(("any", "majority")))
    """Fine-tuning binarisation, assumption A-18: `any` = focal if the footprint-convolved mask
    is > 0 (dilation by the kernel footprint), `majority` = > 0.5 (uniform normalised kernel)."""
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
    peripheral elements, int8 outliers, one flag bit per peripheral pixel per channel)."""
    act_bytes: float = 1.0
    """Bytes per activation in buffers and (A-15) DRAM; outputs are written requantised as int8."""
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
    tile; n > 0 = groups of n output rows within a tile."""
    need_seed: int = 0
    """Seed for drawing int8-need vectors where a trace has only the marginal
    `raw.int4_outlier_frac` (reported in the notes)."""


@design("mhdiff")
class Mhdiff(Dense):
    """MHDiff: bitmask module, pixel-adaptive quantization, packer, packed PE array, LUT scatter."""

    Params = MhdiffParams
    param_overrides: dict[str, Any] = {}

    def __init__(self, hw: HardwareConfig, params: dict[str, Any] | None = None):
        super().__init__(hw, {**self.param_overrides, **(params or {})})
        self.stats: dict[str, float] = {k: 0 for k in (
            "positions", "focal_positions", "pairs", "singles", "retries", "dropped_int4",
            "periph_int8_elems", "periph_int4_elems", "focal_elems", "vectors")}
        self._drawn_ops: set[int] = set()
        self._no_l1: set[int] = set()

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
        if hw.pe_array.model != "broadcast":
            raise ConfigError("mhdiff: the packed PE array is a broadcast array; pe_array.model must be 'broadcast'")
        pe_units = p.pe_mults * p.mult_act_bits * p.mult_weight_bits
        budget = hw.budget_units()
        cols = hw.pe_array.cols
        pes = budget // pe_units
        if pes < cols or budget % pe_units or pes % cols:
            raise ConfigError(
                f"mhdiff: the compute budget ({budget} bit-product units, A-35) does not make a whole "
                f"array of PEs with {p.pe_mults} {p.mult_act_bits}x{p.mult_weight_bits}-bit multipliers "
                f"({pe_units} units each) in {cols} columns ({budget / pe_units:g} PEs)"
            )
        self.notes.append(
            f"packed PE array {pes // cols} x {cols} PEs of {p.pe_mults} {p.mult_act_bits}x{p.mult_weight_bits} "
            f"multipliers ({pes * pe_units} of {budget} bit-product units, A-11/A-35)"
        )
        out_port = hw.buffers.output.bytes_per_cycle
        return {
            "pe": PackedPeArray("pe_array", top, pes // cols, cols, p.pe_mults),
            "vector": VectorUnit("vector_unit", top, hw.vector),
            "bitmask": BitmaskUnit("bitmask_unit", top, p.l1_adders, p.conv_macs),
            "packer": Packer("packer", top, p.packer_units),
            "lut": LutScatter("lut_scatter", top, out_port, p.act_bytes),
        }

    # ---------------------------------------------------------------- jobs
    def jobs(self, trace: Trace, progress=None) -> Iterator[TileJob]:
        p = self.params
        addr, plans, resident = self.prepare(trace)
        first = next((op for op in trace.ops if op.kind == "conv2d" and not op.preds),
                     next((op for op in trace.ops if op.kind == "conv2d"), None))
        self.first_op = first.op_id if first is not None else -1
        fm_bytes = int(first.in_elems * p.prev_fm_bytes) if first is not None else 0
        prev_base = [addr.size, addr.size + -(-fm_bytes // 4096) * 4096]
        self.notes += [
            f"bitmask: focal if normalised L1 >= bias = {p.bias} (l1_norm = {p.l1_norm!r}, NOT FOUND in the "
            f"paper); fine-tuning rule {p.mask_rule!r} (A-18); first layer = op {self.first_op}",
            "step 0 has no previous step: every pixel is focal (int8) there",
            "attention matmuls and the time-embedding path run int8 (no spatial mask)",
            "int4 values sharing a slot with an int8 value are dropped (format int8+0), counted in mhd_dropped_int4_elems",
            "the previous first-layer map is streamed through the L1 units (no buffer space charged)",
            "the bitmask and packer run one after the other in the pre stage, pipelined against the PE array",
            "SRAM read events use the common tiler's int8 operand reads (packed-vector reads not modelled)",
            "packing uses each output position's C·R·S window identifier vector; one packing per (image, row tile), "
            "reused across output-channel blocks and reduction chunks",
        ]
        if p.packing:
            self.notes.append("LUT scatter on the write path at the output buffer port rate (latency NOT FOUND)")
        else:
            self.notes.append("packing off (A-16): one PE-cycle per element + per pixel group max - mean int8 count")
        sram_reads = {op_id: getattr(plan, "sram_read_bytes", {}) for op_id, plan in plans.items()}
        for step in range(trace.n_steps):
            w_source = "global" if resident and step > 0 else "dram"
            st = trace.step(step)
            masks: dict[int, np.ndarray | None] = {}
            for op in trace.ops:
                if op.is_mac:
                    for buf, nbytes in sram_reads[op.op_id].items():
                        self.events[f"sram.{buf}.read_bytes"] += nbytes
                elif op.kind != "concat":
                    self.events["vector.elements"] += op.out_elems
                if op.kind in ("conv2d", "linear"):
                    yield from self._mhd_jobs(trace, step, st, op, plans[op.op_id], addr, w_source,
                                              masks, fm_bytes, prev_base)
                elif op.is_mac:
                    masks[op.op_id] = masks.get(op.preds[0]) if op.preds else None
                    yield from self._int8_jobs(step, op, plans[op.op_id], addr, w_source)
                else:
                    masks[op.op_id] = self._combine(op, masks)
                    if op.kind != "concat":
                        yield from self._vector_jobs(step, op, addr)
            if progress is not None:
                progress(step)
        if self._drawn_ops:
            self.notes.append(f"int8-need vectors drawn (seed {p.need_seed}) from raw.int4_outlier_frac for "
                              f"{len(self._drawn_ops)} ops without mhd.int8_need arrays")
        if self._no_l1:
            self.notes.append(f"no mhd.l1_map for the first layer at {len(self._no_l1)} steps > 0: all pixels focal there")

    def _combine(self, op: OpRecord, masks) -> np.ndarray | None:
        """Mask of a vector op's output: OR of its inputs' masks on its output grid; inputs with
        no spatial mask (time embedding) are ignored when another input has one."""
        out = None
        for pr in op.preds:
            m = masks.get(pr)
            if m is None:
                continue
            m = fit_mask(m, op.n, op.out_h, op.out_w, self.params.mask_rule)
            if m is None:
                continue
            out = m if out is None else out | m
        return out

    def _in_mask(self, step: int, st: StepStats, op: OpRecord, masks) -> np.ndarray | None:
        p = self.params
        if op.op_id == self.first_op:
            if step == 0:
                return None
            l1 = st.arrays.get("mhd.l1_map", {}).get(op.op_id)
            if l1 is None:
                self._no_l1.add(step)
                return None
            return first_layer_mask(l1, op.c, p.bias, p.l1_norm)
        if not op.preds or masks.get(op.preds[0]) is None:
            return None
        return fit_mask(masks[op.preds[0]], op.n, op.h, op.w, p.mask_rule)

    def _need(self, st: StepStats, step: int, op: OpRecord) -> np.ndarray:
        arr = st.arrays.get("mhd.int8_need", {}).get(op.op_id)
        if arr is not None:
            return arr
        frac = st.scalars.get("raw.int4_outlier_frac", {}).get(op.op_id)
        if frac is None:
            raise ConfigError(
                f"mhdiff: op {op.op_id} ({op.name}) at step {step} has peripheral pixels but the trace has "
                f"neither mhd.int8_need nor raw.int4_outlier_frac for it"
            )
        self._drawn_ops.add(op.op_id)
        rng = np.random.default_rng([self.params.need_seed, step, op.op_id])
        bits = rng.random((op.n, op.h * op.w, op.c)) < frac
        return np.packbits(bits, axis=-1)

    def _mhd_jobs(self, trace, step, st, op, plan: TilePlan, addr, w_source, masks, fm_bytes,
                  prev_base) -> Iterator[TileJob]:
        p = self.params
        g = plan.geom
        conv = op.kind == "conv2d"
        r, s, stride, pad = (op.r, op.s, op.stride, op.pad) if conv else (1, 1, 1, 0)
        oh, ow = (op.out_h, op.out_w) if conv else (op.h * op.w, 1)
        h, w = (op.h, op.w) if conv else (op.h * op.w, 1)
        in_mask = self._in_mask(step, st, op, masks)
        focal_in = in_mask.reshape(op.n, h, w) if in_mask is not None else np.ones((op.n, h, w), bool)
        focal_out = footprint_mask(focal_in, r, s, stride, pad, oh, ow, p.mask_rule)
        masks[op.op_id] = focal_out.reshape(op.n, op.out_h, op.out_w) if in_mask is not None else None
        any_periph = not (focal_out.all() and focal_in.all())
        need = self._need(st, step, op) if any_periph else None
        k_full = op.c * r * s
        stats = self.stats
        # statistics of the layer's input elements (pixel-adaptive quantization)
        n_focal_in = int(focal_in.sum())
        stats["focal_elems"] += n_focal_in * op.c
        if need is not None:
            per_pix = popcount_rows(need.reshape(-1, need.shape[-1])).reshape(op.n, h * w)
            periph = ~focal_in.reshape(op.n, h * w)
            n8 = int(per_pix[periph].sum())
            stats["periph_int8_elems"] += n8
            stats["periph_int4_elems"] += int(periph.sum()) * op.c - n8
        act_scale = 1.0
        if p.act_format == "compact":
            pf = n_focal_in
            pp = focal_in.size - pf
            o_p = n8 / (pp * op.c) if (need is not None and pp) else 0.0
            compact = op.c * (pf + pp * (0.5 * (1 - o_p) + o_p)) + op.c * pp / 8
            act_scale = compact / (op.c * focal_in.size)
        windows: dict[int, np.ndarray] = {}
        packed: dict[tuple[int, int, int], tuple] = {}
        in_base = addr.input_of(op, 0)
        w_base = addr.weight[op.op_id]
        out_base = addr.output[op.op_id]
        set_in = g.images * g.in_rows * g.in_row_px * g.red_ch
        set_w = g.n_out * g.red_ch * g.red_per_ch
        first_tile = True
        rows = self.pe.rows
        for t in plan.tiles:
            key = (t.image, t.r0, t.r1)
            pack_work = None
            res = packed.get(key)
            if res is None:
                res = self._pack_tile(op, t.image, t.r0, t.r1, ow, focal_in, focal_out, need, windows,
                                      (h, w, r, s, stride, pad, oh, ow), rows)
                packed[key] = res
                if res[1]:
                    pack_work = PackWork(res[1], op.c)
            vectors, periph, extra, mult_per_k = res
            kt = (t.c1 - t.c0) * g.red_per_ch
            n = t.n1 - t.n0
            m = t.m * g.row_px
            if extra:
                extra = ceil_div(extra * kt, k_full)
            work: dict[str, Any] = {"main": ("pe", PackedTile(vectors, n, kt, m * n * kt, extra))}
            if pack_work is not None:
                work["pre"] = [("packer", pack_work)]
            self.events["mac.int4x8"] += mult_per_k * kt * n
            reads, loads, frees, writes = [], [], [], []
            if first_tile:
                mask_work = BitmaskWork(op.op_id == self.first_op and in_mask is not None,
                                        op.n * h * w, op.c, op.n * oh * ow, r * s)
                work.setdefault("pre", []).insert(0, ("bitmask", mask_work))
                if op.op_id == self.first_op and fm_bytes:
                    if step > 0:
                        reads.append(Access("dram", "prev_act", prev_base[(step - 1) % 2], fm_bytes))
                    if p.keep_fm_copy and step + 1 < trace.n_steps:
                        writes.append(Access("dram", "prev_act", prev_base[step % 2], fm_bytes))
                first_tile = False
            if t.in_load:
                a = in_base + t.set * set_in + (t.image * g.in_rows + g.in_span(t.r0, t.r1)[0]) * g.in_row_px * g.red_ch + t.c0
                nb = t.in_load if act_scale == 1.0 else max(1, int(round(t.in_load * act_scale)))
                reads.append(Access("dram", "act", a, nb))
                loads.append(("act", t.in_load))
            if t.w_load:
                a = w_base + t.set * set_w + t.n0 * g.red_ch * g.red_per_ch + t.c0 * (t.n1 - t.n0) * g.red_per_ch
                reads.append(Access(w_source, "weight", a, t.w_load))
                loads.append(("weight", t.w_load))
            if t.in_free:
                frees.append(("act", t.in_free))
            if t.w_free:
                frees.append(("weight", t.w_free))
            if t.out_write:
                a = out_base + ((t.set * g.images + t.image) * g.out_rows + t.r0) * g.row_px * g.n_out + t.n0
                writes.append(Access("dram", "out", a, t.out_write))
                if p.packing:
                    work["post"] = ("lut", ScatterWork(m, n))
            yield TileJob(step, op.op_id, work, m * n * kt, loads, reads, frees, t.acc_alloc, writes, t.acc_free)

    def _pack_tile(self, op, image, r0, r1, ow, focal_in, focal_out, need, windows, shape, rows):
        """Pack the peripheral output positions of rows [r0, r1) of one image.
        Returns (vectors, peripheral positions, unpacked lane-imbalance cycles, multiplier
        activations per unit of reduction per output channel)."""
        p, stats = self.params, self.stats
        fo = focal_out[image].reshape(-1)[r0 * ow:r1 * ow]
        m = len(fo)
        n_focal = int(fo.sum())
        periph_idx = np.flatnonzero(~fo)
        stats["positions"] += m
        stats["focal_positions"] += n_focal
        if len(periph_idx) == 0:
            stats["vectors"] += m
            return m, 0, 0, 2 * m
        win = windows.get(image)
        if win is None:
            h, w, r, s, stride, pad, oh, ow_ = shape
            win = windows[image] = window_need(need[image], focal_in[image], h, w, r, s, stride, pad,
                                               oh, ow_, op.c)
        vec = win[r0 * ow:r1 * ow]
        kfull = op.c * shape[2] * shape[3]
        if not p.packing:
            counts = popcount_rows(vec)
            lane = np.where(fo, -1, counts)  # focal lanes run uniform int8
            pad_n = (-m) % rows
            lanes = np.concatenate([lane, np.full(pad_n, -1)]).reshape(-1, rows)
            valid = lanes >= 0
            extra = 0
            for grp, ok in zip(lanes, valid):
                if ok.any():
                    vals = grp[ok]
                    extra += int(np.ceil(vals.max() - vals.mean()))
            n8 = int(counts[periph_idx].sum())
            stats["vectors"] += m
            mults = 2 * n_focal + len(periph_idx) + n8 / kfull
            return m, 0, extra, mults
        pr = greedy_pack(vec[periph_idx])
        n_pair, n_single = pr.n_pair, pr.n_single
        stats["pairs"] += n_pair
        stats["singles"] += n_single
        stats["retries"] += pr.retries
        if n_pair:
            stats["dropped_int4"] += int(pr.counts[pr.pairs].sum())
        n8_single = int(pr.counts[pr.singles].sum()) if n_single else 0
        vectors = n_focal + n_pair + n_single
        stats["vectors"] += vectors
        mults = 2 * n_focal + 2 * n_pair + n_single + n8_single / kfull
        return vectors, len(periph_idx), 0, mults

    def _int8_jobs(self, step, op, plan, addr, w_source) -> Iterator[TileJob]:
        """Attention matmuls: every position focal (int8), one vector per position."""
        for job in self._mac_jobs(step, op, plan, addr, w_source):
            gt = job.work["main"][1]
            job.work = {"main": ("pe", PackedTile(gt.m, gt.n, gt.k, gt.macs))}
            self.events["mac.int4x8"] += 2 * gt.macs
            yield job

    def extra_summary(self) -> dict[str, Any]:
        s = self.stats
        pos = s["positions"] or 1
        periph = s["periph_int8_elems"] + s["periph_int4_elems"]
        elems = periph + s["focal_elems"]
        return {
            "mhd_focal_position_frac": s["focal_positions"] / pos,
            "mhd_int8_elem_frac": (s["focal_elems"] + s["periph_int8_elems"]) / elems if elems else 1.0,
            "mhd_int4_elem_frac": s["periph_int4_elems"] / elems if elems else 0.0,
            "mhd_periph_int8_frac": s["periph_int8_elems"] / periph if periph else 0.0,
            "mhd_pairs_count": int(s["pairs"]),
            "mhd_singles_count": int(s["singles"]),
            "mhd_conflict_retries_count": int(s["retries"]),
            "mhd_dropped_int4_elems": int(s["dropped_int4"]),
            "mhd_positions_per_vector": s["positions"] / s["vectors"] if s["vectors"] else 1.0,
        }


@design("mhdiff.no_packing")
class MhdiffNoPacking(Mhdiff):
    """Ablation A-16: pixel-adaptive quantization without packing."""

    param_overrides = {"packing": False}


def bias_sweep(trace, biases, hw: HardwareConfig = COMMON, memory: str | None = None,
               design: str = "mhdiff", **params) -> list[dict[str, Any]]:
    """Replay `trace` on `design` for each `bias`: focal fraction, int4/int8 element split, PE
    and total cycles (every number from the simulation)."""
    from ..replay import replay

    rows = []
    for b in biases:
        res = replay(trace, design, hw, memory, design_params={**params, "bias": float(b)})
        s = res.summary
        rows.append({
            "bias": float(b),
            "focal_position_frac": s["mhd_focal_position_frac"],
            "int8_elem_frac": s["mhd_int8_elem_frac"],
            "int4_elem_frac": s["mhd_int4_elem_frac"],
            "pe_busy_cycles": s["pe_busy_cycles"],
            "total_cycles": s["total_cycles"],
        })
    return rows
