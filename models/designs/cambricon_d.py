"""`cambricon_d` (ISCA 2024, dataflows.md §3) and `cambricon_d.per_layer` (MHDiff's view, §3.7).

`cambricon_d` — the paper's sign-mask dataflow. After the first step every tensor between ops is a
temporal delta. Per (step, op):
- conv/linear: fp16 weights (tiler slices; the shared weight rule: resident only if all fp16
  weights fit the global buffer); the PE array computes W·dX on int3 inliers + fp16 outliers,
  mapped on the common grid (A-37); the output delta leaves through the compression unit to the
  NDP engine: W_delta = E_out·((1−ρ_out)·b_inl + ρ_out·16 + 1)/8 bytes (ρ_out = the trace's
  `camd.rho_out`, b_inl = A-1), which applies it in the banks (in-bank E_out·(2+2) + E_out/8
  bytes, off the channel, A-7).
- ReLU: an AND with the previous step's signs, read as a 1-bit tensor (⌈E/8⌉ bytes) in the SFU.
- GroupNorm/LayerNorm: linearised; a per-(image, channel) scale and shift read per step.
- add, resampling, concat, mul: linear, run on deltas.
- attention (A-3): QKᵀ reads raw fp16 Q and K, PV raw fp16 V from DRAM (the NDP keeps them
  current), on the fp16×fp16 multipliers; the scores and softmax stay raw; PV reads the previous
  raw output O_{t−1} (E_out·2) and writes the compressed dO.
- inter-op tensors (A-2, revised): the shared residency rule (A-38) decides which stay on chip
  in the global buffer and which go through DRAM; a spilled tensor moves in its inter-op form
  (compressed delta after step 0, fp16 at step 0 and in the raw domain): one write at the
  producer, one read at each consumer. The plan sizes each tensor once (`residency_size`).
- U-Net input (A-5): dx_t streamed at E_in·2 bytes.
- first step (A-4): raw fp16 on the fp16 multipliers (or at delta-path speed), writing the initial
  raw Y (E_out·2) of every NDP-maintained tensor and the initial signs (⌈E/8⌉ at each ReLU).

The NDP-maintained raw tensors, the signs, the GroupNorm constants and the attention raw operands
are the paper's DRAM-side state: explicit DRAM reads/writes next to the tile's operands.

`cambricon_d.per_layer` — the per-layer raw read/merge/write dataflow MHDiff describes: every MAC
layer of every step after the first reads X_{t−1} (E_in·b/8) and Y_{t−1} (E_out·b/8) and writes
Y_t (E_out·b/8), b = A-10; non-linear ops run on raw values; no signs, no NDP.
"""

from __future__ import annotations

from typing import Any, Iterator

import math

import attrs
import simpy

from tlm import ActivityRecorder, Module, TargetSocket
from workloads import OpRecord, Trace
from workloads.errors import TraceError

from ..addresses import AddressMap
from ..components.cambricon import (
    HIST_GROUP, AsyncOutlierArray, CamdTile, NdpEngine, OutlierPeArray, OutlierWork, SfuWork, SignMaskSfu,
)
from ..components.vector_unit import VectorUnit, VectorWork
from ..config import (
    BufferConfig, BuffersConfig, HardwareConfig, MemoryConfig, PeArrayConfig, VectorUnitConfig,
    ceil_div,
)
from ..errors import ConfigError
from ..jobs import Formats, JobBuilder, Stream, nbytes, split_streams, tile_elements
from ..pipeline import Access, TileJob
from ..residency import ResidencyPlan
from ..tiling import Precision, TilePlan
from .base import Design, design, register_variant

_pos = attrs.validators.gt(0)
_ATTN = ("matmul_qk", "matmul_pv")
_ACTS = ("relu", "silu", "gelu")
_NORMS = ("groupnorm", "layernorm")


def _opt_pos(_inst, attr, value):
    if value is not None and value <= 0:
        raise ValueError(f"{attr.name} must be positive or None, got {value!r}")


