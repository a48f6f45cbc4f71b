"""`sqdm`: SQ-DM (dataflows.md §5, assumptions A-22…A-29) and its ablations.

4-bit weights (INT4, one FP8 scale per group of `weight_scale_group`) and 4-bit activations
(UINT4 after ReLU, INT4 elsewhere, FP8 scales per `act_scale_group`); the first and last
`mx_edge_blocks` blocks (counted over blocks holding a conv) in MXINT8 (8-bit values, one 8-bit
shared exponent per `mx_block`). A time-step-aware sparsity detector counts zeros per channel of
each ReLU output; a channel whose zero fraction exceeds the threshold is labelled sparse (used at
the next step, A-27). A MAC op whose input is a ReLU output sends its dense channels to the dense
pool (DPE) and its sparse channels to the sparse pool (SPE, non-zeros only at SIGMA efficiency),
the two pools run in parallel and their partial sums merge. Activations are stored channel plane
by channel plane (channel-last), sparse planes compressed (bitmap + non-zeros, A-24); weights
kernel tap → output channel → input channel. Each tile issues one DRAM transaction per contiguous
run of that layout, so the memory model sees the layout. No tensor crosses steps.

Ablations: `sqdm.dense4` (4-bit, no sparsity, the whole budget dense), `sqdm.static_labels`
(labels of step 0 kept for all steps), `sqdm.fp16_dense` (the paper's FP16 dense baseline at the
same area).
"""

from __future__ import annotations

from typing import Iterator

import attrs
import numpy as np

from workloads import OpRecord, Trace

from ..addresses import AddressMap
from ..components.sqdm_units import (
    HeteroPe, HeteroWork, SparsityDetector, pixel_runs, plane_runs, weight_runs,
)
from ..components.vector_unit import VectorUnit, VectorWork
from ..config import COMMON, HardwareConfig, kib
from ..errors import ConfigError
from ..pipeline import Access, TileJob
from ..tiling import Precision, plan_tiles
from .base import Design, design

_ZSTAT = "sqdm.zero_frac_per_in_channel"
_v = attrs.validators


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
    """Sparse channels in DRAM: `compressed` = bitmap (1 bit per element) + non-zeros
    (assumption A-24), `dense` = plain 4-bit (assumption A-24b)."""
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
    """Route sparse channels to the sparse pool at all (False: 4-bit dense)."""
    precision: str = attrs.field(default="int4", validator=_v.in_(("int4", "fp16")))
    """`int4`: SQ-DM's formats; `fp16`: every tensor and MAC in fp16 (the paper's baseline)."""
    act_layout: str = attrs.field(default="channel_last", validator=_v.in_(("channel_last", "channel_first")))
    """Activation layout in DRAM: `channel_last` = channel planes, width fastest ([S-SQzh]);
    `channel_first` = pixel vectors, channels fastest (compression per channel impossible there:
    sparse channels are stored dense, A-24b)."""
    weight_layout: str = attrs.field(default="krc", validator=_v.in_(("krc", "kcr")))
    """Weight layout: `krc` = kernel tap → output channel → input channel ([S-SQzh]);
    `kcr` = output → input → tap (OIHW)."""
    acc_bytes: int = attrs.field(default=4, validator=_v.gt(0))
    """Bytes per partial-sum accumulator in the output buffer (int32 / fp32)."""


@attrs.frozen
class _OpInfo:
    cls: str          # "int4" | "mx" | "fp16"
    rate: float
    in_fmt: str
    w_fmt: str        # format of the second operand (weights or K/V)
    out_fmt: str
    w_bpe: float
    eligible: bool
    plan: object
    in_base: int
    w_base: int
    out_base: int


