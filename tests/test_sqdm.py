"""SQ-DM: pools on the common grid, detector timing, DRAM bytes against the spec's formulas,
layouts, residency of compressed tensors, energy events, the neutral int8 variant."""

import numpy as np
import pytest

from models.components.sqdm_units import (
    PlaneLayout, SparsityDetector, byte_runs, pixel_runs, plane_runs, weight_runs,
)
from models.config import COMMON, BufferConfig, BuffersConfig, MemoryConfig
from models.designs import create_design, get_design
from models.errors import ConfigError
from models.mapping import Mapping
from models.replay import replay
from tlm import Module
from workloads.optable import OpTableBuilder
from workloads.trace import StepStats, write_trace

IDEAL = COMMON.evolve(memory=MemoryConfig("ideal"), weight_residency="never")
SPILL = IDEAL.evolve(residency="never")   # every tensor through DRAM: the byte formulas show
Z = "sqdm.zero_frac_per_in_channel"
N_DPE, N_SPE, ETA = 3072, 682, 0.8  # common budget 65,536 units: 75 % / 16, 25 % / (16 * 1.5)
GRID = Mapping(32, 32)
L_DPE, L_SPE = N_DPE / 1024, N_SPE * ETA / 1024   # lanes per grid position
TINY = "workloads/data/traces/tiny-relu-50.trace.zip"


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


def pools_cycles(m, n, lab, z, rs=9, rate=1.0):
    """The tile's closed form: both pools on the common grid, max of the two (A-25)."""
    t_dpe = GRID.cycles(m, n, int((~lab).sum()) * rs / rate, L_DPE)
    t_spe = GRID.cycles(m, n, rs * float(np.sum((1 - z)[lab])) / rate, L_SPE)
    return max(t_dpe, t_spe)


