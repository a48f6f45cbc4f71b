"""MHDiff: packer properties, bitmask rules, PE cycles and DRAM bytes against closed forms."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from models.components.mhdiff_units import (
    BitmaskUnit, BitmaskWork, LutScatter, PackedPeArray, PackedTile, Packer, PackWork, ScatterWork, compatible, first_layer_mask, fit_mask, footprint_mask, greedy_pack, max_pairs,
    _brute_pairs, window_need,
)
from models.config import COMMON, MemoryConfig
from models.designs import get_design
from models.errors import ConfigError
from models.mapping import Mapping
from models.replay import replay
from workloads.optable import OpTableBuilder
from workloads.trace import StepStats, write_trace

IDEAL = COMMON.evolve(memory=MemoryConfig("ideal"), weight_residency="never")
THROUGH_DRAM = IDEAL.evolve(residency="never")


# ------------------------------------------------------------------ packer properties
bits_strategy = st.integers(1, 3).flatmap(
    lambda nb: st.lists(st.lists(st.integers(0, 255), min_size=nb, max_size=nb), min_size=0, max_size=12)
    .map(lambda rows: np.array(rows, dtype=np.uint8).reshape(-1, nb))
)


def sparse(bits, keep):
    """Thin the bits so many pixels have few int8 values (the realistic regime)."""
    return bits & np.uint8(keep)


@settings(max_examples=150, deadline=None)
@given(bits_strategy, st.sampled_from([0x00, 0x01, 0x11, 0x55, 0xFF]))
def test_greedy_packer_properties(bits, keep):
    bits = sparse(bits, keep)
    m = len(bits)
    pr = greedy_pack(bits)
    # no two int8 values share a slot
    for a, b in pr.pairs:
        assert not np.any(bits[a] & bits[b])
    # every peripheral pixel appears exactly once
    seen = np.concatenate([pr.pairs.ravel(), pr.singles])
    assert sorted(seen.tolist()) == list(range(m))
    # the LUT maps each packed slot back to its pixels
    lut = pr.lut()
    assert len(lut) == pr.n_pair + pr.n_single
    for row, (a, b) in zip(lut[:pr.n_pair], pr.pairs):
        assert row.tolist() == [1, a, b]
    for row, a in zip(lut[pr.n_pair:], pr.singles):
        assert row.tolist() == [0, a, -1]
    # greedy never beats the best possible pairing
    assert pr.n_pair <= max_pairs(bits)
    # with no int8 values every pixel pairs
    if not bits.any():
        assert pr.n_pair == m // 2 and pr.retries == 0


@settings(max_examples=60, deadline=None)
@given(bits_strategy)
def test_max_pairs_matches_brute_force(bits):
    ok = compatible(bits)
    assert max_pairs(bits) == _brute_pairs(ok, tuple(range(len(bits))))


def test_greedy_pairs_most_with_fewest_and_retries_on_conflict():
    # pixel 0 has the most int8 values; pixel 3 (fewest, one bit) conflicts with it, pixel 2 does not
    bits = np.array([[0b1111_0000], [0b0000_0011], [0b0000_1000], [0b1000_0000]], dtype=np.uint8)
    pr = greedy_pack(bits)
    assert pr.pairs[0].tolist() == [0, 2]  # 3 (tried first: fewest, last in the sort) conflicted
    assert pr.retries >= 1
    assert pr.pairs[1].tolist() == [1, 3]


def test_all_int8_pixels_stay_single():
    bits = np.full((5, 2), 0xFF, dtype=np.uint8)
    pr = greedy_pack(bits)
    assert pr.n_pair == 0 and pr.n_single == 5 and max_pairs(bits) == 0


# ------------------------------------------------------------------ bitmask module
def test_first_layer_mask_direction_and_norms():
    l1 = np.array([[[0.0, 1.0], [2.0, 4.0]]])
    assert first_layer_mask(l1, 8, 0.0, "image_max").all()  # bias 0: every pixel focal
    assert first_layer_mask(l1, 8, 0.6, "image_max").tolist() == [[[False, False], [False, True]]]
    assert first_layer_mask(l1, 8, 0.6, "code_mean").tolist() == [[[False, True], [True, True]]]
    assert first_layer_mask(l1, 8, 9.0, "code_sum").tolist() == [[[False, False], [True, True]]]
    assert not first_layer_mask(l1, 8, 1.01, "image_max").any()


def test_footprint_rules():
    m = np.zeros((1, 5, 5), dtype=bool)
    m[0, 2, 2] = True
    anym = footprint_mask(m, 3, 3, 1, 1, 5, 5, "any")
    assert anym.sum() == 9 and anym[0, 1:4, 1:4].all()  # dilation by the footprint
    assert footprint_mask(m, 3, 3, 1, 1, 5, 5, "majority").sum() == 0
    big = np.zeros((1, 5, 5), dtype=bool)
    big[0, 1:4, 1:4] = True
    assert footprint_mask(big, 3, 3, 1, 1, 5, 5, "majority")[0, 2, 2]
    assert np.array_equal(footprint_mask(m, 1, 1, 1, 0, 5, 5, "any"), m)  # 1×1: identity
    s2 = footprint_mask(m, 3, 3, 2, 1, 3, 3, "any")
    assert s2.shape == (1, 3, 3) and s2[0, 1, 1]
    assert fit_mask(m, 1, 25, 1, "any").shape == (1, 25, 1)
    assert fit_mask(m[:, :4, :4], 1, 8, 8, "any").shape == (1, 8, 8)


def test_kernel_rule_shifts_the_mask_against_the_kernel_weight():
    """Fig. 4 kind, by hand: a 3×3 kernel with 0.6 of its weight at the bottom-right tap moves a
    2×2 focal block one pixel up-left (output (y, x) reads input (y+1, x+1) through that tap)."""
    m = np.zeros((1, 4, 4), dtype=bool)
    m[0, 1:3, 1:3] = True
    prof = [0.05] * 8 + [0.6]
    out = footprint_mask(m, 3, 3, 1, 1, 4, 4, "kernel", prof, 0.5)
    expect = np.zeros((1, 4, 4), dtype=bool)
    expect[0, 0:2, 0:2] = True   # e.g. (0,0): 0.6 focal of 0.75 in-image; (0,2): 0.1 of 0.85
    assert np.array_equal(out, expect)
    # the mirrored kernel moves it the other way; a uniform kernel at 0.5 is the majority rule
    assert np.array_equal(footprint_mask(m, 3, 3, 1, 1, 4, 4, "kernel", prof[::-1], 0.5)[0, 2:, 2:],
                          np.ones((2, 2), dtype=bool))
    rng = np.random.default_rng(1)
    rand = rng.random((2, 7, 7)) < 0.4
    assert np.array_equal(footprint_mask(rand, 3, 3, 2, 1, 4, 4, "kernel", (), 0.5),
                          footprint_mask(rand, 3, 3, 2, 1, 4, 4, "majority"))
    # the threshold decides: just below the block's 0.75 share the centre stays, above it goes
    assert footprint_mask(m, 3, 3, 1, 1, 4, 4, "kernel", prof, 0.74)[0, 1, 1]
    assert not footprint_mask(m, 3, 3, 1, 1, 4, 4, "kernel", prof, 0.76)[0, 1, 1]


def test_bundled_trace_kernel_profiles_and_rule_ordering():
    """Every conv of the bundled trace carries a profile summing to 1; the `any` rule's masks
    contain the `kernel` rule's at every layer and step (both are monotone, any ⊇ kernel)."""
    from workloads import Trace, bundled_trace

    path = str(bundled_trace("tiny-silu"))
    tr = Trace(path)
    convs = [op for op in tr.ops if op.kind == "conv2d"]
    assert convs and all(len(op.kernel_profile) == op.r * op.s for op in convs)
    assert all(abs(sum(op.kernel_profile) - 1) < 1e-4 for op in convs)
    k = replay(path, "mhdiff", IDEAL).summary["mhd_focal_frac_by_layer"]
    a = replay(path, "mhdiff.any_rule", IDEAL).summary["mhd_focal_frac_by_layer"]
    assert k.keys() == a.keys() and all(len(v) == tr.n_steps for v in k.values())
    pairs = [(fk, fa) for name in k for fk, fa in zip(k[name], a[name])]
    assert all(fk <= fa for fk, fa in pairs) and any(fk < fa for fk, fa in pairs)