@design("sqdm")
class Sqdm(Design):
    """SQ-DM: 4-bit, per-step channel sparsity labels, dense + sparse PE pools."""

    Params = SqdmParams
    trace_activation = "relu"

    # ---- configuration -------------------------------------------------------------------
    def pools(self) -> tuple[int, int]:
        """(N_DPE, N_SPE) from the budget split (A-22) or explicit counts."""
        p, budget = self.params, self.hw.budget_units()
        unit = p.fp16_mac_units if p.precision == "fp16" else p.mac_units
        spe_frac = p.spe_budget_frac if p.sparsity else 0.0
        n_dpe = p.n_dpe if p.n_dpe is not None else int(budget * (1 - spe_frac) // unit)
        n_spe = p.n_spe if p.n_spe is not None else int(budget * spe_frac // (unit * p.spe_area_factor))
        if n_dpe < 1:
            raise ConfigError(f"designs.{self.name}: the compute budget ({budget} units) leaves no dense-pool MAC "
                              f"of {unit} units (spe_budget_frac = {spe_frac})")
        if p.sparsity and n_spe < 1:
            raise ConfigError(f"designs.{self.name}: sparsity is on but the sparse pool has no MAC "
                              f"(budget {budget} units, spe_budget_frac = {spe_frac}, area factor "
                              f"{p.spe_area_factor}); raise spe_budget_frac or set sparsity = false")
        used = n_dpe * unit + n_spe * unit * p.spe_area_factor
        if p.n_dpe is not None or p.n_spe is not None:
            if used > budget:
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
        n_dpe, n_spe = self.pools()
        self.n_dpe, self.n_spe = n_dpe, n_spe
        self.hetero = HeteroPe("pe_pools", top, n_dpe, n_spe, p.sigma_efficiency, p.merge_cycles)
        self.detector = SparsityDetector("sparsity_detector", top, p.sparsity_threshold,
                                         p.label_timing, p.static_labels)
        return {"pe": self.hetero, "vector": VectorUnit("vector_unit", top, self.hw.vector)}

    # ---- formats ---------------------------------------------------------------------------
    def val_bytes(self, fmt: str) -> float:
        return {"int4": 0.5, "mx": 1.0, "fp16": 2.0}[fmt]

    def scale_bpe(self, fmt: str) -> float:
        p = self.params
        if fmt == "int4":
            return p.scale_bytes / p.act_scale_group if p.act_scale_group else 0.0
        return 1.0 / p.mx_block if fmt == "mx" else 0.0

    def act_bpe(self, fmt: str) -> float:
        """Bytes per activation element stored dense, scales included."""
        return self.val_bytes(fmt) + self.scale_bpe(fmt)

    def sparse_bpe(self, fmt: str, zero_frac):
        """Bytes per element of a compressed sparse channel (A-24): bitmap + non-zeros + scales."""
        return 1 / 8 + (1 - zero_frac) * self.val_bytes(fmt) + self.scale_bpe(fmt)

    def weight_bpe(self, cls: str) -> float:
        p = self.params
        if cls == "int4":
            return 0.5 + p.scale_bytes / p.weight_scale_group
        return 1.0 + 1.0 / p.mx_block if cls == "mx" else 2.0

    @property
    def compressed(self) -> bool:
        p = self.params
        return p.sparsity and p.sparse_dram == "compressed" and p.act_layout == "channel_last"

    # ---- static per-op analysis --------------------------------------------------------------
    def _classes(self, ops: list[OpRecord]) -> list[str]:
        p = self.params
        if p.precision == "fp16":
            return ["fp16"] * len(ops)
        conv_blocks = sorted({op.block for op in ops if op.kind == "conv2d"})
        n = p.mx_edge_blocks
        edge = set(conv_blocks[:n]) | set(conv_blocks[-n:]) if n else set()
        return ["mx" if op.block in edge else "int4" for op in ops]

    def _analyse(self, trace: Trace) -> None:
        p, ops = self.params, trace.ops
        cls = self._classes(ops)
        consumers: dict[int, list[int]] = {i: [] for i in range(-1, len(ops))}
        for op in ops:
            for src in (op.preds or (-1,)):
                consumers[src].append(op.op_id)

        def fmt(t: int) -> str:
            if p.precision == "fp16":
                return "fp16"
            if t >= 0 and ops[t].kind == "concat":
                return "mx" if any(fmt(s) == "mx" for s in ops[t].preds) else "int4"
            mine = cls[t] if t >= 0 else "int4"
            return "mx" if mine == "mx" or any(cls[c] == "mx" for c in consumers[t]) else "int4"

        self.tensor_fmt = {t: fmt(t) for t in consumers}
        # ReLU outputs read only by one sparse-eligible MAC op may be stored compressed.
        self.compress_for: dict[int, int] = {}
        b = self.buffers
        self.addr = AddressMap(ops, 2.25, 2.0)
        self.info: dict[int, _OpInfo] = {}
        worst = 1 / 8 + 2.0 + 1.0
        for op in ops:
            if not op.is_mac:
                continue
            src = op.preds[0] if op.preds else -1
            has_w = op.kind in ("conv2d", "linear")
            eligible = (p.sparsity and has_w and op.input_from_relu and src >= 0
                        and ops[src].kind == "relu")
            in_fmt = self.tensor_fmt[src]
            w_fmt = cls[op.op_id] if has_w else self.tensor_fmt[op.preds[-1] if op.preds else -1]
            w_bpe = self.weight_bpe(w_fmt) if has_w else self.act_bpe(w_fmt)
            out_fmt = self.tensor_fmt[op.op_id]
            a_bpe = max(self.act_bpe(in_fmt), self.sparse_bpe(in_fmt, 0.0) if eligible else 0.0)
            prec = Precision(a_bpe, w_bpe, self.act_bpe(out_fmt), p.acc_bytes)
            plan = plan_tiles(op, prec, b["act"].tile_budget, b["weight"].tile_budget,
                              b["out"].tile_budget, 32)
            rate = p.mxint8_rate if cls[op.op_id] == "mx" else 1.0
            self.info[op.op_id] = _OpInfo(
                cls[op.op_id], rate, in_fmt, w_fmt, out_fmt, w_bpe, eligible, plan,
                self.addr.input_of(op, 0), self.addr.weight[op.op_id] if has_w else self.addr.input_of(op, 1),
                self.addr.output[op.op_id])
            if eligible and len(consumers[src]) == 1:
                self.compress_for[src] = op.op_id
        self.vec_worst = worst

    def weight_bytes_total(self, trace: Trace) -> float:
        cls = self._classes(trace.ops)
        return sum(op.w_elems * self.weight_bpe(cls[op.op_id]) for op in trace.ops
                   if op.kind in ("conv2d", "linear"))

    def _resident(self, trace: Trace) -> bool:
        policy = self.hw.weight_residency
        need = self.weight_bytes_total(trace)
        fits = need <= self.hw.buffers.global_buffer.capacity_bytes
        if policy == "always" and not fits:
            raise ConfigError(f"weight_residency = 'always' but the weights ({kib(need)}) exceed the global buffer")
        return policy == "always" or (policy == "auto" and fits)

    def uses_global_source(self, trace: Trace) -> bool:
        return self._resident(trace) and trace.n_steps > 1

    # ---- per (step, op) -----------------------------------------------------------------------
    def _zero_frac(self, stats, op: OpRecord):
        arr = stats.arrays.get(_ZSTAT, {}).get(op.op_id)
        return None if arr is None else np.asarray(arr, dtype=np.float64)

    def jobs(self, trace: Trace, progress=None) -> Iterator[TileJob]:
        self._analyse(trace)
        self.stat = {"dense_ch_macs": 0.0, "sparse_ch_macs": 0.0, "sparse_nnz_macs": 0.0,
                     "eligible_op_steps": 0, "missing_stats": 0}
        resident = self._resident(trace)
        self._notes(trace, resident)
        for step in range(trace.n_steps):
            stats = trace.step(step)
            w_src = "global" if resident and step > 0 else "dram"
            for op in trace.ops:
                if op.is_mac:
                    yield from self._mac_jobs(step, op, stats, w_src)
                elif op.kind != "concat":
                    yield from self._vector_jobs(step, op, trace.ops, stats)
            self.detector.end_step()
            if progress is not None:
                progress(step)

    def _labels(self, op: OpRecord, z, consume: bool) -> np.ndarray:
        """Sparse labels of `op`'s input channels in force at this step (and record the zero
        counts when `consume`, i.e. when the detector sees the ReLU output)."""
        det = self.detector
        if z is None:
            return np.zeros(op.c, dtype=bool)
        if det.static:
            lab = det.current.get(op.op_id)
            if lab is None:
                lab = z > det.threshold
                if consume:
                    det.observe(op.op_id, z, op.in_elems)
            elif consume:
                det.elements_counted += op.in_elems
            return lab
        if det.timing == "same_step":
            lab = z > det.threshold
            if consume:
                det.observe(op.op_id, z, op.in_elems)
            return lab
        lab = det.labels(op.op_id, op.c)
        if consume:
            det.observe(op.op_id, z, op.in_elems)
        return lab

    def _channel_bytes(self, fmt: str, lab: np.ndarray, z) -> np.ndarray:
        """Bytes per element of each channel as stored in DRAM."""
        per = np.full(len(lab), self.act_bpe(fmt))
        if self.compressed and lab.any():
            per[lab] = self.sparse_bpe(fmt, z[lab])
        return per

    def _mac_jobs(self, step: int, op: OpRecord, stats, w_src: str) -> Iterator[TileJob]:
        p, info = self.params, self.info[op.op_id]
        plan, g = info.plan, info.plan.geom
        ev = self.events
        mac_ev = {"int4": "mac.int4x4", "mx": "mac.int8", "fp16": "mac.fp16"}[info.cls]
        rs = g.red_per_ch
        C = g.red_ch
        layouts = op.kind in ("conv2d", "linear")
        z = self._zero_frac(stats, op) if info.eligible else None
        if info.eligible and z is None:
            self.stat["missing_stats"] += 1
        lab = self._labels(op, z, consume=True) if info.eligible else np.zeros(C, dtype=bool)
        if z is None:
            z = np.zeros(C)
        if info.eligible:
            self.stat["eligible_op_steps"] += 1
        dense_pre = np.concatenate(([0], np.cumsum(~lab)))
        nz_pre = np.concatenate(([0.0], np.cumsum(np.where(lab, 1 - z, 0.0))))
        if layouts:
            elem = self._channel_bytes(info.in_fmt, lab, z)
            row_b = elem * g.in_row_px
            off = np.concatenate(([0.0], np.cumsum(row_b * g.in_rows)))
            ch_pre = np.concatenate(([0.0], np.cumsum(elem)))
            img_in = off[-1]
            o_bpe = self.act_bpe(info.out_fmt)
            o_row = np.full(g.n_out, o_bpe * g.row_px)
            o_off = np.arange(g.n_out + 1) * o_bpe * g.row_px * g.out_rows
            o_ch = np.arange(g.n_out + 1) * o_bpe
            img_out = o_off[-1]
        channel_last = p.act_layout == "channel_last"
        cur_in = cur_w = 0
        set_in = g.images * g.in_rows * g.in_row_px * C
        set_w = g.n_out * C * rs
        for t in plan.tiles:
            reads, loads, frees = [], [], []
            if t.in_load:
                if layouts:
                    lo, hi = g.in_span(t.r0, t.r1)
                    base = info.in_base + t.image * img_in
                    runs = (plane_runs(base, off, row_b, g.in_rows, lo, hi, t.c0, t.c1) if channel_last
                            else pixel_runs(base, ch_pre, g.in_row_px, lo, hi, t.c0, t.c1))
                    cur_in = 0
                    for a, n in runs:
                        reads.append(Access("dram", "act", a, n))
                        cur_in += n
                else:
                    ab = self.act_bpe(info.in_fmt)
                    a = info.in_base + int((t.set * set_in + (t.image * g.in_rows + g.in_span(t.r0, t.r1)[0]) * g.in_row_px * C + t.c0) * ab)
                    cur_in = t.in_load
                    reads.append(Access("dram", "act", a, cur_in))
                loads.append(("act", cur_in))
            if t.w_load:
                if layouts and w_src == "dram":
                    runs = weight_runs(info.w_base, p.weight_layout, g.n_out, C, rs, info.w_bpe,
                                       t.n0, t.n1, t.c0, t.c1)
                    cur_w = 0
                    for a, n in runs:
                        reads.append(Access("dram", "weight", a, n))
                        cur_w += n
                else:
                    a = info.w_base + int((t.set * set_w + t.n0 * C * rs + t.c0 * (t.n1 - t.n0) * rs) * info.w_bpe)
                    cur_w = t.w_load
                    reads.append(Access(w_src if layouts else "dram", "weight" if layouts else "act", a, cur_w))
                loads.append(("weight", cur_w))
            if t.in_free:
                frees.append(("act", cur_in))
            if t.w_free:
                frees.append(("weight", cur_w))
            writes = []
            if t.out_write:
                if layouts:
                    base = info.out_base + t.image * img_out
                    runs = (plane_runs(base, o_off, o_row, g.out_rows, t.r0, t.r1, t.n0, t.n1) if channel_last
                            else pixel_runs(base, o_ch, g.row_px, t.r0, t.r1, t.n0, t.n1))
                    writes = [Access("dram", "out", a, n) for a, n in runs]
                else:
                    a = info.out_base + int(((t.set * g.images + t.image) * g.out_rows + t.r0) * g.row_px * g.n_out * self.act_bpe(info.out_fmt)) + t.n0
                    writes = [Access("dram", "out", a, t.out_write)]
            outputs = t.m * g.row_px * (t.n1 - t.n0)
            k_dense = int(dense_pre[t.c1] - dense_pre[t.c0]) * rs
            nsp = (t.c1 - t.c0) * rs - k_dense
            nnz = outputs * rs * float(nz_pre[t.c1] - nz_pre[t.c0])
            ev[mac_ev] += outputs * k_dense + nnz
            self.stat["dense_ch_macs"] += outputs * k_dense
            self.stat["sparse_ch_macs"] += outputs * nsp
            self.stat["sparse_nnz_macs"] += nnz
            work = HeteroWork(outputs, k_dense, nnz, info.rate)
            yield TileJob(step, op.op_id, {"main": ("pe", work)}, outputs * (t.c1 - t.c0) * rs,
                          loads, reads, frees, t.acc_alloc, writes, t.acc_free)

    def tensor_bytes(self, t: int, ops: list[OpRecord], stats) -> float:
        """DRAM bytes of tensor `t` (an op's output) at this step, compression included."""
        op = ops[t]
        fmt = self.tensor_fmt[t]
        cons = self.compress_for.get(t)
        if cons is None or not self.compressed:
            return op.out_elems * self.act_bpe(fmt)
        cop = ops[cons]
        z = self._zero_frac(stats, cop)
        lab = self._labels(cop, z, consume=False)
        if z is None:
            z = np.zeros(cop.c)
        per_ch = self._channel_bytes(fmt, lab, z)
        return float(per_ch.sum()) * (op.out_elems / cop.c)

    def _vector_jobs(self, step: int, op: OpRecord, ops: list[OpRecord], stats) -> Iterator[TileJob]:
        srcs = op.preds or (-1,)
        in_b = [self.tensor_bytes(s, ops, stats) if s >= 0 else ops[0].in_elems * self.act_bpe(self.tensor_fmt[-1])
                for s in srcs]
        in_bases = [self.addr.input_of(op, i) for i in range(len(srcs))]
        out_b = self.tensor_bytes(op.op_id, ops, stats)
        in_per_out = op.in_elems / op.out_elems
        worst_in = max(self.act_bpe(self.tensor_fmt[s]) for s in srcs) + 1 / 8
        worst_out = self.act_bpe(self.tensor_fmt[op.op_id]) + 1 / 8
        chunk = int(min(self.buffers["act"].tile_budget / (in_per_out * worst_in),
                        self.buffers["out"].tile_budget / worst_out))
        if chunk < 1:
            raise ConfigError(f"op {op.op_id} ({op.name}): no element fits the buffers")
        self.events["vector.elements"] += op.out_elems
        for e0 in range(0, op.out_elems, chunk):
            n = min(chunk, op.out_elems - e0)
            f0, f1 = e0 / op.out_elems, (e0 + n) / op.out_elems
            reads = []
            for base, b in zip(in_bases, in_b):
                nb = int(round(b * f1)) - int(round(b * f0))
                if nb:
                    reads.append(Access("dram", "act", base + int(round(b * f0)), nb))
            ob = int(round(out_b * f1)) - int(round(out_b * f0))
            writes = [Access("dram", "out", self.addr.output[op.op_id] + int(round(out_b * f0)), ob)] if ob else []
            total_in = sum(r.nbytes for r in reads)
            yield TileJob(step, op.op_id, {"main": ("vector", VectorWork(op.kind, n))}, 0,
                          [("act", total_in)], reads, [("act", total_in)], ob, writes, ob)

    # ---- reporting -------------------------------------------------------------------------
    def _notes(self, trace: Trace, resident: bool) -> None:
        p = self.params
        n = self.notes
        unit = p.fp16_mac_units if p.precision == "fp16" else p.mac_units
        used = self.n_dpe * unit + self.n_spe * unit * p.spe_area_factor
        n.append(f"pools: {self.n_dpe} dense + {self.n_spe} sparse {'fp16' if p.precision == 'fp16' else '4-bit'} "
                 f"MACs ({used:.0f} of {self.hw.budget_units()} budget units; A-22 split, A-35 proxy)")
        if p.precision != "fp16":
            mx = sorted({op.name for op, c in zip(trace.ops, self._classes(trace.ops)) if c == "mx" and op.is_mac})
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
        n.append(f"layouts: activations {p.act_layout}, weights {p.weight_layout}; one DRAM transaction "
                 "per contiguous run" + ("; compressed planes packed back to back (offsets from the "
                 "detector's zero counts, kept on chip, not charged)" if self.compressed else ""))
        n.append("not modelled: SIGMA/MAERI distribution-network and bitmap-decode timing beyond "
                 "eta_SIGMA; router/detector latency; sparse-MAC energy above a dense 4-bit MAC; per-row "
                 "variation of zero fractions inside a channel; quantization error")
        n.append(f"vector unit runs nonlinear ops in fp16 on {'fp16' if p.precision == 'fp16' else '4-bit'} "
                 "stored tensors (A-28); sampler is the trace's (A-29 concerns EDM workloads not bundled here)")
        if resident:
            n.append(f"weights resident in the global buffer after step 0 ({kib(self.weight_bytes_total(trace))})")

    def extra_summary(self):
        s = getattr(self, "stat", {})
        tot = s.get("dense_ch_macs", 0) + s.get("sparse_ch_macs", 0)
        return {
            "sqdm_dense_pool_macs": self.n_dpe,
            "sqdm_sparse_pool_macs": self.n_spe,
            "sqdm_dpe_busy_cycles": self.hetero.dpe_cycles,
            "sqdm_spe_busy_cycles": self.hetero.spe_cycles,
            "sqdm_sparse_channel_mac_frac": s.get("sparse_ch_macs", 0) / tot if tot else 0.0,
            "sqdm_sparse_nnz_macs": s.get("sparse_nnz_macs", 0),
            "sqdm_label_flips": self.detector.flips,
            "sqdm_detector_elements": self.detector.elements_counted,
        }


@attrs.frozen
class Dense4Params(SqdmParams):
    sparsity: bool = False
    """Ablation: 4-bit formats, no sparsity; the whole budget is dense pool."""


@design("sqdm.dense4")
class SqdmDense4(Sqdm):
    """SQ-DM's formats on a dense 4-bit array (no detector, no sparse pool)."""

    Params = Dense4Params


@attrs.frozen
class StaticParams(SqdmParams):
    static_labels: bool = True
    """Ablation: labels from step 0 kept for all steps."""


@design("sqdm.static_labels")
class SqdmStatic(Sqdm):
    """SQ-DM with one label per channel for all steps (taken at step 0)."""

    Params = StaticParams


@attrs.frozen
class Fp16Params(SqdmParams):
    precision: str = "fp16"
    """Ablation: the paper's FP16 dense baseline at the same area."""
    sparsity: bool = False
    mx_edge_blocks: int = 0


@design("sqdm.fp16_dense")
class SqdmFp16(Sqdm):
    """FP16 dense reference (fp16 × fp16 MACs, 2-byte tensors) in the same budget."""

    Params = Fp16Params
