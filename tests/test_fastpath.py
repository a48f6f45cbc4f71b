"""The fast path (macro jobs, step reuse) against its exact twin (`exact=True`)."""

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import difftlm
from difftlm.cli import main as cli_main
from models.fastpath import FastPath, reuse_plan
from tlm import ActivityRecorder

KEYS = ("total_cycles", "compute_cycles", "memory_cycles", "overlap_cycles")


def _close(fast: dict, exact: dict, name: str) -> None:
    """The acceptance tolerances: total within 1 %, compute/memory/overlap within 2 %,
    energy within 1 %, DRAM bytes within 0.5 %, MACs equal."""
    for key, tol in (("total_cycles", 0.01), ("compute_cycles", 0.02), ("memory_cycles", 0.02),
                     ("overlap_cycles", 0.02), ("energy_total_pj", 0.01), ("dram_read_bytes", 0.005),
                     ("dram_write_bytes", 0.005)):
        assert fast[key] == pytest.approx(exact[key], rel=tol, abs=1), (name, key, fast[key], exact[key])


def test_reuse_plan_keeps_the_edges_of_each_run():
    steps, runs = reuse_plan(["a", "b", "b", "b", "b", "b", "c"], 4)
    assert steps == [0, 1, 2, 5, 6] and runs == [(2, 2, 4, 5)]
    assert reuse_plan(["a", "a", "a"], 4) == ([0, 1, 2], [])


def test_step_sampling_keeps_edges_and_samples_each_block_in_its_middle():
    # every step has its own statistics (keys), one class after the first two steps
    keys, classes = list(range(14)), ["first", "second"] + ["rest"] * 11 + ["last"]
    steps, runs = reuse_plan(keys, 4, classes, 5)
    # steps 2..12 are one class: 2 and 12 are kept, 3..11 are cut into blocks 3-6 and 7-11
    assert steps == [0, 1, 2, 4, 9, 12, 13]
    assert runs == [(4, 3, 6, 9), (9, 7, 11, 12)]
    assert reuse_plan(keys, 4, classes, 1) == (list(range(14)), [])  # block 1: off
    # equal keys keep exact reuse; their edges are never sampled
    steps, runs = reuse_plan(["k"] * 6 + list(range(6)), 4, ["c"] * 12, 3)
    assert runs[0] == (1, 1, 4, 5) and {1, 5} <= set(steps)


def test_splice_repeats_a_window_and_shifts_the_rest():
    rec = ActivityRecorder()
    pe, mem = rec.register("pe", "compute"), rec.register("dram", "memory")
    for i, step in enumerate((0, 1, 4)):  # identical steps of 100 ps; 2 and 3 are to be reused
        rec.record(pe, 100 * i, 100 * i + 60, step)
        rec.record(mem, 100 * i + 40, 100 * i + 90, step)
    before = rec.breakdowns([0, 300])[0]
    shift = rec.splice(100, 200, 2, lambda lab, k: np.where(lab < 4, lab + k, lab - 2 + k))
    assert shift == 200
    after = rec.breakdowns([0, 500])[0]
    assert after.compute_ps == before.compute_ps * 5 // 3 and after.overlap_ps == before.overlap_ps * 5 // 3
    busy = rec.busy_by_label(5)["pe"]
    assert list(busy) == [60] * 5


@pytest.fixture(scope="module")
def bundled_pair():
    fast = difftlm.compare(jobs=2)
    exact = difftlm.compare(jobs=2, exact=True)
    return fast, exact


