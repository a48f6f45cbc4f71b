"""The one job builder every design uses: tiles and vector ops → `TileJob`s.

Addresses follow one formula (`offsets`, in elements, converted to bytes once per access with
the tensor's bytes per element); a tile's loads, frees and output space come from the tiler's
`Tile` fields, so they balance by construction; the source of every operand (DRAM or the
on-chip residency store) comes from the run's `ResidencyPlan` and the weight-residency rule.
A design passes only what truly differs: its formats, its units' work, and the extra state its
paper specifies (`extra_reads` / `extra_writes`).
"""

from __future__ import annotations

import math
from itertools import accumulate
from typing import Any, Callable, Iterable, Iterator, Sequence

import attrs

from workloads.schema import OpRecord

from .addresses import AddressMap
from .config import ceil_div
from .errors import ConfigError
from .pipeline import Access, TileJob
from .residency import ResidencyPlan
from .tiling import Geometry, Tile


def nbytes(elements: float, bytes_per_element: float) -> int:
    """Bytes of `elements` at `bytes_per_element` (rounded up to whole bytes)."""
    return math.ceil(elements * bytes_per_element - 1e-9)


@attrs.frozen
class Formats:
    """Bytes per element of a MAC op's tensors where they are stored (DRAM or the residency
    store): its input, its weights (or second operand) and its output."""

    act: float = 1.0
    weight: float = 1.0
    out: float = 1.0


@attrs.frozen
class Offsets:
    """Element offsets of a tile's input, weight and output slices in their tensors."""

    input: int
    weight: int
    output: int


def offsets(g: Geometry, t: Tile) -> Offsets:
    """The tiled layout: each tile's slice is contiguous at these element offsets."""
    set_in = g.images * g.in_rows * g.in_row_px * g.red_ch
    set_w = g.n_out * g.red_ch * g.red_per_ch
    lo = g.in_span(t.r0, t.r1)[0]
    return Offsets(
        input=t.set * set_in + (t.image * g.in_rows + lo) * g.in_row_px * g.red_ch + t.c0,
        weight=t.set * set_w + t.n0 * g.red_ch * g.red_per_ch + t.c0 * (t.n1 - t.n0) * g.red_per_ch,
        output=((t.set * g.images + t.image) * g.out_rows + t.r0) * g.row_px * g.n_out + t.n0,
    )


def tile_elements(g: Geometry, t: Tile) -> tuple[int, int, int]:
    """(input, weight, output) elements of a tile's slices."""
    lo, hi = g.in_span(t.r0, t.r1)
    return ((hi - lo) * g.in_row_px * (t.c1 - t.c0), (t.n1 - t.n0) * (t.c1 - t.c0) * g.red_per_ch,
            t.m * g.row_px * (t.n1 - t.n0))


def operand(ops: Sequence[OpRecord], op: OpRecord, i: int) -> int:
    """Tensor id of `op`'s input in role `i` (0: the streamed input, 1: the second operand of an
    attention matmul); -1 is the network input. Captured traces list an op's producers sorted and
    without repeats, so a matmul's roles are recovered from shapes: QKᵀ with one producer reads
    it twice; PV's input is the producer holding the scores (n · heads · tokens · kv_tokens)."""
    preds = op.preds
    if op.kind in ("matmul_qk", "matmul_pv") and preds:
        if len(preds) == 1:
            return preds[0]
        if op.kind == "matmul_pv":
            scores = op.n * op.heads * op.tokens * op.kv_tokens
            p = [q for q in preds if ops[q].out_elems == scores]
            if len(p) == 1:
                other = [q for q in preds if q != p[0]]
                return (p[0], other[0])[min(i, 1)]
    return preds[i] if i < len(preds) else -1


@attrs.frozen
class Stream:
    """Bytes of one tensor a vector op reads or writes, split evenly over its chunks."""

    kind: str
    source: str
    base: int
    nbytes: int


def split_streams(streams: Sequence[Stream], weights: Sequence[int]) -> list[list[Access]]:
    """Split streams over jobs in proportion to `weights` (integer shares that add up, empty
    shares dropped; everything to the first job when every weight is 0)."""
    n = len(weights)
    out: list[list[Access]] = [[] for _ in range(n)]
    cum = list(accumulate(weights))
    den = cum[-1] if cum else 0
    for s in streams:
        prev = 0
        for i in range(n):
            upto = s.nbytes * cum[i] // den if den else s.nbytes
            if upto > prev:
                out[i].append(Access(s.source, s.kind, s.base + prev, upto - prev))
                prev = upto
    return out


