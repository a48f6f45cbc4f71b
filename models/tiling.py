"""One tiler for every design: split a MAC op into buffer-sized GEMM tiles and predict re-reads.

Every MAC op is seen as `sets` independent GEMMs (attention: batch·heads; else 1), each over
`images` images of `out_rows` output rows × `row_px` pixels, with `n_out` output columns and a
reduction over `red_ch` channels × `red_per_ch` (R·S for a conv). A tile covers a range of output
rows of one image, a block of output columns and a chunk of reduction channels. Input rows of a
conv tile include the kernel halo, so neighbouring row tiles re-read `R − stride` rows.

Tile sizes: the weight block (all channels if possible) fits the weight buffer's tile budget, the
input rows fit the activation budget and the int32 accumulators fit the output budget (budgets
are half a buffer when double buffered). Operands stay on chip while consecutive tiles share
them; the tiler tries both loop orders (weight block outer / input rows outer) and keeps the one
that moves fewer DRAM bytes. Reduction chunks are innermost: partial sums stay on chip.
"""

from __future__ import annotations

from typing import Iterator

import attrs

from workloads.schema import OpRecord

from .config import ceil_div, kib
from .errors import ConfigError


@attrs.frozen
class Geometry:
    sets: int
    images: int
    out_rows: int
    row_px: int
    in_rows: int
    in_row_px: int
    kr: int
    stride: int
    pad: int
    red_ch: int
    red_per_ch: int
    n_out: int

    def in_span(self, r0: int, r1: int) -> tuple[int, int]:
        """Input rows [lo, hi) that output rows [r0, r1) read."""
        lo = max(0, r0 * self.stride - self.pad)
        hi = min(self.in_rows, (r1 - 1) * self.stride - self.pad + self.kr)
        return lo, max(lo, hi)


def geometry(op: OpRecord) -> Geometry:
    """The GEMM view of a MAC op."""
    if op.kind == "conv2d":
        if op.groups != 1:
            raise ConfigError(f"op {op.op_id} ({op.name}): grouped convolution (groups={op.groups}) is not modelled by the tiler")
        return Geometry(1, op.n, op.out_h, op.out_w, op.h, op.w, op.r, op.stride, op.pad, op.c, op.r * op.s, op.k)
    if op.kind == "linear":
        return Geometry(1, op.n, op.h * op.w, 1, op.h * op.w, 1, 1, 1, 0, op.c, 1, op.k)
    if op.kind == "matmul_qk":
        return Geometry(op.n * op.heads, 1, op.tokens, 1, op.tokens, 1, 1, 1, 0, op.head_dim, 1, op.kv_tokens)
    if op.kind == "matmul_pv":
        return Geometry(op.n * op.heads, 1, op.tokens, 1, op.tokens, 1, 1, 1, 0, op.kv_tokens, 1, op.head_dim)
    raise ConfigError(f"op {op.op_id} ({op.name}): kind {op.kind!r} is not a MAC op")


@attrs.frozen
class Tile:
    """One tile; byte fields are 0 when the operand is already on chip."""

    set: int
    image: int
    r0: int
    r1: int
    n0: int
    n1: int
    c0: int
    c1: int
    in_load: int
    w_load: int
    in_free: int
    w_free: int
    acc_alloc: int
    out_write: int
    """Bytes of finished outputs written after this tile (last reduction chunk only)."""
    acc_free: int
    in_slice: int
    """Bytes of the input slice this tile reads from the activation buffer."""
    w_slice: int
    """Bytes of the weight slice this tile reads from the weight buffer."""

    @property
    def m(self) -> int:
        return self.r1 - self.r0


@attrs.frozen
class Precision:
    act_bytes: float = 1.0
    weight_bytes: float = 1.0
    out_bytes: float = 1.0
    acc_bytes: int = 4


@attrs.define
class TilePlan:
    geom: Geometry
    rows: int
    n_block: int
    ch_chunk: int
    order: str
    in_bytes: int
    w_bytes: int
    out_bytes: int
    tiles: list[Tile]

    @property
    def sram_read_bytes(self) -> dict[str, int]:
        """On-chip operand reads of the whole op: every tile reads its slices from the buffers."""
        return {"act": sum(t.in_slice for t in self.tiles), "weight": sum(t.w_slice for t in self.tiles)}


def _blocks(total: int, size: int) -> list[tuple[int, int]]:
    return [(a, min(a + size, total)) for a in range(0, total, size)]


def _balanced(total: int, limit: int) -> int:
    return ceil_div(total, ceil_div(total, limit))


