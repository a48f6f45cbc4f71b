"""Cambricon-D: PE cycles on the common grid and clipping against closed forms, DRAM bytes against
the dataflow spec's formulas (dataflows.md §3.3, A-1…A-10) op by op under the shared residency
rule, the units' own energy events, and the per-layer variant."""

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
NEVER = IDEAL.evolve(residency="never")  # every inter-op tensor through DRAM
N_PES = 65536 // (60 * 33 + 4 * 121)  # common budget: 26 PEs
INT3 = N_PES * 60 / 1024  # reduction lanes per position of the 32×32 grid
FP16 = N_PES * 4 / 1024


def cdiv(a, b):
    return -(-a // b)


def grid(m, n, k, lanes, rows=32, cols=32):
    """The common mapping: ⌈m/rows⌉·⌈n/cols⌉·⌈k/lanes⌉."""
    return cdiv(m, rows) * cdiv(n, cols) * math.ceil(k / lanes - 1e-9)


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
def test_conv_tile_cycles_match_the_common_grid_and_overflow_is_counted(tmp_path):
    b = OpTableBuilder()
    b.conv("conv", None, 24, r=3, shape=(1, 20, 6, 6))  # C·R·S = 180 = 3 groups of 60
    hist = [0.5, 0.1, 0.1, 0.05, 0.05, 0.2]
    path = write(tmp_path, b.ops, [StepStats(), stats({0: 0.01}, {0: hist})])
    res = replay(path, "cambricon_d", IDEAL)
    expect = grid(36, 24, 180, INT3)
    assert rows(res, 1, 0)["pe_busy_cycles"] == expect
    # first step (A-4 fp16_path): only the 4 fp16 multipliers per PE
    assert rows(res, 0, 0)["pe_busy_cycles"] == grid(36, 24, 180, FP16)
    groups = 36 * 3
    s = res.summary
    assert s["pe_count"] == 26 and s["compute_unused_units"] == 65536 - 26 * 2464
    assert s["pe_lanes_int3_per_position"] == pytest.approx(INT3)
    assert s["pe_lanes_fp16_per_position"] == pytest.approx(FP16)
    assert s["outlier_groups"] == groups
    assert s["clipped_groups"] == pytest.approx(0.2 * groups)
    assert s["clipped_outliers_min"] == pytest.approx(0.2 * groups)
    # clipping is a statistic, not an energy event
    assert not any("clipped" in e for ev in s["events_by_component"].values() for e in ev)
    # a smaller outlier budget clips more; its smaller PE (60·33 + 2·121 units) buys more PEs
    res2 = replay(path, "cambricon_d", IDEAL, design_params={"outlier_lanes": 2})
    assert res2.summary["clipped_groups"] == pytest.approx((0.05 + 0.05 + 0.2) * groups)
    assert res2.summary["clipped_outliers_min"] == pytest.approx((0.05 + 2 * 0.05 + 3 * 0.2) * groups)
    assert res2.summary["pe_count"] == 65536 // 2222 == 29
    assert rows(res2, 1, 0)["pe_busy_cycles"] == grid(36, 24, 180, 29 * 60 / 1024)


def test_pe_count_comes_from_the_budget_and_the_paper_config_has_60_lanes():
    with pytest.raises(ConfigError, match="budget"):
        get_design("cambricon_d")(COMMON.evolve(compute_budget_units=2000))
    with pytest.raises(ConfigError, match="unknown key"):
        get_design("cambricon_d")(COMMON, {"pe_rows": 6})  # the PE array maps on the common grid
    paper = get_design("cambricon_d").paper_hw()
    d = get_design("cambricon_d")(paper)
    assert d.n_pes == 16384 and d.unused_units == 0
    assert (d.grid.rows, d.grid.cols) == (128, 128)
    assert paper.buffers.global_buffer.capacity_bytes == 64 * 2**20  # residency store = input SRAM


def test_paper_config_cycles_are_the_papers_formula(tmp_path):
    b = OpTableBuilder()
    b.conv("conv", None, 200, r=3, shape=(1, 32, 16, 16))  # 256 pixels, K = 200, C·R·S = 288
    path = write(tmp_path, b.ops, [StepStats(), stats({0: 0.01})])
    res = replay(path, "cambricon_d", get_design("cambricon_d").paper_hw())
    assert res.summary["pe_lanes_int3_per_position"] == 60
    assert rows(res, 1, 0)["pe_busy_cycles"] == cdiv(256, 128) * cdiv(200, 128) * cdiv(288, 60)


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
    """Everything fits the global buffer: inter-op deltas stay on chip (A-38), only the paper's
    DRAM-side state moves."""
    rho = {0: 0.05, 2: 0.02, 5: 0.1}
    ops, path, steps = _resnet_trace(tmp_path, rho)
    res = replay(path, "cambricon_d", IDEAL)
    assert res.summary["residency"]["spilled_tensors"] == []
    for s in (1, 2):
        r = steps[s].scalars["camd.rho_out"]
        conv_in, act, conv1, add, norm, conv2 = (bytes_of(rows(res, s, i)) for i in range(6))
        e = 2 * 8 * 8 * 8
        assert conv_in == {"dram_read_weight_bytes": 8 * 4 * 9 * 2,
                           "dram_read_input_bytes": 2 * 4 * 8 * 8 * 2,
                           "dram_write_delta_bytes": wdelta(e, r[0])}
        assert act == {"dram_read_sign_bytes": e // 8}
        assert conv1 == {"dram_read_weight_bytes": 8 * 8 * 9 * 2, "dram_write_delta_bytes": wdelta(e, r[2])}
        assert add == {}
        assert norm == {"dram_read_gn_const_bytes": 2 * 8 * 4}
        assert conv2 == {"dram_read_weight_bytes": 16 * 8 * 2, "dram_write_delta_bytes": wdelta(2 * 16 * 64, r[5])}
    # first step: initial raw outputs and signs
    f = [bytes_of(rows(res, 0, i)) for i in range(6)]
    assert f[0]["dram_write_raw_out_bytes"] == 1024 * 2 and "dram_write_spill_bytes" not in f[0]
    assert f[1] == {"dram_write_sign_bytes": 1024 // 8}
    assert f[3] == {}
    # NDP in-bank bytes: E_out·(2+2) + E_out/8 per MAC op per differential step, off the channel
    assert res.summary["ndp_internal_bytes"] == pytest.approx(2 * (2 * (1024 * 4 + 128) + 2048 * 4 + 256))


def test_spilled_tensors_move_as_compressed_deltas(tmp_path):
    """residency = never: every inter-op tensor is written once by its producer and read by each
    consumer, in its per-step form (A-2 revised): fp16 at step 0, W_delta(ρ) after, ρ of a vector
    op's output = max ρ of its inputs."""
    rho = {0: 0.05, 2: 0.02, 5: 0.1}
    ops, path, steps = _resnet_trace(tmp_path, rho)
    res = replay(path, "cambricon_d", NEVER)
    assert res.summary["residency"]["spilled_tensors"] == ["conv_in", "act", "conv1", "res", "norm"]
    e = 1024
    r = steps[1].scalars["camd.rho_out"]
    d0, d2 = wdelta(e, r[0]), wdelta(e, r[2])
    conv_in, act, conv1, add, norm, conv2 = (bytes_of(rows(res, 1, i)) for i in range(6))
    assert conv_in["dram_write_spill_bytes"] == d0 and conv_in["dram_write_delta_bytes"] == d0
    assert act == {"dram_read_sign_bytes": e // 8, "dram_read_spill_bytes": d0, "dram_write_spill_bytes": d0}
    assert conv1["dram_read_spill_bytes"] == d0 and conv1["dram_write_spill_bytes"] == d2
    assert add == {"dram_read_spill_bytes": d0 + d2, "dram_write_spill_bytes": wdelta(e, max(r[0], r[2]))}
    assert conv2["dram_read_spill_bytes"] == wdelta(e, max(r[0], r[2]))
    assert "dram_write_spill_bytes" not in conv2  # the network output: the NDP's raw copy
    f = [bytes_of(rows(res, 0, i)) for i in range(6)]
    assert f[0]["dram_write_spill_bytes"] == e * 2 and f[3]["dram_read_spill_bytes"] == 2 * e * 2


def test_residency_is_planned_at_the_larger_form_unless_told_otherwise(tmp_path):
    ops, path, _ = _resnet_trace(tmp_path, {0: 0.05, 2: 0.02, 5: 0.1})
    big = replay(path, "cambricon_d", IDEAL).summary["residency"]
    small = replay(path, "cambricon_d", IDEAL, design_params={"residency_size": "delta"}).summary["residency"]
    assert small["peak_bytes"] < big["peak_bytes"]
    e = 1024
    # conv_in and conv1's outputs live together around the residual: fp16 vs W_delta at ρ = 4/60
    assert big["peak_bytes"] >= 2 * e * 2
    assert small["peak_bytes"] < 2 * e * 2


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
    assert sum(v for k, v in bytes_of(rows(res, 2, 0)).items() if "_write_" in k) == 1024 * 4 // 8


def test_attention_reads_raw_qkv_and_previous_output(tmp_path):
    b = OpTableBuilder()
    x = b.conv("x", None, 16, r=1, shape=(1, 8, 4, 4))
    qkv = b.linear("qkv", x, 3 * 16, tokens=16)
    qk = b.matmul("matmul_qk", "qk", qkv, qkv, heads=2, head_dim=8, tokens=16, kv_tokens=16)
    sm = b.elementwise("softmax", "sm", [qk])
    pv = b.matmul("matmul_pv", "pv", sm, qkv, heads=2, head_dim=8, tokens=16, kv_tokens=16)
    st = [StepStats()] + [stats({x: 0.0, qkv: 0.01, qk: 0.2, pv: 0.05})] * 2
    for hw in (IDEAL, NEVER):
        res = replay(write(tmp_path, b.ops, st), "cambricon_d", hw)
        q = k = v = 1 * 2 * 16 * 8
        # qkv's delta goes only to the NDP (never spilled): its consumers read the raw copy
        x_in = {} if hw is IDEAL else {"dram_read_spill_bytes": wdelta(16 * 16, 0.0)}
        assert bytes_of(rows(res, 1, qkv)) == {"dram_read_weight_bytes": 48 * 16 * 2,
                                               "dram_write_delta_bytes": wdelta(16 * 48, 0.01), **x_in}
        spill = {} if hw is IDEAL else {"dram_write_spill_bytes": 2 * 16 * 16 * 2}
        assert bytes_of(rows(res, 1, qk)) == {"dram_read_attn_raw_bytes": (q + k) * 2, **spill}
        sm_b = {} if hw is IDEAL else {"dram_read_spill_bytes": 1024, "dram_write_spill_bytes": 1024}
        assert bytes_of(rows(res, 1, sm)) == sm_b
        pv_b = {} if hw is IDEAL else {"dram_read_spill_bytes": 1024}
        assert bytes_of(rows(res, 1, pv)) == {"dram_read_attn_raw_bytes": v * 2,
                                              "dram_read_attn_prev_out_bytes": 2 * 16 * 8 * 2,
                                              "dram_write_delta_bytes": wdelta(2 * 16 * 8, 0.05), **pv_b}
        # attention runs on the fp16 multipliers: ⌈L/rows⌉·⌈L/cols⌉·⌈d/lanes⌉ per head
        assert rows(res, 1, qk)["pe_busy_cycles"] == 2 * grid(16, 16, 8, FP16)


# ------------------------------------------------------------------ energy
def test_units_price_their_own_work(tmp_path):
    rho = {0: 0.05, 2: 0.02, 5: 0.1}
    ops, path, _ = _resnet_trace(tmp_path, rho)
    s = replay(path, "cambricon_d", IDEAL, design_params={"ndp_pj_per_bit": 0.5}).summary
    assert s["unpriced_events"] == []
    ev = s["events_by_component"]
    macs = sum(op.macs for op in ops)
    assert ev["pe"]["mac.int3xfp16"] == 2 * macs and ev["pe"]["mac.fp16"] == macs  # 2 delta steps, 1 raw
    # SFU: ReLU masks (1024 per step) and compression of every MAC output (2 differential steps)
    assert ev["sfu"]["sfu.elements"] == 3 * 1024 + 2 * (1024 + 1024 + 2048)
    assert ev["ndp"]["ndp.bits"] == pytest.approx(s["ndp_internal_bytes"] * 8)
    assert s["energy_pj"]["ndp"] == pytest.approx(s["ndp_internal_bytes"] * 8 * 0.5)
    assert "control" not in ev


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
            assert r["dram_read_weight_bytes"] == op.w_elems  # int8 weights at MHDiff's scale
        assert "dram_read_sign_bytes" not in bytes_of(rows(per, s, 1))
    total = lambda res: res.summary["dram_read_bytes"] + res.summary["dram_write_bytes"]  # noqa: E731
    assert total(per) > total(paper)
    assert per.summary["ndp_internal_bytes"] == 0 and per.summary["unpriced_events"] == []
    assert any("per-layer" in n for n in per.notes) and any("sign mask" in n for n in paper.notes)


def test_per_layer_spilled_mac_output_is_read_from_y_t(tmp_path):
    """A spilled MAC output is the Y_t the layer writes anyway: one write, not two."""
    ops, path, _ = _resnet_trace(tmp_path, {0: 0.05, 2: 0.02, 5: 0.1})
    per = replay(path, "cambricon_d.per_layer", NEVER)
    r = bytes_of(rows(per, 1, 0))
    assert r["dram_write_out_bytes"] == 1024 and "dram_write_spill_bytes" not in r
    assert bytes_of(rows(per, 1, 1))["dram_read_spill_bytes"] == 1024  # relu reads conv_in's Y_t


def test_invariants_and_time_identity_on_banked_dram(tmp_path):
    ops, path, _ = _resnet_trace(tmp_path, {0: 0.05, 2: 0.02, 5: 0.1})
    for name in ("cambricon_d", "cambricon_d.per_layer"):
        for hw in (COMMON, COMMON.evolve(residency="never")):
            s = replay(path, name, hw).summary
            assert s["compute_ps"] + s["memory_ps"] - s["overlap_ps"] + s["idle_ps"] == s["total_ps"]


@pytest.mark.slow
def test_bundled_relu_trace_replays():
    from workloads import bundled_trace

    for name in ("cambricon_d", "cambricon_d.per_layer"):
        res = replay(bundled_trace("tiny-relu"), name, COMMON)
        s = res.summary
        assert s["unpriced_events"] == [] and "spilled_tensors" in s["residency"]
        assert s["macs"] > 0 and s["clipped_groups"] >= 0
        # fp16 weights (496 KB) miss the 360 KiB global buffer; per_layer's int8 ones fit it
        assert s["weights_resident"] == (name == "cambricon_d.per_layer")
        if name == "cambricon_d":
            assert s["dram_write_bytes_by_kind"]["delta"] > 0 and s["dram_read_bytes_by_kind"]["sign"] > 0
