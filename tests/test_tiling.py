"""The array-aligned tiler: whole folds, exact closed forms, analytic bytes, near-optimal traffic."""

import math
import random

import attrs
import pytest

from difftlm.layer import (REFERENCE_LAYERS, closed_form_cycles, conv_op, gemm_op, run_layers, spec_ops,
                           tiled_cycles)
from models.components.pe_array import GemmTile, broadcast_cycles, systolic_cycles
from models.config import COMMON, MemoryConfig
from models.tiling import ORDERS, Precision, _Cost, _enumerate, geometry, plan_tiles

KIB = 1024
DEFAULT = (66 * KIB, 24 * KIB, 66 * KIB)  # dense's tile budgets in the common config


def systolic_hw(rows, cols, dataflow):
    return COMMON.evolve(pe_array=attrs.evolve(COMMON.pe_array, model="systolic", rows=rows, cols=cols,
                                               dataflow=dataflow), memory=MemoryConfig("ideal"))


POINTS = [(name, spec, df, arr) for name, spec in REFERENCE_LAYERS for df in ("os", "ws", "is") for arr in (32, 16)]
IDS = [f"{n}-{df}-{a}x{a}" for n, _, df, a in POINTS]


@pytest.mark.parametrize("name,spec,dataflow,arr", POINTS, ids=IDS)
def test_reference_points_equal_the_closed_form(name, spec, dataflow, arr):
    op = spec_ops(spec)[0]
    assert tiled_cycles(op, systolic_hw(arr, arr, dataflow)) == closed_form_cycles(op, arr, arr, dataflow)


@pytest.mark.parametrize("name,spec,dataflow,arr", POINTS, ids=IDS)
def test_reference_points_end_to_end(name, spec, dataflow, arr):
    res = run_layers(spec_ops(spec), systolic_hw(arr, arr, dataflow))
    assert res.summary["total_cycles"] == closed_form_cycles(spec_ops(spec)[0], arr, arr, dataflow)


def test_sram_size_never_changes_compute_time():
    op = conv_op(18, 18, 64, 320, 3, 3)[0]
    for df in ("os", "ws", "is"):
        cf = closed_form_cycles(op, 16, 16, df)
        for kib in (8, 16, 48, 132, 4096):
            hw = systolic_hw(16, 16, df)
            b = hw.buffers
            hw = hw.evolve(buffers=attrs.evolve(b, activation=attrs.evolve(b.activation, capacity_kib=kib),
                                                weight=attrs.evolve(b.weight, capacity_kib=kib),
                                                output=attrs.evolve(b.output, capacity_kib=max(kib, 48))))
            assert tiled_cycles(op, hw) == cf, (df, kib)


def _aligned(plan, rows, cols):
    g = plan.geom
    for t in plan.tiles:
        n = t.n1 - t.n0
        assert n % cols == 0 or t.n1 == g.n_out
        assert (t.m * g.row_px) % rows == 0 or t.r1 == g.out_rows


def test_ragged_gemm_tiles_are_aligned_and_exact():
    op = gemm_op(70, 333, 170)[0]
    plan = plan_tiles(op, Precision(), 4 * KIB, 2 * KIB, 8 * KIB, 8, pe_rows=8)
    assert len(plan.tiles) > 1
    _aligned(plan, 8, 8)
    for df, first in (("os", "first_k"), ("ws", "first_m"), ("is", "first_n")):
        got = sum(systolic_cycles(plan.work(t), 8, 8, df) for t in plan.tiles)
        assert got == closed_form_cycles(op, 8, 8, df)


def test_strided_conv_split_rows_and_channels():
    op = conv_op(33, 33, 96, 64, 3, 3, stride=2)[0]
    plan = plan_tiles(op, Precision(), 6 * KIB, 4 * KIB, 16 * KIB, 16, pe_rows=16)
    assert len({(t.r0, t.r1) for t in plan.tiles}) > 1 and len({t.c0 for t in plan.tiles}) > 1
    for df in ("os", "ws", "is"):
        assert sum(systolic_cycles(plan.work(t), 16, 16, df) for t in plan.tiles) == closed_form_cycles(op, 16, 16, df)
    # every output row is computed once, every input row read within its span
    rows = sorted({(t.r0, t.r1) for t in plan.tiles})
    assert rows[0][0] == 0 and rows[-1][1] == 16 and all(a[1] == b[0] for a, b in zip(rows, rows[1:]))


