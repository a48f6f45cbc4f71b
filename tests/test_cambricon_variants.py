"""Cambricon-D's ablations (Sec. 3.7: DiffyDF, DiffyPE, AsyncPE, DiffyAll), Ditto's view of it
and the int8 per-layer (MHDiff) view: each variant's one distinguishing mechanism, op by op."""

import math

import numpy as np
import pytest

from models.config import COMMON
from models.replay import replay
from workloads.optable import OpTableBuilder
from workloads.trace import StepStats

from test_cambricon_d import IDEAL, _resnet_trace, bytes_of, grid, rows, write

VARIANTS = ("cambricon_d.diffy_df", "cambricon_d.diffy_pe", "cambricon_d.async_pe",
            "cambricon_d.diffy_all", "cambricon_d.ditto_view", "cambricon_d.per_layer",
            "cambricon_d.per_layer_fp16w")
RHO = {0: 0.05, 2: 0.02, 5: 0.1}
DIFFY_PES = 65536 // (60 * 55)  # int5×fp16 lanes at 5·11 units, no outlier lanes: 19


def _kinds(res, step, i):
    return {k.removeprefix("dram_").removesuffix("_bytes"): v for k, v in bytes_of(rows(res, step, i)).items()}


def test_diffy_df_rereads_raw_inputs_in_every_layer(tmp_path):
    """§3.4: X_{t−1} (prev_act) and Y_{t−1} (prev_out) read raw fp16 per layer, X_t written for
    the next step (not after the last), no signs, no NDP."""
    ops, path, _ = _resnet_trace(tmp_path, RHO)
    res = replay(path, "cambricon_d.diffy_df", IDEAL)
    for step in (0, 1, 2):
        for i in (0, 2, 5):
            op, k = ops[i], _kinds(res, step, i)
            assert k.get("read_prev_act", 0) == (op.in_elems * 2 if step else 0)
            assert k.get("read_prev_out", 0) == (op.out_elems * 2 if step else 0)
            assert k.get("write_keep_act", 0) == (op.in_elems * 2 if step < 2 else 0)
            assert k["read_weight"] == op.w_elems * 2 and "write_out" not in k
        assert "read_sign" not in _kinds(res, step, 1) and "read_gn_const" not in _kinds(res, step, 4)
    s = res.summary
    mac_in = sum(op.in_elems for op in ops if op.is_mac)
    assert s["dram_read_bytes_by_kind"]["prev_act"] == 2 * mac_in * 2  # = the layer inputs, 2 steps
    assert s["ndp_internal_bytes"] == 0 and s["unpriced_events"] == []


def test_diffy_pe_moves_the_papers_bytes_on_a_narrower_pe(tmp_path):
    """Same sign-mask dataflow (identical DRAM bytes), int5 lanes without outlier lanes: fewer
    PEs, raw work in ⌈16/5⌉ = 4 passes on the inlier lanes (A-43), int5×fp16 MACs."""
    ops, path, _ = _resnet_trace(tmp_path, RHO)
    paper = replay(path, "cambricon_d", IDEAL).summary
    res = replay(path, "cambricon_d.diffy_pe", IDEAL)
    s = res.summary
    assert s["dram_read_bytes_by_kind"] == paper["dram_read_bytes_by_kind"]
    assert s["dram_write_bytes_by_kind"] == paper["dram_write_bytes_by_kind"]
    assert s["pe_count"] == DIFFY_PES and s["pe_lanes_fp16_per_position"] == pytest.approx(DIFFY_PES * 60 / 1024 / 4)
    lanes = DIFFY_PES * 60 / 1024
    assert rows(res, 1, 0)["pe_busy_cycles"] == grid(128, 8, 36, lanes)
    assert rows(res, 0, 0)["pe_busy_cycles"] == grid(128, 8, 36, lanes / 4)
    macs = sum(op.macs for op in ops)
    assert s["events_by_component"]["pe"] == {"mac.int5xfp16": 2 * macs, "mac.fp16": macs}
    assert s["clipped_groups"] == 0 and s["unpriced_events"] == []


def _conv_trace(tmp_path, rho_in):
    b = OpTableBuilder()
    b.conv("conv", None, 24, r=3, shape=(1, 20, 6, 6))  # 36 px × 24 filters × C·R·S 180
    hist = {0: np.asarray([0.5, 0.1, 0.1, 0.05, 0.05, 0.2])}
    st = StepStats(scalars={"camd.rho_out": {0: 0.01}, "camd.rho_in": {0: rho_in}},
                   arrays={"camd.group_outlier_hist": hist})
    return write(tmp_path, b.ops, [StepStats(), st], name=f"c{rho_in}.zip")