@attrs.frozen
class CambriconDParams:
    group_size: int = attrs.field(default=60, validator=_pos)
    """int3×fp16 inlier multipliers per PE = reduction elements per group per cycle (60,
    INFERRED from the paper's peak, dataflows.md §3.2)."""
    outlier_lanes: int = attrs.field(default=4, validator=attrs.validators.in_(range(0, 5)))
    """fp16×fp16 multipliers per PE = outlier budget per group (4; §3.1 item 5). Extras are
    clipped and counted from `camd.group_outlier_hist` (which resolves 0..4 and >4, hence ≤ 4)."""
    inlier_mult_units: int = attrs.field(default=33, validator=_pos)
    """Area of one int3×fp16 multiplier in bit-product units (3 × 11-bit mantissa) — assumption A-35."""
    outlier_mult_units: int = attrs.field(default=121, validator=_pos)
    """Area of one fp16×fp16 multiplier in bit-product units (11 × 11) — assumption A-35."""
    inlier_bits: int = attrs.field(default=3, validator=_pos)
    """Width of an inlier in the compressed delta format (b_inl) — assumption A-1."""
    outlier_bits: int = attrs.field(default=16, validator=_pos)
    """Width of an outlier in the compressed format (fp16, §3.3)."""
    weight_bits: int = attrs.field(default=16, validator=_pos)
    """Weights are fp16 in DRAM and on chip (§3.3 R_weight = E_w·2)."""
    residency_size: str = attrs.field(default="max", validator=attrs.validators.in_(("max", "delta")))
    """Assumption A-2 (revised): the size each inter-op tensor is charged in the shared residency
    plan (A-38), one size for the whole run. `max`: the larger of its first-step form (fp16) and
    its later form (compressed delta at the configured outlier budget ρ = outlier_lanes /
    group_size), so the plan holds in every step. `delta`: the later form only (the steady
    state; step 0's fp16 tensors then over-subscribe the plan)."""
    attn_raw_bits: int = attrs.field(default=16, validator=_pos)
    """Assumption A-3: bits per raw Q/K/V element read from DRAM for attention (fp16)."""
    attn_read_prev_out: bool = True
    """Assumption A-3: PV reads its previous raw output O_{t−1} to return to deltas."""
    first_step: str = attrs.field(default="fp16_path",
                                  validator=attrs.validators.in_(("fp16_path", "delta_rate")))
    """Assumption A-4: the first step runs raw fp16 on the fp16×fp16 multipliers only
    (`fp16_path`) or at the delta path's speed (`delta_rate`); either way it writes the initial
    raw outputs (E_out·2) and signs (⌈E/8⌉) of the NDP-maintained tensors."""
    input_delta_bits: int = attrs.field(default=16, validator=_pos)
    """Assumption A-5: the U-Net input delta dx_t is streamed in at E_in·2 bytes."""
    sfu_elems_per_cycle: int | None = attrs.field(default=None, validator=_opt_pos)
    """Assumption A-6: SFU (sign mask + compression) elements per cycle, pipelined behind the PE
    array (paper config: 128). None: the common nonlinear-unit budget (hw.vector.lanes)."""
    ndp_internal_gbps: float | None = attrs.field(default=None, validator=_opt_pos)
    """Assumption A-7: in-bank bandwidth of the NDP engine. None: it keeps up with the channel
    (its read-add-write takes no channel time; its bank time is not modelled)."""
    ndp_pj_per_bit: float = attrs.field(default=1.0, validator=attrs.validators.ge(0))
    """Assumption A-7: in-bank energy per bit the NDP engine moves (array access without I/O;
    a modelling default, not from the paper). The engine's own price (`ndp.bits`)."""
    raw_bits: int = attrs.field(default=16, validator=_pos)
    """Bits per raw element of an NDP-maintained tensor in DRAM (fp16: NDP reads Y_{t−1} and
    writes Y_t, 2 + 2 bytes per element, §3.3)."""
    gn_const_bytes_per_channel: int = attrs.field(default=4, validator=attrs.validators.ge(0))
    """Linearised GroupNorm/LayerNorm (§3.5): per-step scale + shift (fp16 each) per image and
    channel, read from DRAM every differential step."""
    cross_attn_kv_once: bool = True
    """Assumption A-8: cross-attention K/V projections (constant context) are computed only at
    the first step."""
    int3_scale_policy: str = attrs.field(default="static_per_layer",
                                         validator=attrs.validators.in_(("static_per_layer",)))
    """Assumption A-9: one fixed per-layer int3 scale calibrated offline over all timesteps (set
    when the trace is captured; the trace's `camd.*` statistics use it)."""
    acc_bytes: int = attrs.field(default=4, validator=_pos)
    """Bytes per partial-sum accumulator in the output buffer (fp32)."""
    pe_inlier_bits: int = attrs.field(default=3, validator=_pos)
    """Activation width of the PE's inlier multipliers: 3 (the paper's int3), 5 (a Diffy-like
    int5 PE, DiffyPE/DiffyAll, assumption A-42), 8 (`ditto_view`, A-45). Names the MAC energy
    event (int{b}×weight); clipping is counted only at 3, the trace histogram's quantizer."""
    raw_on_inlier_passes: int | None = attrs.field(default=None, validator=_opt_pos)
    """Assumption A-43: None: raw work (attention, the A-4 first step) runs on the fp16×fp16
    lanes (the paper's PE). An int n: the PE has no fp16 lanes and raw work runs on the inlier
    lanes, n passes per product (DiffyPE: a 16-bit raw operand as ⌈16/5⌉ = 4 int5 slices;
    `ditto_view`: 1, int8 operands on int8 lanes)."""
    outlier_array: str = attrs.field(default="lockstep", validator=attrs.validators.in_(("lockstep", "async")))
    """`lockstep`: the paper's PE, outliers up to the budget in lock-step with the inliers,
    extras clipped. `async` (AsyncPE, assumption A-44): the fp16 multipliers form a separate
    outlier array that computes every outlier product (a tile's MACs · ρ_in, the trace's
    `camd.rho_in`) in the pipeline's post stage, before the compression unit (its products join
    the sums first), overlapped with the inlier array of the next tile (with one ρ_in per layer
    and step this is the paper's once-per-layer synchronisation up to one tile); nothing is
    clipped."""