def test_gemv_keeps_full_column_blocks():
    op = gemm_op(1, 1280, 2560)[0]
    plan = plan_tiles(op, Precision(), *DEFAULT, 32)
    assert plan.n_block % 32 == 0 and plan.ch_chunk < 2560
    assert plan.w_bytes == 1280 * 2560 and plan.in_bytes == 2560  # weights once, input once
    assert sum(systolic_cycles(plan.work(t), 32, 32, "os") for t in plan.tiles) == closed_form_cycles(op, 32, 32, "os")


def test_wide_reduction_splits_channels_not_columns():
    # SD's up_blocks.2.resnets.0.conv1 shape: one weight column (17,280 B) fills most of 24 KiB
    op = conv_op(32, 32, 1920, 640, 3, 3, pad=1)[0]
    plan = plan_tiles(op, Precision(), *DEFAULT, 32)
    assert plan.n_block >= 32 and plan.n_block % 32 == 0 and plan.ch_chunk < 1920
    W, I = 640 * 1920 * 9, 32 * 32 * 1920
    one_column = W + I * 640  # one output channel per tile: the input re-read for every channel
    assert plan.in_bytes + plan.w_bytes < one_column / 10


def test_broadcast_tiles_lose_no_cycles():
    op = gemm_op(300, 200, 700)[0]
    plan = plan_tiles(op, Precision(), 8 * KIB, 4 * KIB, 16 * KIB, 16, pe_rows=8)
    got = sum(broadcast_cycles(plan.work(t), 8, 16, 4) for t in plan.tiles)
    assert got == math.ceil(300 / 8) * math.ceil(200 / 16) * math.ceil(700 / 4)


def test_callers_without_pe_rows_still_plan():
    op = conv_op(16, 16, 64, 96, 3, 3, pad=1)[0]
    plan = plan_tiles(op, Precision(), *DEFAULT, 32)
    assert plan.tiles and sum(t.out_write for t in plan.tiles) == 16 * 16 * 96
    plan1 = plan_tiles(op, Precision(), *DEFAULT)  # no alignment at all
    assert sum(t.out_write for t in plan1.tiles) == 16 * 16 * 96


def test_fold_flags_default_to_fresh_folds():
    t = GemmTile(40, 40, 40)
    assert systolic_cycles(t, 8, 8, "os") == 5 * 5 * (8 + 8 + 40 - 2)
    assert systolic_cycles(GemmTile(40, 40, 40, first_k=False), 8, 8, "os") == 25 * 40
    assert systolic_cycles(GemmTile(40, 40, 40, first_m=False), 8, 8, "ws") == 25 * 40
    assert systolic_cycles(GemmTile(40, 40, 40, first_n=False), 8, 8, "is") == 25 * 40
    assert systolic_cycles(GemmTile(40, 40, 40, first_k=False), 8, 8, "ws") == 25 * (16 + 8 + 40 - 2)