class JobBuilder:
    """Builds the jobs of one run; one per design instance."""

    def __init__(self, ops: Sequence[OpRecord], addr: AddressMap, residency: ResidencyPlan,
                 weights_resident: bool, act_budget: int, out_budget: int):
        self.ops, self.addr, self.residency = ops, addr, residency
        self.weights_resident = weights_resident
        self.act_budget, self.out_budget = act_budget, out_budget

    # -- where tensors live ------------------------------------------------------------
    def source(self, tensor: int) -> str:
        """Where tensor `tensor` (an op id; -1 = the network input) is read from / written to."""
        return "dram" if tensor < 0 else self.residency.source(tensor)

    def weight_source(self, step: int) -> str:
        return "global" if self.weights_resident and step > 0 else "dram"

    def operand(self, op: OpRecord, i: int) -> int:
        """Tensor id of `op`'s i-th input (-1: the network input)."""
        return operand(self.ops, op, i)

    def base(self, tensor: int) -> int:
        return self.addr.network_input if tensor < 0 else self.addr.output[tensor]

    # -- MAC tiles -------------------------------------------------------------------------
    def mac_job(self, step: int, op: OpRecord, g: Geometry, t: Tile, work: dict[str, Any],
                macs: float, fmt: Formats = Formats(), *, input: bool = True, weight: bool = True,
                output: bool = True, in_kind: str = "act", w_kind: str | None = None,
                out_kind: str = "out", extra_reads: Iterable[Access] = (),
                extra_writes: Iterable[Access] = (), extra_act: int = 0) -> TileJob:
        """One tile's job: the standard input/weight reads and output write (each switchable
        when a design replaces it), the design's extra accesses, loads/frees from the tile."""
        off = offsets(g, t)
        e_in, e_w, e_out = tile_elements(g, t)
        reads: list[Access] = []
        writes: list[Access] = []
        if input and t.in_load:
            src = self.operand(op, 0)
            reads.append(Access(self.source(src), in_kind, self.base(src) + nbytes(off.input, fmt.act),
                                nbytes(e_in, fmt.act)))
        if weight and t.w_load:
            if op.kind in ("conv2d", "linear"):
                reads.append(Access(self.weight_source(step), w_kind or "weight",
                                    self.addr.weight[op.op_id] + nbytes(off.weight, fmt.weight),
                                    nbytes(e_w, fmt.weight)))
            else:
                src = self.operand(op, 1)
                reads.append(Access(self.source(src), w_kind or "act",
                                    self.base(src) + nbytes(off.weight, fmt.weight), nbytes(e_w, fmt.weight)))
        reads.extend(extra_reads)
        if output and t.out_write:
            writes.append(Access(self.source(op.op_id), out_kind,
                                 self.addr.output[op.op_id] + nbytes(off.output, fmt.out),
                                 nbytes(e_out, fmt.out)))
        writes.extend(extra_writes)
        loads = [(b, n) for b, n in (("act", t.in_load + extra_act), ("weight", t.w_load)) if n]
        frees = [(b, n) for b, n in (("act", t.in_free + extra_act), ("weight", t.w_free)) if n]
        return TileJob(step, op.op_id, work, macs, loads, reads, frees, t.acc_alloc, writes,
                       t.acc_free, (("act", t.in_slice), ("weight", t.w_slice)))

    # -- vector ops -------------------------------------------------------------------------
    def vector_streams(self, op: OpRecord, tensor_bytes: Callable[[int], int],
                       in_kind: str = "act", out_kind: str = "out") -> tuple[list[Stream], list[Stream]]:
        """The standard streams of a vector op: every input tensor in, its output out."""
        reads = [Stream(in_kind, self.source(q), self.base(q), tensor_bytes(q))
                 for q in (op.preds or (-1,))]
        writes = [Stream(out_kind, self.source(op.op_id), self.addr.output[op.op_id],
                         tensor_bytes(op.op_id))]
        return reads, writes

    def vector_jobs(self, step: int, op: OpRecord, elements: int,
                    work: Callable[[int], dict[str, Any]], reads: Sequence[Stream],
                    writes: Sequence[Stream]) -> Iterator[TileJob]:
        """Chunks of a vector op sized to the activation and output tile budgets; every stream
        and the elements are split evenly over the chunks (integer shares that add up)."""
        rtot = sum(s.nbytes for s in reads)
        wtot = sum(s.nbytes for s in writes)
        if (rtot or wtot) and (self.act_budget < 1 or self.out_budget < 1):
            raise ConfigError(f"op {op.op_id} ({op.name}): no element fits the buffers")
        n = max(1, ceil_div(rtot, self.act_budget), ceil_div(wtot, self.out_budget))
        rd_parts, wr_parts = split_streams(reads, [1] * n), split_streams(writes, [1] * n)
        e_done = 0
        for i, (rd, wr) in enumerate(zip(rd_parts, wr_parts), start=1):
            e = elements * i // n - e_done
            e_done += e
            rb = sum(a.nbytes for a in rd)
            wb = sum(a.nbytes for a in wr)
            yield TileJob(step, op.op_id, work(e), 0, [("act", rb)] if rb else [], rd,
                          [("act", rb)] if rb else [], wb, wr, wb, (("act", rb),) if rb else ())
