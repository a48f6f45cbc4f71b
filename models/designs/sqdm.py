"""`sqdm`: SQ-DM (dataflows.md §5, assumptions A-22…A-29) and its ablations.

4-bit weights (INT4, one FP8 scale per group of `weight_scale_group`) and 4-bit activations
(UINT4 after ReLU, INT4 elsewhere, FP8 scales per `act_scale_group`); the first and last
`mx_edge_blocks` blocks (counted over blocks holding a conv) in MXINT8 (8-bit values, one 8-bit
shared exponent per `mx_block`). A time-step-aware sparsity detector counts zeros per channel of
each ReLU output; a channel whose zero fraction exceeds the threshold is labelled sparse (used at
the next step, A-27). A MAC op whose input is a ReLU output sends its dense channels to the dense
pool (DPE) and its sparse channels to the sparse pool (SPE, non-zeros only at SIGMA efficiency);
both pools map on the common 32 × 32 grid (A-37) and run in parallel, their partial sums merge.

Storage: activations channel plane by channel plane (channel-last), sparse planes of a ReLU
output read only by one eligible op compressed (bitmap + non-zeros, A-24); weights kernel tap →
output channel → input channel. A conv/linear tile issues per operand one scatter-gather DRAM
transaction of the contiguous runs of that layout (each run is a DRAM request; the memory model
batches them, or under `--exact` times them one by one; a resident tensor is one on-chip access). Everything else is the shared rules of
`Design`: weight residency, activation residency (A-38, with SQ-DM's stored sizes), tiling.

Variants: `sqdm.dense4` (4-bit, no sparsity, the whole budget dense), `sqdm.static_labels`
(labels of step 0 kept for all steps), `sqdm.fp16_dense` (the paper's FP16 dense baseline at the
same area), `sqdm.int8_dense` (the neutral variant: int8 operands, one int8 MAC per position).
"""

from __future__ import annotations

from typing import Iterator

import attrs
import numpy as np

from workloads import OpRecord, Trace

from ..components.sqdm_units import (
    HeteroPe, HeteroWork, PlaneLayout, SparsityDetector, pixel_runs, plane_runs, weight_runs,
)
from ..components.vector_unit import VectorUnit
from ..config import COMMON, HardwareConfig
from ..errors import ConfigError
from ..jobs import nbytes
from ..pipeline import Access, TileJob, gather
from ..tiling import Precision
from .base import Design, design, register_variant

_ZSTAT = "sqdm.zero_frac_per_in_channel"
_v = attrs.validators
_VAL_BYTES = {"int4": 0.5, "mx": 1.0, "fp16": 2.0, "int8": 1.0}
_MAC_EVENT = {"int4": "mac.int4x4", "mx": "mac.int8", "fp16": "mac.fp16", "int8": "mac.int8"}