def test_fast_matches_exact_on_the_bundled_traces(bundled_pair):
    fast, exact = bundled_pair
    assert list(fast) == list(exact)
    for name in fast:
        _close(fast[name].summary, exact[name].summary, name)
        assert exact[name].summary["fast_path"]["exact"]
        assert exact[name].summary["simulated_jobs"] == exact[name].summary["tile_jobs"]
    # dense-like designs read no statistics: their steady steps are reused
    f = fast["dense"].summary["fast_path"]
    assert f["steps_reused"] > 0 and f["steps_simulated"] + f["steps_reused"] == 50
    assert f["steps_sampled"] == 0  # its steps are equal: copies, not samples
    # designs reading per-step statistics sample their steady steps
    assert fast["ditto"].summary["fast_path"]["steps_sampled"] > 0
    # and their own counts are advanced for the steps they stand for (`Design.step_counts`)
    for name, key in (("sqdm", "sqdm_eligible_op_steps"), ("cambricon_d", "outlier_groups")):
        assert fast[name].summary[key] == exact[name].summary[key], (name, key)
    assert fast["mhdiff"].summary["mhd_int4_elem_frac"] == pytest.approx(
        exact["mhdiff"].summary["mhd_int4_elem_frac"], rel=0.02)
    assert fast["dense"].summary["tile_jobs"] == exact["dense"].summary["tile_jobs"]


def test_reused_steps_have_their_own_rows(bundled_pair):
    fast, exact = bundled_pair
    fs, es = fast["dense"].per_step, exact["dense"].per_step
    assert len(fs) == len(es) == 50
    for a, b in zip(fs, es):
        assert a["dram_read_bytes"] == b["dram_read_bytes"] and a["macs"] == b["macs"]
        assert a["total_cycles"] == pytest.approx(b["total_cycles"], rel=0.02)


@pytest.mark.parametrize("design", ["dense", "mhdiff"])  # reused steps; sampled steps
def test_fast_path_is_deterministic(design):
    a = difftlm.replay(None, design)
    b = difftlm.replay(None, design)
    assert json.dumps(a.summary, sort_keys=True) == json.dumps(b.summary, sort_keys=True)
    assert a.per_op == b.per_op


@pytest.fixture(scope="module")
def cifar_trace(tmp_path_factory):
    """CIFAR-10 DDPM U-Net shapes (zoo), 3 steps: ops of hundreds of tiles, as at SD scale."""
    pytest.importorskip("torch")
    pytest.importorskip("diffusers")
    from workloads.zoo import write_zoo_trace

    path = tmp_path_factory.mktemp("zoo") / "cifar10.trace.zip"
    write_zoo_trace("cifar10", path, steps=3)
    return str(path)


@pytest.mark.parametrize("design", ["dense", "ditto", "cambricon_d"])
def test_macro_jobs_match_exact_on_a_larger_model(cifar_trace, design):
    exact = difftlm.replay(cifar_trace, design, exact=True).summary
    fast = difftlm.replay(cifar_trace, design, fast=FastPath(step_reuse=False)).summary
    assert fast["fast_path"]["macro_jobs"] > 0 and fast["simulated_jobs"] < exact["simulated_jobs"]
    assert fast["tile_jobs"] == exact["tile_jobs"]
    # Ditto's Defo picks each layer's mode from measured windows: a near tie may flip
    assert fast["macs"] == pytest.approx(exact["macs"], rel=0 if design != "ditto" else 0.001)
    _close(fast, exact, design)


def _same(a, b) -> None:
    """Two results equal in everything the simulation measured (not in what the fast path did)."""
    strip = (lambda r: json.dumps({k: v for k, v in r.summary.items() if k != "fast_path"},
                                  sort_keys=True, default=str))
    assert strip(a) == strip(b)
    assert a.per_op == b.per_op and a.per_step == b.per_step


def test_op_reuse_is_exact_and_makes_fewer_jobs(cifar_trace, monkeypatch):
    """A-70 on dense (3 steps of one key, macro jobs on): ops of steps 1 and 2 are copies of
    step 0's, the design makes each op's jobs once, and nothing measured changes."""
    from models.designs.dense import Dense

    made = []
    orig = Dense.mac_jobs
    monkeypatch.setattr(Dense, "mac_jobs", lambda self, step, op: made.append(step) or orig(self, step, op))
    on = difftlm.replay(cifar_trace, "dense", fast=FastPath(step_reuse=False))
    steps_on = set(made)
    made.clear()
    off = difftlm.replay(cifar_trace, "dense", fast=FastPath(step_reuse=False, op_reuse=False))
    assert steps_on == {0} and set(made) == {0, 1, 2}
    assert on.summary["fast_path"]["ops_reused"] > 0 and on.summary["fast_path"]["macro_jobs"] > 0
    for k in ("exact_jobs", "macro_jobs", "macro_tiles"):
        assert on.summary["fast_path"][k] == off.summary["fast_path"][k]
    _same(on, off)
    assert "A-70" in " ".join(on.notes)


