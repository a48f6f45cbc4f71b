"""`difftlm compare` / the compare API: every number from the simulation, files deterministic."""

from __future__ import annotations

import json
import math
import os

import pytest

import difftlm
from difftlm.cli import main
from models.config import COMMON, PeArrayConfig
from models.designs import available_designs


STEPS = 2


@pytest.fixture(scope="module")
def twins(tmp_path_factory):
    """The bundled SiLU/ReLU traces cut to their first STEPS steps (real statistics, so every
    design's required statistics are present)."""
    from workloads import Trace
    from workloads.trace import write_trace

    out = {}
    d = tmp_path_factory.mktemp("twins")
    for act in ("silu", "relu"):
        src = Trace(difftlm.default_trace_path(act))
        man = {k: v for k, v in src.manifest.items() if k not in ("schema", "version")}
        man["steps"] = man["steps"][:STEPS]
        path = d / f"tiny-{act}-{STEPS}.trace.zip"
        write_trace(path, man, src.ops, (src.step(i) for i in range(STEPS)))
        out[act] = str(path)
    return out


@pytest.fixture(scope="module")
def small_run(twins, tmp_path_factory):
    """All designs on the 3-step twins, saved twice into two directories."""
    dirs = []
    for i in range(2):
        out = tmp_path_factory.mktemp(f"run{i}")
        difftlm.compare(twins, hw="common").save(out)
        dirs.append(out)
    return dirs


@pytest.mark.slow  # every design on the 50-step bundled traces: minutes with all designs today
def test_no_argument_compare_writes_tables_and_figures(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["compare"]) == 0          # default --out: difftlm-results/
    text = capsys.readouterr().out
    out = tmp_path / "difftlm-results"
    for name in ("results.json", "summary.csv", "per_op.csv", "per_step.csv"):
        assert (out / name).stat().st_size > 0, name
    for kind in ("breakdown", "speedup", "traffic", "energy", "timeline"):
        assert (out / f"{kind}.png").stat().st_size > 1000
        assert (out / f"{kind}.svg").stat().st_size > 1000
    doc = json.loads((out / "results.json").read_text())
    assert sorted(doc["results"]) == available_designs()
    assert "synthetic_stats = " in text
    for name, r in doc["results"].items():
        assert name in text
        assert r["trace"]["trace_id"] == doc["trace_ids"][name]
        assert r["config"]["hw"]["name"] == "common"
        assert r["config"]["memory"]["name"] == "lpddr4-3200-4ch"
        assert f"{name}: {len(r['notes']) + len(r['summary']['energy_notes'])} notes" in text
        assert r["summary"]["unpriced_events"] == []
    # designs that need the ReLU model get the ReLU twin, and the output says so
    from models.designs import get_design
    for name in available_designs():
        if get_design(name).trace_activation == "relu":
            assert "relu" in doc["results"][name]["trace"]["model"]
            assert any("ReLU twin" in n for n in doc["results"][name]["notes"])


def test_every_design_prices_all_its_work(small_run):
    doc = json.loads((small_run[0] / "results.json").read_text())
    for name, r in doc["results"].items():
        s = r["summary"]
        assert s["unpriced_events"] == [], name
        for unit, busy in s["unit_busy_cycles"].items():     # nothing busy is free
            if busy:
                assert s["energy_pj"].get(unit, 0.0) > 0, (name, unit)


def test_verbose_prints_every_note(twins, capsys):
    assert main(["compare", "--trace", twins["silu"], "--designs", "dense", "--out", "-", "--verbose"]) == 0
    text = capsys.readouterr().out
    r = difftlm.replay(twins["silu"], "dense")
    for note in r.notes:
        assert f"note [dense]: {note}" in text


def test_saved_results_are_byte_identical(small_run):
    a, b = small_run
    names = sorted(os.listdir(a))
    assert names == sorted(os.listdir(b))
    assert not [n for n in names if n.startswith(".tmp")]     # atomic writes leave no temp files
    assert {"results.json", "summary.csv", "breakdown.png", "timeline.svg"} <= set(names)
    for n in names:
        assert (a / n).read_bytes() == (b / n).read_bytes(), n


def test_tables_match_results(small_run):
    import csv

    out = small_run[0]
    doc = json.loads((out / "results.json").read_text())
    with open(out / "summary.csv") as f:
        rows = list(csv.DictReader(f))
    assert [r["design"] for r in rows] == list(doc["results"])
    for row in rows:
        s = doc["results"][row["design"]]["summary"]
        assert float(row["total_cycles"]) == pytest.approx(s["total_cycles"])
        assert float(row["energy_total_pj"]) == pytest.approx(s["energy_total_pj"])
    with open(out / "per_step.csv") as f:
        steps = list(csv.DictReader(f))
    assert len(steps) == STEPS * len(doc["results"])
    pd = pytest.importorskip("pandas")
    pytest.importorskip("pyarrow")
    df = pd.read_parquet(out / "per_op.parquet")
    assert len(df) == sum(len(r["per_op"]) for r in doc["results"].values())


