"""SQ-DM: pool cycles, detector timing, DRAM bytes against the spec's formulas, layouts."""

import math

import numpy as np
import pytest

from models.components.sqdm_units import (
    SparsityDetector, dpe_cycles, pixel_runs, plane_runs, spe_cycles, weight_runs,
)
from models.config import COMMON, BufferConfig, BuffersConfig, MemoryConfig
from models.designs import get_design
from models.errors import ConfigError
from models.replay import replay
from tlm import Module
from workloads.optable import OpTableBuilder
from workloads.trace import StepStats, write_trace

IDEAL = COMMON.evolve(memory=MemoryConfig("ideal"), weight_residency="never")
Z = "sqdm.zero_frac_per_in_channel"
N_DPE, N_SPE, ETA = 3072, 682, 0.8  # common budget 65,536 units: 75 % / 16, 25 % / (16 * 1.5)


def relu_conv_trace(path, zs, c=16, k=16, h=8, n=1, blocks=(0, 0, 0)):
    """conv0 -> relu -> conv1 (ReLU input); `zs[t]` = conv1's per-channel zero fractions."""
    b = OpTableBuilder()
    b.block = blocks[0]
    c0 = b.conv("conv0", None, c, r=3, shape=(n, 4, h, h))
    b.block = blocks[1]
    a = b.elementwise("relu", "act", [c0])
    b.block = blocks[2]
    c1 = b.conv("conv1", a, k, r=3, relu_in=True)
    steps = [StepStats(arrays={Z: {c1: np.asarray(z, dtype=np.float64)}}) for z in zs]
    manifest = {"model": "t", "steps": list(range(len(zs))), "batch": n, "synthetic_stats": True}
    write_trace(path, manifest, b.ops, steps)
    return str(path), b.ops


def op_rows(res, op_id):
    return [r for r in res.per_op if r["op_id"] == op_id]


def params(**kw):
    return {"mx_edge_blocks": 0, **kw}