def test_async_pe_computes_every_outlier_on_its_own_array(tmp_path):
    """A-44: the outlier array computes MACs·ρ_in products at 26·4 per cycle beside the inlier
    array; nothing is clipped; when it is the slower array the layer waits for it."""
    macs = 36 * 24 * 180
    lock = replay(_conv_trace(tmp_path, 0.3), "cambricon_d", IDEAL).summary
    lo, hi = (replay(_conv_trace(tmp_path, r), "cambricon_d.async_pe", IDEAL) for r in (0.01, 0.3))
    for res, r in ((lo, 0.01), (hi, 0.3)):
        s = res.summary
        assert s["unit_busy_cycles"]["outlier"] == math.ceil(math.ceil(macs * r) / (26 * 4))
        assert s["events_by_component"]["outlier"]["mac.fp16"] == math.ceil(macs * r)
        assert s["clipped_groups"] == 0 and s["unpriced_events"] == []
    assert lock["clipped_groups"] > 0
    inlier = grid(36, 24, 180, 26 * 60 / 1024)
    assert rows(hi, 1, 0)["pe_busy_cycles"] == inlier  # the inlier array itself is unchanged
    assert hi.summary["unit_busy_cycles"]["outlier"] > inlier
    assert hi.summary["total_cycles"] > lo.summary["total_cycles"] >= lock["total_cycles"] - 1
    assert hi.summary["total_cycles"] - lock["total_cycles"] >= hi.summary["unit_busy_cycles"]["outlier"] - inlier - 2


def test_diffy_all_is_diffy_dataflow_on_the_diffy_pe(tmp_path):
    ops, path, _ = _resnet_trace(tmp_path, RHO)
    df = replay(path, "cambricon_d.diffy_df", IDEAL).summary
    res = replay(path, "cambricon_d.diffy_all", IDEAL)
    assert res.summary["dram_read_bytes_by_kind"] == df["dram_read_bytes_by_kind"]
    assert res.summary["dram_write_bytes_by_kind"] == df["dram_write_bytes_by_kind"]
    assert res.summary["pe_count"] == DIFFY_PES
    assert rows(res, 1, 0)["pe_busy_cycles"] == grid(128, 8, 36, DIFFY_PES * 60 / 1024)


def test_ditto_view_pays_previous_frame_rereads_at_dense_compute(tmp_path):
    """§6.7: int8 prev/keep act, b_acc = 16-bit prev/keep out (A-31) every layer, int8 weights,
    and MAC cycles equal to the dense int8 array's (no zero skip, no dynamic width)."""
    ops, path, _ = _resnet_trace(tmp_path, RHO)
    res = replay(path, "cambricon_d.ditto_view", IDEAL)
    dense = replay(path, "dense", IDEAL)
    for step in (0, 1, 2):
        for i in (0, 2, 5):
            op, k = ops[i], _kinds(res, step, i)
            assert k.get("read_prev_act", 0) == (op.in_elems if step else 0)
            assert k.get("write_keep_act", 0) == (op.in_elems if step < 2 else 0)
            assert k.get("read_prev_out", 0) == (op.out_elems * 2 if step else 0)
            assert k.get("write_keep_out", 0) == (op.out_elems * 2 if step < 2 else 0)
            assert k["read_weight"] == op.w_elems
            assert rows(res, step, i)["pe_busy_cycles"] == rows(dense, step, i)["pe_busy_cycles"]
    s = res.summary
    assert s["pe_count"] == 1024 and s["events_by_component"]["pe"] == {"mac.int8x8": 2 * sum(op.macs for op in ops), "mac.int8": sum(op.macs for op in ops)}


def test_per_layer_is_int8_and_fp16w_keeps_the_fp16_view(tmp_path):
    ops, path, _ = _resnet_trace(tmp_path, RHO)
    int8 = replay(path, "cambricon_d.per_layer", IDEAL)
    fp16 = replay(path, "cambricon_d.per_layer_fp16w", IDEAL)
    assert _kinds(int8, 1, 0)["read_weight"] == ops[0].w_elems
    assert _kinds(fp16, 1, 0)["read_weight"] == ops[0].w_elems * 2
    assert int8.summary["pe_count"] == 65536 // (60 * 24 + 4 * 64) == 38  # int3×int8 + int8×int8
    assert fp16.summary["pe_count"] == 26
    assert "mac.int3x8" in int8.summary["events_by_component"]["pe"]


@pytest.mark.slow
@pytest.mark.parametrize("name", VARIANTS)
def test_variant_replays_the_bundled_and_a_zoo_trace(name, zoo_relu):
    from workloads import bundled_trace

    for path in (bundled_trace("tiny-relu"), zoo_relu):
        s = replay(path, name, COMMON).summary
        assert s["unpriced_events"] == [] and s["macs"] > 0 and s["total_cycles"] > 0


@pytest.fixture(scope="module")
def zoo_relu(tmp_path_factory):
    pytest.importorskip("diffusers")
    from workloads import bundled_trace
    from workloads.zoo import write_zoo_trace

    out = tmp_path_factory.mktemp("zoo") / "cifar10.zip"
    write_zoo_trace("cifar10", out, steps=3, source=bundled_trace("tiny-relu"), arrays=True)
    return str(out)