def _random_ops(rng, n):
    for _ in range(n):
        if rng.random() < 0.5:
            yield gemm_op(rng.randint(1, 300), rng.randint(1, 300), rng.randint(1, 400))[0]
        else:
            h = rng.randint(3, 24)
            r = rng.choice((1, 3))
            yield conv_op(h, h, rng.randint(1, 200), rng.randint(1, 200), r, r,
                          stride=rng.choice((1, 2)), pad=rng.choice((0, r // 2)))[0]


def test_analytic_bytes_equal_the_enumerated_tiles():
    rng = random.Random(7)
    prec = Precision()
    for op in _random_ops(rng, 40):
        g = geometry(op)
        budgets = (rng.choice((2, 4, 8, 32)) * KIB, rng.choice((1, 2, 8, 32)) * KIB, rng.choice((4, 16, 64)) * KIB)
        c = _Cost(g, prec, *budgets)
        for order in ORDERS:
            for rows, nb, ch in ((max(1, g.out_rows // 3), max(1, g.n_out // 2), max(1, g.red_ch // 3)),
                                 (g.out_rows, g.n_out, g.red_ch), (1, 8, 4)):
                rows, nb, ch = min(rows, g.out_rows), min(nb, g.n_out), min(ch, g.red_ch)
                n_tiles = (g.sets * g.images * -(-g.out_rows // rows) * -(-g.n_out // nb)
                           * -(-g.red_ch // ch))
                if n_tiles > 4000:      # enumeration cost only; the formula is O(1)
                    continue
                ib, wb, ih, wh = c.cost(order, rows, nb, ch)
                tiles = list(_enumerate(g, prec, rows, nb, ch, order, ih, wh))
                assert sum(t.in_load for t in tiles) == ib, (op, order, rows, nb, ch)
                assert sum(t.w_load for t in tiles) == wb, (op, order, rows, nb, ch)
                assert sum(t.in_load for t in tiles) == sum(t.in_free for t in tiles)
                assert sum(t.w_load for t in tiles) == sum(t.w_free for t in tiles)


def test_planned_tiles_respect_the_budgets():
    rng = random.Random(11)
    prec = Precision()
    for op in _random_ops(rng, 30):
        budgets = (rng.choice((4, 8, 32)) * KIB, rng.choice((2, 8, 32)) * KIB, rng.choice((8, 16, 64)) * KIB)
        try:
            plan = plan_tiles(op, prec, *budgets, 16, pe_rows=16)
        except Exception as exc:  # a budget too small for one row: a ConfigError naming the buffer
            assert "capacity" in str(exc)
            continue
        live_in = live_w = live_acc = 0
        for t in plan.tiles:
            live_in += t.in_load
            live_w += t.w_load
            live_acc += t.acc_alloc
            assert live_in <= budgets[0] and live_w <= budgets[1] and live_acc <= budgets[2]
            live_in -= t.in_free
            live_w -= t.w_free
            live_acc -= t.acc_free
        assert live_in == live_w == live_acc == 0
        assert sum(t.out_write for t in plan.tiles) == op.out_elems


def _exhaustive_min(g, prec, budgets, unit):
    """Fewest DRAM bytes over every aligned tile size (columns, channels: all multiples of the array;
    rows: every row-tile count) and every loop order, under the same budgets."""
    c = _Cost(g, prec, *budgets)
    a = unit
    c_unit, r_unit = a // math.gcd(a, g.red_per_ch), a // math.gcd(a, g.row_px)
    col = g.red_per_ch * prec.weight_bytes
    nbs = sorted(set(range(unit, g.n_out, unit)) | {g.n_out})
    best = None
    for nb in nbs:
        chs = sorted(set(range(c_unit, g.red_ch, c_unit)) | {g.red_ch})
        for ch in chs:
            if nb * ch * col > budgets[1]:
                break
            for order in ORDERS:
                n_acc = g.n_out if order == "reduce_middle" else nb
                top = c.max_rows(ch, n_acc)
                if top < 1:
                    continue
                counts = range(math.ceil(g.out_rows / top), g.out_rows + 1) if top < g.out_rows else range(1, g.out_rows + 1)
                seen = set()
                for count in counts:
                    rows = math.ceil(math.ceil(g.out_rows / count) / r_unit) * r_unit
                    rows = min(rows, g.out_rows)
                    if rows > top or rows in seen:
                        continue
                    seen.add(rows)
                    ib, wb, _, _ = c.cost(order, rows, nb, ch)
                    best = ib + wb if best is None else min(best, ib + wb)
    return best


@pytest.mark.slow
def test_sd15_tiler_bytes_within_ten_percent_of_exhaustive_search():
    from workloads.zoo import zoo_ops

    prec = Precision(1.0, 1.0, 1.0, 4)
    worst = []
    for op in zoo_ops("sd15"):
        if not op.is_mac:
            continue
        plan = plan_tiles(op, prec, *DEFAULT, 32)
        g = plan.geom
        best = _exhaustive_min(g, prec, DEFAULT, 32)
        if best is None:
            continue  # nothing aligned fits: the tiler fell back to unaligned sizes
        got = (plan.in_bytes + plan.w_bytes) / g.sets
        worst.append((got / best, op.name))
        assert got <= 1.10 * best, (op.name, got, best)
    assert len(worst) > 300


@pytest.mark.slow
def test_scalesim_cross_check():
    from difftlm.layer import run_scalesim, scalesim_python

    python = scalesim_python()
    if python is None:
        pytest.skip("scalesim not installed (set DIFFTLM_SCALESIM_PYTHON or create .venv-scalesim)")
    ops = [spec_ops(spec)[0] for _, spec in REFERENCE_LAYERS]
    for df in ("os", "ws", "is"):
        for arr in (32, 16):
            theirs = run_scalesim(ops, arr, arr, df, python)
            for op, t in zip(ops, theirs):
                # SCALE-Sim numbers cycles from 0: its count is the closed form minus one
                assert t["cycles"] == closed_form_cycles(op, arr, arr, df) - 1, (op.name, df, arr)
                assert t["cycles"] + 1 == tiled_cycles(op, systolic_hw(arr, arr, df))