@attrs.frozen
class CambriconDPerLayerParams(CambriconDParams):
    weight_bits: int = attrs.field(default=8, validator=_pos)
    """Weights in DRAM and on chip: int8 at MHDiff's scale (assumption A-46: MHDiff compares
    Cambricon-D at int8; `cambricon_d.per_layer_fp16w` keeps fp16)."""
    attn_raw_bits: int = attrs.field(default=8, validator=_pos)
    """Raw Q/K/V bits for attention (A-3 at A-46's int8)."""
    input_delta_bits: int = attrs.field(default=8, validator=_pos)
    """U-Net input delta bits (A-5 at A-46's int8)."""
    inlier_mult_units: int = attrs.field(default=24, validator=_pos)
    """int3×int8 inlier multiplier area, 3 × 8 bit-product units (A-35 at A-46's int8 weights)."""
    outlier_mult_units: int = attrs.field(default=64, validator=_pos)
    """int8×int8 outlier multiplier area, 8 × 8 units (A-35 at A-46's int8 weights)."""
    per_layer_bits: int = attrs.field(default=8, validator=_pos)
    """Assumption A-10: bits per element of the raw tensors the per-layer dataflow reads
    (X_{t−1}, Y_{t−1}) and writes in every layer, and of its inter-op tensors (int8 at
    MHDiff's scale; 16 for the Diffy-style ablations)."""
    keep_input: bool = False
    """Write X_t (E_in·b/8) for the next step's X_{t−1} read (Diffy-style, §3.4 W_curr_input;
    Ditto's keep_act). False: MHDiff's description (two reads, one write per layer)."""
    write_out_state: bool = True
    """Write Y_t as cross-step state. With `out_state_bits` unset it is the layer's output at
    b bits (MHDiff's view: also where a consumer of a spilled tensor reads it). False: §3.4's
    Diffy dataflow, where raw Y_t is counted once, as the next layer's W_curr_input."""
    out_state_bits: int | None = attrs.field(default=None, validator=_opt_pos)
    """Bits of the Y_{t−1}/Y_t state. None: `per_layer_bits`. `ditto_view`: 16 (Ditto's
    b_acc, A-31), written beside the restored int8 output."""


_PAPER_PARAMS = {"sfu_elems_per_cycle": 128}
_FAMILY = ("cambricon_d", "cambricon_d.per_layer", "cambricon_d.per_layer_fp16w", "cambricon_d.diffy_df",
           "cambricon_d.diffy_pe", "cambricon_d.async_pe", "cambricon_d.diffy_all", "cambricon_d.ditto_view")
"""The design and its variants; each gets the paper's SFU width in `paper_hw()`."""
_NEVER = ResidencyPlan(frozenset(), (), 0, 0, "never")