# ---------------------------------------------------------------- compute
def test_all_dense_cycles_equal_4bit_dense_cycles(tmp_path):
    z = np.linspace(0.0, 0.9, 16)
    path, ops = relu_conv_trace(tmp_path / "t.zip", [z, z])
    res = replay(path, "sqdm", IDEAL, design_params=params(sparsity_threshold=1.0))
    ref = replay(path, "sqdm.dense4", IDEAL, design_params=params(n_dpe=N_DPE))
    for step in (0, 1):
        a = op_rows(res, 2)[step]["pe_busy_cycles"]
        b = op_rows(ref, 2)[step]["pe_busy_cycles"]
        outputs, kred = 8 * 8 * 16, 16 * 9
        assert a == b == math.ceil(outputs / (N_DPE // kred))  # MAERI VN mapping closed form
    assert res.summary["sqdm_spe_busy_cycles"] == 0


@pytest.mark.parametrize("zero_frac", [0.4, 0.7])
def test_sparse_channels_go_to_sparse_pool_and_scale_with_nonzeros(tmp_path, zero_frac):
    z = np.zeros(16)
    z[:12] = zero_frac  # 12 channels above the 30 % threshold, 4 dense
    path, ops = relu_conv_trace(tmp_path / "t.zip", [z, z])
    res = replay(path, "sqdm", IDEAL, design_params=params())
    outputs, rs = 8 * 8 * 16, 9
    # step 0: no labels yet (A-27) -> all dense
    assert op_rows(res, 2)[0]["pe_busy_cycles"] == math.ceil(outputs / (N_DPE // (16 * rs)))
    # step 1: 12 sparse channels on the SPE pool (non-zeros only), 4 dense on the DPE pool
    t_dpe = math.ceil(outputs / (N_DPE // (4 * rs)))
    t_spe = math.ceil(outputs * rs * 12 * (1 - zero_frac) / (N_SPE * ETA))
    assert t_spe > t_dpe
    assert op_rows(res, 2)[1]["pe_busy_cycles"] == max(t_dpe, t_spe)


def test_mxint8_edge_blocks_run_at_half_rate(tmp_path):
    z = np.zeros(16)
    path, ops = relu_conv_trace(tmp_path / "t.zip", [z], blocks=(0, 1, 2))
    res = replay(path, "sqdm", IDEAL, design_params={"mx_edge_blocks": 1})
    kred = 16 * 9
    assert op_rows(res, 2)[0]["pe_busy_cycles"] == math.ceil(8 * 8 * 16 / ((N_DPE // 2) // kred))
    assert res.summary["events"]["mac.int8"] > 0


# ---------------------------------------------------------------- detector
def test_detector_labels_next_step_are_thresholded_zero_fractions():
    det = SparsityDetector("d", Module("top"), 0.3, "next_step")
    rng = np.random.default_rng(0)
    prev = None
    for t in range(5):
        z = rng.random(32)
        lab = det.labels(7, 32)
        if prev is None:
            assert not lab.any()
        else:
            np.testing.assert_array_equal(lab, prev > 0.3)
        det.observe(7, z, 100)
        det.end_step()
        prev = z


def test_simulated_labels_follow_previous_step_zero_fractions(tmp_path):
    rng = np.random.default_rng(3)
    zs = [np.round(rng.random(16) * 16) / 16 for _ in range(4)]
    path, ops = relu_conv_trace(tmp_path / "t.zip", zs)
    res = replay(path, "sqdm", IDEAL, design_params=params())
    outputs, rs, elems = 8 * 8 * 16, 9, 8 * 8
    for t in range(1, 4):
        lab = zs[t - 1] > 0.3
        t_dpe = dpe_cycles(outputs, int((~lab).sum()) * rs, N_DPE, 1.0)
        t_spe = spe_cycles(outputs * rs * float(np.sum((1 - zs[t])[lab])), N_SPE, 1.0, ETA)
        row = op_rows(res, 2)[t]
        assert row["pe_busy_cycles"] == max(t_dpe, t_spe)
        # the activation bytes use the same labels (compressed sparse planes, A-24)
        dense_b = (~lab).sum() * elems * (0.5 + 1 / 16)
        sparse_b = sum(elems / 8 + (1 - zs[t][c]) * elems * 0.5 + elems / 16 for c in np.flatnonzero(lab))
        assert row["dram_read_act_bytes"] == pytest.approx(dense_b + sparse_b, abs=len(lab))
    same = replay(path, "sqdm", IDEAL, design_params=params(label_timing="same_step"))
    static = replay(path, "sqdm.static_labels", IDEAL, design_params=params())
    for t in range(4):
        lab_same, lab_static = zs[t] > 0.3, zs[0] > 0.3
        for r, lab in ((same, lab_same), (static, lab_static)):
            t_dpe = dpe_cycles(outputs, int((~lab).sum()) * rs, N_DPE, 1.0)
            t_spe = spe_cycles(outputs * rs * float(np.sum((1 - zs[t])[lab])), N_SPE, 1.0, ETA)
            assert op_rows(r, 2)[t]["pe_busy_cycles"] == max(t_dpe, t_spe)


# ---------------------------------------------------------------- DRAM bytes
def test_dram_bytes_equal_spec_formulas_with_scales(tmp_path):
    n, c, h = 2, 16, 8
    z0 = np.zeros(c)
    z1 = np.zeros(c)
    z1[[1, 4, 9]] = [0.5, 0.75, 1.0]  # multiples of 1/8 of 64 px: integral non-zero bytes
    path, ops = relu_conv_trace(tmp_path / "t.zip", [z1, z1], c=c, n=n, h=h)
    res = replay(path, "sqdm", IDEAL, design_params=params())
    px = n * h * h
    ew = 16 * c * 9
    conv1 = op_rows(res, 2)
    relu = op_rows(res, 1)
    for t, lab in ((0, np.zeros(c, bool)), (1, z1 > 0.3)):
        dense = (~lab).sum() * px * (0.5 + 1 / 16)
        sparse = sum(px / 8 + (1 - z1[i]) * px * 0.5 + px / 16 for i in np.flatnonzero(lab))
        assert conv1[t]["dram_read_act_bytes"] == dense + sparse
        assert relu[t]["dram_write_out_bytes"] == dense + sparse  # the ReLU writes what conv1 reads
        assert conv1[t]["dram_read_weight_bytes"] == ew * 0.5 + ew / 16  # INT4 + FP8 scale per 16
        assert conv1[t]["dram_write_out_bytes"] == px * 16 * (0.5 + 1 / 16)
    # A-24b: sparse channels stored dense
    dense_only = replay(path, "sqdm", IDEAL, design_params=params(sparse_dram="dense"))
    assert op_rows(dense_only, 2)[1]["dram_read_act_bytes"] == c * px * (0.5 + 1 / 16)
    # MXINT8 edge ops: 8-bit values + one 8-bit exponent per 32 (A-23b)
    path2, _ = relu_conv_trace(tmp_path / "m.zip", [z0], c=c, n=n, h=h, blocks=(0, 1, 2))
    mx = replay(path2, "sqdm", IDEAL, design_params={"mx_edge_blocks": 1})
    assert op_rows(mx, 2)[0]["dram_read_weight_bytes"] == ew * (1 + 1 / 32)
    assert op_rows(mx, 2)[0]["dram_write_out_bytes"] == px * 16 * (1 + 1 / 32)
    # fp16 reference: 2 bytes everywhere
    fp = replay(path, "sqdm.fp16_dense", IDEAL)
    assert op_rows(fp, 2)[1]["dram_read_act_bytes"] == c * px * 2
    assert op_rows(fp, 2)[1]["dram_read_weight_bytes"] == ew * 2


# ---------------------------------------------------------------- layouts
def test_layout_runs():
    row = np.full(4, 10.0)
    off = np.arange(5) * 80.0  # 8 rows of 10 B per plane
    assert plane_runs(1000, off, row, 8, 0, 8, 1, 3) == [(1080, 160)]
    assert plane_runs(1000, off, row, 8, 2, 5, 0, 2) == [(1020, 30), (1100, 30)]
    pre = np.arange(5) * 2.0  # 2 B per channel per pixel
    assert pixel_runs(0, pre, 3, 1, 2, 0, 4) == [(24, 24)]
    assert pixel_runs(0, pre, 3, 1, 2, 1, 2) == [(26, 2), (34, 2), (42, 2)]
    assert weight_runs(0, "krc", 4, 8, 9, 1.0, 0, 4, 0, 8) == [(0, 288)]
    assert weight_runs(0, "krc", 4, 8, 9, 1.0, 0, 2, 0, 8)[:2] == [(0, 16), (32, 16)]
    assert weight_runs(0, "kcr", 4, 8, 9, 1.0, 2, 4, 0, 8) == [(144, 144)]


def test_channel_last_vs_channel_first_changes_row_hits_on_the_same_tiles(tmp_path):
    # 64x64 image, 32 channels: the 4-bit input (~68 KiB) does not fit one act tile -> row tiles
    b = OpTableBuilder()
    c0 = b.conv("conv0", None, 32, r=1, shape=(1, 8, 64, 64))
    a = b.elementwise("relu", "act", [c0])
    b.conv("conv1", a, 32, r=3, relu_in=True)
    path = str(tmp_path / "big.zip")
    write_trace(path, {"model": "t", "steps": [0], "batch": 1, "synthetic_stats": True}, b.ops,
                [StepStats()])
    mk = lambda k: BufferConfig(k)  # noqa: E731
    hw = COMMON.evolve(buffers=BuffersConfig(BufferConfig(360), mk(16), mk(48), mk(132)))
    res = {lay: replay(path, "sqdm.dense4", hw, design_params=params(act_layout=lay))
           for lay in ("channel_last", "channel_first")}
    rows = {lay: op_rows(r, 2)[0] for lay, r in res.items()}
    assert rows["channel_last"]["dram_read_act_bytes"] == rows["channel_first"]["dram_read_act_bytes"]
    hit = {lay: r.summary["dram_row_hits"] / (r.summary["dram_row_hits"] + r.summary["dram_row_misses"])
           for lay, r in res.items()}
    assert res["channel_last"].summary["dram_transactions"] > res["channel_first"].summary["dram_transactions"]
    assert abs(hit["channel_last"] - hit["channel_first"]) > 0.01, hit


# ---------------------------------------------------------------- config
def test_pool_sizes_and_budget_errors():
    d = get_design("sqdm")(COMMON, {})
    assert d.pools() == (N_DPE, N_SPE)
    assert get_design("sqdm.dense4")(COMMON, {}).pools() == (4096, 0)
    assert get_design("sqdm.fp16_dense")(COMMON, {}).pools() == (65536 // 121, 0)
    with pytest.raises(ConfigError, match="sparse pool has no MAC"):
        get_design("sqdm")(COMMON.evolve(compute_budget_units=32), {}).pools()
    with pytest.raises(ConfigError, match="budget"):
        get_design("sqdm")(COMMON, {"n_dpe": 4096, "n_spe": 100}).pools()
    with pytest.raises(ConfigError):
        get_design("sqdm")(COMMON, {"sparse_dram": "zip"})
    assert get_design("sqdm").paper_hw().name == "sqdm-paper"


@pytest.mark.slow
def test_bundled_trace_invariants_and_sparsity_gain():
    import workloads

    trace = workloads.bundled_trace("tiny-relu")
    s = replay(trace, "sqdm", COMMON).summary
    d4 = replay(trace, "sqdm.dense4", COMMON).summary
    assert s["compute_ps"] + s["memory_ps"] - s["overlap_ps"] + s["idle_ps"] == s["total_ps"]
    assert s["macs"] == d4["macs"]
    assert s["sqdm_sparse_channel_mac_frac"] > 0
    assert s["dram_read_bytes_by_kind"]["act"] < d4["dram_read_bytes_by_kind"]["act"]
