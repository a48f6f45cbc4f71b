"""`ditto` (HPCA 2025; dataflows.md §6): int8 temporal differences, zero-skip, 4-bit lanes, Defo.

Per (step, op) a MAC op runs in ACT mode (original int8 activations, 2 nibble slots per MAC: on
the common grid exactly the dense array) or DIFF mode (`out_t = out_{t-1} + (Q(act_t) −
Q(act_{t-1})) × W`: the Encoding Unit forms and classifies the differences, zeros are skipped,
4-bit ones take one nibble slot, 8-bit two; the VPU restores in a "post" stage). The operands
between ops follow the shared residency rule (builder sources), so ACT mode moves exactly what
dense moves; the paper's cross-step state (previous input and output, the bypassed deltas) lives
in DRAM regions after the address map (parity rule 2: that state is the paper's). Attention
matmuls use the two-sub-op delta form (`Q_t dK + dQ K_{t-1}`), cross-attention K/V are weights.
Defo: a static pass skips restore between consecutive linear ops (A-32) and a runtime pass picks
ACT or DIFF per layer from the cycles this simulation measured for the layer at the first (ACT)
and second (DIFF) step. `ditto.act_only` runs every layer in ACT at every step: the neutral
variant (parity rule 4), equal to dense in cycles and DRAM bytes.

Trace step 0 is the paper's "step 1" (no temporal statistics), trace step 1 its "step 2".
"""

from __future__ import annotations

import math
from typing import Any, Iterator

import attrs

from tlm import Module
from workloads import OpRecord, Trace

from ..components.ditto_units import EncodeWork, EncodingUnit, NibbleGemm, NibblePeArray
from ..components.vector_unit import VectorUnit, VectorWork
from ..config import (
    BufferConfig, BuffersConfig, HardwareConfig, MemoryConfig, PeArrayConfig, VectorUnitConfig, kib,
)
from ..errors import ConfigError
from ..jobs import nbytes, offsets, tile_elements
from ..pipeline import Access, Barrier, TileJob
from ..tiling import Precision, TilePlan
from .base import BaseParams, Design, design, register_variant
from .dense import Dense

_ok = attrs.validators.gt(0)


@attrs.frozen
class DittoParams(BaseParams):
    multipliers_per_pe: int = attrs.field(default=4, validator=_ok)
    """4-bit × 8-bit multipliers per PE (Ditto's A4W8 PE, Fig. 12)."""
    act_bits: int = attrs.field(default=4, validator=_ok)
    """Activation (nibble) width of one multiplier; with `weight_bits` it sets a PE's area
    (act_bits · weight_bits · multipliers bit-product units, assumption A-35)."""
    weight_bits: int = attrs.field(default=8, validator=_ok)
    weights_resident: bool = False
    """Assumption A-30: True keeps all weights in the global buffer after the first step (an error
    if they do not fit); False (default) follows the common rule `hw.weight_residency`."""
    b_acc_bits: int = attrs.field(default=16, validator=attrs.validators.in_((8, 16, 32)))
    """Assumption A-31: bits per element of the stored previous/current outputs (out_{t-1}, out_t)."""
    defo: bool = True
    """Defo on: static bypass of restore between consecutive linear ops (A-32) + runtime ACT/DIFF
    choice. Off (`ditto.no_defo`): DIFF for every MAC op from the second step, restore after each."""
    act_only: bool = False
    """Every MAC op in ACT mode at every step (`ditto.act_only`, the neutral variant): no
    differences, no cross-step state, no Defo barrier; equals dense in cycles and DRAM bytes."""
    static_bypass: bool = True
    """Assumption A-32: with Defo, a DIFF linear op whose consumers are all conv/linear ops in DIFF
    mode skips restore and W_out and passes its delta on (through DRAM); its R_prev_out /
    W_keep_out move to the segment's last linear op."""
    defo_plus: bool = False
    """Defo+: ACT-mode layers use spatial differences (raw-value stand-in, see the notes)."""
    act_mode_encoding: str = attrs.field(default="none", validator=attrs.validators.in_(("none", "classify")))
    """Assumption A-33 (`none`): ACT mode does no zero/nibble skipping, 2 slots per MAC.
    A-33b (`classify`): raw int8 values are classified too (slots from `raw.*` fractions)."""
    eu_lane_groups: int = attrs.field(default=32, validator=_ok)
    """Assumption A-34: Encoding Unit lane groups (one per row of the common grid)."""
    eu_elements_per_group_cycle: int = attrs.field(default=4, validator=_ok)
    """Assumption A-34: elements one lane group classifies per cycle (paper: 4)."""
    eu_latency_cycles: int = attrs.field(default=2, validator=attrs.validators.ge(0))
    """Assumption A-34: Encoding Unit pipeline latency per tile (paper: ≈ 2 cycles)."""
    beyond8_slots: int = attrs.field(default=3, validator=_ok)
    """Nibble slots of a difference outside [-128, 127] (9 bits: a third, sign-extended nibble).
    Project choice: the paper does not say how such differences are handled."""
    restore_passes: float = 1.0
    """VPU passes per output element to restore a DIFF output (the add of out_{t-1}; the
    requantization is folded into the output write as in dense, see `requant_passes`)."""
    requant_passes: float = 0.0
    """VPU passes per output element to requantize an ACT output or a bypassed delta. 0: folded
    into the output write at no VPU cost, as dense does (parity); the old model charged 1."""