@design("cambricon_d")
class CambriconD(Design):
    """Cambricon-D, the paper's sign-mask dataflow with near-memory delta updates."""

    Params = CambriconDParams
    trace_activation = "relu"
    dataflow = "paper (sign mask + NDP, dataflows.md §3.3)"
    ndp_kinds: tuple[str, ...] = ("delta",)

    def __init__(self, hw: HardwareConfig, params: dict[str, Any] | None = None, **kw: Any):
        super().__init__(hw, params, **kw)
        p = self.params
        self.pe_units = p.group_size * p.inlier_mult_units + p.outlier_lanes * p.outlier_mult_units
        w = "fp16" if p.weight_bits == 16 else str(p.weight_bits)
        self.inlier_event = f"int{p.pe_inlier_bits}x{w}"
        self.raw_event = "fp16" if p.weight_bits == 16 else f"int{p.weight_bits}"
        self.count_clipping = (p.group_size == HIST_GROUP and p.pe_inlier_bits == 3
                               and p.outlier_array == "lockstep")
        budget = hw.budget_units()
        self.n_pes = budget // self.pe_units
        if self.n_pes < 1:
            raise ConfigError(
                f"{self.name}: a PE of {p.group_size} {self.inlier_event} + {p.outlier_lanes} {self.raw_event} "
                f"multipliers costs {self.pe_units} bit-product units; the compute budget is "
                f"{budget} (A-35)")
        self.unused_units = budget - self.n_pes * self.pe_units
        self.sfu_lanes = p.sfu_elems_per_cycle or hw.vector.lanes
        self.budget_rho = p.outlier_lanes / p.group_size
        self.clipped_groups = 0.0
        self.clipped_outliers_min = 0.0
        self.outlier_groups = 0.0

    @classmethod
    def paper_hw(cls) -> HardwareConfig:
        """128×128 PEs (60 int3×fp16 + 4 fp16×fp16), 1 GHz, 7 nm, 64/64/32 MiB input/weight/output
        SRAM; the global buffer (where residency lives, A-38) = the 64 MiB input SRAM; 1.5 TB/s
        DRAM as the `ideal` model (type NOT FOUND in the paper)."""
        pe_units = 60 * 33 + 4 * 121
        mib = 1024
        return HardwareConfig(
            name="cambricon_d-paper", freq_mhz=1000.0, node_nm=7,
            pe_array=PeArrayConfig(rows=128, cols=128, lanes=60),
            buffers=BuffersConfig(
                global_buffer=BufferConfig(64 * mib, bytes_per_cycle=1024, double_buffer=False),
                activation=BufferConfig(64 * mib, bytes_per_cycle=1024),
                weight=BufferConfig(64 * mib, bytes_per_cycle=1024),
                output=BufferConfig(32 * mib, bytes_per_cycle=1024),
            ),
            vector=VectorUnitConfig(lanes=128),
            memory=MemoryConfig("ideal", {"bandwidth_gbps": 1500.0}),
            weight_residency="never",
            compute_budget_units=128 * 128 * pe_units,
            designs={n: dict(_PAPER_PARAMS) for n in _FAMILY},
        )

    # ----------------------------------------------------------------- build
    def make_units(self, top: Module) -> dict[str, Module]:
        p = self.params
        self.sfu = SignMaskSfu("sfu", top, self.sfu_lanes)
        units = {"pe": OutlierPeArray("pe_array", top, self.grid, self.n_pes, p.group_size, p.outlier_lanes,
                                      self.inlier_event, self.raw_event, p.raw_on_inlier_passes),
                 "vector": VectorUnit("vector_unit", top, self.hw.vector),
                 "sfu": self.sfu}
        if p.outlier_array == "async":
            units["outlier"] = AsyncOutlierArray("outlier_array", top, self.n_pes * p.outlier_lanes)
        return units

    def write_target(self, env: simpy.Environment, top: Module, recorder: ActivityRecorder,
                     n_ops: int) -> TargetSocket:
        """Writes go through the near-memory engine, which forwards them to DRAM (A-7)."""
        p = self.params
        self.ndp = NdpEngine("ndp", top, env, recorder, n_ops, self.ndp_kinds, p.ndp_internal_gbps,
                             p.ndp_pj_per_bit)
        self.ndp.to_dram.bind(self.dram.target)
        return self.ndp.target

    # ----------------------------------------------------------- formats
    def _bpe(self, tensor: int, first: bool, rho: float) -> float:
        """Bytes per element of a tensor's inter-op form: fp16 at the first step and in the raw
        domain, else a compressed delta at outlier fraction `rho`."""
        p = self.params
        if tensor < 0:
            return p.input_delta_bits / 8
        if first or self.raw_dom[tensor]:
            return 2.0
        return ((1.0 - rho) * p.inlier_bits + rho * p.outlier_bits + 1.0) / 8

    def act_bpe(self, tensor: int) -> float:
        """The larger of the first-step and later forms (at the configured outlier budget)."""
        return max(self._bpe(tensor, True, 1.0), self._bpe(tensor, False, self.budget_rho))

    def weight_bpe(self, op: OpRecord) -> float:
        return self.params.weight_bits / 8

    def tensor_bytes(self, tensor: int) -> int:
        """The size the residency plan charges (A-2 revised, `residency_size`); 0 for a tensor no
        op reads on chip (only attention's raw reads, which come from the NDP's raw copy)."""
        if tensor >= 0 and not self.onchip_need[tensor]:
            return 0
        if self.params.residency_size == "delta":
            return nbytes(self.tensor_elements(tensor), self._bpe(tensor, False, self.budget_rho))
        return nbytes(self.tensor_elements(tensor), self.act_bpe(tensor))

    def _precision(self, op: OpRecord, first: bool) -> Precision:
        p, v = self.params, self.view.get(op.op_id, op)
        a0 = v.preds[0] if v.preds else -1
        act = p.attn_raw_bits / 8 if op.kind == "matmul_qk" else self._bpe(a0, first, self.budget_rho)
        w = self.weight_bpe(op) if op.kind in ("conv2d", "linear") else p.attn_raw_bits / 8
        return Precision(act, w, self._bpe(op.op_id, first, self.budget_rho), p.acc_bytes)

    def precision(self, op: OpRecord) -> Precision:
        return self._precision(op, False)

    def _plans(self, first: bool) -> dict[int, TilePlan]:
        return {op.op_id: self.plan(op, self._precision(op, first)) for op in self.ops if op.is_mac}

    # ------------------------------------------------------------- analysis
    def _analyse(self, ops: list[OpRecord]) -> None:
        """Static graph facts: raw-domain tensors, attention operand roles, on-chip reads."""
        self.ops = ops
        n = len(ops)
        raw = [False] * n
        for op in ops:
            raw[op.op_id] = op.kind == "matmul_qk" or (
                not op.is_mac and bool(op.preds) and all(raw[q] for q in op.preds))
        self.raw_dom = raw
        # attention operands by role (a trace lists preds deduplicated and sorted): QKᵀ (q, k),
        # PV (scores, v); q, k and v are read raw from DRAM, the scores through residency
        self.view: dict[int, OpRecord] = {}
        raw_reads: set[tuple[int, int]] = set()
        for op in ops:
            if op.kind == "matmul_qk":
                q, k = op.preds[0], op.preds[-1]
                raw_reads |= {(q, op.op_id), (k, op.op_id)}
                self.view[op.op_id] = attrs.evolve(op, preds=(q, k))
            elif op.kind == "matmul_pv":
                s = next((x for x in op.preds if raw[x]), op.preds[0])
                v = next((x for x in op.preds if x != s), s)
                if v != s:
                    raw_reads.add((v, op.op_id))
                self.view[op.op_id] = attrs.evolve(op, preds=(s, v))
        need = [False] * n
        for op in ops:
            for q in op.preds:
                if (q, op.op_id) not in raw_reads:
                    need[q] = True
        self.onchip_need = need

    def prepare(self, trace: Trace) -> None:
        self._analyse(trace.ops)
        super().prepare(trace)
        self.plans_first = self._plans(True)
        self._regions: dict[tuple[str, int], int] = {}
        self.raw_addr = self._address_map(self.params.raw_bits / 8)
        self.raw_builder = JobBuilder(self.ops, self.raw_addr, _NEVER, False,
                                      self.buffers["act"].tile_budget, self.buffers["out"].tile_budget)
        self.n_groups = {}
        for op in self.ops:
            if op.kind in ("conv2d", "linear"):
                g = self.plans[op.op_id].geom
                self.n_groups[op.op_id] = (g.images * g.out_rows * g.row_px
                                           * ceil_div(g.red_ch * g.red_per_ch, HIST_GROUP))
        self.ndp.ratio.clear()
        self._notes(trace)

    def _address_map(self, bpe: float) -> AddressMap:
        """A per-tensor DRAM region map at `bpe`, placed after everything allocated so far."""
        m = AddressMap(self.ops, bpe, 0)
        base = self.addr.alloc(m.size)
        m.network_input += base
        m.output = [a + base for a in m.output]
        return m

    def _region(self, kind: str, op_id: int, nbytes_max: int) -> int:
        """Base address of a DRAM-side state tensor (signs, constants, deltas), allocated once."""
        key = (kind, op_id)
        a = self._regions.get(key)
        if a is None:
            a = self._regions[key] = self.addr.alloc(nbytes_max)
        return a

    # ----------------------------------------------------------- per step
    def begin_step(self, trace: Trace, step: int) -> Iterator:
        self._step = step
        self._last = step == trace.n_steps - 1
        self._st = trace.step(step)
        self._memo: dict[int, float] = {}
        return iter(())

    def _rho(self, t: int) -> float:
        """Outlier fraction of tensor t's delta this step (a vector op's: max of its inputs')."""
        if t < 0:
            return 1.0
        r = self._memo.get(t)
        if r is not None:
            return r
        op = self.ops[t]
        if op.is_mac:
            try:
                r = float(self._st.scalars["camd.rho_out"][t])
            except KeyError:
                raise TraceError(f"statistic 'camd.rho_out' is missing for op {t} ({op.name}) at "
                                 f"step {self._step}; {self.name} needs it at every step after the first") from None
        elif op.preds:
            r = max(self._rho(q) for q in op.preds)
        else:
            r = 1.0
        self._memo[t] = r
        return r

    def _rho_in(self, op: OpRecord) -> float:
        """Fraction of the op's input delta outside the int3 range this step (`camd.rho_in`)."""
        try:
            return float(self._st.scalars["camd.rho_in"][op.op_id])
        except KeyError:
            raise TraceError(f"statistic 'camd.rho_in' is missing for op {op.op_id} ({op.name}) at step "
                             f"{self._step}; {self.name} (outlier_array = 'async') needs it") from None

    def _step_bpe(self, step: int, t: int) -> float:
        first = step == 0
        if first or t < 0 or self.raw_dom[t]:
            return self._bpe(t, first, 1.0)
        return self._bpe(t, False, self._rho(t))

    def _bytes(self, step: int, t: int) -> int:
        return nbytes(self.tensor_elements(t), self._step_bpe(step, t))

    def _skip(self, step: int, op: OpRecord) -> bool:
        return step > 0 and self.params.cross_attn_kv_once and op.cross_attn_kv

    # ---------------------------------------------------------- MAC ops
    def _mac_state(self, step: int, op: OpRecord) -> tuple[list[Stream], list[Stream], list[Stream], int]:
        """The paper's DRAM-side state of a MAC op: (reads by input share, reads by output share,
        writes by output share, in-bank NDP bytes)."""
        p = self.params
        e_out = op.out_elems
        raw = nbytes(e_out, p.raw_bits / 8)
        out_reads: list[Stream] = []
        writes: list[Stream] = []
        ndp = 0
        if op.kind == "matmul_pv" and step > 0 and p.attn_read_prev_out:
            out_reads.append(Stream("attn_prev_out", "dram", self.raw_addr.output[op.op_id], raw))
        if op.kind != "matmul_qk":
            if step == 0:
                writes.append(Stream("raw_out", "dram", self.raw_addr.output[op.op_id], raw))
            else:
                nb = nbytes(e_out, self._bpe(op.op_id, False, self._rho(op.op_id)))
                bound = nbytes(e_out, (p.outlier_bits + 1) / 8)
                writes.append(Stream("delta", "dram", self._region("delta", op.op_id, bound), nb))
                ndp = 2 * raw + ceil_div(e_out, 8)
        return [], out_reads, writes, ndp

    def _write_output(self, step: int, op: OpRecord) -> bool:
        """Whether the tile writes its output to the residency source (on chip or a spill)."""
        return self.onchip_need[op.op_id]

    def mac_jobs(self, step: int, op: OpRecord) -> Iterator[TileJob]:
        if self._skip(step, op):
            return
        p = self.params
        first = step == 0
        attn = op.kind in _ATTN
        view = self.view.get(op.op_id, op)
        plan = (self.plans_first if first else self.plans)[op.op_id]
        g = plan.geom
        a0 = view.preds[0] if view.preds else -1
        fmt = Formats(self._step_bpe(step, a0), self.weight_bpe(op), self._step_bpe(step, op.op_id))
        raw_fmt = Formats(p.attn_raw_bits / 8, p.attn_raw_bits / 8, 1.0)
        mode = "fp16" if attn or (first and p.first_step == "fp16_path") else "int3"
        in_reads, out_reads, writes, ndp = self._mac_state(step, op)
        if ndp:
            wsum = sum(s.nbytes for s in writes if s.kind in self.ndp_kinds)
            if wsum:
                self.ndp.ratio[(step, op.op_id)] = ndp / wsum
        if not first and not attn and self.n_groups.get(op.op_id):
            hist = self._st.arrays.get("camd.group_outlier_hist", {}).get(op.op_id)
            if hist is not None and self.count_clipping:
                over, clipped = self.pe.clipping(hist, self.n_groups[op.op_id])
                self.clipped_groups += over
                self.clipped_outliers_min += clipped
                self.outlier_groups += self.n_groups[op.op_id]
        out_e = [tile_elements(g, t)[2] if t.out_write else 0 for t in plan.tiles]
        in_parts = split_streams(in_reads, [t.in_load for t in plan.tiles])
        out_parts = split_streams(out_reads, out_e)
        w_parts = split_streams(writes, out_e)
        compress = bool(self.ndp_kinds) and not first and op.kind != "matmul_qk"
        output = self._write_output(step, op)
        in_kind = "input" if a0 < 0 else "spill"
        rho_in = self._rho_in(op) if mode == "int3" and p.outlier_array == "async" else 0.0
        for i, t in enumerate(plan.tiles):
            work_t = CamdTile(t.m * g.row_px, t.n1 - t.n0, (t.c1 - t.c0) * g.red_per_ch, mode)
            work: dict[str, Any] = {"main": ("pe", work_t)}
            post = [("outlier", OutlierWork(math.ceil(work_t.macs * rho_in - 1e-9)))] if rho_in else []
            if compress and out_e[i]:
                post.append(("sfu", SfuWork("compress", out_e[i])))
            if post:
                work["post"] = post if len(post) > 1 else post[0]
            raw_reads: list[Access] = []
            if attn:  # raw Q, K (QKᵀ) or V (PV) from the NDP-maintained raw copies in DRAM
                raw_reads = self.raw_builder.mac_job(
                    step, view, g, t, {}, 0, raw_fmt, input=op.kind == "matmul_qk", output=False,
                    in_kind="attn_raw", w_kind="attn_raw").reads
            yield self.builder.mac_job(
                step, view, g, t, work, work_t.macs, fmt, input=op.kind != "matmul_qk",
                weight=not attn, output=output, in_kind=in_kind, out_kind="spill",
                extra_reads=[*raw_reads, *in_parts[i], *out_parts[i]], extra_writes=w_parts[i],
                extra_act=sum(a.nbytes for a in out_parts[i]))

    # ---------------------------------------------------------- vector ops
    def _vector_state(self, step: int, op: OpRecord) -> tuple[list[Stream], list[Stream]]:
        """Signs at activations (written at step 0, read after) and GroupNorm constants."""
        p = self.params
        reads: list[Stream] = []
        writes: list[Stream] = []
        if op.kind in _ACTS:
            nb = ceil_div(op.in_elems, 8)
            (writes if step == 0 else reads).append(Stream("sign", "dram", self._region("sign", op.op_id, nb), nb))
        if op.kind in _NORMS and step > 0 and not self.raw_dom[op.op_id]:
            nb = op.n * op.c * p.gn_const_bytes_per_channel
            if nb:
                reads.append(Stream("gn_const", "dram", self._region("gn_const", op.op_id, nb), nb))
        return reads, writes

    def vector_work(self, step: int, op: OpRecord, elements: int) -> dict[str, Any]:
        if op.kind in _ACTS:
            return {"main": ("sfu", SfuWork("relu" if step == 0 else "relu_mask", elements))}
        if op.kind in _NORMS and step > 0 and not self.raw_dom[op.op_id]:
            return {"main": ("vector", VectorWork("norm_linearised", elements))}
        return {"main": ("vector", VectorWork(op.kind, elements))}

    def vector_jobs(self, step: int, op: OpRecord) -> Iterator[TileJob]:
        if self._skip(step, op):
            return
        b = self.builder
        reads = [Stream("input" if q < 0 else "spill", b.source(q), b.base(q), self._bytes(step, q))
                 for q in (op.preds or (-1,))]
        writes = [Stream("spill", b.source(op.op_id), self.addr.output[op.op_id], self._bytes(step, op.op_id))]
        r2, w2 = self._vector_state(step, op)
        yield from b.vector_jobs(step, op, op.out_elems, lambda e: self.vector_work(step, op, e),
                                 reads + r2, writes + w2)

    # ------------------------------------------------------------ reporting
    def _notes(self, trace: Trace) -> None:
        p = self.params
        g = self.grid
        pe = self.pe
        self.notes.append(f"{self.name}: {self.dataflow}")
        self.notes.append(
            f"{self.n_pes} PEs of {p.group_size} {self.inlier_event} + {p.outlier_lanes} {self.raw_event} multipliers "
            f"({self.pe_units} bit-product units each, A-35; budget {self.hw.budget_units()} units, "
            f"{self.unused_units} unused), mapped on the common {g.rows}×{g.cols} grid: "
            f"{pe.lanes_int3:.4g} delta-path / {pe.lanes_fp16:.4g} raw-path lanes per position (A-37"
            + (f"; raw work on the inlier lanes, {p.raw_on_inlier_passes} passes, A-43)" if p.raw_on_inlier_passes else ")"))
        self.notes.append(f"first step (A-4): {p.first_step}; SFU {self.sfu_lanes} elements/cycle (A-6)")
        self.notes.append(self._residency_note())
        if p.outlier_array == "async":
            self.notes.append(f"AsyncPE (A-44): a separate outlier array of {self.n_pes * p.outlier_lanes} fp16×fp16 "
                              f"multipliers computes every outlier product (MACs·ρ_in) in the post stage; nothing clipped")
        elif not self.count_clipping:
            self.notes.append(f"outlier clipping not counted: the trace's histogram is for {HIST_GROUP}-element "
                              f"groups of int3 inliers, the PE has {p.group_size} int{p.pe_inlier_bits} lanes")
        if {op.kind for op in trace.ops} & {"silu", "gelu"}:
            self.notes.append("the trace has SiLU/GELU: the sign mask is applied to them as to ReLU "
                              "(the paper retrains with ReLU; use the ReLU trace)")
        ndp = ("; the NDP engine's bank time: its in-bank read-add-write takes no bank time and "
               "causes no bank conflicts with channel requests (A-7; energy at "
               f"{p.ndp_pj_per_bit} pJ/bit); zero-aware compression (camd.dy_zero_frac unused); "
               "the NDP's sign refresh through linear ops between a layer and its ReLU (add, "
               "linearised GroupNorm) is folded into its per-layer in-bank bytes") if self.ndp_kinds else ""
        self.notes.append("not modelled in the timing: quality effects of sign flips and clipping (the "
                          "paper's PE has a numerics emulation: `difftlm quality`, `compare --quality`)" + ndp)

    def _residency_note(self) -> str:
        size = ("the larger of fp16 and the compressed delta at the outlier budget"
                if self.params.residency_size == "max"
                else "the compressed delta at the outlier budget (step 0's fp16 tensors over-subscribe it)")
        return (f"inter-op tensors (A-2 revised): the shared residency rule (A-38), each planned at {size}; "
                f"a spilled tensor moves in its per-step form (fp16 at step 0 and in the raw domain, the "
                f"compressed delta at the measured ρ after). Raw NDP-maintained tensors, signs, GroupNorm "
                f"constants and attention raw operands are DRAM-side state")

    _COUNTS = ("outlier_groups", "clipped_groups", "clipped_outliers_min")

    def step_counts(self) -> dict[str, float]:
        return {k: getattr(self, k) for k in self._COUNTS}

    def set_step_counts(self, counts: dict[str, float]) -> None:
        for k in self._COUNTS:
            if k in counts:
                setattr(self, k, counts[k])

    def report(self) -> dict[str, Any]:
        out = super().report()
        out.update({
            "camd_variant": self.name,
            "pe_count": self.n_pes,
            "pe_units_each": self.pe_units,
            "compute_budget_units": self.hw.budget_units(),
            "compute_unused_units": self.unused_units,
            "pe_lanes_int3_per_position": self.pe.lanes_int3,
            "pe_lanes_fp16_per_position": self.pe.lanes_fp16,
            "outlier_groups": self.outlier_groups,
            "clipped_groups": self.clipped_groups,
            "clipped_outliers_min": self.clipped_outliers_min,
        })
        return out


