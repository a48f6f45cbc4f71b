"""Fault injection: bad input gives a one-line exit-2 error or the correct result, never a wrong
number, a traceback or a half-written result set (issue 15).

Classes: wrong numbers from unchecked types/ranges (config, statistics), unbounded sizes (limits),
half-written results (signals, kill -9, concurrent writers, a full disk), OSErrors and decode
errors, strict --json, and late or misleading errors."""

from __future__ import annotations

import errno
import io
import json
import math
import os
import random
import signal
import subprocess
import sys
import time
import zipfile

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from difftlm.cli import main
from difftlm.results_io import COMPLETE_MARKER, ResultsError, check_complete, load_results
from models.config import HardwareConfig, load_hw
from models.errors import ConfigError
from workloads import Trace, limits
from workloads.errors import TraceError
from workloads.schema import op_from_dict
from workloads.synthetic import UNetShape, write_synthetic_trace

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def cli(capsys, *argv):
    rc = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return rc, out, err


def assert_user_error(rc, out, err, *words):
    assert rc == 2, (out, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and ": error: " in lines[0], err
    assert "Traceback" not in err
    for w in words:
        assert w in lines[0], lines[0]


def rewrite_step(src, dst, fn, step="steps/00001.npz"):
    """Copy trace `src` to `dst` with step file `step`'s arrays passed through `fn(dict)`."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for info in zin.infolist():
            data = zin.read(info)
            if info.filename == step:
                npz = np.load(io.BytesIO(data))
                d = fn({k: npz[k] for k in npz.files})
                buf = io.BytesIO()
                np.savez(buf, **d)
                data = buf.getvalue()
            zout.writestr(info, data)
    return str(dst)


# ---------------------------------------------------------------- 1. config: type, finiteness, range
@pytest.mark.parametrize("toml, words", [
    ("[pe_array]\nrows = true\n", ("hw.pe_array.rows", "integer", "> 0")),
    ("[pe_array]\nrows = 32.5\n", ("hw.pe_array.rows", "integer")),
    ("[pe_array]\nlanes = 2.5\n", ("hw.pe_array.lanes",)),
    ("[pe_array]\ncols = 0\n", ("hw.pe_array.cols", "> 0")),
    ("[pe_array]\nrows = 100000000\n", ("hw.pe_array.rows", "<= 65536")),
    ("[pe_array]\nmodel = 3\n", ("hw.pe_array.model", "string")),
    ("freq_mhz = inf\n", ("hw.freq_mhz", "finite")),
    ("freq_mhz = nan\n", ("hw.freq_mhz",)),
    ("freq_mhz = \"fast\"\n", ("hw.freq_mhz",)),
    ("node_nm = 7.5\n", ("hw.node_nm", "integer")),
    ("[vector.ops_per_element]\nsoftmax = -1.0\n", ("hw.vector.ops_per_element.softmax", ">= 0")),
    ("[vector.ops_per_element]\nsoftmax = inf\n", ("hw.vector.ops_per_element.softmax",)),
    ("[vector.ops_per_element]\nconv = 1.0\n", ("ops_per_element.conv", "vector op kind")),
    ("[vector]\nlanes = false\n", ("hw.vector.lanes",)),
    ("[buffers.weight]\ncapacity_kib = -4\n", ("hw.buffers.weight.capacity_kib",)),
    ("[buffers.weight]\ndouble_buffer = 1\n", ("hw.buffers.weight.double_buffer", "true or false")),
    ("compute_budget_units = 1.5\n", ("hw.compute_budget_units",)),
    ("pe_array = 3\n", ("hw.pe_array", "table")),
    ("[memory]\nparams = 5\n", ("hw.memory.params",)),
])
def test_bad_hw_toml_is_a_one_line_error(capsys, tmp_path, small_trace, toml, words):
    path = tmp_path / "hw.toml"
    path.write_text(toml)
    assert_user_error(*cli(capsys, "replay", "--trace", small_trace, "--hw", path), *words)


@pytest.mark.parametrize("param, words", [
    ("bandwidth_gbps=1e-300", ("bandwidth_gbps", ">= 0.001")),
    ("bandwidth_gbps=-1", ("bandwidth_gbps",)),
    ("bandwidth_gbps=true", ("bandwidth_gbps",)),
    ("latency_ns=nan", ("latency_ns",)),
    ("latency_ns=\"x\"", ("latency_ns",)),
])
def test_bad_memory_params_are_rejected(capsys, small_trace, param, words):
    assert_user_error(*cli(capsys, "replay", "--trace", small_trace, "--memory", "ideal",
                           "--memory-param", param), *words)


@pytest.mark.parametrize("param", ["channels=2.5", "tck_ps=0.0", "tck_ps=inf", "refresh_enabled=\"no\"",
                                   "trcd_ck=-1", "rows=true"])
def test_bad_dram_params_are_rejected(capsys, param):
    assert_user_error(*cli(capsys, "dram", "--memory", "lpddr4-3200-4ch", "--requests", "10",
                           "--param", param), param.split("=")[0])


def test_design_params_are_type_checked(capsys, small_trace):
    assert_user_error(*cli(capsys, "replay", "--trace", small_trace, "--design", "mhdiff",
                           "--design-param", "bias=true"), "designs.mhdiff.bias")
    assert_user_error(*cli(capsys, "replay", "--trace", small_trace, "--design", "mhdiff",
                           "--design-param", "bias=-1.0"), "designs.mhdiff.bias", ">= 0")


def test_quantum_ps_must_be_non_negative(capsys, small_trace):
    assert_user_error(*cli(capsys, "replay", "--trace", small_trace, "--quantum-ps", "-1"), "quantum_ps")


_values = st.one_of(st.booleans(), st.integers(-2**70, 2**70), st.floats(allow_nan=True),
                    st.text(max_size=5), st.none(), st.lists(st.integers(), max_size=2),
                    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2))
_keys = st.sampled_from([
    ("freq_mhz",), ("node_nm",), ("pe_array", "rows"), ("pe_array", "cols"), ("pe_array", "lanes"),
    ("pe_array", "model"), ("buffers", "global_buffer", "capacity_kib"), ("vector", "lanes"),
    ("vector", "ops_per_element"), ("vector", "ops_per_element", "softmax"), ("memory", "model"),
    ("weight_residency",), ("compute_budget_units",), ("buffers", "output", "double_buffer"),
])


@settings(max_examples=60, deadline=None)
@given(key=_keys, value=_values)
def test_config_loader_accepts_only_valid_values(key, value):
    data: dict = {}
    node = data
    for k in key[:-1]:
        node = node.setdefault(k, {})
    node[key[-1]] = value
    try:
        hw = HardwareConfig.from_dict(data)
    except ConfigError as exc:
        assert "\n" not in str(exc) and str(exc).startswith("hw.")
        return
    got = hw
    for k in key:
        got = got[k] if isinstance(got, dict) else getattr(got, k)
    if isinstance(got, (int, float)) and not isinstance(got, bool):
        assert math.isfinite(got) and got >= 0
    assert hw.pe_array.rows >= 1 and type(hw.pe_array.rows) is int
    assert type(hw.vector.lanes) is int and math.isfinite(hw.freq_mhz)


# ---------------------------------------------------------------- 2. statistics and limits
def test_int64_statistic_fails_validate_and_replay(capsys, small_trace, tmp_path):
    def bad(d):
        v = d["s/delta.int4_frac/values"].astype(np.int64)
        v[0] = 7
        d["s/delta.int4_frac/values"] = v
        return d

    path = rewrite_step(small_trace, tmp_path / "i64.trace.zip", bad)
    assert_user_error(*cli(capsys, "trace", "validate", path), "delta.int4_frac", "int64")
    for design in ("dense", "sqdm"):  # dense reads no statistic: it still gets a checked trace
        assert_user_error(*cli(capsys, "replay", "--trace", path, "--design", design), "delta.int4_frac")


@pytest.mark.parametrize("value, dtype, words", [
    (7.0, np.float64, ("fraction outside [0, 1]",)), (-0.5, np.float32, ("fraction",)),
    (np.nan, np.float64, ("NaN",)), (1, np.bool_, ("dtype bool",)), (1, np.uint8, ("dtype uint8",)),
])
def test_bad_scalar_statistics_are_rejected(capsys, small_trace, tmp_path, value, dtype, words):
    def bad(d):
        v = d["s/raw.zero_frac/values"].astype(dtype)
        v[0] = value
        d["s/raw.zero_frac/values"] = v
        return d

    path = rewrite_step(small_trace, tmp_path / "bad.trace.zip", bad)
    assert_user_error(*cli(capsys, "trace", "validate", path), "raw.zero_frac", *words)


def test_shape_limits_on_ops():
    row = {"op_id": 0, "name": "big", "kind": "linear", "n": 1, "h": 1, "w": 1, "c": 64, "k": 2**62,
           "macs": 64 * 2**62, "in_elems": 64, "w_elems": 64 * 2**62, "out_elems": 2**62}
    with pytest.raises(TraceError, match="ops\\[0\\].k: .*MAX_DIM"):
        op_from_dict(0, row)
    with pytest.raises(TraceError, match="ops\\[0\\].c: .* needs c >= 1"):
        op_from_dict(0, {"op_id": 0, "name": "v", "kind": "silu", "c": 0, "k": 0})


def test_kernel_profile_is_checked():
    conv = {"op_id": 0, "name": "c", "kind": "conv2d", "n": 1, "c": 2, "h": 4, "w": 4, "k": 2, "r": 3,
            "s": 3, "pad": 1, "out_h": 4, "out_w": 4, "macs": 576, "in_elems": 32, "w_elems": 36,
            "out_elems": 32}
    assert op_from_dict(0, dict(conv, kernel_profile=[1 / 9] * 9)).kernel_profile[0] == 1 / 9
    with pytest.raises(TraceError, match="ops\\[0\\].kernel_profile: needs r\\*s = 9 values"):
        op_from_dict(0, dict(conv, kernel_profile=[0.5, 0.5]))
    with pytest.raises(TraceError, match="ops\\[0\\].kernel_profile: must be finite non-negative"):
        op_from_dict(0, dict(conv, kernel_profile=[0.5] * 9))


@pytest.mark.parametrize("argv, words", [
    (("layer", "--gemm", "1000000000", "1000000000", "1000000000"), ("MAX_DIM",)),
    (("layer", "--gemm", "100000", "100000", "100000"), ("MAX_TENSOR_ELEMS",)),
    (("layer", "--gemm", "65536", "65536", "256"), ("MAX_OP_MACS",)),
    (("dram", "--request-bytes", str(10**12)), ("--request-bytes", "MAX_REQUEST_BYTES")),
    (("dram", "--requests", str(10**12)), ("MAX_REQUESTS",)),
])
def test_size_limits_are_named(capsys, argv, words):
    t0 = time.perf_counter()
    assert_user_error(*cli(capsys, *argv), *words)
    assert time.perf_counter() - t0 < 10


def test_forward_macs_limit(capsys, small_trace, monkeypatch):
    monkeypatch.setattr(limits, "MAX_FORWARD_MACS", 1000)
    assert_user_error(*cli(capsys, "trace", "validate", small_trace), "MAX_FORWARD_MACS")
    assert_user_error(*cli(capsys, "layer", "--gemm", "64", "64", "64"), "MAX_FORWARD_MACS")


def test_decompressed_member_limit(capsys, small_trace, monkeypatch):
    monkeypatch.setattr(limits, "MAX_MEMBER_BYTES", 1000)
    assert_user_error(*cli(capsys, "trace", "validate", small_trace), "MAX_MEMBER_BYTES")


def test_truncated_trace_says_truncated(capsys, small_trace, tmp_path):
    data = open(small_trace, "rb").read()
    for cut in (100, len(data) // 2, len(data) - 30):
        p = tmp_path / f"cut{cut}.trace.zip"
        p.write_bytes(data[:cut])
        assert_user_error(*cli(capsys, "trace", "validate", p), "truncated")


@pytest.fixture(scope="module")
def tiny_trace_bytes(tmp_path_factory):
    path = tmp_path_factory.mktemp("fz") / "t.trace.zip"
    write_synthetic_trace(path, UNetShape(), steps=2, seed=3)
    return path.read_bytes()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_trace_reader_never_crashes_on_corrupt_bytes(tiny_trace_bytes, tmp_path, data):
    raw = bytearray(tiny_trace_bytes)
    how = data.draw(st.sampled_from(["flip", "truncate", "zero"]))
    if how == "truncate":
        raw = raw[: data.draw(st.integers(0, len(raw) - 1))]
    else:
        for _ in range(data.draw(st.integers(1, 8))):
            i = data.draw(st.integers(0, len(raw) - 1))
            raw[i] = data.draw(st.integers(0, 255)) if how == "flip" else 0
    path = tmp_path / f"fz-{random.getrandbits(32)}.trace.zip"
    path.write_bytes(bytes(raw))
    try:
        tr = Trace(path)
        tr.validate_steps()
        tr.close()
    except TraceError as exc:
        assert "\n" not in str(exc)


_op_fields = st.sampled_from(["n", "c", "h", "w", "k", "r", "s", "stride", "pad", "groups", "out_h",
                               "out_w", "heads", "tokens", "macs", "in_elems", "w_elems", "out_elems"])


@settings(max_examples=60, deadline=None)
@given(kind=st.sampled_from(["conv2d", "linear", "matmul_qk", "silu", "add", "softmax"]),
       changes=st.dictionaries(_op_fields, _values, max_size=3))
def test_op_rows_are_valid_or_rejected(kind, changes):
    row = {"op_id": 0, "name": "x", "kind": kind, "n": 1, "c": 8, "h": 4, "w": 4, "k": 8, "out_h": 4,
           "out_w": 4}
    row.update(changes)
    try:
        op = op_from_dict(0, row)
    except TraceError as exc:
        assert "\n" not in str(exc)
        return
    for f in ("n", "c", "h", "w", "k", "macs", "in_elems"):
        v = getattr(op, f)
        assert type(v) is int and 0 <= v <= max(limits.MAX_DIM, limits.MAX_OP_MACS)


# ---------------------------------------------------------------- 3. result sets
def _designs_in(d):
    check_complete(str(d))
    return set(load_results(str(d)))


def test_rerun_replaces_the_whole_set_and_modes_follow_umask(capsys, small_trace, tmp_path):
    out = tmp_path / "R"
    old = os.umask(0o027)
    try:
        rc, _, err = cli(capsys, "compare", "--trace", small_trace, "--designs", "dense,sqdm", "--out", out)
    finally:
        os.umask(old)
    assert rc == 0, err
    assert (out / "timeline.png").exists()
    for f in os.listdir(out):
        assert os.stat(out / f).st_mode & 0o777 == 0o640, f
    rc, _, err = cli(capsys, "compare", "--trace", small_trace, "--designs", "dense", "--no-figures",
                     "--out", out)
    assert rc == 0, err
    assert not any(f.endswith((".png", ".svg")) for f in os.listdir(out))  # no stale figures
    assert _designs_in(out) == {"dense"}
    assert not [f for f in os.listdir(tmp_path) if ".tmp-" in f or ".old-" in f]


def test_out_is_checked_before_any_simulation(capsys, small_trace, tmp_path, monkeypatch):
    import difftlm.commands.compare as cmp

    monkeypatch.setattr(cmp, "compare", lambda *a, **k: pytest.fail("simulated before checking --out"))
    (tmp_path / "file").write_text("x")
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    for out, words in ((tmp_path / "file", "not a directory"), (tmp_path / "file" / "sub", "parent"),
                       (tmp_path / "no" / "such", "does not exist"), (tmp_path / "mine", "not a DiffTLM")):
        assert_user_error(*cli(capsys, "compare", "--trace", small_trace, "--designs", "dense", "--out", out),
                          "--out", *words)
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep me"
    assert_user_error(*cli(capsys, "compare", "--trace", small_trace, "--designs", "", "--out", "-"), "--designs")
    assert_user_error(*cli(capsys, "compare", "--trace", small_trace, "--designs", "dense", "--timeline-design",
                           "sqdm", "--out", tmp_path / "T"), "--timeline-design")


def test_full_disk_leaves_the_previous_set(capsys, small_trace, tmp_path, monkeypatch):
    import difftlm.results_io as rio

    out = tmp_path / "R"
    assert cli(capsys, "compare", "--trace", small_trace, "--designs", "dense", "--no-figures", "--out", out)[0] == 0
    before = {f: (out / f).read_bytes() for f in os.listdir(out)}
    real = rio.rows_csv
    calls = []

    def full(rows):
        calls.append(1)
        if len(calls) == 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(rows)

    monkeypatch.setattr(rio, "rows_csv", full)
    assert_user_error(*cli(capsys, "compare", "--trace", small_trace, "--designs", "dense,sqdm", "--no-figures",
                           "--out", out), "No space left", "previous results are unchanged")
    assert {f: (out / f).read_bytes() for f in os.listdir(out)} == before
    assert sorted(os.listdir(tmp_path)) == ["R"]


@pytest.mark.parametrize("content", [b"", b"{\"format\": \"difftlm-res", b"\x00\xff\x10binary", b"[1, 2]",
                                     b"{\"a\": 1}", b"{\"format\": \"difftlm-results\", \"format_version\": 1, "
                                                    b"\"results\": {\"x\": {\"summary\": 1}}}"])
def test_readers_refuse_bad_results(capsys, tmp_path, content):
    p = tmp_path / "results.json"
    p.write_bytes(content)
    assert_user_error(*cli(capsys, "plot", p), "results.json")
    with pytest.raises(ResultsError):
        load_results(str(p))


def test_readers_refuse_an_incomplete_set(capsys, small_trace, tmp_path):
    out = tmp_path / "R"
    assert cli(capsys, "compare", "--trace", small_trace, "--designs", "dense", "--no-figures", "--out", out)[0] == 0
    (out / "summary.csv").unlink()
    assert_user_error(*cli(capsys, "plot", out), "incomplete")
    (out / COMPLETE_MARKER).unlink()
    assert_user_error(*cli(capsys, "plot", out), COMPLETE_MARKER)


# ---------------------------------------------------------------- 4. OSErrors, decode errors, JSON
def test_os_errors_are_one_line(capsys, small_trace, tmp_path):
    (tmp_path / "f").write_text("x")
    (tmp_path / "d.toml").mkdir()
    (tmp_path / "bin.toml").write_bytes(b"\x92\xff\x00")
    (tmp_path / "topo.csv").write_bytes(bytes(range(256)) * 4)
    cases = [
        (("replay", "--trace", small_trace, "--out", tmp_path), "--out"),
        (("replay", "--trace", small_trace, "--out", tmp_path / "f" / "x.json"), "--out"),
        (("replay", "--trace", small_trace, "--chrome-trace", tmp_path / "f" / "x.json"), "--chrome-trace"),
        (("replay", "--trace", small_trace, "--hw", tmp_path / "d.toml"), "--hw"),
        (("replay", "--trace", small_trace, "--hw", tmp_path / "f" / "x.toml"), "--hw"),
        (("replay", "--trace", small_trace, "--hw", tmp_path / "bin.toml"), "--hw"),
        (("replay", "--trace", tmp_path), "is a directory"),
        (("compare", "--trace", small_trace, "--designs", "dense", "--chrome-trace", f"{tmp_path / 'f'}/",
          "--out", "-"), "--chrome-trace"),
        (("layer", "--topology", tmp_path / "topo.csv"), "--topology"),
        (("layer", "--topology", tmp_path), "--topology"),
        (("plot", tmp_path / "f"), "f"),
        (("plot", tmp_path / "d.toml"), "d.toml"),
        (("trace", "zoo", "cifar10", "--steps", "1", "--out", tmp_path), "--out"),
        (("trace", "zoo", "cifar10", "--steps", "1", "--out", tmp_path / "f" / "t.zip"), "--out"),
        (("trace", "validate", tmp_path / "bin.toml"), "not a DiffTLM trace"),
    ]
    for argv, word in cases:
        assert_user_error(*cli(capsys, *argv), word)


def test_dram_json_is_strict(capsys):
    rc, out, err = cli(capsys, "dram", "--memory", "ideal", "--requests", "20", "--json")
    assert rc == 0, err

    def no_constants(c):
        raise AssertionError(f"non-standard JSON constant {c}")

    d = json.loads(out, parse_constant=no_constants)
    assert d["peak_bandwidth_gbps"] is None and any("peak_bandwidth_gbps" in n for n in d["json_notes"])


def test_compare_accepts_one_design_as_a_string(small_trace):
    import difftlm

    assert list(difftlm.compare(small_trace, designs="dense", jobs=1)) == ["dense"]
    with pytest.raises(ConfigError):
        difftlm.compare(small_trace, designs="", jobs=1)


# ---------------------------------------------------------------- 5. signals, kill -9, concurrent writers
def _compare_cmd(trace, out, designs, *extra):
    return [sys.executable, "-m", "difftlm.cli", "compare", "--trace", trace, "--designs", designs,
            "--out", str(out), *extra]


def _procs_mentioning(text):
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if text.encode() in f.read():
                    found.append(int(pid))
        except OSError:
            pass
    return found


def _interrupt_trials(small_trace, tmp_path, sigs, rng):
    out = tmp_path / "R"
    env = {**os.environ, "PYTHONPATH": ROOT}
    subprocess.run(_compare_cmd(small_trace, out, "dense"), check=True, env=env, capture_output=True)
    sets = [{"dense"}, {"dense", "sqdm"}]
    for sig in sigs:
        p = subprocess.Popen(_compare_cmd(small_trace, out, "dense,sqdm"), env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        time.sleep(rng.uniform(0.3, 3.5))
        p.send_signal(sig)
        _, err = p.communicate(timeout=60)
        last = err.decode().strip().splitlines()[-1:] or [""]
        # a signal during interpreter start-up (imports) still prints Python's own KeyboardInterrupt
        assert sig == signal.SIGKILL or last[0] in ("", "KeyboardInterrupt") or "interrupted" in last[0] \
            or "error" not in last[0].lower(), err.decode()
        deadline = time.time() + 5
        while _procs_mentioning(str(out)) and time.time() < deadline:
            time.sleep(0.1)
        assert not _procs_mentioning(str(out)), "an orphaned process survived"
        assert _designs_in(out) in sets  # the previous or the new complete set, never a mix
        if sig != signal.SIGKILL:
            assert sorted(os.listdir(tmp_path)) == ["R"]


def test_interrupted_compare_leaves_a_complete_set(small_trace, tmp_path):
    _interrupt_trials(small_trace, tmp_path, [signal.SIGINT, signal.SIGTERM, signal.SIGKILL], random.Random(15))


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGKILL])
def test_interrupted_compare_twenty_times(small_trace, tmp_path, sig):
    _interrupt_trials(small_trace, tmp_path, [sig] * 20, random.Random(int(sig)))


def test_concurrent_writers_never_mix(small_trace, tmp_path):
    out = tmp_path / "R"
    env = {**os.environ, "PYTHONPATH": ROOT}
    procs = [subprocess.Popen(_compare_cmd(small_trace, out, d, "--no-figures"), env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE) for d in ("dense", "sqdm,dense")]
    for p in procs:
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err.decode()
    assert _designs_in(out) in ({"dense"}, {"dense", "sqdm"})
    summary = (out / "summary.csv").read_text().splitlines()
    assert len(summary) - 1 == len(_designs_in(out))
    assert sorted(os.listdir(tmp_path)) == ["R"]


def test_saved_results_are_strict_json_even_with_unbounded_values(tmp_path):
    import json as _json

    import difftlm

    res = difftlm.compare(designs=["dense"], memory="ideal", jobs=1)   # ideal: infinite peak bandwidth
    res.save(tmp_path / "out", figures=False)
    text = (tmp_path / "out" / "results.json").read_text()
    doc = _json.loads(text, parse_constant=lambda c: (_ for _ in ()).throw(ValueError(c)))
    assert any("dram_peak_bandwidth_gbps" in n for n in doc["json_notes"])