def test_json_round_trips_into_plot(small_run, tmp_path):
    import matplotlib.image as mpimg
    import numpy as np

    res = small_run[0] / "results.json"
    loaded = difftlm.load_results(res)
    assert list(loaded) == list(json.loads(res.read_text())["results"])
    for kind in ("breakdown", "speedup", "traffic", "energy", "timeline"):
        png = tmp_path / f"{kind}.png"
        assert main(["plot", str(res), "--kind", kind, "--out", str(png)]) == 0
        img = mpimg.imread(png)
        assert img.ndim == 3 and img.shape[0] > 100 and img.shape[1] > 100
        assert np.ptp(img[..., :3]) > 0.5            # not a blank image
        assert (small_run[0] / f"{kind}.png").read_bytes() == png.read_bytes() or kind == "timeline"


def test_numbers_come_from_the_simulation(twins):
    """Ideal memory with a finite bandwidth: DRAM busy time is bytes / bandwidth (one ceiling per
    transaction), DRAM energy is bits × pJ/bit, and halving the bandwidth doubles it."""
    runs = {}
    for bw in (8.0, 4.0):
        runs[bw] = difftlm.compare(twins, hw=COMMON, memory="ideal",
                                   memory_params={"bandwidth_gbps": bw, "energy_pj_per_bit": 2.0})
    for name in available_designs():
        for bw, res in runs.items():
            s = res[name].summary
            nbytes = s["dram_read_bytes"] + s["dram_write_bytes"]
            assert nbytes > 0
            ideal_ps = nbytes * 1000 / bw
            dram_ps = res[name].components["acc.dram"]["busy_ps"]    # memory_ps also holds on-chip port time
            assert ideal_ps <= dram_ps <= ideal_ps + s["dram_transactions"], name
            assert dram_ps <= s["memory_ps"]
            assert s["dram_energy_pj"] == pytest.approx(nbytes * 8 * 2.0)
            assert s["energy_pj"]["dram"] == pytest.approx(s["dram_energy_pj"])
        slow, fast = runs[4.0][name].summary, runs[8.0][name].summary
        ratio = (runs[4.0][name].components["acc.dram"]["busy_ps"]
                 / runs[8.0][name].components["acc.dram"]["busy_ps"])
        bytes_ratio = ((slow["dram_read_bytes"] + slow["dram_write_bytes"])
                       / (fast["dram_read_bytes"] + fast["dram_write_bytes"]))
        assert ratio == pytest.approx(2 * bytes_ratio, rel=0.01), name     # time = bytes / bandwidth
        assert slow["total_cycles"] >= fast["total_cycles"]


def test_fewer_pe_rows_slow_dense_compute(small_trace):
    big = difftlm.replay(small_trace, "dense", COMMON, memory="ideal")
    small = difftlm.replay(small_trace, "dense", COMMON.evolve(pe_array=PeArrayConfig(rows=16, cols=32)),
                           memory="ideal")
    assert small.summary["macs"] == big.summary["macs"]
    ratio = small.summary["pe_busy_cycles"] / big.summary["pe_busy_cycles"]
    assert 1.5 < ratio <= 2.0 + 1e-9          # half the PEs: at most twice the PE cycles
    assert small.summary["energy_pj"]["pe"] == pytest.approx(big.summary["energy_pj"]["pe"])


def test_api_mirrors_cli(small_trace):
    res = difftlm.compare(small_trace, ["dense"])
    assert isinstance(res, difftlm.Comparison) and list(res) == ["dense"]
    assert res.speedups() == {"dense": 1.0}
    df = res.to_pandas("per_step")
    assert list(df["design"].unique()) == ["dense"] and len(df) == 3
    assert res.to_pandas()["total_cycles"].iloc[0] == res["dense"].summary["total_cycles"]
    assert res.comparable


def test_paper_hw_is_flagged(small_trace, capsys):
    assert main(["compare", "--trace", small_trace, "--designs", "dense", "--hw", "paper",
                 "--out", "-"]) == 0
    out = capsys.readouterr().out
    assert "NOT comparable" in out


def test_chrome_trace_per_design(small_trace, tmp_path):
    prefix = str(tmp_path / "ct") + os.sep
    difftlm.compare(small_trace, ["dense"], chrome_trace=prefix)
    doc = json.loads((tmp_path / "ct" / "dense.trace.json").read_text())
    assert doc["traceEvents"]


def test_unknown_timeline_design_is_an_error(small_trace, tmp_path, capsys):
    assert main(["compare", "--trace", small_trace, "--designs", "dense", "--out", str(tmp_path),
                 "--timeline-design", "nope"]) == 2


def test_speedup_is_a_ratio_of_times(small_run):
    doc = json.loads((small_run[0] / "results.json").read_text())["results"]
    base = doc["dense"]["summary"]["total_ns"]
    loaded = difftlm.load_results(small_run[0])
    for name, sp in loaded.speedups().items():
        assert sp == pytest.approx(base / doc[name]["summary"]["total_ns"])
        assert math.isfinite(sp) and sp > 0