@design("cambricon_d.per_layer")
class CambriconDPerLayer(CambriconD):
    """Cambricon-D PE with the per-layer raw read/merge/write dataflow MHDiff describes."""

    Params = CambriconDPerLayerParams
    dataflow = ("per-layer raw read/merge/write (MHDiff's view, dataflows.md §3.7 mhdiff_view; "
                "with keep_input the Diffy-style §3.4 dataflow): raw tensors re-read and written "
                "every MAC layer of every step, A-10")
    ndp_kinds: tuple[str, ...] = ()

    def _bpe(self, tensor: int, first: bool, rho: float) -> float:
        """Every inter-op tensor is raw at b bits (A-10); the network input at A-5."""
        p = self.params
        return p.input_delta_bits / 8 if tensor < 0 else p.per_layer_bits / 8

    @property
    def _out_is_state(self) -> bool:
        """Whether the Y_t state write is the layer's output itself (MHDiff's view)."""
        p = self.params
        return p.write_out_state and p.out_state_bits in (None, p.per_layer_bits)

    def _mac_state(self, step: int, op: OpRecord) -> tuple[list[Stream], list[Stream], list[Stream], int]:
        """Cross-step state in DRAM, every MAC layer of every step: X_{t−1} read (by input
        share); Y_{t−1} read, and the X_t (`keep_input`) and Y_t (`write_out_state`) writes for
        the next step (by output share; none after the last step except MHDiff's Y_t, which is
        also the layer's output)."""
        p = self.params
        xb = p.per_layer_bits / 8
        yb = (p.out_state_bits or p.per_layer_bits) / 8
        first = step == 0
        attn = op.kind in _ATTN
        in_reads, out_reads, writes = [], [], []
        if not attn:
            nb = nbytes(op.in_elems, xb)
            base = self._region("prev_act", op.op_id, nb)
            if not first:
                in_reads.append(Stream("prev_act", "dram", base, nb))
            if p.keep_input and not self._last:
                writes.append(Stream("keep_act", "dram", base, nb))
        if op.kind != "matmul_qk":
            nb = nbytes(op.out_elems, yb)
            base = self.addr.output[op.op_id] if self._out_is_state else self._region("prev_out", op.op_id, nb)
            if not first and (not attn or p.attn_read_prev_out):
                out_reads.append(Stream("prev_out", "dram", base, nb))
            if self._out_is_state:
                writes.append(Stream("out", "dram", base, nb))
            elif p.write_out_state and not self._last:
                writes.append(Stream("keep_out", "dram", base, nb))
        return in_reads, out_reads, writes, 0

    def _write_output(self, step: int, op: OpRecord) -> bool:
        """With MHDiff's view Y_t is written to DRAM anyway (where a consumer of a spilled tensor
        reads it), so the standard output goes only to an on-chip residency copy (and QKᵀ's
        scores anywhere); otherwise the common rule."""
        if op.kind == "matmul_qk" or not self._out_is_state:
            return self.onchip_need[op.op_id]
        return self.onchip_need[op.op_id] and self.builder.source(op.op_id) == "global"

    def _residency_note(self) -> str:
        p = self.params
        state = ["X_(t-1) read"] + (["X_t write"] if p.keep_input else []) + ["Y_(t-1) read"]
        state += [f"Y_t write at {p.out_state_bits or p.per_layer_bits} bits"] if p.write_out_state else []
        return (f"inter-op tensors: the shared residency rule (A-38), raw at {p.per_layer_bits} bits "
                f"(A-10); per MAC layer DRAM-side state: {', '.join(state)}"
                + (" (a spilled MAC output is read from Y_t, not written twice)" if self._out_is_state else ""))

    def _vector_state(self, step: int, op: OpRecord) -> tuple[list[Stream], list[Stream]]:
        """Raw tensors move every layer here, so vector ops need no signs or GroupNorm constants."""
        return [], []

    def vector_work(self, step: int, op: OpRecord, elements: int) -> dict[str, Any]:
        if op.kind in _ACTS:
            return {"main": ("sfu", SfuWork("relu", elements))}
        return {"main": ("vector", VectorWork(op.kind, elements))}


