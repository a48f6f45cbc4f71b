"""`difftlm sweep`: specs, equality with separate replays, kill -9 + --resume, a Dask cluster,
failing points, the Parquet store read without DiffTLM, and the sweep figures."""

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
import time

import pyarrow.parquet as pq
import pytest

from difftlm.cli import main
from difftlm.sweep import estimate, load, load_result, load_spec, plan, run_sweep, spec_from_dict
from models.errors import ConfigError
from models.result import Result
from workloads import bundled_trace
from workloads.trace import Trace, write_trace

SRAM_KIB = (180, 360, 720)
PRESETS = ("lpddr4-3200-4ch", "ddr4-3200")
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _cut(src: str, dst: str, steps: int) -> str:
    """The first `steps` steps of trace `src` as a new trace."""
    tr = Trace(src)
    manifest = {k: v for k, v in tr.manifest.items() if k not in ("schema", "version")}
    manifest["steps"] = manifest["steps"][:steps]
    write_trace(dst, manifest, tr.ops, [tr.step(i) for i in range(steps)])
    return dst


@pytest.fixture(scope="session")
def short_trace(tmp_path_factory):
    """The bundled tiny-model trace cut to its first 6 steps (real statistics, 1/8 the cost):
    the store tests below run the 12-point spec on it."""
    return _cut(str(bundled_trace("tiny-silu")), str(tmp_path_factory.mktemp("tr") / "short.trace.zip"), 6)


def spec12_toml(trace: str) -> str:
    """2 designs x 3 SRAM sizes x 2 DRAM presets."""
    return textwrap.dedent(f"""\
        traces = [{json.dumps(trace)}]
        designs = ["dense", "mhdiff"]
        [[axis]]
        key = "hw.buffers.global_buffer.capacity_kib"
        values = [{", ".join(f'"{k} KiB"' for k in SRAM_KIB)}]
        [[axis]]
        key = "memory"
        values = {json.dumps(list(PRESETS))}
        """)


@pytest.fixture(scope="session")
def spec12(short_trace, tmp_path_factory):
    path = tmp_path_factory.mktemp("spec") / "s12.toml"
    path.write_text(spec12_toml(short_trace))
    return str(path)


@pytest.fixture(scope="session")
def reference(spec12, tmp_path_factory):
    """The 12-point sweep, uninterrupted, on the local process pool."""
    out = str(tmp_path_factory.mktemp("ref") / "ref.sweep")
    report = run_sweep(load_spec(spec12), out, jobs=2)
    assert (report.points, report.ok, report.failed) == (12, 12, 0)
    return out


def store_state(d: str):
    """Everything in a store but the wall-clock seconds (table, records, results, manifest)."""
    table = pq.read_table(os.path.join(d, "points.parquet")).drop_columns(["wall_s"])
    files = {}
    for name in sorted(os.listdir(os.path.join(d, "points"))):
        with open(os.path.join(d, "points", name), "rb") as f:
            data = f.read()
        if name.endswith(".result.json.gz"):
            files[name] = data
        else:
            rec = json.loads(data)
            rec.pop("wall_s")
            files[name] = rec
    with open(os.path.join(d, "sweep.json")) as f:
        return table, files, f.read()


def assert_same_store(a: str, b: str) -> None:
    ta, fa, ma = store_state(a)
    tb, fb, mb = store_state(b)
    assert ta.equals(tb)
    assert fa == fb
    assert ma == mb


def _records(d: str) -> list[str]:
    p = os.path.join(d, "points")
    return [n for n in os.listdir(p) if n.endswith(".json") and not n.startswith(".")] if os.path.isdir(p) else []


