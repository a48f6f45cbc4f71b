"""`dense`: the int8 W8A8 baseline (dataflows.md §8.1).

Every MAC op is tiled by the common tiler; each tile reads its weight slice and input rows
(only when not already on chip), computes on the PE array, and its finished int8 outputs are
written back. Non-MAC ops run on the vector unit, reading their inputs from DRAM and writing
their outputs (no fusion with the producing layer); `concat` is layout only (producers write
into the concatenated tensor), so it moves no data. Weights are re-read from DRAM every step
unless the whole model fits in the global buffer (`hw.weight_residency`).
"""

from __future__ import annotations

from typing import Iterator

import attrs

from workloads import OpRecord, Trace

from ..addresses import AddressMap
from ..components.pe_array import GemmTile
from ..components.vector_unit import VectorWork
from ..config import kib
from ..errors import ConfigError
from ..pipeline import Access, TileJob
from ..tiling import Precision, TilePlan, plan_tiles
from .base import Design, design


@attrs.frozen
class DenseParams:
    act_bytes: float = 1.0
    """Bytes per activation element in DRAM and buffers (int8)."""
    weight_bytes: float = 1.0
    """Bytes per weight (int8, per-output-channel scales folded into requantization)."""
    acc_bytes: int = 4
    """Bytes per partial-sum accumulator held in the output buffer (int32)."""


def weight_bytes_total(ops: list[OpRecord], weight_bytes: float) -> int:
    return int(sum(op.w_elems * weight_bytes for op in ops if op.kind in ("conv2d", "linear")))


@design("dense")
class Dense(Design):
    """Dense int8 baseline."""

    Params = DenseParams

    def _resident(self, trace: Trace) -> bool:
        policy = self.hw.weight_residency
        need = weight_bytes_total(trace.ops, self.params.weight_bytes)
        fits = need <= self.hw.buffers.global_buffer.capacity_bytes
        if policy == "always" and not fits:
            raise ConfigError(
                f"weight_residency = 'always' but the model's weights ({kib(need)}) exceed the global "
                f"buffer ({kib(self.hw.buffers.global_buffer.capacity_bytes)}); use 'auto' or 'never'"
            )
        return policy == "always" or (policy == "auto" and fits)

    def uses_global_source(self, trace: Trace) -> bool:
        return self._resident(trace) and trace.n_steps > 1

    def plan_all(self, trace: Trace) -> dict[int, TilePlan]:
        """Tile plans of every MAC op at this design's precision and buffer budgets."""
        p = self.params
        prec = Precision(p.act_bytes, p.weight_bytes, p.act_bytes, p.acc_bytes)
        b = self.buffers
        self.plans = {
            op.op_id: plan_tiles(op, prec, b["act"].tile_budget, b["weight"].tile_budget,
                                 b["out"].tile_budget, self.hw.pe_array.cols)
            for op in trace.ops if op.is_mac
        }
        return self.plans

    def prepare(self, trace: Trace) -> tuple[AddressMap, dict[int, TilePlan], bool]:
        """Address map, tile plans and weight residency of a run (noted when resident)."""
        p = self.params
        resident = self._resident(trace)
        if resident:
            self.notes.append(
                f"weights resident in the global buffer after step 0 "
                f"({kib(weight_bytes_total(trace.ops, p.weight_bytes))})"
            )
        return AddressMap(trace.ops, p.act_bytes, p.weight_bytes), self.plan_all(trace), resident

    def jobs(self, trace: Trace, progress=None) -> Iterator[TileJob]:
        addr, plans, resident = self.prepare(trace)
        sram_reads = {op_id: plan.sram_read_bytes for op_id, plan in plans.items()}
        for step in range(trace.n_steps):
            w_source = "global" if resident and step > 0 else "dram"
            for op in trace.ops:
                if op.is_mac:
                    self.events["mac.int8"] += op.macs
                    for buf, nbytes in sram_reads[op.op_id].items():
                        self.events[f"sram.{buf}.read_bytes"] += nbytes
                    yield from self._mac_jobs(step, op, plans[op.op_id], addr, w_source)
                elif op.kind != "concat":
                    self.events["vector.elements"] += op.out_elems
                    yield from self._vector_jobs(step, op, addr)
            if progress is not None:
                progress(step)

    def _mac_jobs(self, step: int, op: OpRecord, plan: TilePlan, addr: AddressMap,
                  w_source: str) -> Iterator[TileJob]:
        g = plan.geom
        has_weights = op.kind in ("conv2d", "linear")
        in_base = addr.input_of(op, 0)
        w_base = addr.weight[op.op_id] if has_weights else addr.input_of(op, 1)
        w_kind = "weight" if has_weights else "act"
        w_src = w_source if has_weights else "dram"
        out_base = addr.output[op.op_id]
        set_in = g.images * g.in_rows * g.in_row_px * g.red_ch
        set_w = g.n_out * g.red_ch * g.red_per_ch
        for t in plan.tiles:
            reads, loads, frees = [], [], []
            if t.in_load:
                a = in_base + t.set * set_in + (t.image * g.in_rows + g.in_span(t.r0, t.r1)[0]) * g.in_row_px * g.red_ch + t.c0
                reads.append(Access("dram", "act", a, t.in_load))
                loads.append(("act", t.in_load))
            if t.w_load:
                a = w_base + t.set * set_w + t.n0 * g.red_ch * g.red_per_ch + t.c0 * (t.n1 - t.n0) * g.red_per_ch
                reads.append(Access(w_src, w_kind, a, t.w_load))
                loads.append(("weight", t.w_load))
            if t.in_free:
                frees.append(("act", t.in_free))
            if t.w_free:
                frees.append(("weight", t.w_free))
            writes = []
            if t.out_write:
                a = out_base + ((t.set * g.images + t.image) * g.out_rows + t.r0) * g.row_px * g.n_out + t.n0
                writes.append(Access("dram", "out", a, t.out_write))
            work = GemmTile(t.m * g.row_px, t.n1 - t.n0, (t.c1 - t.c0) * g.red_per_ch)
            yield TileJob(step, op.op_id, {"main": ("pe", work)}, work.macs, loads, reads, frees,
                          t.acc_alloc, writes, t.acc_free)

    def _vector_jobs(self, step: int, op: OpRecord, addr: AddressMap) -> Iterator[TileJob]:
        ab = self.params.act_bytes
        in_per_out = op.in_elems / op.out_elems
        budget = min(self.buffers["act"].tile_budget / (in_per_out * ab),
                     self.buffers["out"].tile_budget / ab)
        chunk = int(budget)
        if chunk < 1:
            raise ConfigError(f"op {op.op_id} ({op.name}): no element fits the buffers")
        srcs = op.preds or (-1,)
        src_share = [1.0 / len(srcs)] * len(srcs)
        for e0 in range(0, op.out_elems, chunk):
            n = min(chunk, op.out_elems - e0)
            in_bytes = int(n * in_per_out * ab)
            reads = []
            for operand, share in enumerate(src_share):
                nb = int(in_bytes * share)
                if nb:
                    reads.append(Access("dram", "act", addr.input_of(op, operand) + int(e0 * in_per_out * share * ab), nb))
            out_bytes = int(n * ab)
            writes = [Access("dram", "out", addr.output[op.op_id] + int(e0 * ab), out_bytes)]
            total_in = sum(r.nbytes for r in reads)
            yield TileJob(step, op.op_id, {"main": ("vector", VectorWork(op.kind, n))}, 0,
                          [("act", total_in)], reads, [("act", total_in)], out_bytes, writes, out_bytes)