def test_window_need_marks_focal_inputs_and_padding():
    need = np.zeros((9, 1), dtype=np.uint8)
    need[4, 0] = 0b1000_0000  # centre pixel: channel 0 needs int8
    focal = np.zeros((3, 3), dtype=bool)
    focal[0, 0] = True
    win = window_need(need, focal, 3, 3, 3, 3, 1, 1, 3, 3, 8)
    assert win.shape == (9, 9)
    # output (1,1) sees the focal corner at window offset (0,0): all 8 channels int8
    assert win[4, 0] == 0xFF and win[4, 4] == 0b1000_0000
    # output (0,0) window offset (0,0) is padding: nothing needed
    assert win[0, 0] == 0


# ------------------------------------------------------------------ simulations
def _trace(path, steps, l1_maps, need=None, marginal=None, c=16, k=32, hw_=16, n=2, two=False):
    b = OpTableBuilder()
    b.conv("conv_in", None, k, r=3, shape=(n, c, hw_, hw_))
    if two:
        b.conv("conv2", 0, k, r=1)
    ops = b.ops
    stats = []
    for s in range(steps):
        st_ = StepStats()
        for op in ops:
            if need is not None:
                st_.arrays.setdefault("mhd.int8_need", {})[op.op_id] = need(op)
            if marginal is not None:
                st_.scalars.setdefault("raw.int4_outlier_frac", {})[op.op_id] = marginal
        if s > 0 and l1_maps is not None:
            st_.arrays["mhd.l1_map"] = {0: l1_maps(ops[0]).astype(np.float16)}
        stats.append(st_)
    manifest = {"model": "mhd-test", "steps": list(range(steps, 0, -1)), "batch": n,
                "synthetic_stats": True}
    write_trace(path, manifest, ops, stats)
    return str(path)


