"""`cambricon_d` (ISCA 2024, dataflows.md §3) and `cambricon_d.per_layer` (MHDiff's view, §3.7).

`cambricon_d` — the paper's sign-mask dataflow. After the first step every tensor between ops is a
temporal delta held on chip. Per (step, op):
- conv/linear: fp16 weights read (tiler slices); the PE array computes W·dX on int3 inliers + fp16
  outliers (⌈N·H'·W'/rows⌉·⌈K/cols⌉·⌈C·R·S/group⌉ cycles per tile); the output delta leaves
  through the compression unit: W_delta = E_out·((1−ρ_out)·b_inl + ρ_out·16 + 1)/8 bytes
  (ρ_out = the trace's `camd.rho_out`, b_inl = A-1), and the NDP engine applies it in the banks
  (in-bank E_out·(2+2) + E_out/8 bytes, off the channel, A-7).
- ReLU: an AND with the previous step's signs, read as a 1-bit tensor (⌈E/8⌉ bytes) in the SFU.
- GroupNorm/LayerNorm: linearised; a per-(image, channel) scale and shift read per step.
- add, resampling, concat, mul: linear, run on deltas on chip.
- attention (A-3): QKᵀ reads raw fp16 Q and K, PV raw fp16 V, on the fp16×fp16 multipliers; the
  scores and softmax stay raw on chip; PV reads the previous raw output O_{t−1} (E_out·2) and
  writes the compressed dO.
- skip connections and tensors too big for the activation buffer (A-2): spilled as compressed
  deltas (one write at the producer, one read at each consumer that is not in the same layer).
- U-Net input (A-5): dx_t streamed at E_in·2 bytes.
- first step (A-4): raw fp16 on the fp16 multipliers (or at delta-path speed), writing the initial
  raw Y (E_out·2) of every NDP-maintained tensor and the initial signs (⌈E/8⌉ at each ReLU).

`cambricon_d.per_layer` — the per-layer raw read/merge/write dataflow MHDiff describes: every MAC
layer of every step after the first reads X_{t−1} (E_in·b/8) and Y_{t−1} (E_out·b/8) and writes
Y_t (E_out·b/8), b = A-10; non-linear ops run on raw values on chip; no signs, no NDP.
"""

from __future__ import annotations

import bisect
import math
from typing import Any, Iterator

import attrs
import simpy

from tlm import ActivityRecorder, Module, TargetSocket
from workloads import OpRecord, Trace
from workloads.errors import TraceError

from ..addresses import AddressMap
from ..components.cambricon import (
    HIST_GROUP, CamdTile, NdpEngine, OutlierPeArray, SfuWork, SignMaskSfu, compressed_bytes,
)
from ..components.vector_unit import VectorUnit, VectorWork
from ..config import (
    BufferConfig, BuffersConfig, HardwareConfig, MemoryConfig, PeArrayConfig, VectorUnitConfig,
    ceil_div, kib,
)
from ..errors import ConfigError
from ..pipeline import Access, TileJob
from ..tiling import Precision, plan_tiles
from .base import Design, design

_pos = attrs.validators.gt(0)


def _opt_pos(_inst, attr, value):
    if value is not None and value <= 0:
        raise ValueError(f"{attr.name} must be positive or None, got {value!r}")