@attrs.frozen
class SqdmParams:
    spe_budget_frac: float = attrs.field(default=0.25, validator=[_v.ge(0), _v.lt(1)])
    """Share of the compute budget given to the sparse pool; the rest is the dense pool
    (assumption A-22: N_DPE·u + N_SPE·u·alpha = budget; swept 0.25…0.5)."""
    spe_area_factor: float = attrs.field(default=1.5, validator=_v.gt(0))
    """Area of one sparse-pool MAC relative to a dense one, `alpha` (assumption A-22)."""
    mac_units: int = attrs.field(default=16, validator=_v.gt(0))
    """Bit-product units of one 4-bit × 4-bit MAC (4·4, assumption A-35)."""
    fp16_mac_units: int = attrs.field(default=121, validator=_v.gt(0))
    """Bit-product units of one fp16 × fp16 MAC for `precision = "fp16"` (assumption A-35)."""
    int8_mac_units: int = attrs.field(default=64, validator=_v.gt(0))
    """Bit-product units of one int8 × int8 MAC for `precision = "int8"` (8·8, assumption A-35)."""
    n_dpe: int | None = None
    """Explicit dense-pool MAC count (overrides the A-22 split; paper-style configs)."""
    n_spe: int | None = None
    """Explicit sparse-pool MAC count (overrides the A-22 split)."""
    sigma_efficiency: float = attrs.field(default=0.8, validator=[_v.gt(0), _v.le(1)])
    """Sparse-pool efficiency `eta_SIGMA`: useful non-zero products per multiplier per cycle
    (assumption A-22b)."""
    mxint8_rate: float = attrs.field(default=0.5, validator=[_v.gt(0), _v.le(1)])
    """MXINT8 layers run at this fraction of the 4-bit rate on both pools (assumption A-22c)."""
    weight_scale_group: int = attrs.field(default=16, validator=_v.gt(0))
    """INT4 weights share one FP8 scale per group of this many weights (assumption A-23, g)."""
    act_scale_group: int = attrs.field(default=16, validator=_v.ge(0))
    """INT4/UINT4 activations share one FP8 scale per group of this many elements (assumption
    A-23 applied to activations; 0 = one static scale per tensor, no scale bytes)."""
    scale_bytes: int = attrs.field(default=1, validator=_v.gt(0))
    """Bytes per scale (FP8, assumption A-23)."""
    mx_block: int = attrs.field(default=32, validator=_v.gt(0))
    """MXINT8 block: one 8-bit shared exponent per this many values (assumption A-23b)."""
    mx_edge_blocks: int = attrs.field(default=1, validator=_v.ge(0))
    """Blocks at each end of the network (counted over blocks holding a conv2d) that run in
    MXINT8 ([S-SQzh, S-SQq] 'first and last few blocks'; how many is not found)."""
    sparse_dram: str = attrs.field(default="compressed", validator=_v.in_(("compressed", "dense")))
    """Sparse channels where stored (DRAM or the on-chip residency store): `compressed` = bitmap
    (1 bit per element) + non-zeros (assumption A-24), `dense` = plain 4-bit (assumption A-24b)."""
    compressed_reserve: str = attrs.field(default="run_max", validator=_v.in_(("run_max", "worst")))
    """On-chip space the residency plan reserves for a compressed tensor (assumption A-24c):
    `run_max` = its largest stored size over the run's steps (labels and zero fractions of the
    trace), `worst` = every plane compressed with no zero (dense + bitmap)."""
    merge_cycles: int = attrs.field(default=0, validator=_v.ge(0))
    """Switch/merge overhead per tile when both pools work on it (assumption A-25; the partial-sum
    merge of the MAERI and SIGMA reduction trees is free, assumption A-26)."""
    sparsity_threshold: float = attrs.field(default=0.30, validator=[_v.ge(0), _v.le(1)])
    """A channel is sparse when its zero fraction exceeds this ([S-SQzh] 30 %; assumption A-27)."""
    label_timing: str = attrs.field(default="next_step", validator=_v.in_(("next_step", "same_step")))
    """Labels counted at step t are used at step t+1 (assumption A-27) or at step t itself; with
    `next_step` the first step runs all channels dense."""
    static_labels: bool = False
    """Keep the labels of step 0 for every step (`sqdm_labels = static`, §5.6)."""
    sparsity: bool = True
    """Route sparse channels to the sparse pool at all (False: dense only, no sparse pool)."""
    precision: str = attrs.field(default="int4", validator=_v.in_(("int4", "fp16", "int8")))
    """`int4`: SQ-DM's formats; `fp16`: every tensor and MAC in fp16 (the paper's baseline);
    `int8`: 1-byte activations and weights, no scales, int8 MACs (the neutral variant)."""
    act_layout: str = attrs.field(default="channel_last", validator=_v.in_(("channel_last", "channel_first")))
    """Activation layout in DRAM: `channel_last` = channel planes, width fastest ([S-SQzh]);
    `channel_first` = pixel vectors, channels fastest (compression per channel impossible there:
    sparse channels are stored dense, A-24b)."""
    weight_layout: str = attrs.field(default="krc", validator=_v.in_(("krc", "kcr")))
    """Weight layout: `krc` = kernel tap → output channel → input channel ([S-SQzh]);
    `kcr` = output → input → tap (OIHW)."""
    acc_bytes: int = attrs.field(default=4, validator=_v.gt(0))
    """Bytes per partial-sum accumulator in the output buffer (int32 / fp32)."""