def test_op_reuse_only_for_designs_with_pure_op_jobs(bundled_pair):
    """Ditto's op jobs read per-step statistics and keep state: it never copies them."""
    assert bundled_pair[0]["ditto"].summary["fast_path"]["ops_reused"] == 0
    assert bundled_pair[0]["dense"].summary["fast_path"]["ops_reused"] > 0
    assert not FastPath.exact().op_reuse and FastPath.exact().is_exact


def test_cli_exact_and_fast_report(capsys):
    assert cli_main(["replay", "--fast-report"]) == 0
    out = capsys.readouterr().out
    assert "steps simulated" in out and "reused" in out
    assert cli_main(["replay", "--exact", "--fast-report"]) == 0
    assert "exact (fast path off)" in capsys.readouterr().out


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 2**31 - 1), st.integers(1, 3))
def test_virtual_splice_equals_its_materialized_twin(seed, n_windows):
    # random busy intervals of three components (overlapping, straddling window edges, unlabelled
    # ones among them), spliced at random disjoint windows: every derived view of the virtual
    # timeline equals the one computed from the materialized intervals
    rng = np.random.default_rng(seed)
    rec = ActivityRecorder()
    ids = [rec.register("pe", "compute"), rec.register("dram", "memory"), rec.register("ndp", "other")]
    for _ in range(int(rng.integers(1, 80))):
        s = int(rng.integers(0, 1000))
        rec.record(ids[int(rng.integers(0, 3))], s, s + int(rng.integers(1, 120)),
                   int(rng.integers(-1, 6)))
    cuts = np.sort(rng.choice(np.arange(1, 1100), size=2 * n_windows, replace=False))
    windows = [(int(cuts[2 * i]), int(cuts[2 * i + 1]), int(rng.integers(0, 4)),
                lambda lab, k, i=i: (lab + k + i) % 6) for i in range(n_windows)]
    shift = rec.splice_many(windows)
    twin = rec.materialized()
    assert not twin.virtual and twin.end_ps() == rec.end_ps()
    assert rec.end_ps() <= 1120 + shift
    bounds = np.sort(rng.integers(0, 1200 + shift, size=7))
    assert rec.breakdowns(bounds) == twin.breakdowns(bounds)
    assert rec.busy_ps() == twin.busy_ps()
    got, want = rec.busy_by_label(6), twin.busy_by_label(6)
    assert all(np.array_equal(got[k], want[k]) for k in want)
    rows = (lambda r: sorted(zip(*(r.arrays()[k].tolist() for k in
                                   ("start", "end", "comp", "label", "activity")))))
    assert rows(rec) == rows(twin)  # the same intervals (laid out in another order)
    if shift:  # a spliced timeline is final
        with pytest.raises(RuntimeError):
            rec.splice_many(windows)


@pytest.mark.parametrize("design", ["dense", "mhdiff"])
def test_replay_on_a_virtual_timeline_equals_the_materialized_one(design, monkeypatch):
    """Reused (dense) and sampled (MHDiff) steps on the bundled trace: a replay whose recorder
    lays every copied interval out measures the same figures as the default virtual splice."""
    import models.replay

    virtual = difftlm.replay(None, design)
    monkeypatch.setattr(models.replay, "ActivityRecorder", lambda: ActivityRecorder(virtual=False))
    laid_out = difftlm.replay(None, design)
    assert virtual.summary["fast_path"]["steps_simulated"] < 50
    _same(virtual, laid_out)
