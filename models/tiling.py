"""One tiler for every design: split a MAC op into buffer-sized GEMM tiles and predict re-reads.

Every MAC op is seen as `sets` independent GEMMs (attention: batch·heads; else 1), each over
`images` images of `out_rows` output rows × `row_px` pixels, with `n_out` output columns and a
reduction over `red_ch` channels × `red_per_ch` (R·S for a conv). A tile covers a range of output
rows of one image, a block of output columns and a chunk of reduction channels. Input rows of a
conv tile include the kernel halo, so neighbouring row tiles re-read `R − stride` rows.

Tile sizes are aligned to the PE array: the output-column block is a multiple of `pe_cols`, the
rows of a tile hold a multiple of lcm(`pe_rows`, `pe_cols`) output pixels and a reduction chunk
is a multiple of lcm(`pe_rows`, `pe_cols`) window elements, except where a dimension is taken
whole (or the last, ragged block). Then every fold of the array is full except the ragged ones
the whole op has anyway, and the per-tile cycle counts of the systolic fold model and of the
broadcast array add up to the whole-op count (with reduction / T-dimension continuation, see
`models/components/pe_array.py`). When one weight column block of `pe_cols` columns over all
reduction channels exceeds the weight tile budget, the reduction is split into channel chunks
rather than narrowing the column block below the array width.

Budgets: a tile's weight chunk fits the weight buffer's tile budget, its input rows the
activation budget, its int32 accumulators the output budget (budgets are half a buffer when
double buffered). The tiler scores candidate tile sizes × loop orders with an analytic count of
DRAM bytes and keeps the cheapest (ties: fewer tiles). Loop orders, outer → inner (reduction
chunks are always inside the loop over the operand that the accumulators belong to, so partial
sums never leave the chip):

- `input_outer`: rows, column blocks, chunks. An input row block (all chunks) stays on chip
  across column blocks when it fits the activation budget, else each column block re-reads it.
- `weight_outer`: column blocks, rows, chunks. A weight column block (all chunks) stays on chip
  across row tiles when it fits the weight budget, else each row tile re-reads it.
- `reduce_middle`: rows, chunks, column blocks: each input chunk is read once and used for every
  column block; needs the accumulators of a row tile × all columns on chip.
- `weight_stationary`: column blocks, chunks, images and rows: each weight block is read once
  even when a column block's whole reduction does not fit the weight budget; needs the
  accumulators of a column block for every image and row on chip.

An operand that fits its budget whole is read once in any order.
"""

from __future__ import annotations

import functools
import math
from typing import Iterator

import attrs

from workloads.schema import OpRecord

from .components.pe_array import GemmTile
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

    @property
    def first_k(self) -> bool:
        """First reduction chunk of its output block (its accumulators start here)."""
        return self.c0 == 0

    @property
    def first_m(self) -> bool:
        """First row tile (of the first image) of its column block and reduction chunk."""
        return self.r0 == 0 and self.image == 0

    @property
    def first_n(self) -> bool:
        """First column block of its rows and reduction chunk."""
        return self.n0 == 0


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
    in_held: bool = False
    """Input chunks stay on chip between non-consecutive uses (loaded once per row block)."""
    w_held: bool = False
    """Weight chunks stay on chip between non-consecutive uses."""

    def work(self, t: Tile) -> GemmTile:
        """The PE array's view of tile `t`, with the fold-continuation flags of the systolic model."""
        g = self.geom
        return GemmTile(t.m * g.row_px, t.n1 - t.n0, (t.c1 - t.c0) * g.red_per_ch,
                        first_k=t.first_k, first_m=t.first_m, first_n=t.first_n)

    @property
    def sram_read_bytes(self) -> dict[str, int]:
        """On-chip operand reads of the whole op: every tile reads its slices from the buffers."""
        return {"act": sum(t.in_slice for t in self.tiles), "weight": sum(t.w_slice for t in self.tiles)}



ORDERS = ("input_outer", "weight_outer", "reduce_middle", "weight_stationary")


def _blocks(total: int, size: int) -> list[tuple[int, int]]:
    return [(a, min(a + size, total)) for a in range(0, total, size)]


def _balanced(total: int, limit: int) -> int:
    return ceil_div(total, ceil_div(total, limit))