def _slots(stats: dict, prefix: str, op: OpRecord, step: int, beyond8: int) -> tuple[float, float]:
    """(nibble slots, non-zero values) per reduction element of DIFF mode."""
    try:
        f4 = stats[f"{prefix}.int4_frac"][op.op_id]
        f8 = stats[f"{prefix}.int8_frac"][op.op_id]
        f9 = stats[f"{prefix}.beyond8_frac"][op.op_id]
    except KeyError:
        raise ConfigError(
            f"ditto: step {step} op {op.op_id} ({op.name}) has no {prefix}.* statistics "
            f"(DIFF mode needs the trace's temporal delta fractions)"
        ) from None
    return f4 + 2.0 * f8 + beyond8 * f9, f4 + f8 + f9


@attrs.define
class _OpInfo:
    op: OpRecord
    attn: bool
    cross: bool
    second_w: bool
    """Self-attention: the second operand is differenced too (2 bytes/element on chip in DIFF)."""
    consumers: list[int]
    consumers_linear: bool
    keep_in: int
    keep_w: int
    keep_out: int
    delta: int


@design("ditto")
class Ditto(Design):
    """Ditto with Defo."""

    Params = DittoParams

    def __init__(self, hw: HardwareConfig, params: dict[str, Any] | None = None, **kw: Any):
        super().__init__(hw, params, **kw)
        p = self.params
        self.pe_units = p.multipliers_per_pe * p.act_bits * p.weight_bits
        budget = hw.budget_units()
        self.n_pe = budget // self.pe_units
        if hw.pe_array.model != "broadcast":
            raise ConfigError(f"{self.name}: pe_array.model = {hw.pe_array.model!r} is not expressible; "
                              f"Ditto's nibble PEs use the broadcast organisation")
        if self.n_pe < 1:
            raise ConfigError(f"{self.name}: one PE ({self.pe_units} bit-product units) does not fit the "
                              f"compute budget ({budget} units)")
        self.unused_units = budget - self.n_pe * self.pe_units
        self.decisions: dict[int, dict[str, Any]] = {}
        self.bypassed: set[int] = set()

    # -- configuration -------------------------------------------------------------------
    @classmethod
    def paper_hw(cls) -> HardwareConfig:
        mib = 1024
        return HardwareConfig(
            name="ditto-paper", freq_mhz=1000.0, node_nm=45,
            compute_budget_units=39398 * 4 * 4 * 8,
            buffers=BuffersConfig(BufferConfig(16 * mib), BufferConfig(64 * mib), BufferConfig(32 * mib),
                                  BufferConfig(80 * mib)),
            vector=VectorUnitConfig(lanes=512),
            memory=MemoryConfig("hbm2-2000-8ch"),
        )

    def weights_resident(self, trace: Trace) -> bool:
        """The common rule, unless A-30 (`weights_resident`) forces residency (error if they don't fit)."""
        if self.params.weights_resident:
            need = self.weight_bytes_total(trace.ops)
            cap = self.hw.buffers.global_buffer.capacity_bytes
            if need > cap:
                raise ConfigError(f"{self.name}: weights_resident (A-30) but the weights ({kib(need)}) exceed "
                                  f"the global buffer ({kib(cap)})")
            return True
        return super().weights_resident(trace)

    # -- structure -----------------------------------------------------------------------
    def make_units(self, top: Module) -> dict[str, Module]:
        p = self.params
        return {"pe": NibblePeArray("pe_array", top, self.grid, self.n_pe, p.multipliers_per_pe),
                "encoder": EncodingUnit("encoding_unit", top, p.eu_lane_groups,
                                        p.eu_elements_per_group_cycle, p.eu_latency_cycles),
                "vector": VectorUnit("vector_unit", top, self.hw.vector)}

    # -- run preparation -------------------------------------------------------------------
    def prepare(self, trace: Trace) -> None:
        super().prepare(trace)
        p = self.params
        self.last_step = trace.n_steps - 1
        consumers: dict[int, list[int]] = {op.op_id: [] for op in trace.ops}
        for op in trace.ops:
            for q in op.preds:
                consumers[q].append(op.op_id)
        # DRAM regions of the cross-step state and the bypassed deltas, after the address map
        alloc = self.addr.alloc
        start = self.addr.size
        b_out = p.b_acc_bits / 8
        self.info: dict[int, _OpInfo] = {}
        for op in trace.ops:
            if not op.is_mac:
                continue
            attn = op.kind in ("matmul_qk", "matmul_pv")
            cross = attn and bool(op.cross_attn_kv)
            cons = consumers[op.op_id]
            self.info[op.op_id] = _OpInfo(
                op=op, attn=attn, cross=cross, second_w=attn and not cross, consumers=cons,
                consumers_linear=bool(cons) and all(trace.ops[c].kind in ("conv2d", "linear") for c in cons),
                keep_in=alloc(op.in_elems * self.act_bpe(self._operand(op, 0))),
                keep_w=alloc(op.w_elems * self.act_bpe(self._operand(op, 1))) if attn else -1,
                keep_out=alloc(op.out_elems * b_out),
                delta=alloc(op.out_elems * self.act_bpe(op.op_id)))
        self.state_bytes = self.addr.size - start
        self._diff_plans: dict[tuple[int, bool], TilePlan] = {}
        self._notes()

    def _diff_plan(self, op: OpRecord, from_delta: bool) -> TilePlan:
        """DIFF tiles: current + previous input (and self-attention second operand) on chip, the
        accumulators plus the staged out_{t-1} tile in the output buffer. A consumer of a bypassed
        delta holds only the delta (1× input)."""
        key = (op.op_id, from_delta)
        plan = self._diff_plans.get(key)
        if plan is None:
            p, f, info = self.params, self.formats(op), self.info[op.op_id]
            prec = Precision(f.act * (1 if from_delta else 2), f.weight * (2 if info.second_w else 1), f.out,
                             int(math.ceil(p.acc_bytes + p.b_acc_bits / 8)))
            plan = self._diff_plans[key] = self.plan(op, prec)
        return plan

    # -- the step loop hooks ---------------------------------------------------------------
    def _mode(self, step: int, op_id: int) -> str:
        p = self.params
        if p.act_only or step == 0:
            return "act"
        if p.defo and step >= 2:
            return self.decisions[op_id]["mode"]
        return "diff"

    def begin_step(self, trace: Trace, step: int) -> Iterator:
        p = self.params
        if p.defo and not p.act_only and step == 2:
            yield Barrier()
            self._decide(trace)
        self.stats = trace.step(step).scalars
        modes = self.modes = {op_id: self._mode(step, op_id) for op_id in self.info}
        bypass: set[int] = set()
        if p.defo and p.static_bypass and step >= 1:
            for op_id, info in self.info.items():
                if modes[op_id] == "diff" and info.consumers_linear and all(
                        modes[c] == "diff" for c in info.consumers):
                    bypass.add(op_id)
            self.bypassed |= bypass
        self.bypass = bypass
        # keep this step's input/output for the next step iff the next step may run DIFF
        self.keep = {op_id: step < self.last_step and (modes[op_id] == "diff" or (step == 0 and not p.act_only))
                     for op_id in self.info}

    def _decide(self, trace: Trace) -> None:
        """Defo runtime: per layer, DIFF from the third step iff its measured ACT window (step 0)
        was longer than its DIFF window (step 1). Windows are the pipeline's per-op windows (first
        main-stage work of the op to that of the next op), as in Result.per_op. One 16-bit compare
        per layer is charged as an `add.int32`; the Defo table's 33-bit register writes are not
        priced (a 512-entry register file, 0.01 % of the area; see the notes)."""
        n_ops = len(trace.ops)
        marks = self.pipeline.marks
        end_of_step1 = self.pipeline.barrier_ps[-1]
        window = {}
        for idx, (t, lab) in enumerate(marks):
            if lab >= 2 * n_ops:
                break
            nxt = marks[idx + 1][0] if idx + 1 < len(marks) and marks[idx + 1][1] < 2 * n_ops else end_of_step1
            window[lab] = self.clock.ps_to_cycles(nxt - (t if idx else 0))  # as Result: run starts at 0
        for op_id, info in self.info.items():
            a = window.get(op_id)
            d = window.get(n_ops + op_id)
            if a is None or d is None:
                raise RuntimeError(f"ditto: no measured window for op {op_id} at step 0 or 1")
            self.decisions[op_id] = {"name": info.op.name, "op_id": op_id, "act_cycles": a,
                                     "diff_cycles": d, "mode": "diff" if a > d else "act"}
        self.events["add.int32"] = self.events.get("add.int32", 0.0) + len(self.info)

    def mac_jobs(self, step: int, op: OpRecord) -> Iterator[TileJob]:
        p = self.params
        info = self.info[op.op_id]
        diff = self.modes[op.op_id] == "diff"
        bypassed = op.op_id in self.bypass
        from_delta = diff and bool(op.preds) and op.preds[0] in self.bypass
        keep = self.keep[op.op_id]
        spatial = p.defo_plus and not diff
        stats = self.stats
        # nibble slots per MAC and whether the Encoding Unit classifies the inputs
        if diff:
            slots, nonzero = _slots(stats, "delta", op, step, p.beyond8_slots)
            if info.second_w:
                s2, nz2 = _slots(stats, "kv_delta", op, step, p.beyond8_slots)
                slots, nonzero = slots + s2, nonzero + nz2
            encode = True
        elif spatial or p.act_mode_encoding == "classify":
            try:
                zf, i4 = stats["raw.zero_frac"][op.op_id], stats["raw.int4_frac"][op.op_id]
            except KeyError:
                raise ConfigError(f"ditto: op {op.op_id} ({op.name}) has no raw.* statistics at step {step}") from None
            slots, nonzero = (i4 - zf) + 2.0 * (1.0 - i4), 1.0 - zf
            encode = True
        else:
            slots, nonzero, encode = 2.0, 1.0, False
        plan = self._diff_plan(op, from_delta) if diff else self.plans[op.op_id]
        g, fmt = plan.geom, self.formats(op)
        b_out = p.b_acc_bits / 8
        passes = p.restore_passes if (diff and not bypassed) or spatial else p.requant_passes
        w_kind = "weight" if diff and info.cross else None
        src_delta = self.info[op.preds[0]].delta if from_delta else -1
        for t in plan.tiles:
            off = offsets(g, t)
            e_in, e_w, e_out = tile_elements(g, t)
            reads: list[Access] = []
            writes: list[Access] = []
            enc = 0
            if t.in_load:
                if from_delta:
                    reads.append(Access("dram", "delta", src_delta + nbytes(off.input, fmt.act), nbytes(e_in, fmt.act)))
                else:
                    if diff:
                        reads.append(Access("dram", "prev_act", info.keep_in + nbytes(off.input, fmt.act),
                                            nbytes(e_in, fmt.act)))
                    if keep and t.n0 == 0:
                        writes.append(Access("dram", "keep_act", info.keep_in + nbytes(off.input, fmt.act),
                                             nbytes(e_in, fmt.act)))
                if encode:
                    enc += e_in
            if t.w_load and info.second_w:
                if diff:
                    reads.append(Access("dram", "prev_act", info.keep_w + nbytes(off.weight, fmt.weight),
                                        nbytes(e_w, fmt.weight)))
                    enc += e_w
                if keep and t.image == 0 and t.r0 == 0:
                    writes.append(Access("dram", "keep_act", info.keep_w + nbytes(off.weight, fmt.weight),
                                         nbytes(e_w, fmt.weight)))
            if diff and not bypassed and t.acc_alloc:
                reads.append(Access("dram", "prev_out", info.keep_out + nbytes(off.output, b_out),
                                    nbytes(e_out, b_out)))
            k = (t.c1 - t.c0) * g.red_per_ch
            gemm = NibbleGemm(t.m * g.row_px, t.n1 - t.n0, math.ceil(k * slots - 1e-9),
                              math.ceil(k * nonzero - 1e-9))
            work: dict[str, Any] = {"main": ("pe", gemm)}
            if enc:
                work["pre"] = ("encoder", EncodeWork(enc))
            if t.out_write:
                if bypassed:
                    writes.append(Access("dram", "delta", info.delta + nbytes(off.output, fmt.out),
                                         nbytes(e_out, fmt.out)))
                elif keep:
                    writes.append(Access("dram", "keep_out", info.keep_out + nbytes(off.output, b_out),
                                         nbytes(e_out, b_out)))
                vec = int(round(e_out * passes))
                if vec:
                    work["post"] = ("vector", VectorWork("ditto_restore", vec))
            yield self.builder.mac_job(step, op, g, t, work, gemm.products, fmt, input=not from_delta,
                                       output=not bypassed, w_kind=w_kind, extra_reads=reads,
                                       extra_writes=writes)

    # -- results -----------------------------------------------------------------------------
    def report(self) -> dict[str, Any]:
        out = super().report()
        out.update({"ditto_pe_count": self.n_pe, "ditto_unused_budget_units": self.unused_units,
                    "ditto_lanes_per_position": self.pe.lanes,
                    "ditto_state_region_bytes": self.state_bytes,
                    "ditto_bypassed_ops": sorted(self.bypassed)})
        if self.decisions:
            out["defo_decisions"] = {d["name"]: d for d in self.decisions.values()}
            out["defo_act_layers"] = sum(d["mode"] == "act" for d in self.decisions.values())
            out["defo_diff_layers"] = sum(d["mode"] == "diff" for d in self.decisions.values())
        return out

    def _notes(self) -> None:
        p = self.params
        n = self.notes
        if p.weights_resident:
            n.append("ditto: weights resident forced by weights_resident (A-30)")
        n.append(f"ditto: {self.n_pe} PEs x {p.multipliers_per_pe} A{p.act_bits}W{p.weight_bits} multipliers "
                 f"on the common {self.grid.rows}x{self.grid.cols} grid, {self.pe.lanes:g} nibble slots per "
                 f"position per cycle (A-37; {self.unused_units} bit-product units of the budget unused); "
                 f"'macs' counts 4x8-bit nibble products")
        if p.act_only:
            n.append("ditto.act_only: every MAC op in ACT mode at every step (2 nibble slots per MAC, no "
                     "differences, no cross-step state, no Defo): the neutral variant, = dense")
            return
        n.append(f"ditto: trace step 0 = ACT (paper's step 1), step 1 = DIFF; cross-step state (prev/keep "
                 f"act and out, bypassed deltas) in DRAM; b_acc = {p.b_acc_bits} bits (A-31); ACT-mode "
                 f"encoding = {p.act_mode_encoding} (A-33/A-33b); Encoding Unit {p.eu_lane_groups}x"
                 f"{p.eu_elements_per_group_cycle} elements/cycle + {p.eu_latency_cycles} cycles (A-34); "
                 f"VPU restore {p.restore_passes:g} pass(es)/output, requantization {p.requant_passes:g} "
                 f"(folded into the output write, as dense)")
        if p.defo:
            n.append("ditto: Defo runtime choice from this run's measured per-op windows at steps 0 (ACT) and 1 (DIFF); "
                     "the loader waits for steps 0-1 to drain before step 2 (a barrier, its drain time is counted); "
                     "one add.int32 per layer for the compare, Defo table register writes not priced")
            if p.static_bypass:
                n.append("ditto: Defo static pass (A-32) bypasses restore only for MAC ops whose consumers are all "
                         "conv/linear ops in DIFF; residual adds and concats end a segment (delta pass-through not modelled)")
        else:
            n.append("ditto: Defo off: DIFF for every MAC op from step 1, restore after each op")
        if p.defo_plus:
            n.append("ditto: Defo+: the trace has no spatial-difference statistics; ACT layers use the raw-value "
                     "zero/4-bit classification (raw.*) as a stand-in for spatial differences, with a VPU restore; "
                     "spatial differences themselves are not modelled")
        n.append("ditto: not modelled: Encoding Unit queue imbalance across lanes, VPU contention between a tile's "
                 "restore and the next nonlinear op, fusion of nonlinear ops into the restore (they run as separate "
                 "vector jobs, as in dense); out_(t-1) tiles are staged in the tile's output space (acc_bytes + b_acc/8)")


register_variant("ditto.no_defo", "ditto",
                 "Ditto without Defo: DIFF for every MAC op from the second step, restore after each op",
                 defo=False)
register_variant("ditto.defo_plus", "ditto",
                 "Ditto with Defo+: layers on original activations use spatial differences", defo_plus=True)
register_variant("ditto.act_only", "ditto",
                 "Ditto with every layer in ACT mode at every step (neutral variant: = dense)", act_only=True)


@design("ditto.itc")
class DittoItc(Dense):
    """Ditto's ITC baseline: dense int8 (A8W8) PEs at iso-area; in `common` the dense 32×32 array."""

    @classmethod
    def paper_hw(cls) -> HardwareConfig:
        d = Ditto.paper_hw()
        return d.evolve(name="ditto-itc-paper", compute_budget_units=None,
                        pe_array=PeArrayConfig(rows=192, cols=144, lanes=1))