# ------------------------------------------------------------------ acceptance
def _same_as_separate_replays(store: str, trace: str, tmp_path, capsys) -> None:
    rows = load(store).to_pylist()
    assert len(rows) == 12 and {r["status"] for r in rows} == {"ok"}
    assert len({r["config_hash"] for r in rows}) == 12
    for r in rows:
        kib = r["hw.buffers.global_buffer.capacity_kib"]
        hw = tmp_path / f"gb{kib}.toml"
        hw.write_text(f"[buffers.global_buffer]\ncapacity_kib = {kib}\n")
        saved = tmp_path / "one.json"
        assert main(["replay", "--trace", trace, "--design", r["design"], "--hw", str(hw),
                     "--memory", r["memory"], "--out", str(saved)]) == 0
        capsys.readouterr()
        alone = Result.load_json(saved).summary
        assert load_result(store, r["config_hash"]).summary == alone
        for key in ("total_ns", "total_cycles", "energy_total_pj", "dram_read_bytes", "pe_utilization",
                    "energy_pj.dram"):
            want = alone[key] if "." not in key else alone["energy_pj"]["dram"]
            assert r[key] == want, (r["point"], key)
    assert {(r["design"], r["hw.buffers.global_buffer.capacity_kib"], r["memory"]) for r in rows} == {
        (d, k, m) for d in ("dense", "mhdiff") for k in SRAM_KIB for m in PRESETS}


def test_12_point_sweep_on_the_bundled_trace_equals_12_separate_replays(tmp_path, capsys):
    trace = str(bundled_trace("tiny-silu"))
    spec = tmp_path / "s.toml"
    spec.write_text(spec12_toml(trace))
    out = str(tmp_path / "full.sweep")
    assert main(["sweep", str(spec), "--out", out]) == 0
    _same_as_separate_replays(out, trace, tmp_path, capsys)


