"""Trace container: lossless round trip, and one-line errors naming the field (no torch)."""

import json
import zipfile

import numpy as np
import pytest

from difftlm.cli import main
from workloads.errors import TraceError
from workloads.optable import OpTableBuilder
from workloads.trace import SCHEMA_VERSION, StepStats, Trace, write_trace


def small_ops():
    b = OpTableBuilder()
    x = b.conv("conv0", None, 8, shape=(1, 4, 4, 4))
    a = b.elementwise("relu", "act", [x])
    b.conv("conv1", a, 4, relu_in=True)
    return b.ops


def step(seed, with_delta=True):
    rng = np.random.default_rng(seed)
    st = StepStats()
    st.scalars["raw.zero_frac"] = {0: float(rng.uniform()), 2: float(rng.uniform())}
    if with_delta:
        st.scalars["delta.zero_frac"] = {0: 0.25, 2: float(rng.uniform())}
        st.arrays["camd.group_outlier_hist"] = {2: rng.dirichlet(np.ones(6))}
        st.arrays["mhd.l1_map"] = {2: rng.uniform(0, 9, (1, 4, 4)).astype(np.float16)}
    st.arrays["sqdm.zero_frac_per_in_channel"] = {2: rng.uniform(size=8).astype(np.float32)}
    st.arrays["mhd.int8_need"] = {2: rng.integers(0, 256, (1, 16, 1), dtype=np.uint8)}
    return st


MAN = {"model": "unit", "steps": [999, 500, 0], "batch": 1, "synthetic_stats": True}


def write(path, steps=None, **man):
    steps = steps if steps is not None else [step(0, False), step(1), step(2)]
    write_trace(path, {**MAN, **man}, small_ops(), steps)
    return steps


def test_round_trip_is_lossless(tmp_path):
    p = tmp_path / "t.trace.zip"
    steps = write(p)
    with Trace(p) as tr:
        assert tr.ops == small_ops()
        assert tr.manifest["version"] == SCHEMA_VERSION
        for i, want in enumerate(steps):
            got = tr.step(i)
            assert got.scalars == want.scalars
            assert set(got.arrays) == set(want.arrays)
            for name, per_op in want.arrays.items():
                for op_id, arr in per_op.items():
                    assert got.arrays[name][op_id].dtype == arr.dtype
                    np.testing.assert_array_equal(got.arrays[name][op_id], arr)
        assert "delta.zero_frac" not in tr.step(0).scalars   # step 0: temporal stats absent


def rewrite_member(src, dst, member, data):
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for item in zin.infolist():
            if item.filename == member:
                if data is not None:
                    zout.writestr(member, data)
            else:
                zout.writestr(item, zin.read(item.filename))


def test_wrong_version(tmp_path):
    p, q = tmp_path / "a.zip", tmp_path / "b.zip"
    write(p)
    man = json.loads(zipfile.ZipFile(p).read("manifest.json"))
    man["version"] = SCHEMA_VERSION + 1
    rewrite_member(p, q, "manifest.json", json.dumps(man))
    with pytest.raises(TraceError, match=r"^manifest\.version: trace schema version 2"):
        Trace(q)


@pytest.mark.parametrize("member", ["ops.json", "manifest.json", "steps/00001.npz"])
def test_missing_table(tmp_path, member):
    p, q = tmp_path / "a.zip", tmp_path / "b.zip"
    write(p)
    rewrite_member(p, q, member, None)
    with pytest.raises(TraceError, match=f"missing table {member}"):
        Trace(q)


def test_shape_mismatch_names_stat_and_op(tmp_path):
    bad = step(1)
    bad.arrays["sqdm.zero_frac_per_in_channel"] = {2: np.zeros(5)}
    with pytest.raises(TraceError, match=r"steps/00001\.npz: sqdm\.zero_frac_per_in_channel\[op 2\]: shape \(5,\)"):
        write(tmp_path / "t.zip", [step(0, False), bad, step(2)])
    assert not (tmp_path / "t.zip").exists()   # atomic: nothing left behind


@pytest.mark.parametrize("value,msg", [(float("nan"), "NaN"), (1.5, r"fraction outside \[0, 1\]"), (-0.1, r"fraction outside \[0, 1\]")])
def test_bad_fraction(tmp_path, value, msg):
    bad = step(1)
    bad.scalars["delta.zero_frac"][0] = value
    with pytest.raises(TraceError, match=r"delta\.zero_frac\[op 0\]: " + msg):
        write(tmp_path / "t.zip", [step(0, False), bad, step(2)])


def test_unknown_stat_rejected(tmp_path):
    bad = step(1)
    bad.scalars["made.up"] = {0: 0.5}
    with pytest.raises(TraceError, match="made.up.*unknown statistic"):
        write(tmp_path / "t.zip", [step(0, False), bad, step(2)])


def test_corrupted_files(tmp_path):
    p = tmp_path / "a.zip"
    write(p)
    junk = tmp_path / "junk.zip"
    junk.write_bytes(b"not a zip at all")
    with pytest.raises(TraceError, match="not a DiffTLM trace archive"):
        Trace(junk)
    q = tmp_path / "b.zip"
    rewrite_member(p, q, "steps/00001.npz", b"garbage bytes")
    with Trace(q) as tr:            # lazy: the bad step only fails when read
        tr.step(0)
        with pytest.raises(TraceError, match=r"steps/00001\.npz: unreadable step file"):
            tr.step(1)
    r = tmp_path / "c.zip"
    rewrite_member(p, r, "ops.json", "[{")
    with pytest.raises(TraceError, match=r"ops\.json: not valid JSON"):
        Trace(r)


def test_cli_info_and_validate(tmp_path, capsys):
    p = tmp_path / "a.zip"
    write(p)
    assert main(["trace", "info", str(p), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["mac_ops"] == 2 and info["ops_by_kind"] == {"conv2d": 2, "relu": 1}
    assert info["gmac_per_forward"] == pytest.approx((16 * 8 * 4 * 9 + 16 * 4 * 8 * 9) / 1e9)
    assert info["synthetic_stats"] is True and info["steps"] == 3
    assert "delta.zero_frac" in info["stats"] and "delta.zero_frac" not in info["stats_step0"]
    assert main(["trace", "validate", str(p)]) == 0
    q = tmp_path / "b.zip"
    rewrite_member(p, q, "steps/00002.npz", b"garbage")
    assert main(["trace", "validate", str(q)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("difftlm trace: error: steps/00002.npz: unreadable") and "\n" not in err
