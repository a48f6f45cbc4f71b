"""The command line: JSON keys with units, and bad input -> one-line error, exit 2, no output."""

import json
import os
import zipfile

import pytest

from difftlm.cli import main


def run(capsys, *argv):
    rc = main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


def test_replay_json_has_unit_named_keys(capsys, small_trace, tmp_path):
    chrome = tmp_path / "t.json"
    rc, out, _ = run(capsys, "replay", "--trace", small_trace, "--memory", "ideal",
                     "--memory-param", "bandwidth_gbps=12.8", "--chrome-trace", str(chrome), "--json")
    assert rc == 0
    d = json.loads(out)
    for key in ("total_cycles", "compute_cycles", "memory_cycles", "overlap_cycles", "idle_cycles",
                "dram_read_bytes", "dram_write_bytes", "pe_utilization", "total_ns"):
        assert key in d
    assert d["synthetic_stats"] is True
    ev = json.loads(chrome.read_text())["traceEvents"]
    assert any(e["ph"] == "X" for e in ev)


def test_layer_json_and_topology(capsys, tmp_path):
    rc, out, _ = run(capsys, "layer", "--gemm", "64", "32", "16", "--array", "8x8", "--memory", "ideal", "--json")
    assert rc == 0
    d = json.loads(out)
    assert d["total_cycles"] == 8 * 4 * (8 + 8 + 16 - 2)  # OS folds x (R + C + T - 2)
    topo = tmp_path / "net.csv"
    topo.write_text("Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, Num Filter, Strides,\n"
                    "conv1, 10, 10, 3, 3, 4, 8, 1,\nconv2, 8, 8, 3, 3, 8, 8, 1,\n")
    rc, out, _ = run(capsys, "layer", "--topology", str(topo), "--array", "8x8", "--memory", "ideal", "--json")
    assert rc == 0
    assert [l["name"] for l in json.loads(out)["layers"]] == ["conv1", "conv2"]


def _corrupt(tmp_path, small_trace):
    bad = tmp_path / "bad.trace.zip"
    with zipfile.ZipFile(small_trace) as src, zipfile.ZipFile(bad, "w") as dst:
        for item in src.namelist():
            data = src.read(item)
            if item == "manifest.json":
                m = json.loads(data)
                m["version"] = 99
                data = json.dumps(m)
            dst.writestr(item, data)
    return str(bad)


@pytest.mark.parametrize("case,needle", [
    ("missing_trace", "no such file"),
    ("bad_version", "manifest.version"),
    ("not_zip", "not a DiffTLM trace"),
    ("unknown_design", "unknown design 'nope'; known:"),
    ("unknown_memory", "unknown memory model 'nope'; known:"),
    ("unknown_param", "unknown parameter(s) speed"),
    ("tile_cannot_fit", "cannot fit"),
    ("bad_hw_key", "hw.pe_array.colz: unknown key"),
])
def test_bad_input_gives_one_line_error_exit_2_and_no_output(capsys, tmp_path, small_trace, case, needle):
    out_file = tmp_path / "result.json"
    args = ["replay", "--trace", small_trace, "--out", str(out_file)]
    if case == "missing_trace":
        args[2] = str(tmp_path / "missing.zip")
    elif case == "bad_version":
        args[2] = _corrupt(tmp_path, small_trace)
    elif case == "not_zip":
        junk = tmp_path / "junk.zip"
        junk.write_text("hello")
        args[2] = str(junk)
    elif case == "unknown_design":
        args += ["--design", "nope"]
    elif case == "unknown_memory":
        args += ["--memory", "nope"]
    elif case == "unknown_param":
        args += ["--memory", "ideal", "--memory-param", "speed=3"]
    elif case == "tile_cannot_fit":
        hw = tmp_path / "tiny.toml"
        hw.write_text('[memory]\nmodel = "ideal"\n[buffers.weight]\ncapacity_kib = 0.01\n')
        args += ["--hw", str(hw)]
    elif case == "bad_hw_key":
        hw = tmp_path / "typo.toml"
        hw.write_text("[pe_array]\ncolz = 3\n")
        args += ["--hw", str(hw)]
    rc, out, err = run(capsys, *args)
    assert rc == 2
    assert needle in err
    assert len(err.strip().splitlines()) == 1
    assert not out_file.exists()
    assert not [p for p in os.listdir(tmp_path) if p.startswith(".tmp-")]


def test_hw_toml_overrides_are_applied(capsys, small_trace, tmp_path):
    hw = tmp_path / "wide.toml"
    hw.write_text('freq_mhz = 1000\n[pe_array]\nrows = 64\ncols = 64\n[memory]\nmodel = "ideal"\n')
    rc, out, _ = run(capsys, "replay", "--trace", small_trace, "--hw", str(hw), "--json")
    base_rc, base, _ = run(capsys, "replay", "--trace", small_trace, "--memory", "ideal", "--json")
    a, b = json.loads(out), json.loads(base)
    assert a["clock_mhz"] == 1000 and a["pe_busy_cycles"] < b["pe_busy_cycles"]


def test_relu_designs_say_they_replay_the_relu_twin(capsys):
    rc, out, _ = run(capsys, "replay", "--design", "sqdm", "--memory", "ideal", "--json")
    assert rc == 0
    d = json.loads(out)
    assert d["trace_id"] != json.loads(run(capsys, "replay", "--memory", "ideal", "--json")[1])["trace_id"]
    assert any("relu twin" in n for n in d["notes"])