def test_kill_9_then_resume_gives_the_uninterrupted_store(spec12, reference, tmp_path):
    out = str(tmp_path / "killed.sweep")
    proc = subprocess.Popen([sys.executable, "-m", "difftlm.cli", "sweep", spec12, "--out", out, "--jobs", "2"],
                            cwd=str(tmp_path), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while len(_records(out)) < 3 and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        assert proc.poll() is None, "the sweep finished before it could be killed"
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait(timeout=30)
    done = sorted(_records(out))
    assert 3 <= len(done) < 12
    before = {}
    for name in done:
        for f in (name, name.replace(".json", ".result.json.gz")):
            st = os.stat(os.path.join(out, "points", f))
            before[f] = (st.st_ino, st.st_mtime_ns)
    report = run_sweep(load_spec(spec12), out, jobs=2, resume=True)
    assert (report.skipped, report.ok, report.failed) == (len(done), 12 - len(done), 0)
    for f, stamp in before.items():  # nothing finished was recomputed or rewritten
        st = os.stat(os.path.join(out, "points", f))
        assert (st.st_ino, st.st_mtime_ns) == stamp, f
    rows = load(out).to_pylist()
    assert sorted(r["point"] for r in rows) == list(range(12)) and len(_records(out)) == 12
    assert not [n for n in os.listdir(os.path.join(out, "points")) if n.startswith(".tmp-")]
    assert_same_store(out, reference)


def _dask_cli() -> str:
    path = shutil.which("dask", path=os.path.dirname(sys.executable))
    if path is None:
        pytest.skip("the dask command (dask[distributed]) is not installed")
    return path


def test_dask_cluster_gives_the_same_store_and_a_killed_worker_loses_no_point(spec12, reference, tmp_path):
    from distributed import Client

    dask = _dask_cli()
    sched_file = str(tmp_path / "scheduler.json")
    log = open(tmp_path / "dask.log", "wb")
    procs = [subprocess.Popen([dask, "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
                               "--scheduler-file", sched_file], cwd=str(tmp_path), stdout=log, stderr=log)]
    try:
        deadline = time.monotonic() + 60
        while not os.path.exists(sched_file) and time.monotonic() < deadline:
            time.sleep(0.1)
        for i in range(2):
            procs.append(subprocess.Popen(
                [dask, "worker", "--scheduler-file", sched_file, "--nthreads", "1", "--no-nanny",
                 "--no-dashboard", "--name", f"w{i}", "--local-directory", str(tmp_path / f"w{i}")],
                cwd=str(tmp_path), stdout=log, stderr=log))
        with Client(scheduler_file=sched_file, timeout=60) as client:
            client.wait_for_workers(2, timeout=60)
            address = client.scheduler.address
        out = str(tmp_path / "dask.sweep")
        reports = []
        worker = threading.Thread(target=lambda: reports.append(run_sweep(load_spec(spec12), out, scheduler=address)),
                                  daemon=True)
        worker.start()
        deadline = time.monotonic() + 120
        while not _records(out) and worker.is_alive() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert worker.is_alive() and len(_records(out)) < 12, "the sweep ended before a worker was killed"
        procs[1].kill()  # one of the two workers dies mid-sweep
        worker.join(timeout=180)
        assert not worker.is_alive(), "the Dask sweep did not finish"
        assert procs[1].poll() is not None and procs[2].poll() is None
        assert (reports[0].points, reports[0].ok, reports[0].failed) == (12, 12, 0)
        assert_same_store(out, reference)
    finally:
        for p in procs[::-1]:
            p.kill()
            p.wait(timeout=30)
        log.close()


def test_store_opens_with_pyarrow_pandas_and_duckdb_without_difftlm(reference, tmp_path):
    code = textwrap.dedent(f"""
        import sys, importlib.abc
        class NoDiffTLM(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in ("difftlm", "models", "workloads", "tlm", "plots"):
                    raise ImportError("DiffTLM is not installed here")
        sys.meta_path.insert(0, NoDiffTLM())
        import pyarrow.parquet as pq, pandas as pd
        path = {json.dumps(os.path.join(reference, "points.parquet"))}
        t = pq.read_table(path)
        df = pd.read_parquet(path)
        assert t.num_rows == len(df) == 12
        assert sorted(df["point"]) == list(range(12)) and set(df["status"]) == {{"ok"}}
        print(repr(sorted(t.column("total_ns").to_pylist())))
        try:
            import duckdb
        except ImportError:
            sys.exit(0)
        n, designs = duckdb.sql(f"SELECT count(*), count(DISTINCT design) FROM read_parquet('{{path}}') "
                                "WHERE \\"hw.buffers.global_buffer.capacity_kib\\" = 360").fetchall()[0]
        assert (n, designs) == (4, 2), (n, designs)
        """)
    done = subprocess.run([sys.executable, "-c", code], cwd=str(tmp_path), capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert eval(done.stdout) == sorted(r["total_ns"] for r in load(reference).to_pylist())


# ------------------------------------------------------------------ specs
def test_ranges_units_zip_and_design_axes(short_trace):
    spec = spec_from_dict({"traces": [short_trace], "designs": ["dense", "sqdm"], "axis": [
        {"key": "hw.buffers.global_buffer.capacity_kib", "range": {"start": "128 KiB", "stop": "1 MiB", "factor": 2}},
        {"key": "design.sqdm.spe_budget_frac", "values": [0.25, 0.375, 0.5], "zip": "split"},
        {"key": "design.sqdm.spe_area_factor", "range": {"start": 1.5, "stop": 2.5, "num": 3}, "zip": "split"},
        {"key": "hw.freq_mhz", "values": ["0.5 GHz", "800 MHz"]},
    ]})
    assert spec.axes[0].values == (128, 256, 512, 1024)
    assert spec.axes[2].values == (1.5, 2.0, 2.5) and spec.axes[3].values == (500, 800)
    points = plan(spec)
    dense = [p for p in points if p.design == "dense"]
    sqdm = [p for p in points if p.design == "sqdm"]
    assert len(dense) == 4 * 2 and len(sqdm) == 4 * 3 * 2  # the split axes do not apply to dense
    assert all("design.sqdm.spe_budget_frac" not in p.values for p in dense)
    pairs = {(p.values["design.sqdm.spe_budget_frac"], p.values["design.sqdm.spe_area_factor"]) for p in sqdm}
    assert pairs == {(0.25, 1.5), (0.375, 2.0), (0.5, 2.5)}  # zipped, not crossed
    assert [p.index for p in points] == list(range(len(points)))
    assert len({p.config_hash for p in points}) == len(points)
    assert {p.hw.freq_mhz for p in points} == {500, 800}
    assert sqdm[0].design_params == {"spe_budget_frac": 0.25, "spe_area_factor": 1.5}


@pytest.mark.parametrize("spec, message", [
    ({"designs": ["dense"], "colour": 1}, "unknown key 'colour'"),
    ({"designs": ["nope"]}, "unknown design 'nope'"),
    ({"designs": ["dense"], "axis": [{"key": "hw.buffers.global_buffer.capacity_kib", "values": ["25 GB/s"]}]},
     "is not a size (the key is in KiB)"),
    ({"designs": ["dense"], "axis": [{"key": "hw.buffers.global_buffer.size_kib", "values": [1, 2]}]},
     "hw.buffers.global_buffer.size_kib: unknown key"),
    ({"designs": ["dense"], "axis": [{"key": "design.bias", "values": [0.1]}]}, "unknown design parameter 'bias'"),
    ({"designs": ["dense"], "axis": [{"key": "hw.freq_mhz", "values": [1, 2], "zip": "z"},
                                      {"key": "hw.node_nm", "values": [7], "zip": "z"}]}, "zip group 'z'"),
    ({"designs": ["dense"], "axis": [{"key": "hw.freq_mhz", "range": {"start": 1, "stop": 2}}]}, "exactly one of step"),
    ({"designs": ["dense"], "axis": [{"key": "colour", "values": [1]}]}, "unknown setting"),
    ({"designs": ["dense"], "traces": ["other.trace.zip"], "quality": True}, "bundled tiny models only"),
    ({"designs": ["dense"], "quality": "yes"}, "quality: expected a table"),
])
def test_bad_spec_is_one_line_exit_2_and_writes_nothing(spec, message, tmp_path, capsys):
    import tomllib  # noqa: F401  (the spec is written as TOML below)

    path = tmp_path / "bad.toml"
    path.write_text(_toml(spec))
    out = tmp_path / "out.sweep"
    assert main(["sweep", str(path), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1, err
    assert not out.exists()


def _toml(spec: dict) -> str:
    lines = [f"{k} = {json.dumps(v)}" for k, v in spec.items() if k != "axis"]
    for a in spec.get("axis", []):
        lines.append("[[axis]]")
        for k, v in a.items():
            if isinstance(v, dict):
                v = "{" + ", ".join(f"{kk} = {json.dumps(vv)}" for kk, vv in v.items()) + "}"
            else:
                v = json.dumps(v)
            lines.append(f"{k} = {v}")
    return "\n".join(lines) + "\n"


def test_failing_points_record_their_error_and_the_sweep_goes_on(short_trace, tmp_path, capsys):
    spec = tmp_path / "f.toml"
    spec.write_text(_toml({"traces": [short_trace], "designs": ["dense"], "axis": [
        {"key": "hw.buffers.weight.capacity_kib", "values": [0.001, 48, -1]}]}))
    out = str(tmp_path / "f.sweep")
    assert main(["sweep", str(spec), "--out", out, "--json"]) == 1  # some points failed
    captured = capsys.readouterr()
    assert captured.err == ""  # no progress bar off a terminal
    assert json.loads(captured.out)["failed"] == 2
    rows = load(out).to_pylist()
    assert [r["status"] for r in rows] == ["failed", "ok", "failed"]
    assert "increase buffers.weight.capacity_kib" in rows[0]["error"]  # failed while replaying
    assert "hw.buffers.weight.capacity_kib: must be" in rows[2]["error"]  # invalid config, never ran
    assert all("\n" not in r["error"] for r in (rows[0], rows[2])) and rows[1]["error"] is None
    assert rows[1]["total_ns"] > 0 and rows[0]["total_ns"] is None
    assert main(["sweep", str(spec), "--out", out]) == 2  # an existing sweep needs --resume
    assert "pass --resume" in capsys.readouterr().err
    report = run_sweep(load_spec(str(spec)), out, resume=True)
    assert (report.skipped, report.ok, report.failed) == (1, 0, 2)  # failed points rerun, ok kept


def test_dry_run_prints_points_and_cost_and_writes_nothing(spec12, reference, tmp_path, capsys):
    out = tmp_path / "none.sweep"
    assert main(["sweep", spec12, "--out", str(out), "--dry-run", "--json", "--jobs", "3"]) == 0
    est = json.loads(capsys.readouterr().out)
    assert len(est["points"]) == est["to_run"] == 12 and est["jobs"] == 3 and not out.exists()
    steps_ops = 6 * len(Trace(est_trace(spec12)).ops)
    assert est["op_steps"] == 12 * steps_ops and est["cpu_s"] == pytest.approx(est["op_steps"] * est["rate_s_per_op_step"])
    again = estimate(load_spec(spec12), reference)
    assert again["skipped"] == 12 and again["to_run"] == 0 and "measured" in again["rate_source"]


def est_trace(spec_path: str) -> str:
    return load_spec(spec_path).traces[0]


def test_quality_sweep_records_image_quality_per_point(tmp_path):
    pytest.importorskip("torch")
    axis = [{"key": "design.mhdiff.bias", "values": [0.05, 0.9]}]
    spec = spec_from_dict({"designs": ["mhdiff", "cambricon_d.per_layer"], "axis": axis,
                           "quality": {"samples": 2, "seed": 3}})
    plain = plan(spec_from_dict({"designs": ["mhdiff", "cambricon_d.per_layer"], "axis": axis}))
    assert not {p.config_hash for p in plan(spec)} & {p.config_hash for p in plain}
    out = str(tmp_path / "q.sweep")
    assert run_sweep(spec, out, jobs=1).ok == 3
    rows = {(r["design"], r.get("design.mhdiff.bias")): r for r in load(out).to_pylist()}
    low, high = rows[("mhdiff", 0.05)], rows[("mhdiff", 0.9)]
    assert high["quality.psnr_db_mean"] < low["quality.psnr_db_mean"]  # MHDiff's Fig. 12 trade-off
    assert rows[("cambricon_d.per_layer", None)]["quality.psnr_db_mean"] is None  # no emulation
    for bad in ({"samples": 0}, {"seeds": 1}):
        with pytest.raises(ConfigError, match="quality"):
            spec_from_dict({"designs": ["dense"], "quality": bad})
    assert main(["plot", out, "--kind", "sensitivity", "--out", str(tmp_path / "s.png")]) == 0


def test_examples_plan(tmp_path):
    ex = os.path.join(REPO, "examples", "sweeps")
    names = sorted(n for n in os.listdir(ex) if n.endswith(".toml"))
    assert len(names) >= 3
    for name in names:
        points = plan(load_spec(os.path.join(ex, name)))
        assert points and not any(p.error for p in points), name


# ------------------------------------------------------------------ figures
@pytest.mark.parametrize("kind", ["pareto", "sensitivity", "heatmap"])
def test_sweep_figures_have_units_on_every_axis(kind, reference, tmp_path, capsys):
    from difftlm.sweep import load_manifest
    from plots.sweep import make_sweep

    out = tmp_path / f"{kind}.png"
    assert main(["plot", reference, "--kind", kind, "--out", str(out)]) == 0
    assert out.stat().st_size > 0
    fig = make_sweep(kind, load(reference).to_pylist(), load_manifest(reference)["spec"]["axes"])
    for ax in fig.axes:
        if ax.get_label() == "<colorbar>":
            assert "(" in ax.get_ylabel()
            continue
        for text in (ax.get_xlabel(), ax.get_ylabel()):
            assert "(" in text or text == "memory", (kind, text)  # memory presets are names
    if kind == "pareto":
        assert {t.get_text() for t in fig.axes[0].get_legend().get_texts()} == {"dense", "mhdiff"}


def test_plot_refuses_a_results_kind_for_a_sweep(reference, capsys):
    assert main(["plot", reference, "--kind", "breakdown"]) == 2
    assert "a sweep directory draws pareto" in capsys.readouterr().err
