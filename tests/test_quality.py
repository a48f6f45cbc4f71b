"""Design numerics (workloads.numerics) and `difftlm quality` on the bundled tiny models."""

from __future__ import annotations

import json

import attrs
import numpy as np
import pytest

torch = pytest.importorskip("torch")
torch.set_num_threads(1)

from difftlm.api import load_trace, replay  # noqa: E402
from difftlm.cli import main  # noqa: E402
from difftlm.quality import psnr_db, ssim  # noqa: E402
from models.config import COMMON  # noqa: E402
from models.designs import create_design  # noqa: E402
from models.designs.sqdm import precision_classes  # noqa: E402
from workloads.numerics import arithmetic, sample  # noqa: E402
from workloads.tiny.model import load_tiny  # noqa: E402

N, STEPS, SEED = 4, 20, 3


@pytest.fixture(scope="module")
def silu():
    return load_trace(activation="silu"), load_tiny("tiny-silu")


@pytest.fixture(scope="module")
def relu():
    return load_trace(activation="relu"), load_tiny("tiny-relu")


def run(model, params, trace, steps=STEPS):
    arith = arithmetic(params, trace)
    return sample(model, arith, N, steps, SEED), arith


def params(name, **kw):
    return create_design(name, COMMON, kw).params


def test_ditto_reproduces_int8_exactly(silu):
    trace, net = silu
    int8, _ = run(net, "int8", trace)
    ditto, arith = run(net, params("ditto"), trace)
    assert arith.state and arith.saturated == 0  # the DIFF path ran
    assert torch.equal(ditto, int8)
    # the same test fails when the delta path loses information: one nibble per wide difference
    lossy, arith = run(net, params("ditto", beyond8_slots=1), trace)
    assert arith.saturated > 0 and not torch.equal(lossy, int8)


def test_mhdiff_quality_falls_with_bias(silu):
    trace, net = silu
    steps = len(trace.manifest["steps"])  # the trace's 50 steps: the bias sets how far masks move
    ref, _ = run(net, "fp32", trace, steps)
    int8, _ = run(net, "int8", trace, steps)
    psnr, dropped = [], []
    for bias in (0.0, 0.4, 0.9):
        x, arith = run(net, params("mhdiff", bias=bias), trace, steps)
        if bias == 0.0:
            assert torch.equal(x, int8)  # bias 0: every pixel focal = int8
        psnr.append(psnr_db(x, ref).mean())
        dropped.append(arith.counts["dropped_int4"])
    assert psnr[0] > psnr[1] > psnr[2]
    assert dropped[0] == 0 < min(dropped[1:])  # how many drop depends on which pixels pair up


def test_mhdiff_packing_drops_cost_quality(silu):
    trace, net = silu
    ref, _ = run(net, "fp32", trace)
    packed, _ = run(net, params("mhdiff"), trace)
    unpacked, arith = run(net, params("mhdiff.no_packing"), trace)
    assert arith.counts["dropped_int4"] == 0
    assert psnr_db(unpacked, ref).mean() > psnr_db(packed, ref).mean()


def test_sqdm_4bit_below_8bit(relu):
    trace, net = relu
    ref, _ = run(net, "fp32", trace)
    int8, _ = run(net, "int8", trace)
    q8, _ = run(net, params("sqdm.int8_dense"), trace)
    q4, _ = run(net, params("sqdm"), trace)
    assert torch.equal(q8, int8)
    assert psnr_db(q4, ref).mean() < psnr_db(q8, ref).mean() - 3.0
    assert ssim(q4, ref).mean() < ssim(q8, ref).mean()


def test_cambricon_d_group_budget_keeps_the_leftmost_outliers():
    from workloads.numerics.cambricon_d import CambriconD

    arith = CambriconD([], {}, params("cambricon_d", group_size=8, outlier_lanes=2))
    row = torch.tensor([[0.4, 9.0, -7.0, 1.0, 5.0, -6.0, 0.0, 2.6, 7.0, 0.2]], dtype=torch.float64)
    got = arith._grouped(row, 1.0)  # groups of 8: two outliers kept, the rest clipped to [-4, 3]
    assert got.tolist() == [[0.0, 9.0, -7.0, 1.0, 3.0, -4.0, 0.0, 3.0, 7.0, 0.0]]
    assert arith.counts == {"delta_elements": 10, "outliers": 5, "clipped": 2}
    free = CambriconD([], {}, params("cambricon_d.async_pe", group_size=8, outlier_lanes=2))
    assert free._grouped(row, 1.0).tolist() == [[0.0, 9.0, -7.0, 1.0, 5.0, -6.0, 0.0, 3.0, 7.0, 0.0]]


def test_cambricon_d_quality_below_int8_and_its_budget_shared_with_timing(relu):
    trace, net = relu
    ref, _ = run(net, "fp32", trace)
    int8, _ = run(net, "int8", trace)
    camd, arith = run(net, params("cambricon_d"), trace)
    assert psnr_db(camd, ref).mean() < psnr_db(int8, ref).mean()
    assert 0 < arith.counts["clipped"] < arith.counts["outliers"] < arith.counts["delta_elements"]
    clipped_n, clipped_t = [], []
    for lanes in (4, 1):  # a smaller outlier budget clips more, in the numerics and the timing model
        design = create_design("cambricon_d", COMMON, {"outlier_lanes": lanes})
        a = arithmetic(design.params, trace)
        assert a.params is design.params
        sample(net, a, N, STEPS, SEED)
        clipped_n.append(a.counts["clipped"])
        clipped_t.append(replay(trace, "cambricon_d", design_params={"outlier_lanes": lanes})
                         .summary["clipped_outliers_min"])
    assert clipped_n[1] > clipped_n[0] and clipped_t[1] > clipped_t[0]
    _, free = run(net, params("cambricon_d.async_pe"), trace)
    assert free.counts["clipped"] == 0 and free.counts["outliers"] > 0