def plan_tiles(op: OpRecord, prec: Precision, act_budget: int, w_budget: int, out_budget: int,
               pe_cols: int = 1) -> TilePlan:
    """Choose tile sizes and loop order for `op`; errors name the buffer that is too small."""
    g = geometry(op)
    name = f"op {op.op_id} ({op.name})"
    col_bytes = g.red_per_ch * prec.weight_bytes
    n_block = min(g.n_out, int(w_budget // (g.red_ch * col_bytes)))
    ch_chunk = g.red_ch
    if n_block < 1:
        n_block = min(g.n_out, pe_cols)
        ch_chunk = int(w_budget // (n_block * col_bytes))
        if ch_chunk < 1:
            n_block, ch_chunk = 1, int(w_budget // col_bytes)
        if ch_chunk < 1:
            raise ConfigError(
                f"{name}: one weight column chunk ({kib(col_bytes)}) cannot fit the weight buffer's "
                f"tile budget ({kib(w_budget)}); increase buffers.weight.capacity_kib"
            )
    elif pe_cols < n_block < g.n_out:
        n_block -= n_block % pe_cols
    row_bytes_out = g.row_px * prec.acc_bytes
    if out_budget < row_bytes_out * n_block:
        n_block = int(out_budget // row_bytes_out)
        if n_block < 1:
            raise ConfigError(
                f"{name}: one output row of accumulators ({kib(row_bytes_out)}) cannot fit the output "
                f"buffer's tile budget ({kib(out_budget)}); increase buffers.output.capacity_kib"
            )
    in_row_bytes = g.in_row_px * prec.act_bytes
    if act_budget < min(g.kr, g.in_rows) * in_row_bytes * ch_chunk:
        ch_chunk = int(act_budget // (min(g.kr, g.in_rows) * in_row_bytes))
        if ch_chunk < 1:
            raise ConfigError(
                f"{name}: the input rows of one output row ({kib(g.kr * in_row_bytes)} per channel) "
                f"cannot fit the activation buffer's tile budget ({kib(act_budget)}); "
                f"increase buffers.activation.capacity_kib"
            )
    rows_in = int((act_budget // (in_row_bytes * ch_chunk) - g.kr) // g.stride) + 1
    rows_out = int(out_budget // (row_bytes_out * n_block))
    rows = _balanced(g.out_rows, max(1, min(g.out_rows, rows_in, rows_out)))
    ch_chunk = _balanced(g.red_ch, ch_chunk)
    best = None
    for order in ("weight_outer", "input_outer"):
        tiles = list(_enumerate(g, prec, rows, n_block, ch_chunk, order))
        in_b = sum(t.in_load for t in tiles)
        w_b = sum(t.w_load for t in tiles)
        out_b = sum(t.out_write for t in tiles)
        if best is None or in_b + w_b < best.in_bytes + best.w_bytes:
            best = TilePlan(g, rows, n_block, ch_chunk, order, in_b, w_b, out_b, tiles)
    return best


def _enumerate(g: Geometry, prec: Precision, rows: int, n_block: int, ch_chunk: int,
               order: str) -> Iterator[Tile]:
    row_tiles = _blocks(g.out_rows, rows)
    n_tiles = _blocks(g.n_out, n_block)
    chunks = _blocks(g.red_ch, ch_chunk)
    if order == "weight_outer":
        keys = [(s, i, rt, nt, ch) for s in range(g.sets) for nt in n_tiles
                for i in range(g.images) for rt in row_tiles for ch in chunks]
    else:
        keys = [(s, i, rt, nt, ch) for s in range(g.sets) for i in range(g.images)
                for rt in row_tiles for nt in n_tiles for ch in chunks]

    def in_bytes(rt, ch):
        lo, hi = g.in_span(*rt)
        return int((hi - lo) * g.in_row_px * (ch[1] - ch[0]) * prec.act_bytes)

    def w_bytes(nt, ch):
        return int((nt[1] - nt[0]) * (ch[1] - ch[0]) * g.red_per_ch * prec.weight_bytes)

    last = len(keys) - 1
    for idx, (s, i, rt, nt, ch) in enumerate(keys):
        prev = keys[idx - 1] if idx else None
        nxt = keys[idx + 1] if idx < last else None
        in_key, w_key = (s, i, rt, ch), (s, nt, ch)
        same_in_prev = prev is not None and (prev[0], prev[1], prev[2], prev[4]) == in_key
        same_in_next = nxt is not None and (nxt[0], nxt[1], nxt[2], nxt[4]) == in_key
        same_w_prev = prev is not None and (prev[0], prev[3], prev[4]) == w_key
        same_w_next = nxt is not None and (nxt[0], nxt[3], nxt[4]) == w_key
        ib, wb = in_bytes(rt, ch), w_bytes(nt, ch)
        m = (rt[1] - rt[0]) * g.row_px * (nt[1] - nt[0])
        first_chunk, last_chunk = ch[0] == 0, ch[1] == g.red_ch
        yield Tile(
            s, i, rt[0], rt[1], nt[0], nt[1], ch[0], ch[1],
            in_load=0 if same_in_prev else ib,
            w_load=0 if same_w_prev else wb,
            in_free=0 if same_in_next else ib,
            w_free=0 if same_w_next else wb,
            acc_alloc=m * prec.acc_bytes if first_chunk else 0,
            out_write=int(m * prec.out_bytes) if last_chunk else 0,
            acc_free=m * prec.acc_bytes if last_chunk else 0,
            in_slice=ib, w_slice=wb,
        )