_FP16 = dict(weight_bits=16, attn_raw_bits=16, input_delta_bits=16, inlier_mult_units=33, outlier_mult_units=121)
_DIFFY_PE = dict(pe_inlier_bits=5, inlier_mult_units=55, outlier_lanes=0, raw_on_inlier_passes=4)
_DIFFY_DF = dict(per_layer_bits=16, keep_input=True, write_out_state=False)

register_variant("cambricon_d.per_layer_fp16w", "cambricon_d.per_layer",
                 "MHDiff's view with the paper's fp16 weights and raw operands (the pre-issue-19 per_layer)",
                 **_FP16)
register_variant("cambricon_d.diffy_df", "cambricon_d.per_layer",
                 "DiffyDF (Cambricon-D Sec. 3.7, Fig. 6a): Diffy-style per-layer raw fp16 re-reads, Cambricon-D PE",
                 **_FP16, **_DIFFY_DF)
register_variant("cambricon_d.diffy_pe", "cambricon_d",
                 "DiffyPE (Cambricon-D Sec. 3.7): sign-mask dataflow on a Diffy-like int5 PE without outliers (A-42, A-43)",
                 **_DIFFY_PE)
register_variant("cambricon_d.async_pe", "cambricon_d",
                 "AsyncPE (Cambricon-D Sec. 3.7): sign mask, separate asynchronous outlier array (A-44)",
                 outlier_array="async")
register_variant("cambricon_d.diffy_all", "cambricon_d.per_layer",
                 "DiffyAll (Cambricon-D Sec. 3.7): Diffy-style dataflow on the Diffy-like int5 PE",
                 **{**_FP16, **_DIFFY_DF, **_DIFFY_PE})
register_variant("cambricon_d.ditto_view", "cambricon_d.per_layer",
                 "Ditto's reading of Cambricon-D (dataflows.md §6.7): 8-bit differences on int8 MACs, no zero "
                 "skip or dynamic width, previous-frame re-reads (A-45)",
                 group_size=1, outlier_lanes=0, inlier_mult_units=64, pe_inlier_bits=8, raw_on_inlier_passes=1,
                 keep_input=True, out_state_bits=16)
