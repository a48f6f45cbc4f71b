"""`ditto` (HPCA 2025; dataflows.md §6): int8 temporal differences, zero-skip, 4-bit lanes, Defo.

Per (step, op) a MAC op runs in ACT mode (original int8 activations, 2 nibble slots per MAC) or
DIFF mode (`out_t = out_{t-1} + (Q(act_t) − Q(act_{t-1})) × W`: the Encoding Unit forms and
classifies the differences, zeros are skipped, 4-bit ones take one nibble slot, 8-bit two; the
VPU restores and requantizes in a "post" stage). DIFF reads the previous step's input and output
from DRAM and writes the current ones for the next step (byte formulas in docs/designs/ditto.md).
Attention matmuls use the two-sub-op delta form (`Q_t dK + dQ K_{t-1}`), cross-attention K/V are
weights. Defo: a static pass skips restore/requantize between consecutive linear ops (A-32) and
a runtime pass picks ACT or DIFF per layer from the cycles this simulation measured for the layer
at the first (ACT) and second (DIFF) step.

Trace step 0 is the paper's "step 1" (no temporal statistics), trace step 1 its "step 2".
"""

from __future__ import annotations

import math
from typing import Any, Iterator

import attrs

from tlm import Module
from workloads import OpRecord, Trace

from ..addresses import AddressMap
from ..components.ditto_units import EncodeWork, EncodingUnit, NibbleGemm, NibblePeArray
from ..components.vector_unit import VectorUnit, VectorWork
from ..config import (
    BufferConfig, BuffersConfig, HardwareConfig, MemoryConfig, PeArrayConfig, VectorUnitConfig, kib,
)
from ..errors import ConfigError
from ..pipeline import Barrier, Access, TileJob
from ..tiling import Precision, TilePlan, plan_tiles
from .base import design
from .dense import Dense, weight_bytes_total

_ok = attrs.validators.gt(0)


@attrs.frozen
class DittoParams:
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
    static_bypass: bool = True
    """Assumption A-32: with Defo, a DIFF linear op whose consumers are all conv/linear ops in DIFF
    mode skips restore, requantization and W_out and passes its (requantized) delta on; its
    R_prev_out/W_keep_out move to the segment's last linear op."""
    defo_plus: bool = False
    """Defo+: ACT-mode layers use spatial differences (see `spatial_fallback`)."""
    act_mode_encoding: str = attrs.field(default="none", validator=attrs.validators.in_(("none", "classify")))
    """Assumption A-33 (`none`): ACT mode does no zero/nibble skipping, 2 slots per MAC.
    A-33b (`classify`): raw int8 values are classified too (slots from `raw.*` fractions)."""
    eu_lane_groups: int = attrs.field(default=32, validator=_ok)
    """Assumption A-34: Encoding Unit lane groups (one per row of 16 PEs in the common array)."""
    eu_elements_per_group_cycle: int = attrs.field(default=4, validator=_ok)
    """Assumption A-34: elements one lane group classifies per cycle (paper: 4)."""
    eu_latency_cycles: int = attrs.field(default=2, validator=attrs.validators.ge(0))
    """Assumption A-34: Encoding Unit pipeline latency per tile (paper: ≈ 2 cycles)."""
    beyond8_slots: int = attrs.field(default=3, validator=_ok)
    """Nibble slots of a difference outside [-128, 127] (9 bits: a third, sign-extended nibble).
    Project choice: the paper does not say how such differences are handled."""
    restore_passes: float = 2.0
    """VPU passes per output element to restore a DIFF output (add out_{t-1}, requantize)."""
    requant_passes: float = 1.0
    """VPU passes per output element to requantize an ACT output (or a bypassed delta)."""
    act_bytes: float = 1.0
    """Bytes per int8 activation (and difference) element."""
    weight_bytes: float = 1.0
    acc_bytes: int = 4
    """Bytes per int32 partial sum in the output buffer."""