def precision_classes(p: SqdmParams, ops: list[OpRecord]) -> list[str]:
    """Per op its precision class: `mx` (MXINT8, ops of the first/last `mx_edge_blocks` blocks
    holding a conv2d), `int4`, or `p.precision` when that is not int4. Read by the timing model
    and by `workloads.numerics.sqdm` alike."""
    if p.precision != "int4":
        return [p.precision] * len(ops)
    conv_blocks = sorted({op.block for op in ops if op.kind == "conv2d"})
    n = p.mx_edge_blocks
    edge = set(conv_blocks[:n]) | set(conv_blocks[-n:]) if n else set()
    return ["mx" if op.block in edge else "int4" for op in ops]


@attrs.define
class _StepOp:
    """One eligible op's labels at the current step, as prefix sums over its input channels."""

    dense_pre: np.ndarray
    nz_pre: np.ndarray


@design("sqdm")
class Sqdm(Design):
    """SQ-DM: 4-bit, per-step channel sparsity labels, dense + sparse PE pools."""

    Params = SqdmParams
    trace_activation = "relu"

    # ---- configuration -------------------------------------------------------------------
    def mac_unit_cost(self) -> int:
        p = self.params
        return {"fp16": p.fp16_mac_units, "int8": p.int8_mac_units}.get(p.precision, p.mac_units)

    def pools(self) -> tuple[int, int]:
        """(N_DPE, N_SPE) from the budget split (A-22) or explicit counts."""
        p, budget = self.params, self.hw.budget_units()
        unit = self.mac_unit_cost()
        spe_frac = p.spe_budget_frac if p.sparsity else 0.0
        n_dpe = p.n_dpe if p.n_dpe is not None else int(budget * (1 - spe_frac) // unit)
        n_spe = p.n_spe if p.n_spe is not None else int(budget * spe_frac // (unit * p.spe_area_factor))
        if not p.sparsity:
            n_spe = 0
        if n_dpe < 1:
            raise ConfigError(f"designs.{self.name}: the compute budget ({budget} units) leaves no dense-pool MAC "
                              f"of {unit} units (spe_budget_frac = {spe_frac})")
        if p.sparsity and n_spe < 1:
            raise ConfigError(f"designs.{self.name}: sparsity is on but the sparse pool has no MAC "
                              f"(budget {budget} units, spe_budget_frac = {spe_frac}, area factor "
                              f"{p.spe_area_factor}); raise spe_budget_frac or set sparsity = false")
        used = n_dpe * unit + n_spe * unit * p.spe_area_factor
        if (p.n_dpe is not None or p.n_spe is not None) and used > budget:
            raise ConfigError(f"designs.{self.name}: n_dpe/n_spe need {used:.0f} units, the budget is {budget}")
        return n_dpe, n_spe

    @classmethod
    def paper_hw(cls) -> HardwareConfig:
        """SQ-DM's own configuration: 28 nm ([S-SQzh]); pool sizes, buffers, clock and DRAM are
        NOT FOUND, so they stay the common values and the A-22 split (every one a parameter)."""
        return COMMON.evolve(name="sqdm-paper", designs={
            cls.name: {"spe_budget_frac": 0.25, "spe_area_factor": 1.5, "sigma_efficiency": 0.8}})

    def make_units(self, top):
        p = self.params
        self.n_dpe, self.n_spe = self.pools()
        self.hetero = HeteroPe("pe_pools", top, self.grid, self.n_dpe, self.n_spe,
                               p.sigma_efficiency, p.merge_cycles)
        self.detector = SparsityDetector("sparsity_detector", top, p.sparsity_threshold,
                                         p.label_timing, p.static_labels)
        return {"pe": self.hetero, "vector": VectorUnit("vector_unit", top, self.hw.vector)}

    # ---- formats ---------------------------------------------------------------------------
    def scale_bpe(self, fmt: str) -> float:
        p = self.params
        if fmt == "int4":
            return p.scale_bytes / p.act_scale_group if p.act_scale_group else 0.0
        return 1.0 / p.mx_block if fmt == "mx" else 0.0

    def dense_bpe(self, fmt: str) -> float:
        """Bytes per activation element stored dense, scales included."""
        return _VAL_BYTES[fmt] + self.scale_bpe(fmt)

    def sparse_bpe(self, fmt: str, zero_frac):
        """Bytes per element of a compressed sparse channel (A-24): bitmap + non-zeros + scales."""
        return 1 / 8 + (1 - np.asarray(zero_frac)) * _VAL_BYTES[fmt] + self.scale_bpe(fmt)

    def act_bpe(self, tensor: int) -> float:
        """Bytes per element where `tensor` is stored: its dense format, or for a compressed
        tensor the worst case (every plane compressed, no zero), which sizes tiles and regions."""
        bpe = self.dense_bpe(self.tensor_fmt[tensor])
        return bpe + 1 / 8 if tensor in self.compress_for else bpe

    def weight_bpe(self, op: OpRecord) -> float:
        p, cls = self.params, self.op_class[op.op_id]
        if cls == "int4":
            return 0.5 + p.scale_bytes / p.weight_scale_group
        return {"mx": 1.0 + 1.0 / p.mx_block, "fp16": 2.0, "int8": 1.0}[cls]

    def precision(self, op: OpRecord) -> Precision:
        f = self.formats(op)
        return Precision(f.act, f.weight, f.out, self.params.acc_bytes)

    def tensor_bytes(self, tensor: int) -> int:
        """Stored bytes of a tensor: compressed tensors at the current step's labels and zero
        fractions; before the run (the residency plan) the space reserved for them (A-24c)."""
        cons = self.compress_for.get(tensor)
        if cons is None:
            return nbytes(self.tensor_elements(tensor), self.dense_bpe(self.tensor_fmt[tensor]))
        if self._step is None:
            if self.params.compressed_reserve == "worst":
                return nbytes(self.tensor_elements(tensor), self.act_bpe(tensor))
            return max(self._stored_bytes(tensor, s) for s in range(self._n_steps))
        return self._cur_layout[tensor].total(self.ops[cons].n)

    @property
    def compressed(self) -> bool:
        p = self.params
        return p.sparsity and p.sparse_dram == "compressed" and p.act_layout == "channel_last"

    # ---- static per-run analysis ---------------------------------------------------------
    def _classes(self, ops: list[OpRecord]) -> list[str]:
        return precision_classes(self.params, ops)

    def _analyse(self, trace: Trace) -> None:
        """Per-op precision classes, tensor formats, sparse-eligible ops, compressed tensors,
        and the detector's labels for every step."""
        p, ops = self.params, trace.ops
        cls = self.op_class = self._classes(ops)
        consumers: dict[int, list[int]] = {i: [] for i in range(-1, len(ops))}
        for op in ops:
            for src in (op.preds or (-1,)):
                consumers[src].append(op.op_id)

        def fmt(t: int) -> str:
            if p.precision != "int4":
                return p.precision
            if t >= 0 and ops[t].kind == "concat":
                return "mx" if any(fmt(s) == "mx" for s in ops[t].preds) else "int4"
            mine = cls[t] if t >= 0 else "int4"
            return "mx" if mine == "mx" or any(cls[c] == "mx" for c in consumers[t]) else "int4"

        self.tensor_fmt = {t: fmt(t) for t in consumers}
        self.eligible = {op.op_id for op in ops
                         if p.sparsity and op.kind in ("conv2d", "linear") and op.input_from_relu
                         and op.preds and ops[op.preds[0]].kind == "relu"}
        # A ReLU output read only by one eligible MAC op is stored in that op's compressed form.
        self.compress_for = ({op.preds[0]: op.op_id for op in ops
                              if op.op_id in self.eligible and len(consumers[op.preds[0]]) == 1}
                             if self.compressed else {})
        self._n_steps = trace.n_steps
        self._z: dict[int, list[np.ndarray | None]] = {e: [] for e in self.eligible}
        for s in range(trace.n_steps):
            arrays = trace.step(s).arrays.get(_ZSTAT, {})
            for e in self.eligible:
                z = arrays.get(e)
                self._z[e].append(None if z is None else np.asarray(z, dtype=np.float64))
        self._labels = {e: self.detector.schedule(e, self._z[e], ops[e].c, ops[e].in_elems)
                        for e in sorted(self.eligible)}

    def _zeros(self, e: int, step: int) -> np.ndarray:
        z = self._z[e][step]
        return np.zeros(self.ops[e].c) if z is None else z

    def _channel_bpe(self, tensor: int, step: int) -> np.ndarray:
        """Bytes per element of each channel of a compressed tensor at `step` (A-24)."""
        e = self.compress_for[tensor]
        fmt = self.tensor_fmt[tensor]
        lab = self._labels[e][step]
        per = np.full(len(lab), self.dense_bpe(fmt))
        if lab.any():
            per[lab] = self.sparse_bpe(fmt, self._zeros(e, step)[lab])
        return per

    def _plane(self, e: int) -> int:
        """Elements of one input channel plane of eligible op `e` (per image)."""
        op = self.ops[e]
        return op.in_elems // (op.n * op.c)

    def _stored_bytes(self, tensor: int, step: int) -> int:
        e = self.compress_for[tensor]
        return PlaneLayout.of(self._plane(e), self._channel_bpe(tensor, step)).total(self.ops[e].n)

    def prepare(self, trace: Trace) -> None:
        self._step = None
        self._analyse(trace)
        super().prepare(trace)
        self._static_layout: dict[tuple[int, int, int], PlaneLayout] = {}
        self._cur_layout: dict[int, PlaneLayout] = {}
        self.stat = {"dense_ch_macs": 0.0, "sparse_ch_macs": 0.0, "sparse_nnz_macs": 0.0,
                     "eligible_op_steps": 0, "missing_stats": 0}
        self._add_notes(trace)

    def _layout(self, tensor: int, channels: int, plane: int) -> PlaneLayout:
        """Channel-last layout of a tensor as an op reads or writes it."""
        if tensor in self._cur_layout:
            return self._cur_layout[tensor]
        key = (tensor, channels, plane)
        lay = self._static_layout.get(key)
        if lay is None:
            bpe = self.dense_bpe(self.tensor_fmt[tensor])
            lay = self._static_layout[key] = PlaneLayout.of(plane, np.full(channels, bpe))
        return lay

    # ---- per step ---------------------------------------------------------------------------
    def begin_step(self, trace: Trace, step: int) -> Iterator:
        """Labels in force at this step: per eligible op its channel prefix sums, per compressed
        tensor its packed-plane layout."""
        self._step = step
        self._step_ops: dict[int, _StepOp] = {}
        for e in self.eligible:
            lab = self._labels[e][step]
            z = self._zeros(e, step)
            self.stat["eligible_op_steps"] += 1
            self.stat["missing_stats"] += self._z[e][step] is None
            self._step_ops[e] = _StepOp(np.concatenate(([0], np.cumsum(~lab))),
                                        np.concatenate(([0.0], np.cumsum(np.where(lab, 1 - z, 0.0)))))
        self._cur_layout = {t: PlaneLayout.of(self._plane(e), self._channel_bpe(t, step))
                            for t, e in self.compress_for.items()}
        return iter(())

    def _act_access(self, kind: str, tensor: int, lay: PlaneLayout, g_images: int, channels: int,
                    image: int, e0: int, e1: int, c0: int, c1: int, plane: int) -> list[Access]:
        """One tile's slice of an activation tensor in SQ-DM's layout: a scatter-gather DRAM
        transaction of its contiguous runs, or one access to the residency store when on chip."""
        if self.params.act_layout == "channel_last":
            off, n = plane_runs(lay, image, e0, e1, c0, c1)
        else:
            bpe = self.dense_bpe(self.tensor_fmt[tensor])
            off, n = pixel_runs(bpe, channels, plane, image, e0, e1, c0, c1)
        if not len(n):
            return []
        src, base = self.builder.source(tensor), self.builder.base(tensor)
        if src != "dram":
            return [Access(src, kind, base + int(off[0]), int(n.sum()))]
        return [gather("dram", kind, base + off, n)]

    def mac_jobs(self, step: int, op: OpRecord) -> Iterator[TileJob]:
        p = self.params
        plan = self.plans[op.op_id]
        g, fmt = plan.geom, self.formats(op)
        cls = self.op_class[op.op_id]
        rate = p.mxint8_rate if cls == "mx" else 1.0
        mac = _MAC_EVENT[cls]
        rs, C = g.red_per_ch, g.red_ch
        sop = self._step_ops.get(op.op_id)
        layout = op.kind in ("conv2d", "linear")
        w_dram = layout and self.builder.weight_source(step) == "dram"
        if layout:
            src = self.builder.operand(op, 0)
            in_plane, out_plane = g.in_rows * g.in_row_px, g.out_rows * g.row_px
            in_lay = self._layout(src, C, in_plane)
            out_lay = self._layout(op.op_id, g.n_out, out_plane)
            w_base = self.addr.weight[op.op_id]
        st = self.stat
        for t in plan.tiles:
            reads: list[Access] = []
            writes: list[Access] = []
            if layout:
                if t.in_load:
                    lo, hi = g.in_span(t.r0, t.r1)
                    reads += self._act_access("act", src, in_lay, g.images, C, t.image,
                                              lo * g.in_row_px, hi * g.in_row_px, t.c0, t.c1, in_plane)
                if t.w_load and w_dram:
                    off, n = weight_runs(p.weight_layout, fmt.weight, g.n_out, C, rs, t.n0, t.n1, t.c0, t.c1)
                    if len(n):
                        reads.append(gather("dram", "weight", w_base + off, n))
                if t.out_write:
                    writes = self._act_access("out", op.op_id, out_lay, g.images, g.n_out, t.image,
                                              t.r0 * g.row_px, t.r1 * g.row_px, t.n0, t.n1, out_plane)
            m, n_cols, ch = t.m * g.row_px, t.n1 - t.n0, t.c1 - t.c0
            if sop is not None:
                n_dense = int(sop.dense_pre[t.c1] - sop.dense_pre[t.c0])
                nnz = rs * float(sop.nz_pre[t.c1] - sop.nz_pre[t.c0])
            else:
                n_dense, nnz = ch, 0.0
            outputs = m * n_cols
            st["dense_ch_macs"] += outputs * n_dense * rs
            st["sparse_ch_macs"] += outputs * (ch - n_dense) * rs
            st["sparse_nnz_macs"] += outputs * nnz
            work = HeteroWork(m, n_cols, n_dense * rs, nnz, rate, mac)
            yield self.builder.mac_job(step, op, g, t, {"main": ("pe", work)}, outputs * ch * rs, fmt,
                                       input=not layout, weight=not w_dram, output=not layout,
                                       extra_reads=reads, extra_writes=writes)

    # ---- reporting -------------------------------------------------------------------------
    def _add_notes(self, trace: Trace) -> None:
        p, n = self.params, self.notes
        unit = self.mac_unit_cost()
        used = self.n_dpe * unit + self.n_spe * unit * p.spe_area_factor
        width = {"fp16": "fp16", "int8": "int8"}.get(p.precision, "4-bit")
        n.append(f"pools: {self.n_dpe} dense + {self.n_spe} sparse {width} MACs ({used:.0f} of "
                 f"{self.hw.budget_units()} budget units; A-22 split, A-35 proxy) on the common "
                 f"{self.grid.rows}x{self.grid.cols} grid: {self.hetero.lanes_dpe:.3g} dense lanes + "
                 f"{self.hetero.lanes_spe:.3g} sparse lanes (eta {p.sigma_efficiency}) per position (A-37)")
        if p.precision == "int4":
            mx = sorted({op.name for op, c in zip(trace.ops, self.op_class) if c == "mx" and op.is_mac})
            n.append(f"MXINT8 (rate {p.mxint8_rate}, A-22c) for ops of the first/last {p.mx_edge_blocks} conv "
                     f"block(s): {', '.join(mx) or 'none'}; its sparse channels use the trace's uint4 zero "
                     f"fractions (8-bit zero fractions are not in the trace)")
        if p.sparsity:
            n.append(f"labels: threshold {p.sparsity_threshold}, "
                     + ("static (labels of step 0 for all steps)" if p.static_labels else
                        f"{p.label_timing.replace('_', ' ')} (A-27)")
                     + "; only inputs produced by a ReLU are sparse-eligible; others, attention matmuls "
                       "and MXINT8 ops without ReLU input run on the dense pool only (the sparse pool idles)")
            if p.act_layout == "channel_first" and p.sparse_dram == "compressed":
                n.append("channel_first layout: sparse channels are stored dense (A-24b), per-channel "
                         "compression needs contiguous channel planes")
        if self.compress_for:
            n.append(f"{len(self.compress_for)} ReLU outputs stored compressed (A-24), in DRAM and in the "
                     f"residency store; the residency plan reserves "
                     + ("their largest size over the run" if p.compressed_reserve == "run_max"
                        else "their worst-case size (dense + bitmap)") + " (A-24c)")
        n.append(f"layouts: activations {p.act_layout}, weights {p.weight_layout} for conv/linear tiles; one "
                 "DRAM request per contiguous run (a tile's runs issued together as one scatter-gather), one on-chip access for a resident tensor"
                 + ("; compressed planes packed back to back (offsets from the detector's zero counts, kept "
                    "on chip, not charged)" if self.compressed else ""))
        n.append("not modelled: SIGMA/MAERI distribution-network and bitmap-decode timing beyond "
                 "eta_SIGMA; router/detector latency; sparse-MAC energy above a dense MAC of the same "
                 "precision; per-row variation of zero fractions inside a channel; quantization error")
        n.append(f"vector unit runs nonlinear ops in fp16 on {width} stored tensors (A-28); sampler is the "
                 "trace's (A-29 concerns EDM workloads not bundled here)")

    def step_counts(self) -> dict[str, float]:
        return {**self.stat, "hetero.dpe_cycles": self.hetero.dpe_cycles,
                "hetero.spe_cycles": self.hetero.spe_cycles}

    def set_step_counts(self, counts: dict[str, float]) -> None:
        counts = dict(counts)
        self.hetero.dpe_cycles = counts.pop("hetero.dpe_cycles", self.hetero.dpe_cycles)
        self.hetero.spe_cycles = counts.pop("hetero.spe_cycles", self.hetero.spe_cycles)
        self.stat.update(counts)

    def report(self) -> dict:
        s = self.stat
        tot = s["dense_ch_macs"] + s["sparse_ch_macs"]
        return {**super().report(),
                "sqdm_dense_pool_macs": self.n_dpe,
                "sqdm_sparse_pool_macs": self.n_spe,
                "sqdm_dense_lanes_per_position": self.hetero.lanes_dpe,
                "sqdm_sparse_lanes_per_position": self.hetero.lanes_spe,
                "sqdm_dpe_busy_cycles": self.hetero.dpe_cycles,
                "sqdm_spe_busy_cycles": self.hetero.spe_cycles,
                "sqdm_sparse_channel_mac_frac": s["sparse_ch_macs"] / tot if tot else 0.0,
                "sqdm_sparse_nnz_macs": s["sparse_nnz_macs"],
                "sqdm_eligible_op_steps": s["eligible_op_steps"],
                "sqdm_missing_stats": s["missing_stats"],
                "sqdm_compressed_tensors": len(self.compress_for)}


register_variant("sqdm.dense4", "sqdm", "SQ-DM's 4-bit formats on a dense array (no sparse pool; the "
                 "whole budget dense)", sparsity=False)
register_variant("sqdm.static_labels", "sqdm", "SQ-DM with one label per channel for all steps (taken "
                 "at step 0)", static_labels=True)
register_variant("sqdm.fp16_dense", "sqdm", "FP16 dense reference (fp16 × fp16 MACs, 2-byte tensors) in "
                 "the same budget", precision="fp16", sparsity=False, mx_edge_blocks=0)
register_variant("sqdm.int8_dense", "sqdm", "neutral variant: int8 operands, no sparse pool, no MXINT8, "
                 "one int8 MAC per grid position (= dense)", precision="int8", sparsity=False,
                 mx_edge_blocks=0)