def test_numerics_and_timing_read_the_same_parameters(silu, relu):
    trace, net = silu
    focal_t, focal_n = [], []
    for bias in (0.3, 0.9):
        design = create_design("mhdiff", COMMON, {"bias": bias})
        arith = arithmetic(design.params, trace)
        assert arith.params is design.params
        sample(net, arith, N, STEPS, SEED)
        focal_n.append(arith.counts["focal_positions"] / arith.counts["positions"])
        res = replay(trace, "mhdiff", design_params=attrs.asdict(design.params))
        focal_t.append(res.summary["mhd_focal_position_frac"])
    assert focal_t[1] < focal_t[0] and focal_n[1] < focal_n[0]
    # SQ-DM: one rule (precision_classes) for the timing model's classes and the numerics'
    rtrace = relu[0]
    for edges in (0, 2):
        design = create_design("sqdm", COMMON, {"mx_edge_blocks": edges})
        arith = arithmetic(design.params, rtrace)
        assert list(arith.classes.values()) == design._classes(rtrace.ops) == \
            precision_classes(design.params, rtrace.ops)
        assert ("mx" in arith.classes.values()) == (edges > 0)


def test_metrics():
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (3, 1, 16, 16))
    assert np.isinf(psnr_db(x, x)).all() and np.allclose(ssim(x, x), 1.0)
    noisy = np.clip(x + rng.normal(0, 0.1, x.shape), -1, 1)
    assert (psnr_db(noisy, x) < 30).all() and (ssim(noisy, x) < 1).all()


def test_quality_command_json_and_grid(tmp_path, capsys):
    grid, out = tmp_path / "grid.png", tmp_path / "q.json"
    assert main(["quality", "--designs", "ditto", "--samples", "2", "--seed", "1", "--json",
                 "--grid", str(grid), "--out", str(out)]) == 0
    doc = json.loads(capsys.readouterr().out)
    rows = {r["name"]: r for r in doc["rows"]}
    assert set(rows) == {"fp32 (tiny-silu)", "fp16 (tiny-silu)", "int8 (tiny-silu)", "ditto"}
    assert rows["fp32 (tiny-silu)"]["psnr_db_mean"] is None  # identical to the reference
    assert rows["ditto"]["psnr_db_mean"] == rows["int8 (tiny-silu)"]["psnr_db_mean"]
    assert grid.stat().st_size > 0 and json.loads(out.read_text())["rows"]


@pytest.mark.parametrize("argv, field", [
    (["--model", "medium"], "--model"), (["--samples", "0"], "--samples"),
    (["--designs", "nosuch"], "nosuch"), (["--designs", "cambricon_d.diffy_pe"], "--designs"),
])
def test_quality_bad_input(argv, field, capsys):
    assert main(["quality", *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and field in err


@pytest.fixture(scope="module")
def compared(tmp_path_factory):
    from difftlm.api import compare

    out = tmp_path_factory.mktemp("cq") / "res"
    res = compare(designs=["dense", "ditto", "mhdiff", "cambricon_d.per_layer"], jobs=1, quality=True,
                  quality_samples=2, quality_seed=1, design_params={"mhdiff": {"bias": 0.9}})
    res.save(out, formats=("png",))
    return res, out


def test_compare_quality_columns_and_figure(compared, capsys):
    res, out = compared
    q = {n: r.summary["quality"] for n, r in res.items()}
    assert q["ditto"]["psnr_db_mean"] == q["dense"]["psnr_db_mean"]  # both the int8 arithmetic
    assert q["mhdiff"]["psnr_db_mean"] < q["dense"]["psnr_db_mean"]  # Bias 0.9: int4 pixels
    assert q["cambricon_d.per_layer"] is None
    assert any("quality: not modelled" in n for n in res["cambricon_d.per_layer"].notes)
    row = {r["design"]: r for r in res.rows()}["mhdiff"]
    assert row["quality.psnr_db_mean"] == q["mhdiff"]["psnr_db_mean"] and row["quality.model"] == "tiny-silu"
    assert (out / "quality.png").stat().st_size > 0
    assert main(["plot", str(out), "--kind", "quality", "--out", str(out / "q.svg")]) == 0
    assert (out / "q.svg").stat().st_size > 0


def test_compare_quality_bad_input(tmp_path, capsys):
    trace = str(load_trace(activation="silu").path)
    for argv, field in ((["--trace", trace], "--quality"), (["--quality-samples", "0"], "--quality-samples")):
        assert main(["compare", "--quality", "--out", str(tmp_path / "r"), *argv]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and field in err
        assert not (tmp_path / "r").exists()
    assert main(["compare", "--designs", "dense", "--out", str(tmp_path / "plain")]) == 0
    capsys.readouterr()
    assert main(["plot", str(tmp_path / "plain"), "--kind", "quality"]) == 2
    assert "compare --quality" in capsys.readouterr().err
