"""Cambricon-D: PE cycles and clipping against closed forms, DRAM bytes against the dataflow
spec's formulas (dataflows.md §3.3, A-1…A-10) op by op, and the per-layer variant."""

import math

import numpy as np
import pytest

from models.config import COMMON, MemoryConfig
from models.designs import get_design
from models.errors import ConfigError
from models.replay import replay
from workloads.optable import OpTableBuilder
from workloads.trace import StepStats, write_trace

IDEAL = COMMON.evolve(memory=MemoryConfig("ideal"), weight_residency="never")  # spec: weights re-read every step
ROWS, COLS = 13, 2  # common budget: 65536 // (60*33 + 4*121) = 26 PEs, 2 columns


def cdiv(a, b):
    return -(-a // b)


def wdelta(e, rho, b=3):
    """The spec's W_delta = E·((1−ρ)·b_inl + ρ·16 + 1)/8 (A-1: b_inl = 3)."""
    return math.ceil(e * ((1 - rho) * b + rho * 16 + 1) / 8 - 1e-9)


def write(tmp_path, ops, steps, name="t.trace.zip"):
    path = tmp_path / name
    manifest = {"model": "test", "steps": list(range(len(steps))), "batch": ops[0].n,
                "synthetic_stats": True}
    write_trace(path, manifest, ops, steps)
    return str(path)


def stats(rho: dict, hist: dict | None = None):
    return StepStats(scalars={"camd.rho_out": dict(rho)},
                     arrays={"camd.group_outlier_hist": {k: np.asarray(v, float) for k, v in (hist or {}).items()}})


def rows(res, step, op_id):
    return next(r for r in res.per_op if r["step"] == step and r["op_id"] == op_id)


def bytes_of(row):
    return {k: v for k, v in row.items() if k.startswith("dram_") and k.endswith("_bytes") and v}


# ------------------------------------------------------------------ PE cycles and clipping
def test_conv_tile_cycles_match_closed_form_and_overflow_is_counted(tmp_path):
    b = OpTableBuilder()
    b.conv("conv", None, 24, r=3, shape=(1, 20, 6, 6))  # C·R·S = 180 = 3 groups of 60
    hist = [0.5, 0.1, 0.1, 0.05, 0.05, 0.2]
    path = write(tmp_path, b.ops, [StepStats(), stats({0: 0.01}, {0: hist})])
    res = replay(path, "cambricon_d", IDEAL)
    expect = cdiv(1 * 6 * 6, ROWS) * cdiv(24, COLS) * cdiv(20 * 9, 60)
    assert rows(res, 1, 0)["pe_busy_cycles"] == expect
    # first step (A-4 fp16_path): only the 4 fp16 multipliers per PE
    assert rows(res, 0, 0)["pe_busy_cycles"] == cdiv(36, ROWS) * cdiv(24, COLS) * cdiv(180, 4)
    groups = 36 * 3
    s = res.summary
    assert s["pe_count"] == 26 and s["compute_unused_units"] == 65536 - 26 * 2464
    assert s["outlier_groups"] == groups
    assert s["clipped_groups"] == pytest.approx(0.2 * groups)
    assert s["clipped_outliers_min"] == pytest.approx(0.2 * groups)
    # a smaller outlier budget clips more, at the same cycle count
    res2 = replay(path, "cambricon_d", IDEAL, design_params={"outlier_lanes": 2})
    assert res2.summary["clipped_groups"] == pytest.approx((0.05 + 0.05 + 0.2) * groups)
    assert res2.summary["clipped_outliers_min"] == pytest.approx((0.05 + 2 * 0.05 + 3 * 0.2) * groups)
    assert rows(res2, 1, 0)["pe_busy_cycles"] == expect


def test_pe_that_does_not_fit_the_budget_is_an_error():
    with pytest.raises(ConfigError, match="budget"):
        get_design("cambricon_d")(COMMON, {"pe_rows": 6, "pe_cols": 5})
    with pytest.raises(ConfigError, match="budget"):
        get_design("cambricon_d")(COMMON.evolve(compute_budget_units=2000))
    d = get_design("cambricon_d")(get_design("cambricon_d").paper_hw())
    assert (d.rows, d.cols, d.n_pes) == (128, 128, 16384)


# ------------------------------------------------------------------ bytes, op by op
def _resnet_trace(tmp_path, rho, zero=False):
    """conv_in → relu → conv1 → add(conv_in, conv1) → norm → conv2 (a residual around conv1)."""
    b = OpTableBuilder()
    c0 = b.conv("conv_in", None, 8, r=3, shape=(2, 4, 8, 8))
    a = b.elementwise("relu", "act", [c0])
    c1 = b.conv("conv1", a, 8, r=3, relu_in=True)
    ad = b.elementwise("add", "res", [c0, c1])
    nm = b.elementwise("groupnorm", "norm", [ad])
    c2 = b.conv("conv2", nm, 16, r=1)
    macs = (c0, c1, c2)
    steps = [StepStats()] + [stats({m: (0.0 if zero else rho[m] * (1 + s)) for m in macs}) for s in range(2)]
    return b.ops, write(tmp_path, b.ops, steps), steps


def test_dram_bytes_per_op_equal_the_spec_formulas(tmp_path):
    rho = {0: 0.05, 2: 0.02, 5: 0.1}
    ops, path, steps = _resnet_trace(tmp_path, rho)
    res = replay(path, "cambricon_d", IDEAL)
    for s in (1, 2):
        r = steps[s].scalars["camd.rho_out"]
        conv_in, act, conv1, add, norm, conv2 = (bytes_of(rows(res, s, i)) for i in range(6))
        e = 2 * 8 * 8 * 8
        spill = wdelta(e, r[0])  # conv_in's output outlives conv1 (residual)
        assert conv_in == {"dram_read_weight_bytes": 8 * 4 * 9 * 2,
                           "dram_read_input_bytes": 2 * 4 * 8 * 8 * 2,
                           "dram_write_delta_bytes": wdelta(e, r[0]),
                           "dram_write_spill_bytes": spill}
        assert act == {"dram_read_sign_bytes": e // 8}
        assert conv1 == {"dram_read_weight_bytes": 8 * 8 * 9 * 2, "dram_write_delta_bytes": wdelta(e, r[2])}
        assert add == {"dram_read_spill_bytes": spill}
        assert norm == {"dram_read_gn_const_bytes": 2 * 8 * 4}
        assert conv2 == {"dram_read_weight_bytes": 16 * 8 * 2, "dram_write_delta_bytes": wdelta(2 * 16 * 64, r[5])}
    # first step: initial raw outputs and signs, raw spill
    f = [bytes_of(rows(res, 0, i)) for i in range(6)]
    assert f[0]["dram_write_raw_out_bytes"] == 1024 * 2 and f[0]["dram_write_spill_bytes"] == 1024 * 2
    assert f[1] == {"dram_write_sign_bytes": 1024 // 8}
    assert f[3] == {"dram_read_spill_bytes": 1024 * 2}
    # NDP in-bank bytes: E_out·(2+2) + E_out/8 per MAC op per differential step, off the channel
    assert res.summary["ndp_internal_bytes"] == 2 * (2 * (1024 * 4 + 128) + 2048 * 4 + 256)


def test_all_zero_deltas_write_only_the_minimal_compressed_form(tmp_path):
    ops, path, _ = _resnet_trace(tmp_path, None, zero=True)
    res = replay(path, "cambricon_d", IDEAL)
    for i, op in enumerate(ops):
        row = rows(res, 2, i)
        writes = {k: v for k, v in bytes_of(row).items() if "_write_" in k}
        reads = {k for k in bytes_of(row) if "_read_" in k}
        assert not reads & {"dram_read_act_bytes", "dram_read_attn_raw_bytes", "dram_read_prev_act_bytes",
                            "dram_read_prev_out_bytes", "dram_read_attn_prev_out_bytes"}
        if op.is_mac:
            assert writes["dram_write_delta_bytes"] == op.out_elems * (3 + 1) // 8
    assert sum(v for k, v in bytes_of(rows(res, 2, 0)).items() if "_write_" in k) == 2 * 1024 * 4 // 8


def test_attention_reads_raw_qkv_and_previous_output(tmp_path):
    b = OpTableBuilder()
    x = b.conv("x", None, 16, r=1, shape=(1, 8, 4, 4))
    qkv = b.linear("qkv", x, 3 * 16, tokens=16)
    qk = b.matmul("matmul_qk", "qk", qkv, qkv, heads=2, head_dim=8, tokens=16, kv_tokens=16)
    sm = b.elementwise("softmax", "sm", [qk])
    pv = b.matmul("matmul_pv", "pv", sm, qkv, heads=2, head_dim=8, tokens=16, kv_tokens=16)
    st = [StepStats()] + [stats({x: 0.0, qkv: 0.01, qk: 0.2, pv: 0.05})] * 2
    res = replay(write(tmp_path, b.ops, st), "cambricon_d", IDEAL)
    q = k = v = 1 * 2 * 16 * 8
    assert bytes_of(rows(res, 1, qk)) == {"dram_read_attn_raw_bytes": (q + k) * 2}
    assert bytes_of(rows(res, 1, sm)) == {}
    assert bytes_of(rows(res, 1, pv)) == {"dram_read_attn_raw_bytes": v * 2,
                                          "dram_read_attn_prev_out_bytes": 2 * 16 * 8 * 2,
                                          "dram_write_delta_bytes": wdelta(2 * 16 * 8, 0.05)}
    # attention runs on the fp16 multipliers: ⌈L/rows⌉·⌈L/cols⌉·⌈d/4⌉ per head
    assert rows(res, 1, qk)["pe_busy_cycles"] == 2 * cdiv(16, ROWS) * cdiv(16, COLS) * cdiv(8, 4)


# ------------------------------------------------------------------ per-layer variant
def test_per_layer_reads_and_writes_raw_tensors_every_layer_and_moves_more(tmp_path):
    rho = {0: 0.05, 2: 0.02, 5: 0.1}
    ops, path, _ = _resnet_trace(tmp_path, rho)
    paper = replay(path, "cambricon_d", IDEAL)
    per = replay(path, "cambricon_d.per_layer", IDEAL)
    for s in (1, 2):
        for i in (0, 2, 5):
            op = ops[i]
            r = bytes_of(rows(per, s, i))
            assert r["dram_read_prev_act_bytes"] == op.in_elems  # b = 8 bits
            assert r["dram_read_prev_out_bytes"] == op.out_elems
            assert r["dram_write_out_bytes"] == op.out_elems
            assert r["dram_read_weight_bytes"] == op.w_elems * 2
        assert "dram_read_sign_bytes" not in bytes_of(rows(per, s, 1))
    total = lambda res: res.summary["dram_read_bytes"] + res.summary["dram_write_bytes"]  # noqa: E731
    assert total(per) > total(paper)
    assert per.summary["ndp_internal_bytes"] == 0
    assert any("per-layer" in n for n in per.notes) and any("sign mask" in n for n in paper.notes)


def test_invariants_and_time_identity_on_banked_dram(tmp_path):
    ops, path, _ = _resnet_trace(tmp_path, {0: 0.05, 2: 0.02, 5: 0.1})
    for name in ("cambricon_d", "cambricon_d.per_layer"):
        s = replay(path, name, COMMON).summary
        assert s["compute_ps"] + s["memory_ps"] - s["overlap_ps"] + s["idle_ps"] == s["total_ps"]


@pytest.mark.slow
def test_bundled_relu_trace_replays():
    from workloads import bundled_trace

    res = replay(bundled_trace("tiny-relu"), "cambricon_d", COMMON)
    s = res.summary
    assert s["dram_write_bytes_by_kind"]["delta"] > 0 and s["dram_read_bytes_by_kind"]["sign"] > 0
    assert s["macs"] > 0 and s["clipped_groups"] >= 0