def _slots(stats: dict, prefix: str, op: OpRecord, step: int, beyond8: int) -> float:
    try:
        f4 = stats[f"{prefix}.int4_frac"][op.op_id]
        f8 = stats[f"{prefix}.int8_frac"][op.op_id]
        f9 = stats[f"{prefix}.beyond8_frac"][op.op_id]
    except KeyError:
        raise ConfigError(
            f"ditto: step {step} op {op.op_id} ({op.name}) has no {prefix}.* statistics "
            f"(DIFF mode needs the trace's temporal delta fractions)"
        ) from None
    return f4 + 2.0 * f8 + beyond8 * f9


class _OpInfo:
    __slots__ = ("op", "act_plan", "diff_plan", "attn", "cross", "second_w", "consumers_linear",
                 "last_red", "set_in", "set_w", "keep_in", "keep_w", "keep_out", "delta")


@design("ditto")
class Ditto(Dense):
    """Ditto with Defo."""

    Params = DittoParams
    variant: dict[str, Any] = {}

    def __init__(self, hw: HardwareConfig, params: dict[str, Any] | None = None):
        super().__init__(hw, {**self.variant, **(params or {})})
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

    def _resident(self, trace: Trace) -> bool:
        if self.params.weights_resident:
            need = weight_bytes_total(trace.ops, self.params.weight_bytes)
            if need > self.hw.buffers.global_buffer.capacity_bytes:
                raise ConfigError(f"{self.name}: weights_resident (A-30) but the weights ({kib(need)}) exceed "
                                  f"the global buffer ({kib(self.hw.buffers.global_buffer.capacity_bytes)})")
            return True
        return super()._resident(trace)

    # -- structure -----------------------------------------------------------------------
    def make_units(self, top: Module) -> dict[str, Module]:
        p = self.params
        return {"pe": NibblePeArray("pe_array", top, self.n_pe, p.multipliers_per_pe),
                "encoder": EncodingUnit("encoding_unit", top, p.eu_lane_groups,
                                        p.eu_elements_per_group_cycle, p.eu_latency_cycles),
                "vector": VectorUnit("vector_unit", top, self.hw.vector)}

    def extra_summary(self) -> dict[str, Any]:
        out = {"ditto_pe_count": self.n_pe, "ditto_unused_budget_units": self.unused_units,
               "ditto_bypassed_ops": sorted(self.bypassed)}
        if self.decisions:
            out["defo_decisions"] = {d["name"]: d for d in self.decisions.values()}
            out["defo_act_layers"] = sum(d["mode"] == "act" for d in self.decisions.values())
            out["defo_diff_layers"] = sum(d["mode"] == "diff" for d in self.decisions.values())
        return out

    # -- dataflow ------------------------------------------------------------------------
    def _setup(self, trace: Trace) -> dict[int, _OpInfo]:
        p = self.params
        b = self.buffers
        budgets = (b["act"].tile_budget, b["weight"].tile_budget, b["out"].tile_budget)
        acc_diff = p.acc_bytes + p.b_acc_bits / 8  # accumulators + the staged out_{t-1} tile
        consumers: dict[int, list[OpRecord]] = {op.op_id: [] for op in trace.ops}
        for op in trace.ops:
            for q in op.preds:
                consumers[q].append(op)
        # regions for the cross-step state and the bypassed deltas, after the dense address map
        base = self.addr.size
        align = self.addr.align

        def alloc(nbytes: float) -> int:
            nonlocal base
            a = base
            base += -(-int(nbytes) // align) * align or align
            return a

        infos = {}
        for op in trace.ops:
            if not op.is_mac:
                continue
            i = _OpInfo()
            i.op = op
            i.attn = op.kind in ("matmul_qk", "matmul_pv")
            i.cross = i.attn and op.cross_attn_kv
            i.second_w = i.attn and not i.cross  # second operand differenced too (2 bytes/elem on chip)
            i.act_plan = plan_tiles(op, Precision(p.act_bytes, p.weight_bytes, p.act_bytes, p.acc_bytes),
                                    *budgets, 1)
            i.diff_plan = plan_tiles(op, Precision(2 * p.act_bytes, (2 if i.second_w else 1) * p.weight_bytes,
                                                   p.act_bytes, int(math.ceil(acc_diff))), *budgets, 1)
            cons = consumers[op.op_id]
            i.consumers_linear = bool(cons) and all(c.kind in ("conv2d", "linear") for c in cons)
            g = i.act_plan.geom
            i.set_in = g.images * g.in_rows * g.in_row_px * g.red_ch
            i.set_w = g.n_out * g.red_ch * g.red_per_ch
            i.keep_in = alloc(op.in_elems * p.act_bytes)
            i.keep_w = alloc(op.w_elems * p.act_bytes) if i.attn else -1
            i.keep_out = alloc(op.out_elems * p.b_acc_bits / 8)
            i.delta = alloc(op.out_elems * p.act_bytes)
            infos[op.op_id] = i
        return infos

    def _mode(self, step: int, op_id: int) -> str:
        if step == 0:
            return "act"
        if self.params.defo and step >= 2:
            return self.decisions[op_id]["mode"]
        return "diff"

    def _decide(self, trace: Trace, infos: dict[int, _OpInfo]) -> None:
        """Defo runtime: per layer, DIFF from the third step iff its measured ACT window (step 0)
        was longer than its DIFF window (step 1). Windows are the pipeline's per-op windows (first
        main-stage work of the op to that of the next op), as in Result.per_op."""
        n_ops = len(trace.ops)
        marks = self.pipeline.marks
        end_of_step1 = self.pipeline.barrier_ps[-1]
        window = {}
        for idx, (t, lab) in enumerate(marks):
            if lab >= 2 * n_ops:
                break
            nxt = marks[idx + 1][0] if idx + 1 < len(marks) and marks[idx + 1][1] < 2 * n_ops else end_of_step1
            window[lab] = self.clock.ps_to_cycles(nxt - (t if idx else 0))  # as Result: run starts at 0
        for op_id, info in infos.items():
            a = window.get(op_id)
            d = window.get(n_ops + op_id)
            if a is None or d is None:
                raise RuntimeError(f"ditto: no measured window for op {op_id} at step 0 or 1")
            self.decisions[op_id] = {"name": info.op.name, "op_id": op_id, "act_cycles": a,
                                     "diff_cycles": d, "mode": "diff" if a > d else "act"}
        self.events["defo.table_writes"] += 2 * len(infos)
        self.events["defo.compares"] += len(infos)

    def jobs(self, trace: Trace, progress=None) -> Iterator[TileJob]:
        p = self.params
        self.addr = AddressMap(trace.ops, p.act_bytes, p.weight_bytes)
        infos = self._infos = self._setup(trace)
        self.plans = {k: v.act_plan for k, v in infos.items()}
        resident = self._resident(trace)
        self._notes(trace, resident)
        last = trace.n_steps - 1
        for step in range(trace.n_steps):
            if p.defo and step == 2:
                yield Barrier()
                self._decide(trace, infos)
            stats = trace.step(step).scalars
            modes = {op_id: self._mode(step, op_id) for op_id in infos}
            bypass = set()
            if p.defo and p.static_bypass and step >= 1:
                for op_id, info in infos.items():
                    if (modes[op_id] == "diff" and info.consumers_linear
                            and all(modes[c] == "diff" for c in self._consumers(trace, op_id))):
                        bypass.add(op_id)
                self.bypassed |= bypass
            w_source = "global" if resident and step > 0 else "dram"
            for op in trace.ops:
                if op.is_mac:
                    info = infos[op.op_id]
                    from_delta = bool(op.preds) and op.preds[0] in bypass
                    keep = step < last and (step == 0 or modes[op.op_id] == "diff")
                    yield from self._mac_jobs_ditto(step, info, modes[op.op_id], stats, w_source,
                                                    op.op_id in bypass, from_delta, keep)
                elif op.kind != "concat":
                    yield from self._vector_jobs(step, op, self.addr)
            if progress is not None:
                progress(step)

    def _consumers(self, trace: Trace, op_id: int) -> list[int]:
        c = getattr(self, "_cons", None)
        if c is None:
            c = self._cons = {o.op_id: [] for o in trace.ops}
            for o in trace.ops:
                for q in o.preds:
                    c[q].append(o.op_id)
        return c[op_id]

    def _mac_jobs_ditto(self, step: int, info: _OpInfo, mode: str, stats: dict, w_source: str,
                        bypassed: bool, from_delta: bool, keep: bool) -> Iterator[TileJob]:
        p = self.params
        op = info.op
        diff = mode == "diff"
        plan: TilePlan = info.diff_plan if diff else info.act_plan
        g = plan.geom
        addr = self.addr
        ab = 2 if diff else 1  # on-chip bytes per input (and differenced 2nd-operand) element / act_bytes
        wb2 = 2 if (diff and info.second_w) else 1
        # nibble slots per MAC and what the encoder classifies
        spatial = p.defo_plus and not diff
        if diff:
            slots = _slots(stats, "delta", op, step, p.beyond8_slots)
            if info.second_w:
                slots += _slots(stats, "kv_delta", op, step, p.beyond8_slots)
            encode = True
        elif spatial or p.act_mode_encoding == "classify":
            try:
                zf, i4 = stats["raw.zero_frac"][op.op_id], stats["raw.int4_frac"][op.op_id]
            except KeyError:
                raise ConfigError(f"ditto: op {op.op_id} ({op.name}) has no raw.* statistics at step {step}") from None
            slots = (i4 - zf) + 2.0 * (1.0 - i4)
            encode = True
        else:
            slots = 2.0
            encode = False
        has_w = op.kind in ("conv2d", "linear")
        in_base = addr.input_of(op, 0)
        w_base = addr.weight[op.op_id] if has_w else addr.input_of(op, 1)
        w_kind = "weight" if (has_w or info.cross) else "act"
        w_src = w_source if has_w else "dram"
        out_base = addr.output[op.op_id]
        b_out = p.b_acc_bits / 8
        restore = (p.restore_passes if (diff and not bypassed) or spatial else p.requant_passes)
        products = 0
        for t in plan.tiles:
            reads, loads, frees, writes = [], [], [], []
            in_off = t.set * info.set_in + (t.image * g.in_rows + g.in_span(t.r0, t.r1)[0]) * g.in_row_px * g.red_ch + t.c0
            enc = 0
            if t.in_load:
                n_in = t.in_load // ab
                if diff and from_delta:
                    reads.append(Access("dram", "delta", self._infos[op.preds[0]].delta + in_off, n_in))
                    loads.append(("act", n_in))
                else:
                    reads.append(Access("dram", "act", in_base + in_off, n_in))
                    if diff:
                        reads.append(Access("dram", "prev_act", info.keep_in + in_off, n_in))
                    loads.append(("act", t.in_load))
                    if keep and t.n0 == 0:
                        writes.append(Access("dram", "keep_act", info.keep_in + in_off, n_in))
                if encode:
                    enc += n_in
            if t.in_free:
                frees.append(("act", t.in_free if not (diff and from_delta) else t.in_free // ab))
            if t.w_load:
                w_off = t.set * info.set_w + t.n0 * g.red_ch * g.red_per_ch + t.c0 * (t.n1 - t.n0) * g.red_per_ch
                n_w = t.w_load // wb2
                reads.append(Access(w_src, w_kind, w_base + w_off, n_w))
                if info.second_w:
                    if diff:
                        reads.append(Access("dram", "prev_act", info.keep_w + w_off, n_w))
                        if encode:
                            enc += n_w
                    if keep and t.image == 0 and t.r0 == 0:
                        writes.append(Access("dram", "keep_act", info.keep_w + w_off, n_w))
                loads.append(("weight", t.w_load))
            if t.w_free:
                frees.append(("weight", t.w_free))
            outputs = (t.r1 - t.r0) * g.row_px * (t.n1 - t.n0)
            o_off = ((t.set * g.images + t.image) * g.out_rows + t.r0) * g.row_px * g.n_out + t.n0
            if diff and not bypassed and t.acc_alloc:
                reads.append(Access("dram", "prev_out", info.keep_out + int(o_off * b_out), int(outputs * b_out)))
            work: dict[str, tuple[str, Any]] = {}
            if enc:
                work["pre"] = ("encoder", EncodeWork(enc))
                self.events["encoder.elements"] += enc
            k = (t.c1 - t.c0) * g.red_per_ch
            gemm = NibbleGemm(outputs, math.ceil(k * slots - 1e-9))
            work["main"] = ("pe", gemm)
            products += gemm.products
            if t.out_write:
                n_out = t.out_write
                if bypassed:
                    writes.append(Access("dram", "delta", info.delta + o_off, n_out))
                else:
                    writes.append(Access("dram", "out", out_base + o_off, n_out))
                    if keep:
                        writes.append(Access("dram", "keep_out", info.keep_out + int(o_off * b_out), int(outputs * b_out)))
                vec = int(round(outputs * restore))
                work["post"] = ("vector", VectorWork("ditto_restore", vec))
                self.events["vector.elements"] += vec
            yield TileJob(step, op.op_id, work, gemm.products, loads, reads, frees, t.acc_alloc,
                          writes, t.acc_free)
        self.events["mac.int4x8"] += products

    def _notes(self, trace: Trace, resident: bool) -> None:
        p = self.params
        n = self.notes
        if resident:
            n.append(f"weights resident in the global buffer after step 0 "
                     f"({kib(weight_bytes_total(trace.ops, p.weight_bytes))})" + (" (A-30)" if p.weights_resident else ""))
        n.append(f"ditto: {self.n_pe} PEs x {p.multipliers_per_pe} A{p.act_bits}W{p.weight_bits} multipliers "
                 f"({self.unused_units} bit-product units of the budget unused); 'macs' counts 4x8-bit nibble products")
        n.append(f"ditto: trace step 0 = ACT (paper's step 1), step 1 = DIFF; b_acc = {p.b_acc_bits} bits (A-31); "
                 f"ACT-mode encoding = {p.act_mode_encoding} (A-33/A-33b); Encoding Unit "
                 f"{p.eu_lane_groups}x{p.eu_elements_per_group_cycle} elements/cycle + {p.eu_latency_cycles} cycles (A-34)")
        if p.defo:
            n.append("ditto: Defo runtime choice from this run's measured per-op windows at steps 0 (ACT) and 1 (DIFF); "
                     "the loader waits for steps 0-1 to drain before step 2 (a barrier, its drain time is counted)")
            if p.static_bypass:
                n.append("ditto: Defo static pass (A-32) bypasses restore only for MAC ops whose consumers are all "
                         "conv/linear ops in DIFF; residual adds and concats end a segment (delta pass-through not modelled)")
        else:
            n.append("ditto: Defo off: DIFF for every MAC op from step 1, restore after each op")
        if p.defo_plus:
            n.append("ditto: Defo+: the trace has no spatial-difference statistics; ACT layers use the raw-value "
                     "zero/4-bit classification (raw.*) as a stand-in for spatial differences, with a 2-pass VPU restore; "
                     "spatial differences themselves are not modelled")
        n.append("ditto: not modelled: Encoding Unit queue imbalance across lanes, VPU contention between a tile's "
                 "restore and the next nonlinear op, fusion of nonlinear ops into the restore (they run as separate "
                 "vector jobs, as in dense); out_(t-1) tiles are staged in the tile's output space (acc_bytes + b_acc/8)")


@design("ditto.no_defo")
class DittoNoDefo(Ditto):
    """Ditto without Defo: DIFF for every MAC op from the second step, restore after each op."""

    variant = {"defo": False}


@design("ditto.defo_plus")
class DittoDefoPlus(Ditto):
    """Ditto with Defo+: layers on original activations use spatial differences."""

    variant = {"defo_plus": True}


@design("ditto.itc")
class DittoItc(Dense):
    """Ditto's ITC baseline: dense int8 (A8W8) PEs at iso-area; in `common` the dense 32×32 array."""

    @classmethod
    def paper_hw(cls) -> HardwareConfig:
        d = Ditto.paper_hw()
        return d.evolve(name="ditto-itc-paper", compute_budget_units=None,
                        pe_array=PeArrayConfig(rows=192, cols=144, lanes=1))