def _sizes(total: int, unit: int, limit: int | None = None) -> list[int]:
    """Distinct block sizes ≤ `limit` that cut `total` into near-equal blocks, each a multiple of
    `unit` (or `total` itself); the last block may be ragged. Largest first."""
    if limit is None:
        limit = total
    if total <= limit and (unit >= total or limit == total):
        out = {total}
    else:
        out = set()
    units = ceil_div(total, unit)
    for j in range(1, units + 1):
        size = min(total, ceil_div(units, j) * unit)
        if size <= limit:
            out.add(size)
    return sorted(out, reverse=True)


def _aligned_rows(out_rows: int, limit: int, unit: int) -> int:
    """Rows per tile ≤ `limit`: all rows, else a multiple of `unit` balanced over the tiles;
    0 when no such multiple fits."""
    if limit >= out_rows:
        return out_rows
    if limit < 1:
        return 0
    if limit < unit:
        return _balanced(out_rows, limit) if unit == 1 else 0
    top = limit - limit % unit
    count = ceil_div(out_rows, top)
    return min(top, ceil_div(ceil_div(out_rows, count), unit) * unit)


def _lcm(a: int, b: int) -> int:
    return a * b // math.gcd(a, b)


class _Cost:
    """Analytic DRAM bytes of one op per candidate (one set; the caller multiplies by `sets`)."""

    def __init__(self, g: Geometry, prec: Precision, act_budget: int, w_budget: int, out_budget: int):
        self.g, self.p = g, prec
        self.act_budget, self.w_budget, self.out_budget = act_budget, w_budget, out_budget
        self.w_all = g.n_out * g.red_ch * g.red_per_ch * prec.weight_bytes
        self._span: dict[int, int] = {}

    def span_rows(self, rows: int) -> int:
        """Input rows read by one image's row tiles of `rows` (halo rows counted per tile)."""
        got = self._span.get(rows)
        if got is None:
            g = self.g
            got = sum(hi - lo for lo, hi in (g.in_span(a, b) for a, b in _blocks(g.out_rows, rows)))
            self._span[rows] = got
        return got

    def in_rows_of(self, rows: int) -> int:
        g = self.g
        return min(g.in_rows, (rows - 1) * g.stride + g.kr)

    def max_rows(self, ch: int, n_acc: int) -> int:
        """Most output rows whose input chunk of `ch` channels and accumulators of `n_acc`
        columns fit the budgets (0: not even one)."""
        g, p = self.g, self.p
        row_in = g.in_row_px * ch * p.act_bytes
        if g.in_rows * row_in <= self.act_budget:
            r_act = g.out_rows
        else:
            r_in = int(self.act_budget // row_in)
            r_act = (r_in - g.kr) // g.stride + 1 if r_in >= min(g.kr, g.in_rows) else 0
            if r_in >= g.in_rows:
                r_act = g.out_rows
        r_out = int(self.out_budget // (g.row_px * n_acc * p.acc_bytes))
        return max(0, min(g.out_rows, r_act, r_out))

    def cost(self, order: str, rows: int, nb: int, ch: int) -> tuple[float, float, bool, bool]:
        """(input bytes, weight bytes, input held, weights held) of one set."""
        g, p = self.g, self.p
        nr = g.images * ceil_div(g.out_rows, rows)
        nn = ceil_div(g.n_out, nb)
        nc = ceil_div(g.red_ch, ch)
        span = self.span_rows(rows)
        i_all = g.images * span * g.in_row_px * g.red_ch * p.act_bytes
        in_block = self.in_rows_of(rows) * g.in_row_px * g.red_ch * p.act_bytes
        w_block = nb * g.red_ch * g.red_per_ch * p.weight_bytes
        whole_in = i_all <= self.act_budget
        whole_w = self.w_all <= self.w_budget
        if order == "input_outer":
            in_held = nc > 1 and nn > 1 and in_block <= self.act_budget
            in_once = nn == 1 or nc == 1 or in_held
            w_held = nr > 1 and (nn > 1 or nc > 1) and whole_w
            w_once = nr == 1 or (nn == 1 and nc == 1) or w_held
        elif order == "weight_outer":
            w_held = nc > 1 and nr > 1 and w_block <= self.w_budget
            w_once = nr == 1 or nc == 1 or w_held
            in_held = nn > 1 and not (nr == 1 and nc == 1) and whole_in
            in_once = nn == 1 or (nr == 1 and nc == 1) or in_held
        elif order == "weight_stationary":
            # weight block (columns × reduction chunk) outermost, every image and row inside it:
            # each weight byte loaded once; the accumulators of a column block stay for all images
            w_held, w_once = False, True
            in_held = nn > 1 and whole_in
            in_once = nn == 1 or in_held
        else:  # reduce_middle
            in_held, in_once = False, True
            w_held = nr > 1 and (nn > 1 or nc > 1) and whole_w
            w_once = nr == 1 or (nn == 1 and nc == 1) or w_held
        return (i_all if in_once else i_all * nn), (self.w_all if w_once else self.w_all * nr), in_held, w_held


def _candidates(g: Geometry, c: _Cost, prec: Precision, n_unit: int, c_unit: int, r_unit: int,
                in_cost: float = 1.0, w_cost: float = 1.0):
    """(cost, tiles, order, rows, nb, ch, in_held, w_held) of every candidate tiling; cost is the
    bytes each operand loads, weighted by `in_cost` / `w_cost` per byte."""
    col_bytes = g.red_per_ch * prec.weight_bytes
    for nb in _sizes(g.n_out, n_unit):
        ch_limit = int(c.w_budget // (nb * col_bytes))
        if ch_limit < 1:
            continue
        for ch in _sizes(g.red_ch, c_unit, ch_limit):
            for order in ORDERS:
                n_acc = g.n_out if order == "reduce_middle" else nb
                if order == "reduce_middle" and ceil_div(g.red_ch, ch) == 1 and nb == g.n_out:
                    continue  # the same tiles as input_outer
                if order == "weight_stationary" and (
                        ceil_div(g.red_ch, ch) == 1
                        or g.images * g.out_rows * g.row_px * nb * prec.acc_bytes > c.out_budget):
                    continue  # without a split reduction it is weight_outer; all accumulators must fit
                rows_opts = {_aligned_rows(g.out_rows, c.max_rows(ch, n_acc), r_unit)}
                if order == "input_outer" and ch < g.red_ch:
                    rows_opts.add(_aligned_rows(g.out_rows, c.max_rows(g.red_ch, n_acc), r_unit))
                for rows in rows_opts:
                    if rows < 1:
                        continue
                    ib, wb, ih, wh = c.cost(order, rows, nb, ch)
                    tiles = g.images * ceil_div(g.out_rows, rows) * ceil_div(g.n_out, nb) * ceil_div(g.red_ch, ch)
                    yield ib * in_cost + wb * w_cost, tiles, order, rows, nb, ch, ih, wh



@functools.lru_cache(maxsize=4096)
def _search(g: Geometry, prec: Precision, act_budget: int, w_budget: int, out_budget: int,
            pe_cols: int, pe_rows: int, in_cost: float = 1.0, w_cost: float = 1.0):
    """The cheapest candidate (see `_candidates`); cached: designs re-plan the same shapes per step."""
    cost = _Cost(g, prec, act_budget, w_budget, out_budget)
    a = _lcm(max(1, pe_rows), max(1, pe_cols))
    units = (max(1, pe_cols), a // math.gcd(a, g.red_per_ch), a // math.gcd(a, g.row_px))
    best = None
    for n_unit, c_unit, r_unit in (units, (1, 1, 1)):
        for cand in _candidates(g, cost, prec, n_unit, c_unit, r_unit, in_cost, w_cost):
            if best is None or cand[:2] < best[:2]:
                best = cand
        if best is not None:
            break
    return best


def plan_tiles(op: OpRecord, prec: Precision, act_budget: int, w_budget: int, out_budget: int,
               pe_cols: int = 1, pe_rows: int = 1, in_cost: float = 1.0,
               w_cost: float = 1.0) -> TilePlan:
    """Choose tile sizes and loop order for `op`; errors name the buffer that is too small.

    `pe_cols`/`pe_rows`: the PE array the tiles are aligned to (1: no alignment). `in_cost` /
    `w_cost`: relative cost of a byte loaded for the input / the weights (or second operand);
    1 for DRAM-sourced operands, less for operands served by the on-chip residency store."""
    g = geometry(op)
    name = f"op {op.op_id} ({op.name})"
    col_bytes = g.red_per_ch * prec.weight_bytes
    if col_bytes > w_budget:
        raise ConfigError(
            f"{name}: one weight column chunk ({kib(col_bytes)}) cannot fit the weight buffer's "
            f"tile budget ({kib(w_budget)}); increase buffers.weight.capacity_kib"
        )
    row_bytes_out = g.row_px * prec.acc_bytes
    if row_bytes_out > out_budget:
        raise ConfigError(
            f"{name}: one output row of accumulators ({kib(row_bytes_out)}) cannot fit the output "
            f"buffer's tile budget ({kib(out_budget)}); increase buffers.output.capacity_kib"
        )
    in_row_bytes = g.in_row_px * prec.act_bytes
    if min(g.kr, g.in_rows) * in_row_bytes > act_budget:
        raise ConfigError(
            f"{name}: the input rows of one output row ({kib(g.kr * in_row_bytes)} per channel) "
            f"cannot fit the activation buffer's tile budget ({kib(act_budget)}); "
            f"increase buffers.activation.capacity_kib"
        )
    best = _search(g, prec, act_budget, w_budget, out_budget, pe_cols, pe_rows, in_cost, w_cost)
    if best is None:
        raise ConfigError(
            f"{name}: no tile fits the activation ({kib(act_budget)}), weight ({kib(w_budget)}) and "
            f"output ({kib(out_budget)}) tile budgets together; increase the buffer capacities"
        )
    _, _, order, rows, nb, ch, in_held, w_held = best
    tiles = list(_enumerate(g, prec, rows, nb, ch, order, in_held, w_held))
    in_b = sum(t.in_load for t in tiles)
    w_b = sum(t.w_load for t in tiles)
    out_b = sum(t.out_write for t in tiles)
    return TilePlan(g, rows, nb, ch, order, in_b, w_b, out_b, tiles, in_held, w_held)


def _enumerate(g: Geometry, prec: Precision, rows: int, n_block: int, ch_chunk: int,
               order: str, in_held: bool = False, w_held: bool = False) -> Iterator[Tile]:
    row_tiles = _blocks(g.out_rows, rows)
    n_tiles = _blocks(g.n_out, n_block)
    chunks = _blocks(g.red_ch, ch_chunk)
    if order == "weight_outer":
        keys = [(s, i, rt, nt, ch) for s in range(g.sets) for nt in n_tiles
                for i in range(g.images) for rt in row_tiles for ch in chunks]
    elif order == "input_outer":
        keys = [(s, i, rt, nt, ch) for s in range(g.sets) for i in range(g.images)
                for rt in row_tiles for nt in n_tiles for ch in chunks]
    elif order == "reduce_middle":
        keys = [(s, i, rt, nt, ch) for s in range(g.sets) for i in range(g.images)
                for rt in row_tiles for ch in chunks for nt in n_tiles]
    elif order == "weight_stationary":
        keys = [(s, i, rt, nt, ch) for s in range(g.sets) for nt in n_tiles for ch in chunks
                for i in range(g.images) for rt in row_tiles]
    else:
        raise ValueError(f"unknown loop order {order!r}")

    def in_key(k):
        return k[0], k[1], k[2], k[4]

    def w_key(k):
        return k[0], k[3], k[4]

    def uses(key_of, held):
        """Per tile: (load here, free here). Held operands live from first to last use; others
        from the start to the end of each run of consecutive uses."""
        ks = [key_of(k) for k in keys]
        n = len(ks)
        if held:
            first, last = {}, {}
            for idx, k in enumerate(ks):
                first.setdefault(k, idx)
                last[k] = idx
            return [(first[k] == idx, last[k] == idx) for idx, k in enumerate(ks)]
        return [(idx == 0 or ks[idx - 1] != k, idx == n - 1 or ks[idx + 1] != k) for idx, k in enumerate(ks)]

    in_use = uses(in_key, in_held)
    w_use = uses(w_key, w_held)
    for idx, (s, i, rt, nt, ch) in enumerate(keys):
        lo, hi = g.in_span(*rt)
        ib = int((hi - lo) * g.in_row_px * (ch[1] - ch[0]) * prec.act_bytes)
        wb = int((nt[1] - nt[0]) * (ch[1] - ch[0]) * g.red_per_ch * prec.weight_bytes)
        m = (rt[1] - rt[0]) * g.row_px * (nt[1] - nt[0])
        first_chunk, last_chunk = ch[0] == 0, ch[1] == g.red_ch
        (in_ld, in_fr), (w_ld, w_fr) = in_use[idx], w_use[idx]
        yield Tile(
            s, i, rt[0], rt[1], nt[0], nt[1], ch[0], ch[1],
            in_load=ib if in_ld else 0,
            w_load=wb if w_ld else 0,
            in_free=ib if in_fr else 0,
            w_free=wb if w_fr else 0,
            acc_alloc=m * prec.acc_bytes if first_chunk else 0,
            out_write=int(m * prec.out_bytes) if last_chunk else 0,
            acc_free=m * prec.acc_bytes if last_chunk else 0,
            in_slice=ib, w_slice=wb,
        )