# ---------------------------------------------------------------- compute
def test_all_dense_cycles_equal_4bit_dense_cycles_on_the_common_grid(tmp_path):
    z = np.linspace(0.0, 0.9, 16)
    path, ops = relu_conv_trace(tmp_path / "t.zip", [z, z])
    res = replay(path, "sqdm", IDEAL, design_params=params(sparsity_threshold=1.0))
    ref = replay(path, "sqdm.dense4", IDEAL, design_params=params(n_dpe=N_DPE))
    for step in (0, 1):
        a = op_rows(res, 2)[step]["pe_busy_cycles"]
        b = op_rows(ref, 2)[step]["pe_busy_cycles"]
        # 8x8 px x 16 filters: ceil(64/32) * ceil(16/32) folds, 16*9 products per output at 3 lanes
        assert a == b == 2 * 1 * (16 * 9 // 3)
    assert res.summary["sqdm_spe_busy_cycles"] == 0
    # the whole budget dense: 4 four-bit lanes per position
    d4 = replay(path, "sqdm.dense4", IDEAL, design_params=params())
    assert op_rows(d4, 2)[0]["pe_busy_cycles"] == GRID.cycles(64, 16, 144, 4)


@pytest.mark.parametrize("zero_frac", [0.4, 0.7])
def test_sparse_channels_go_to_sparse_pool_and_scale_with_nonzeros(tmp_path, zero_frac):
    z = np.zeros(16)
    z[:12] = zero_frac  # 12 channels above the 30 % threshold, 4 dense
    path, ops = relu_conv_trace(tmp_path / "t.zip", [z, z])
    res = replay(path, "sqdm", IDEAL, design_params=params())
    # step 0: no labels yet (A-27) -> all dense
    assert op_rows(res, 2)[0]["pe_busy_cycles"] == GRID.cycles(64, 16, 16 * 9, L_DPE)
    # step 1: 12 sparse channels on the SPE pool (non-zeros only), 4 dense on the DPE pool
    t_dpe = GRID.cycles(64, 16, 4 * 9, L_DPE)
    t_spe = GRID.cycles(64, 16, 9 * 12 * (1 - zero_frac), L_SPE)
    assert t_spe > t_dpe
    assert op_rows(res, 2)[1]["pe_busy_cycles"] == max(t_dpe, t_spe)
    # energy: one 4-bit MAC per product actually computed (dense + non-zero sparse products)
    mac = res.summary["events_by_component"]["pe"]["mac.int4x4"]
    conv0 = 64 * 16 * 4 * 9
    conv1 = 64 * 16 * 16 * 9 + 64 * 16 * 9 * (4 + 12 * (1 - zero_frac))
    assert mac == pytest.approx(2 * conv0 + conv1)


def test_merge_cycles_only_when_both_pools_work(tmp_path):
    z = np.zeros(16)
    z[:12] = 0.5
    path, _ = relu_conv_trace(tmp_path / "t.zip", [z, z])
    base = replay(path, "sqdm", IDEAL, design_params=params())
    merged = replay(path, "sqdm", IDEAL, design_params=params(merge_cycles=7))
    assert op_rows(merged, 2)[0]["pe_busy_cycles"] == op_rows(base, 2)[0]["pe_busy_cycles"]  # dense only
    assert op_rows(merged, 2)[1]["pe_busy_cycles"] == op_rows(base, 2)[1]["pe_busy_cycles"] + 7


def test_mxint8_edge_blocks_run_at_half_rate(tmp_path):
    z = np.zeros(16)
    path, ops = relu_conv_trace(tmp_path / "t.zip", [z], blocks=(0, 1, 2))
    res = replay(path, "sqdm", IDEAL, design_params={"mx_edge_blocks": 1})
    assert op_rows(res, 2)[0]["pe_busy_cycles"] == GRID.cycles(64, 16, 16 * 9 / 0.5, L_DPE)
    assert res.summary["events_by_component"]["pe"]["mac.int8"] > 0


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
    # the schedule runs the same counters; a step without statistics is all dense
    zs = [rng.random(8) for _ in range(3)]
    sched = SparsityDetector("s", Module("top"), 0.3, "next_step").schedule(1, [zs[0], None, zs[2]], 8, 10)
    assert not sched[0].any() and not sched[1].any()
    np.testing.assert_array_equal(sched[2], zs[0] > 0.3)


def test_detector_reports_its_work_as_priced_events(tmp_path):
    z = np.full(16, 0.5)
    path, _ = relu_conv_trace(tmp_path / "t.zip", [z, z, z])
    s = replay(path, "sqdm", IDEAL, design_params=params()).summary
    elems = 3 * 16 * 8 * 8  # every step counts the zeros of the ReLU output
    assert s["events_by_component"]["sparsity_detector"] == {"add.int8": elems}
    assert s["sqdm_detector_elements"] == elems and s["energy_pj"]["sparsity_detector"] > 0
    assert s["unpriced_events"] == []
    d4 = replay(path, "sqdm.dense4", IDEAL, design_params=params()).summary
    assert "sparsity_detector" not in d4["events_by_component"]


def test_simulated_labels_follow_previous_step_zero_fractions(tmp_path):
    rng = np.random.default_rng(3)
    zs = [np.round(rng.random(16) * 16) / 16 for _ in range(4)]
    path, ops = relu_conv_trace(tmp_path / "t.zip", zs)
    res = replay(path, "sqdm", SPILL, design_params=params())
    elems = 8 * 8
    for t in range(1, 4):
        lab = zs[t - 1] > 0.3
        row = op_rows(res, 2)[t]
        assert row["pe_busy_cycles"] == pools_cycles(64, 16, lab, zs[t])
        # the activation bytes use the same labels (compressed sparse planes, A-24)
        dense_b = (~lab).sum() * elems * (0.5 + 1 / 16)
        sparse_b = sum(elems / 8 + (1 - zs[t][c]) * elems * 0.5 + elems / 16 for c in np.flatnonzero(lab))
        assert row["dram_read_act_bytes"] == pytest.approx(dense_b + sparse_b, abs=1)
    same = replay(path, "sqdm", IDEAL, design_params=params(label_timing="same_step"))
    static = replay(path, "sqdm.static_labels", IDEAL, design_params=params())
    for t in range(4):
        lab_same, lab_static = zs[t] > 0.3, zs[0] > 0.3
        for r, lab in ((same, lab_same), (static, lab_static)):
            assert op_rows(r, 2)[t]["pe_busy_cycles"] == pools_cycles(64, 16, lab, zs[t])


# ---------------------------------------------------------------- DRAM bytes
def test_dram_bytes_equal_spec_formulas_with_scales(tmp_path):
    n, c, h = 2, 16, 8
    z0 = np.zeros(c)
    z1 = np.zeros(c)
    z1[[1, 4, 9]] = [0.5, 0.75, 1.0]  # multiples of 1/8 of 64 px: integral non-zero bytes
    path, ops = relu_conv_trace(tmp_path / "t.zip", [z1, z1], c=c, n=n, h=h)
    res = replay(path, "sqdm", SPILL, design_params=params())
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
    dense_only = replay(path, "sqdm", SPILL, design_params=params(sparse_dram="dense"))
    assert op_rows(dense_only, 2)[1]["dram_read_act_bytes"] == c * px * (0.5 + 1 / 16)
    # MXINT8 edge ops: 8-bit values + one 8-bit exponent per 32 (A-23b)
    path2, _ = relu_conv_trace(tmp_path / "m.zip", [z0], c=c, n=n, h=h, blocks=(0, 1, 2))
    mx = replay(path2, "sqdm", SPILL, design_params={"mx_edge_blocks": 1})
    assert op_rows(mx, 2)[0]["dram_read_weight_bytes"] == ew * (1 + 1 / 32)
    assert op_rows(mx, 2)[0]["dram_write_out_bytes"] == px * 16 * (1 + 1 / 32)
    # fp16 reference: 2 bytes everywhere; int8 neutral variant: 1 byte, no scales
    for name, bpe in (("sqdm.fp16_dense", 2), ("sqdm.int8_dense", 1)):
        r = replay(path, name, SPILL)
        assert op_rows(r, 2)[1]["dram_read_act_bytes"] == c * px * bpe
        assert op_rows(r, 2)[1]["dram_read_weight_bytes"] == ew * bpe
        assert op_rows(r, 2)[1]["dram_write_out_bytes"] == px * 16 * bpe


def prepared(path, name, hw, dp=None):
    """A design with its components built and `prepare` run (before any step)."""
    import simpy

    from models.memory import create_memory_model
    from tlm import ActivityRecorder
    from workloads import Trace

    d, tr = create_design(name, hw, dp), Trace(path)
    d.build(simpy.Environment(), Module("acc"), ActivityRecorder(), create_memory_model("ideal", {}), tr)
    d.prepare(tr)
    return d


def test_resident_compressed_tensor_has_no_dram_runs_and_reserves_its_largest_size(tmp_path):
    c, px = 16, 64
    zs = [np.zeros(c), np.full(c, 0.5), np.full(c, 0.75)]
    path, ops = relu_conv_trace(tmp_path / "t.zip", zs, c=c)
    res = replay(path, "sqdm", IDEAL, design_params=params())
    assert res.summary["residency"]["spilled_tensors"] == []
    assert all(r.get("dram_write_out_bytes", 0) == 0 for r in op_rows(res, 1))  # the ReLU output
    assert all(r.get("dram_read_act_bytes", 0) == 0 for r in op_rows(res, 2))   # stays on chip
    d = prepared(path, "sqdm", IDEAL, params())
    assert d.compress_for == {1: 2}
    sizes = [d._stored_bytes(1, s) for s in range(3)]
    # steps 0, 1: no labels / labels from z = 0 -> dense; step 2: labels from z = 0.5, z = 0.75 now
    assert sizes[:2] == [c * px * (0.5 + 1 / 16)] * 2
    assert sizes[2] == c * (px / 8 + 0.25 * px * 0.5 + px / 16)
    assert d.tensor_bytes(1) == max(sizes)          # the residency plan's reserve (A-24c)
    worst = prepared(path, "sqdm", IDEAL, params(compressed_reserve="worst"))
    assert worst.tensor_bytes(1) == c * px * (0.5 + 1 / 16 + 1 / 8)


# ---------------------------------------------------------------- layouts
def test_layout_runs():
    lay = PlaneLayout.of(8, np.full(4, 10 / 8))  # 4 planes of 8 elements (rows of 1), 10 B each
    off, n = plane_runs(lay, 0, 0, 8, 1, 3)
    assert list(zip(off, n)) == [(10, 20)]
    off, n = plane_runs(lay, 1, 2, 5, 0, 2)     # second image, elements 2..5 of planes 0, 1
    assert list(zip(off, n)) == [(40 + 3, 4), (50 + 3, 4)]
    off, n = pixel_runs(2.0, 4, 3, 0, 1, 2, 0, 4)  # pixels of 4 channels at 2 B: one run
    assert list(zip(off, n)) == [(8, 8)]
    off, n = pixel_runs(2.0, 4, 3, 0, 0, 3, 1, 2)
    assert list(zip(off, n)) == [(2, 2), (10, 2), (18, 2)]
    assert list(zip(*weight_runs("krc", 1.0, 4, 8, 9, 0, 4, 0, 8))) == [(0, 288)]
    assert list(zip(*weight_runs("krc", 1.0, 4, 8, 9, 0, 2, 0, 8)))[:2] == [(0, 16), (32, 16)]
    assert list(zip(*weight_runs("kcr", 1.0, 4, 8, 9, 2, 4, 0, 8))) == [(144, 144)]
    # fractional bytes round up once per boundary: neighbouring ranges tile the bytes exactly
    off, n = byte_runs([0.0, 2.5, 7.0], [2.5, 5.0, 9.75])
    assert list(zip(off, n)) == [(0, 5), (7, 3)]


def test_compressed_planes_pack_back_to_back():
    bpe = np.array([0.5625, 0.3125, 0.5625])
    lay = PlaneLayout.of(64, bpe)
    assert lay.total(2) == 2 * 64 * bpe.sum()
    runs = [plane_runs(lay, i, 0, 64, c, c + 1) for i in range(2) for c in range(3)]
    offs = [int(o[0]) for o, _ in runs]
    lens = [int(m[0]) for _, m in runs]
    assert offs == list(np.cumsum([0] + lens[:-1])) and sum(lens) == lay.total(2)


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
    hw = COMMON.evolve(buffers=BuffersConfig(BufferConfig(360), mk(16), mk(48), mk(132)), residency="never")
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
    assert create_design("sqdm.dense4", COMMON).pools() == (4096, 0)
    assert create_design("sqdm.fp16_dense", COMMON).pools() == (65536 // 121, 0)
    assert create_design("sqdm.int8_dense", COMMON).pools() == (1024, 0)  # one int8 MAC per position
    with pytest.raises(ConfigError, match="sparse pool has no MAC"):
        get_design("sqdm")(COMMON.evolve(compute_budget_units=32), {}).pools()
    with pytest.raises(ConfigError, match="budget"):
        get_design("sqdm")(COMMON, {"n_dpe": 4096, "n_spe": 100}).pools()
    with pytest.raises(ConfigError):
        get_design("sqdm")(COMMON, {"sparse_dram": "zip"})
    assert get_design("sqdm").paper_hw().name == "sqdm-paper"


def test_int8_dense_matches_dense_on_the_bundled_relu_trace():
    dense = replay(TINY, "dense").summary
    v = replay(TINY, "sqdm.int8_dense").summary
    assert v["total_cycles"] == pytest.approx(dense["total_cycles"], rel=0.02)
    dram = lambda s: s["dram_read_bytes"] + s["dram_write_bytes"]  # noqa: E731
    assert dram(v) == pytest.approx(dram(dense), rel=0.02)
    assert v["residency"]["spilled_tensors"] == dense["residency"]["spilled_tensors"]
    assert v["unpriced_events"] == [] and "mac.int8" in v["events_by_component"]["pe"]


@pytest.mark.slow
def test_bundled_trace_invariants_and_sparsity_gain():
    s = replay(TINY, "sqdm", COMMON).summary
    d4 = replay(TINY, "sqdm.dense4", COMMON).summary
    assert s["compute_ps"] + s["memory_ps"] - s["overlap_ps"] + s["idle_ps"] == s["total_ps"]
    assert s["macs"] == d4["macs"]
    assert s["sqdm_sparse_channel_mac_frac"] > 0
    assert s["unpriced_events"] == []
    assert s["events_by_component"]["pe"]["mac.int4x4"] < d4["events_by_component"]["pe"]["mac.int4x4"]
    never = COMMON.evolve(residency="never")
    s = replay(TINY, "sqdm", never).summary
    d4 = replay(TINY, "sqdm.dense4", never).summary
    assert s["dram_read_bytes_by_kind"]["act"] < d4["dram_read_bytes_by_kind"]["act"]