def _zero_need(op):
    return np.zeros((op.n, op.h * op.w, -(-op.c // 8)), dtype=np.uint8)


def _ramp(op):
    return np.arange(op.n * op.h * op.w, dtype=np.float64).reshape(op.n, op.h, op.w) % 7


def _pe_cycles(res, step, op_id):
    return next(r["pe_busy_cycles"] for r in res.per_op if r["step"] == step and r["op_id"] == op_id)


def test_bias_zero_equals_int8_dense_cycles(tmp_path):
    tr = _trace(tmp_path / "t.zip", 2, _ramp, _zero_need, two=True)
    dense = replay(tr, "dense", IDEAL)
    mhd = replay(tr, "mhdiff", IDEAL, design_params={"bias": 0.0})
    assert mhd.summary["mhd_focal_position_frac"] == 1.0
    for step in (0, 1):
        for op in (0, 1):
            assert _pe_cycles(mhd, step, op) == _pe_cycles(dense, step, op) > 0


def test_all_packable_halves_pe_cycles(tmp_path):
    tr = _trace(tmp_path / "t.zip", 2, _ramp, _zero_need)
    dense = replay(tr, "dense", IDEAL)
    mhd = replay(tr, "mhdiff", IDEAL, design_params={"bias": 1.5})  # above the normalised maximum
    d1, m1 = _pe_cycles(dense, 1, 0), _pe_cycles(mhd, 1, 0)
    # closed form: per image 256 positions → 128 packed vectors; ⌈128/32⌉·⌈32/32⌉·(16·9) cycles
    assert m1 == 2 * 4 * 1 * 144
    assert d1 == 2 * 8 * 1 * 144
    assert _pe_cycles(mhd, 0, 0) == _pe_cycles(dense, 0, 0)  # step 0: no previous map, all focal
    assert mhd.summary["mhd_pairs_count"] == 2 * 128
    # energy: step 0 all int8 products, step 1 every product int4 (all pixels packed in pairs)
    macs = 2 * 256 * 32 * 144
    pe = mhd.summary["events_by_component"]["pe"]
    assert pe == {"mac.int8": macs, "mac.int4x8": macs}
    assert mhd.summary["mhd_multiplier_activations_count"] == 2 * macs + macs
    assert mhd.summary["unpriced_events"] == []


def test_dram_bytes_follow_the_spec(tmp_path):
    # every tensor through DRAM (residency "never"): the per-layer formulas of dataflows.md §4.3
    steps, n, c, k, hw_ = 3, 2, 16, 32, 16
    tr = _trace(tmp_path / "t.zip", steps, _ramp, _zero_need, n=n, c=c, k=k, hw_=hw_, two=True)
    res = replay(tr, "mhdiff", THROUGH_DRAM)
    e_in1, e_w1, e_out1 = n * c * hw_ * hw_, k * c * 9, n * k * hw_ * hw_
    e_w2, e_out2 = k * k, n * k * hw_ * hw_
    for row in res.per_op:
        s, op = row["step"], row["op_id"]
        if op == 0:
            assert row["dram_read_act_bytes"] == e_in1
            assert row["dram_read_weight_bytes"] == e_w1
            assert row["dram_read_prev_act_bytes"] == (e_in1 if s > 0 else 0)  # A-13, layer 1 only
            assert row["dram_write_prev_act_bytes"] == (e_in1 if s < steps - 1 else 0)
            assert row["dram_write_out_bytes"] == e_out1
        else:
            assert row["dram_read_act_bytes"] == e_out1
            assert row["dram_read_weight_bytes"] == e_w2
            assert row["dram_read_prev_act_bytes"] == 0 and row["dram_write_prev_act_bytes"] == 0
            assert row["dram_write_out_bytes"] == e_out2


def test_activations_follow_the_shared_residency_rule(tmp_path):
    # default residency: conv_in's output stays on chip, the cross-step map still goes to DRAM
    steps, n, c, k, hw_ = 3, 2, 16, 32, 16
    tr = _trace(tmp_path / "t.zip", steps, _ramp, _zero_need, n=n, c=c, k=k, hw_=hw_, two=True)
    res = replay(tr, "mhdiff", IDEAL)
    dense = replay(tr, "dense", IDEAL)
    assert res.summary["residency"] == dense.summary["residency"]
    e_in1 = n * c * hw_ * hw_
    for row in res.per_op:
        if row["op_id"] == 0:
            assert row["dram_write_out_bytes"] == 0
            assert row["dram_read_prev_act_bytes"] == (e_in1 if row["step"] > 0 else 0)
        else:
            assert row["dram_read_act_bytes"] == 0
    prev = res.summary["dram_read_bytes_by_kind"]["prev_act"] + res.summary["dram_write_bytes_by_kind"]["prev_act"]
    assert prev == 2 * (steps - 1) * e_in1
    total = lambda r: r.summary["dram_read_bytes"] + r.summary["dram_write_bytes"]  # noqa: E731
    assert total(res) == total(dense) + prev


def test_compact_activation_format_reads_fewer_bytes(tmp_path):
    tr = _trace(tmp_path / "t.zip", 2, _ramp, _zero_need)
    res = replay(tr, "mhdiff", IDEAL, design_params={"bias": 1.5, "act_format": "compact"})
    row = next(r for r in res.per_op if r["step"] == 1)
    e_in = 2 * 16 * 256
    # A-15b with every pixel peripheral and no int8 values: C·P_p·(0.5 + 1/8) bytes per image
    assert row["dram_read_act_bytes"] == pytest.approx(e_in * 0.625, abs=4)


def test_no_packing_is_slower_on_a_small_trace(tmp_path):
    rng = np.random.default_rng(3)
    need = lambda op: np.packbits(rng.random((op.n, op.h * op.w, op.c)) < 0.02, axis=-1)  # noqa: E731
    tr = _trace(tmp_path / "t.zip", 2, _ramp, need)
    packed = replay(tr, "mhdiff", IDEAL, design_params={"bias": 0.7})
    unpacked = replay(tr, "mhdiff.no_packing", IDEAL, design_params={"bias": 0.7})
    assert unpacked.summary["pe_busy_cycles"] > packed.summary["pe_busy_cycles"]
    assert packed.summary["mhd_pairs_count"] > 0


def test_marginal_only_trace_draws_vectors_and_says_so(tmp_path):
    tr = _trace(tmp_path / "t.zip", 2, _ramp, None, marginal=0.05)
    res = replay(tr, "mhdiff", IDEAL, design_params={"bias": 0.5})
    assert any("drawn" in n for n in res.notes)
    assert 0 < res.summary["mhd_periph_int8_frac"] < 0.2


def test_missing_int8_information_is_an_error(tmp_path):
    tr = _trace(tmp_path / "t.zip", 2, _ramp, None)
    with pytest.raises(ConfigError, match="int8_need"):
        replay(tr, "mhdiff", IDEAL, design_params={"bias": 0.5})


def test_budget_that_does_not_make_whole_pes_is_an_error():
    with pytest.raises(ConfigError, match="compute budget"):
        get_design("mhdiff")(COMMON.evolve(compute_budget_units=65536 + 32)).make_units(None)


def test_paper_config_and_packed_array_closed_form():
    hw = get_design("mhdiff").paper_hw()
    assert (hw.freq_mhz, hw.pe_array.rows, hw.pe_array.cols, hw.budget_units()) == (500.0, 32, 32, 65536)
    assert [b.capacity_kib for b in (hw.buffers.global_buffer, hw.buffers.activation,
                                     hw.buffers.weight, hw.buffers.output)] == [360, 132, 48, 132]
    pe = PackedPeArray("pe", None, Mapping(32, 32), 1.0)
    assert pe.cycles(PackedTile(65, 40, 144, 0)) == 3 * 2 * 144
    # the unpacked ablation's imbalance is charged once per column block
    assert pe.cycles(PackedTile(65, 40, 144, 0, extra_cycles=5)) == 3 * 2 * 144 + 2 * 5
    # fractional lanes (A-37): half a slot per position per cycle doubles the reduction cycles
    assert PackedPeArray("pe", None, Mapping(32, 32), 0.5).cycles(PackedTile(32, 32, 10, 0)) == 20


def test_units_price_their_own_work():
    pe = PackedPeArray("pe", None, Mapping(32, 32), 1.0)
    assert pe.energy_events(PackedTile(4, 2, 3, 24)) == {"mac.int8": 24}  # all focal: int8 MACs
    mixed = PackedTile(2, 2, 3, 24, int8_macs=6, int4_macs=18)
    assert pe.energy_events(mixed) == {"mac.int8": 6, "mac.int4x8": 18}
    assert mixed.multiplier_activations == 18 + 2 * 6
    bm = BitmaskUnit("bm", None, 128, 9)
    w = BitmaskWork(True, 100, 16, 100, 9)
    assert bm.energy_events(w) == {"add.int8": 100 * 16 + 100 * 9}
    assert bm.cycles(w) == -(-1600 // 128) + 100
    assert bm.energy_events(BitmaskWork(False, 100, 16, 100, 1)) == {"add.int8": 0}
    pk = Packer("pk", None, 128)
    assert pk.energy_events(PackWork(8, 16)) == {"add.int8": 8 * 16 + 24}  # P_p·C + P_p·log2 P_p
    assert pk.cycles(PackWork(8, 16)) == 1 + 1 and pk.energy_events(PackWork(0, 16)) == {}
    lut = LutScatter("lut", None, 32, 1.0)
    assert lut.energy_events(ScatterWork(10, 4)) == {"add.int8": 40} and lut.cycles(ScatterWork(10, 4)) == 2


def test_bias_sweep_focal_fraction_falls_with_bias(tmp_path):
    from difftlm.sweep import load, run_sweep, spec_from_dict

    tr = _trace(tmp_path / "t.zip", 2, _ramp, _zero_need)
    spec = spec_from_dict({"traces": [tr], "designs": ["mhdiff"],  # IDEAL, majority rule
                           "fixed": {"hw.memory.model": "ideal", "hw.weight_residency": "never",
                                     "design.mhdiff.mask_rule": "majority"},
                           "axis": [{"key": "design.mhdiff.bias", "values": [0.0, 0.5, 0.9, 1.5]}]})
    run_sweep(spec, str(tmp_path / "bias.sweep"), jobs=1)
    rows = load(str(tmp_path / "bias.sweep")).to_pylist()
    assert [r["design.mhdiff.bias"] for r in rows] == [0.0, 0.5, 0.9, 1.5]
    fracs = [r["mhd_focal_position_frac"] for r in rows]
    assert fracs[0] == 1.0 and fracs == sorted(fracs, reverse=True) and fracs[-1] < 1.0
    cycles = [r["pe_busy_cycles"] for r in rows]
    assert cycles == sorted(cycles, reverse=True) and cycles[-1] < cycles[0]


@pytest.mark.slow
def test_no_packing_is_slower_on_the_bundled_trace():
    from workloads import bundled_trace

    tr = str(bundled_trace("tiny-silu"))
    packed = replay(tr, "mhdiff")
    unpacked = replay(tr, "mhdiff.no_packing")
    assert unpacked.summary["total_cycles"] > packed.summary["total_cycles"]
    assert unpacked.summary["pe_busy_cycles"] > packed.summary["pe_busy_cycles"]


def test_all_focal_does_no_work_a_dense_array_would_not(tmp_path):
    tr = _trace(tmp_path / "t.zip", 3, _ramp, None, two=True)  # no int8-need data needed at all
    dense = replay(tr, "dense", IDEAL)
    af = replay(tr, "mhdiff.all_focal", IDEAL)
    s, d = af.summary, dense.summary
    assert s["mhd_focal_position_frac"] == 1.0 and s["mhd_pairs_count"] == 0
    assert all(s["unit_busy_cycles"][u] == 0 for u in ("bitmask", "packer", "lut"))
    assert "prev_act" not in s["dram_read_bytes_by_kind"] and "prev_act" not in s["dram_write_bytes_by_kind"]
    assert s["events_by_component"]["pe"] == d["events_by_component"]["pe"]
    assert s["total_cycles"] == d["total_cycles"]
    assert s["dram_read_bytes"] == d["dram_read_bytes"] and s["dram_write_bytes"] == d["dram_write_bytes"]


@pytest.fixture(scope="module")
def bundled_silu():
    from workloads import bundled_trace

    tr = str(bundled_trace("tiny-silu"))
    return {n: replay(tr, n).summary for n in ("dense", "mhdiff.all_focal")}


def test_all_focal_matches_dense_on_the_bundled_trace(bundled_silu):
    d, v = bundled_silu["dense"], bundled_silu["mhdiff.all_focal"]
    assert v["total_cycles"] == pytest.approx(d["total_cycles"], rel=0.02)
    dram = lambda x: x["dram_read_bytes"] + x["dram_write_bytes"]  # noqa: E731
    assert dram(v) == pytest.approx(dram(d), rel=0.02)
    assert v["unpriced_events"] == []