@attrs.frozen
class CambriconDParams:
    pe_rows: int | None = attrs.field(default=None, validator=_opt_pos)
    """PE rows (the N·H'·W' dimension). None: as many as the compute budget allows given
    `pe_cols` (assumption A-35 bit-product proxy); an explicit value over budget is an error."""
    pe_cols: int = attrs.field(default=2, validator=_pos)
    """PE columns (the Cout dimension). Common config: 2 columns × 13 rows = all 26 PEs that fit."""
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
    spill_outliving_tensors: bool = True
    """Assumption A-2: tensors that outlive their layer (skip connections, residuals) or do not
    fit the activation buffer are spilled as compressed deltas: one write, one read per later
    consumer. False keeps every tensor on chip (capacity still checked)."""
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
    (its read-add-write is charged to DRAM energy and bank occupancy, not channel time)."""
    ndp_pj_per_bit: float = attrs.field(default=1.0, validator=attrs.validators.ge(0))
    """Assumption A-7: in-bank energy per bit the NDP engine moves (array access without I/O;
    a modelling default, not from the paper)."""
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


@attrs.frozen
class CambriconDPerLayerParams(CambriconDParams):
    per_layer_bits: int = attrs.field(default=8, validator=_pos)
    """Assumption A-10: bits per element of the raw tensors the per-layer dataflow reads
    (X_{t−1}, Y_{t−1}) and writes (Y_t) in every layer (int8 at MHDiff's scale)."""


_PE_PAPER = {"pe_rows": 128, "pe_cols": 128, "sfu_elems_per_cycle": 128}


@attrs.define(slots=True)
class _TileT:
    """Static part of one MAC tile (the same every step)."""

    w_load: int
    in_load: int
    in_free: int
    w_free: int
    acc_alloc: int
    acc_free: int
    out_elems: int
    w_off: int
    work: CamdTile


@attrs.define(slots=True)
class _MacT:
    tiles: list[_TileT]
    in_cum: list[int]
    out_cum: list[int]
    n_groups: int


def _split(total: int, cum: list[int]) -> list[int]:
    """Split `total` bytes over tiles by cumulative shares `cum` (ints, last = denominator)."""
    den = cum[-1]
    if not total:
        return [0] * len(cum)
    if not den:
        out = [0] * len(cum)
        out[0] = total
        return out
    out, prev = [], 0
    for c in cum:
        v = total * c // den
        out.append(v - prev)
        prev = v
    return out


@design("cambricon_d")
class CambriconD(Design):
    """Cambricon-D, the paper's sign-mask dataflow with near-memory delta updates."""

    Params = CambriconDParams
    trace_activation = "relu"
    variant = "paper (sign mask + NDP, dataflows.md §3.3)"

    def __init__(self, hw: HardwareConfig, params: dict[str, Any] | None = None):
        super().__init__(hw, params)
        p = self.params
        self.pe_units = p.group_size * p.inlier_mult_units + p.outlier_lanes * p.outlier_mult_units
        budget = hw.budget_units()
        fit = budget // self.pe_units
        if p.pe_rows is None:
            rows = fit // p.pe_cols
            if rows < 1:
                raise ConfigError(
                    f"{self.name}: a PE of {p.group_size} int3×fp16 + {p.outlier_lanes} fp16×fp16 "
                    f"multipliers costs {self.pe_units} bit-product units; {p.pe_cols} column(s) "
                    f"need {self.pe_units * p.pe_cols}, the compute budget is {budget} (A-35)")
        else:
            rows = p.pe_rows
            if rows * p.pe_cols > fit:
                raise ConfigError(
                    f"{self.name}: {rows}×{p.pe_cols} PEs of {self.pe_units} bit-product units need "
                    f"{rows * p.pe_cols * self.pe_units}, the compute budget is {budget} (A-35); "
                    f"at most {fit} PEs fit")
        self.rows, self.cols = rows, p.pe_cols
        self.n_pes = rows * p.pe_cols
        self.unused_units = budget - self.n_pes * self.pe_units
        self.sfu_lanes = p.sfu_elems_per_cycle or hw.vector.lanes
        self.clipped_groups = 0.0
        self.clipped_outliers_min = 0.0
        self.outlier_groups = 0.0
        self.ndp_bytes = 0
        self.spill_bytes = 0

    @classmethod
    def paper_hw(cls) -> HardwareConfig:
        """128×128 PEs (60 int3×fp16 + 4 fp16×fp16), 1 GHz, 64/64/32 MB input/weight/output
        SRAM, 1.5 TB/s DRAM as the `ideal` model (type NOT FOUND in the paper)."""
        pe_units = 60 * 33 + 4 * 121
        mib = 1024
        return HardwareConfig(
            name="cambricon_d-paper", freq_mhz=1000.0, node_nm=7,
            pe_array=PeArrayConfig(rows=128, cols=128, lanes=60),
            buffers=BuffersConfig(
                global_buffer=BufferConfig(1, double_buffer=False),
                activation=BufferConfig(64 * mib, bytes_per_cycle=1024),
                weight=BufferConfig(64 * mib, bytes_per_cycle=1024),
                output=BufferConfig(32 * mib, bytes_per_cycle=1024),
            ),
            vector=VectorUnitConfig(lanes=128),
            memory=MemoryConfig("ideal", {"bandwidth_gbps": 1500.0}),
            weight_residency="never",
            compute_budget_units=128 * 128 * pe_units,
            designs={"cambricon_d": dict(_PE_PAPER), "cambricon_d.per_layer": dict(_PE_PAPER)},
        )

    # ----------------------------------------------------------------- build
    def _make_units(self, top: Module) -> dict[str, Module]:
        p = self.params
        return {
            "pe": OutlierPeArray("pe_array", top, self.rows, self.cols, p.group_size, max(1, p.outlier_lanes)),
            "vector": VectorUnit("vector_unit", top, self.hw.vector),
            "sfu": SignMaskSfu("sfu", top, self.sfu_lanes),
        }

    ndp_kinds: tuple[str, ...] = ("delta",)

    def write_target(self, env: simpy.Environment, top: Module, recorder: ActivityRecorder,
                     n_ops: int) -> TargetSocket:
        """Writes go through the near-memory engine, which forwards them to DRAM (A-7)."""
        self.recorder = recorder
        self.ndp = NdpEngine("ndp", top, env, recorder, n_ops, self.ndp_kinds, self.params.ndp_internal_gbps)
        self.ndp.to_dram.bind(self.dram.target)
        return self.ndp.target

    def make_units(self, top: Module) -> dict[str, Module]:
        units = self._make_units(top)
        self.sfu = units["sfu"]
        return units

    def _weights_total(self, trace: Trace) -> int:
        return sum(op.w_elems for op in trace.ops if op.kind in ("conv2d", "linear")) * self.params.weight_bits // 8

    def _resident(self, trace: Trace) -> bool:
        policy = self.hw.weight_residency
        need = self._weights_total(trace)
        fits = need <= self.hw.buffers.global_buffer.capacity_bytes
        if policy == "always" and not fits:
            raise ConfigError(f"weight_residency = 'always' but the fp16 weights ({kib(need)}) exceed "
                              f"the global buffer; use 'auto' or 'never'")
        return policy == "always" or (policy == "auto" and fits)

    def uses_global_source(self, trace: Trace) -> bool:
        return self._resident(trace) and trace.n_steps > 1

    # ------------------------------------------------------------- analysis
    def _analyse(self, trace: Trace) -> None:
        """Static graph facts: on-chip vs DRAM edges, skip edges (A-2), raw-domain ops, plans."""
        p = self.params
        ops = trace.ops
        n = len(ops)
        self.ops = ops
        anc = [0] * n
        for op in ops:
            a = 0
            for q in op.preds:
                a |= anc[q] | (1 << q)
            anc[op.op_id] = a
        macs = [op.op_id for op in ops if op.is_mac]
        # raw-domain tensors: attention scores and what is computed from them only
        raw = [False] * n
        for op in ops:
            raw[op.op_id] = op.kind == "matmul_qk" or (
                not op.is_mac and bool(op.preds) and all(raw[q] for q in op.preds))
        self.raw_dom = raw
        # on-chip edges: (producer, consumer); attention operands read raw from DRAM are not
        onchip: list[tuple[int, int]] = []
        for op in ops:
            for idx, q in enumerate(op.preds):
                if op.kind == "matmul_qk" or (op.kind == "matmul_pv" and idx > 0):
                    continue
                onchip.append((q, op.op_id))

        def outlives(q: int, c: int) -> bool:
            lo, hi = bisect.bisect_right(macs, q), bisect.bisect_left(macs, c)
            for m in macs[lo:hi]:
                if not (anc[c] >> m) & 1 or (anc[m] >> q) & 1:
                    return True
            return False

        cap = self.hw.buffers.activation.capacity_bytes
        budget_rho = p.outlier_lanes / p.group_size
        self.far: dict[bool, dict[int, list[int]]] = {}
        self.far_in: dict[bool, dict[int, list[int]]] = {}
        for first in (True, False):
            far: dict[int, list[int]] = {}
            for q, c in onchip:
                e = ops[q].out_elems
                size = e * 2 if (first or raw[q]) else self._onchip_delta_bytes(e, budget_rho)
                if size > cap or (p.spill_outliving_tensors and outlives(q, c)):
                    far.setdefault(q, []).append(c)
            if not p.spill_outliving_tensors:
                big = [q for q in far if far[q]]
                if big:
                    op = ops[big[0]]
                    raise ConfigError(
                        f"{self.name}: spill_outliving_tensors = false but op {op.op_id} ({op.name})'s "
                        f"output does not fit the activation buffer ({kib(cap)})")
            self.far[first] = far
            fin: dict[int, list[int]] = {}
            for q, cs in far.items():
                for c in cs:
                    fin.setdefault(c, []).append(q)
            self.far_in[first] = fin
        # tile templates
        b = self.buffers
        ab, wb = b["act"].tile_budget, b["weight"].tile_budget
        ob = b["out"].tile_budget
        delta_in = (p.inlier_bits + 1 + budget_rho * p.outlier_bits) / 8
        w_bytes = p.weight_bits / 8
        prec_delta = Precision(delta_in, w_bytes, 1.0, p.acc_bytes)
        prec_raw = Precision(2.0, w_bytes, 1.0, p.acc_bytes)
        prec_attn = Precision(p.attn_raw_bits / 8, p.attn_raw_bits / 8, 1.0, p.acc_bytes)
        self.tmpl: dict[tuple[int, bool], _MacT] = {}
        for op in ops:
            if not op.is_mac:
                continue
            attn = op.kind in ("matmul_qk", "matmul_pv")
            for first in (True, False):
                prec = prec_attn if attn else (prec_raw if first else prec_delta)
                if not first and attn and (op.op_id, True) in self.tmpl:
                    self.tmpl[(op.op_id, False)] = self.tmpl[(op.op_id, True)]
                    continue
                mode = "fp16" if (attn or (first and p.first_step == "fp16_path")) else "int3"
                plan = plan_tiles(op, prec, ab, wb, ob, self.cols)
                self.tmpl[(op.op_id, first)] = self._template(op, plan, prec, mode)

    def _template(self, op: OpRecord, plan, prec: Precision, mode: str) -> _MacT:
        g = plan.geom
        tiles, in_cum, out_cum = [], [], []
        ci = co = 0
        set_w = g.n_out * g.red_ch * g.red_per_ch
        for t in plan.tiles:
            out_e = t.out_write  # out_bytes = 1: elements
            k = (t.c1 - t.c0) * g.red_per_ch
            w_off = int((t.set * set_w + t.n0 * g.red_ch * g.red_per_ch + t.c0 * (t.n1 - t.n0) * g.red_per_ch) * prec.weight_bytes)
            tiles.append(_TileT(t.w_load, t.in_load, t.in_free, t.w_free, t.acc_alloc, t.acc_free,
                                out_e, w_off, CamdTile(t.m * g.row_px, t.n1 - t.n0, k, mode)))
            ci += t.in_load
            co += out_e
            in_cum.append(ci)
            out_cum.append(co)
        if op.kind in ("conv2d", "linear"):
            n_groups = g.images * g.out_rows * g.row_px * ceil_div(g.red_ch * g.red_per_ch, HIST_GROUP)
        else:
            n_groups = 0
        return _MacT(tiles, in_cum, out_cum, n_groups)

    def _onchip_delta_bytes(self, elements: int, rho: float) -> int:
        p = self.params
        return compressed_bytes(elements, rho, p.inlier_bits, p.outlier_bits)

    # ----------------------------------------------------------- per step
    def _rho(self, st, op_id: int, memo: dict[int, float]) -> float:
        r = memo.get(op_id)
        if r is not None:
            return r
        op = self.ops[op_id]
        if op.is_mac:
            try:
                r = st.scalars["camd.rho_out"][op_id]
            except KeyError:
                raise TraceError(f"statistic 'camd.rho_out' is missing for op {op_id} ({op.name}) at "
                                 f"step {self._step}; {self.name} needs it at every step after the first") from None
        elif op.preds:
            r = max(self._rho(st, q, memo) for q in op.preds)
        else:
            r = 1.0
        memo[op_id] = r
        return r

    def _tensor_bytes(self, st, op_id: int, first: bool, memo) -> int:
        """Bytes of op `op_id`'s output in its inter-layer form (spill size, A-2)."""
        e = self.ops[op_id].out_elems
        if first or self.raw_dom[op_id]:
            return e * 2
        return self._onchip_delta_bytes(e, self._rho(st, op_id, memo))

    def jobs(self, trace: Trace, progress=None) -> Iterator[TileJob]:
        p = self.params
        self._analyse(trace)
        self.addr = AddressMap(trace.ops, p.raw_bits / 8, p.weight_bits / 8)
        self._region: dict[tuple[str, int], int] = {}
        self._top = self.addr.size
        resident = self._resident(trace)
        self._notes(trace, resident)
        self.ndp.ratio.clear()
        for step in range(trace.n_steps):
            self._step = step
            st = trace.step(step)
            memo: dict[int, float] = {}
            w_src = "global" if resident and step > 0 else "dram"
            for op in trace.ops:
                if step > 0 and p.cross_attn_kv_once and op.cross_attn_kv:
                    continue
                if op.is_mac:
                    yield from self._mac_jobs(step, st, op, memo, w_src)
                else:
                    yield from self._vector_jobs(step, st, op, memo)
            if progress is not None:
                progress(step)

    def _base(self, kind: str, op_id: int, nbytes: int) -> int:
        key = (kind, op_id)
        a = self._region.get(key)
        if a is None:
            a = self._region[key] = self._top
            self._top += max(4096, -(-int(nbytes) // 4096) * 4096 * 2)
        return a

    # Byte rules (op-level totals); the per-layer variant overrides these.
    def _mac_bytes(self, step: int, st, op: OpRecord, memo) -> tuple[list, list, int]:
        """(reads by input share, writes by output share, in-bank NDP bytes) for a MAC op."""
        p = self.params
        first = step == 0
        in_reads: list[tuple[str, int, int]] = []
        out_rw: list[tuple[str, int, int, bool]] = []  # (kind, bytes, base, is_write)
        e_out = op.out_elems
        for q in self.far_in[first].get(op.op_id, ()):
            nb = self._tensor_bytes(st, q, first, memo)
            in_reads.append(("spill", nb, self._base("spill", q, nb)))
        if not op.preds:
            nb = math.ceil(op.in_elems * p.input_delta_bits / 8)
            in_reads.append(("input", nb, self.addr.network_input))
        ndp = 0
        if op.kind == "matmul_pv" and not first and p.attn_read_prev_out:
            out_rw.append(("attn_prev_out", e_out * p.raw_bits // 8, self.addr.output[op.op_id], False))
        if op.kind != "matmul_qk":
            if first:
                out_rw.append(("raw_out", e_out * p.raw_bits // 8, self.addr.output[op.op_id], True))
            else:
                nb = self._onchip_delta_bytes(e_out, self._rho(st, op.op_id, memo))
                out_rw.append(("delta", nb, self._base("delta", op.op_id, nb), True))
                ndp = e_out * 2 * p.raw_bits // 8 + ceil_div(e_out, 8)
        if self.far[first].get(op.op_id):
            nb = self._tensor_bytes(st, op.op_id, first, memo)
            out_rw.append(("spill", nb, self._base("spill", op.op_id, nb), True))
        return in_reads, out_rw, ndp

    def _mac_jobs(self, step: int, st, op: OpRecord, memo, w_src: str) -> Iterator[TileJob]:
        p = self.params
        first = step == 0
        tm = self.tmpl[(op.op_id, first)]
        attn = op.kind in ("matmul_qk", "matmul_pv")
        in_reads, out_rw, ndp = self._mac_bytes(step, st, op, memo)
        if ndp:
            wsum = sum(nb for k, nb, _, w in out_rw if w and k in self.ndp_kinds)
            if wsum:
                self.ndp.ratio[(step, op.op_id)] = ndp / wsum
            self.ndp_bytes += ndp
            self.events["ndp.bytes"] += ndp
        delta_mode = not first and not attn
        if delta_mode and tm.n_groups:
            hist = st.arrays.get("camd.group_outlier_hist", {}).get(op.op_id)
            if hist is not None and p.group_size == HIST_GROUP:
                over, clipped = self.pe.clipping(hist, tm.n_groups)
                self.clipped_groups += over
                self.clipped_outliers_min += clipped
                self.outlier_groups += tm.n_groups
                self.events["camd.clipped_groups"] += over
        mac_kind = "mac.int3xfp16" if tm.tiles[0].work.mode == "int3" else "mac.fp16"
        self.events[mac_kind] += op.macs
        for kind, nb, _b, _w in out_rw:
            if kind == "spill":
                self.spill_bytes += nb
        in_parts = [(k, _split(nb, tm.in_cum), base) for k, nb, base in in_reads if nb]
        out_parts = [(k, _split(nb, tm.out_cum), base, w) for k, nb, base, w in out_rw if nb]
        compress = not first and op.kind != "matmul_qk" and self.ndp_kinds
        if compress:
            self.events["sfu.elements"] += op.out_elems
        has_w = op.kind in ("conv2d", "linear")
        wkind = "weight" if has_w else "attn_raw"
        wsrc = w_src if has_w else "dram"
        w_base = self.addr.weight[op.op_id] if has_w else self.addr.output[op.preds[-1]]
        q_base = self.addr.output[op.preds[0]] if op.preds else self.addr.network_input
        offs = {}
        for i, t in enumerate(tm.tiles):
            reads, loads, frees, writes = [], [], [], []
            act = t.in_load
            if t.w_load:
                reads.append(Access(wsrc, wkind, w_base + t.w_off, t.w_load))
                loads.append(("weight", t.w_load))
            if op.kind == "matmul_qk" and t.in_load:
                o = offs.get("q", 0)
                reads.append(Access("dram", "attn_raw", q_base + o, t.in_load))
                offs["q"] = o + t.in_load
            for kind, parts, base in in_parts:
                nb = parts[i]
                if nb:
                    o = offs.get(kind, 0)
                    reads.append(Access("dram", kind, base + o, nb))
                    offs[kind] = o + nb
            extra = 0
            for kind, parts, base, w in out_parts:
                nb = parts[i]
                if not nb:
                    continue
                o = offs.get(kind + "w" * w, 0)
                offs[kind + "w" * w] = o + nb
                if w:
                    writes.append(Access("dram", kind, base + o, nb))
                else:
                    reads.append(Access("dram", kind, base + o, nb))
                    extra += nb
            if act + extra:
                loads.append(("act", act + extra))
            if t.in_free + extra:
                frees.append(("act", t.in_free + extra))
            if t.w_free:
                frees.append(("weight", t.w_free))
            work = {"main": ("pe", t.work)}
            if compress and t.out_elems:
                work["post"] = ("sfu", SfuWork("compress", t.out_elems))
            yield TileJob(step, op.op_id, work, t.work.macs, loads, reads, frees,
                          t.acc_alloc, writes, t.acc_free)

    def _spill_and_input_bytes(self, step: int, st, op: OpRecord, memo) -> tuple[list, list]:
        """A vector op's spilled inputs and network input (reads) and its own spill (writes), A-2/A-5."""
        first = step == 0
        reads: list[tuple[str, int, int]] = []
        writes: list[tuple[str, int, int]] = []
        for q in self.far_in[first].get(op.op_id, ()):
            nb = self._tensor_bytes(st, q, first, memo)
            reads.append(("spill", nb, self._base("spill", q, nb)))
        if not op.preds:
            reads.append(("input", math.ceil(op.in_elems * self.params.input_delta_bits / 8), self.addr.network_input))
        if self.far[first].get(op.op_id):
            nb = self._tensor_bytes(st, op.op_id, first, memo)
            writes.append(("spill", nb, self._base("spill", op.op_id, nb)))
        return reads, writes

    def _vector_bytes(self, step: int, st, op: OpRecord, memo) -> tuple[list, list]:
        """Spills and input, plus sign tensors at activations and GroupNorm constants."""
        p = self.params
        first = step == 0
        reads, spill_writes = self._spill_and_input_bytes(step, st, op, memo)
        writes: list[tuple[str, int, int]] = []
        if op.kind in ("relu", "silu", "gelu"):
            nb = ceil_div(op.in_elems, 8)
            (writes if first else reads).append(("sign", nb, self._base("sign", op.op_id, nb)))
        if op.kind in ("groupnorm", "layernorm") and not first and not self.raw_dom[op.op_id]:
            nb = op.n * op.c * p.gn_const_bytes_per_channel
            reads.append(("gn_const", nb, self._base("gn_const", op.op_id, nb)))
        return reads, writes + spill_writes

    def _vector_work(self, step: int, op: OpRecord, elems: int):
        if op.kind in ("relu", "silu", "gelu"):
            return ("sfu", SfuWork("relu" if step == 0 else "relu_mask", elems))
        if op.kind in ("groupnorm", "layernorm") and step > 0 and not self.raw_dom[op.op_id]:
            return ("vector", VectorWork("norm_linearised", elems))
        if op.kind == "concat":
            return None
        return ("vector", VectorWork(op.kind, elems))

    def _vector_jobs(self, step: int, st, op: OpRecord, memo) -> Iterator[TileJob]:
        reads, writes = self._vector_bytes(step, st, op, memo)
        for kind, nb, _ in writes:
            if kind == "spill":
                self.spill_bytes += nb
        rtot = sum(nb for _, nb, _ in reads)
        wtot = sum(nb for _, nb, _ in writes)
        n = max(1, ceil_div(rtot, self.buffers["act"].tile_budget), ceil_div(wtot, self.buffers["out"].tile_budget))
        e = op.out_elems if op.kind != "relu" else op.in_elems
        unit = "sfu" if op.kind in ("relu", "silu", "gelu") else "vector"
        if op.kind != "concat":
            self.events[f"{unit}.elements"] += e
        cum = [ceil_div(e * (i + 1), n) for i in range(n)] if e else [i + 1 for i in range(n)]
        r_parts = [(k, _split(nb, cum), base) for k, nb, base in reads if nb]
        w_parts = [(k, _split(nb, cum), base) for k, nb, base in writes if nb]
        prev_e = 0
        offs: dict[str, int] = {}
        for i in range(n):
            ce = (cum[i] - prev_e) if e else 0
            prev_e = cum[i]
            rd, wr = [], []
            for kind, parts, base in r_parts:
                if parts[i]:
                    o = offs.get(kind, 0)
                    rd.append(Access("dram", kind, base + o, parts[i]))
                    offs[kind] = o + parts[i]
            for kind, parts, base in w_parts:
                if parts[i]:
                    o = offs.get(kind + "w", 0)
                    wr.append(Access("dram", kind, base + o, parts[i]))
                    offs[kind + "w"] = o + parts[i]
            rb = sum(a.nbytes for a in rd)
            wb = sum(a.nbytes for a in wr)
            uw = self._vector_work(step, op, ce)
            work = {"main": uw} if uw is not None else {}
            yield TileJob(step, op.op_id, work, 0, [("act", rb)] if rb else [], rd,
                          [("act", rb)] if rb else [], wb, wr, wb)

    # ------------------------------------------------------------ reporting
    def _notes(self, trace: Trace, resident: bool) -> None:
        p = self.params
        self.notes.append(f"{self.name}: {self.variant}")
        self.notes.append(
            f"PE array {self.rows}×{self.cols} = {self.n_pes} PEs of {p.group_size} int3×fp16 + "
            f"{p.outlier_lanes} fp16×fp16 multipliers ({self.pe_units} bit-product units each, A-35); "
            f"budget {self.hw.budget_units()} units, {self.unused_units} unused")
        self.notes.append(f"first step (A-4): {p.first_step}; SFU {self.sfu_lanes} elements/cycle (A-6)")
        if resident:
            self.notes.append(f"fp16 weights resident in the global buffer after step 0 ({kib(self._weights_total(trace))})")
        if p.group_size != HIST_GROUP:
            self.notes.append(f"outlier clipping not counted: the trace's histogram is for {HIST_GROUP}-element "
                              f"groups, the PE's group is {p.group_size}")
        kinds = {op.kind for op in trace.ops}
        if kinds & {"silu", "gelu"}:
            self.notes.append("the trace has SiLU/GELU: the sign mask is applied to them as to ReLU "
                              "(the paper retrains with ReLU; use the ReLU trace)")
        ndp = ("; bank conflicts between NDP in-bank traffic and channel requests (A-7 keeps NDP "
               "off the channel); zero-aware compression (camd.dy_zero_frac unused); the NDP's sign "
               "refresh through linear ops between a layer and its ReLU (add, linearised GroupNorm) "
               "is folded into its per-layer in-bank bytes") if self.ndp_kinds else ""
        self.notes.append(
            "not modelled: quality effects of sign flips and clipping; on-chip residency checked "
            "per tensor against the activation buffer, not for all live tensors together" + ndp)

    def extra_summary(self) -> dict[str, Any]:
        p = self.params
        return {
            "camd_variant": self.name,
            "pe_count": self.n_pes,
            "pe_rows": self.rows,
            "pe_cols": self.cols,
            "pe_units_each": self.pe_units,
            "compute_budget_units": self.hw.budget_units(),
            "compute_unused_units": self.unused_units,
            "outlier_groups": self.outlier_groups,
            "clipped_groups": self.clipped_groups,
            "clipped_outliers_min": self.clipped_outliers_min,
            "spill_bytes": self.spill_bytes,
            "ndp_internal_bytes": self.ndp_bytes,
            "ndp_energy_pj": self.ndp_bytes * 8 * p.ndp_pj_per_bit,
            "ndp_busy_ns": self.recorder.busy_ps().get(self.ndp.name, 0) / 1000,
        }


@design("cambricon_d.per_layer")
class CambriconDPerLayer(CambriconD):
    """Cambricon-D PE with the per-layer raw read/merge/write dataflow MHDiff describes."""

    Params = CambriconDPerLayerParams
    variant = ("per-layer raw read/merge/write (MHDiff's description, dataflows.md §3.7 "
               "mhdiff_view): 2 raw reads + 1 raw write per MAC layer per step, A-10")
    ndp_kinds: tuple[str, ...] = ()

    def _tensor_bytes(self, st, op_id: int, first: bool, memo) -> int:
        return math.ceil(self.ops[op_id].out_elems * self.params.per_layer_bits / 8)

    def _mac_bytes(self, step: int, st, op: OpRecord, memo) -> tuple[list, list, int]:
        p = self.params
        b = p.per_layer_bits
        first = step == 0
        in_reads, out_rw = [], []
        for q in self.far_in[first].get(op.op_id, ()):
            nb = self._tensor_bytes(st, q, first, memo)
            in_reads.append(("spill", nb, self._base("spill", q, nb)))
        if not op.preds:
            in_reads.append(("input", math.ceil(op.in_elems * p.input_delta_bits / 8), self.addr.network_input))
        attn = op.kind in ("matmul_qk", "matmul_pv")
        if not first and not attn:
            in_reads.append(("prev_act", math.ceil(op.in_elems * b / 8), self._base("prev_act", op.op_id, op.in_elems)))
        if op.kind != "matmul_qk":
            nb = math.ceil(op.out_elems * b / 8)
            if not first and (not attn or p.attn_read_prev_out):
                out_rw.append(("prev_out", nb, self.addr.output[op.op_id], False))
            out_rw.append(("out", nb, self.addr.output[op.op_id], True))
        elif self.far[first].get(op.op_id):
            nb = self._tensor_bytes(st, op.op_id, first, memo)
            out_rw.append(("spill", nb, self._base("spill", op.op_id, nb), True))
        return in_reads, out_rw, 0

    def _vector_bytes(self, step: int, st, op: OpRecord, memo) -> tuple[list, list]:
        """Raw tensors move every layer here, so vector ops need no signs or GroupNorm constants."""
        return self._spill_and_input_bytes(step, st, op, memo)

    def _vector_work(self, step: int, op: OpRecord, elems: int):
        if op.kind in ("relu", "silu", "gelu"):
            return ("sfu", SfuWork("relu", elems))
        if op.kind == "concat":
            return None
        return ("vector", VectorWork(op.kind, elems))
