"""The bundled default traces: present, valid, measured, and captured from the current checkpoints."""

import hashlib

import pytest

from difftlm.cli import main
from workloads.bundled import BUNDLED, bundled_trace
from workloads.errors import TraceError
from workloads.trace import Trace


@pytest.mark.parametrize("name", BUNDLED)
def test_bundled_trace_valid_and_current(name):
    path = bundled_trace(name)
    with Trace(path) as tr:
        m = tr.manifest
        batch = 2 if name.startswith("small-") else 4   # scripts/make_bundled_traces.sh
        assert m["model"] == name and tr.n_steps == 50 and m["batch"] == batch and not tr.synthetic_stats
        assert tr.weights == "trained"
        assert m["seed"] != m["calibration_seed"]
        act = name.split("-")[1]
        assert any(o.kind == act for o in tr.ops) and not any(o.kind == ("silu" if act == "relu" else "relu") for o in tr.ops)
        assert any(o.input_from_relu for o in tr.ops) == (act == "relu")
        for i in (0, 1, 49):
            tr.step(i)
        ckpt = path.parent.parent / f"{name}.pt"
        if ckpt.exists():
            sha = hashlib.sha256(ckpt.read_bytes()).hexdigest()[:16]
            assert m["provenance"]["checkpoint_sha256_16"] == sha, \
                "bundled trace is stale: run scripts/make_bundled_traces.sh"
    assert path.stat().st_size < 5 * 2 ** 20


def test_bundled_data_stays_under_25_mb():
    data = bundled_trace("tiny-silu").parent.parent
    total = sum(p.stat().st_size for p in data.rglob("*") if p.is_file())
    assert total < 25e6, f"{total / 1e6:.1f} MB of bundled data"


def test_bundled_unknown_name():
    with pytest.raises(TraceError, match="unknown name 'sd'"):
        bundled_trace("sd")


def test_cli_capture_and_errors(tmp_path, capsys):
    pytest.importorskip("torch")
    out = tmp_path / "t.zip"
    assert main(["trace", "capture", "--model", "tiny-silu", "--steps", "3", "--batch", "1", "--out", str(out)]) == 0
    with Trace(out) as tr:
        assert tr.n_steps == 3 and tr.manifest["provenance"]["command"].startswith("difftlm trace capture")
    assert main(["trace", "capture", "--model", "nonesuch", "--out", str(out)]) == 2
    assert "--model: unknown model 'nonesuch'" in capsys.readouterr().err
    assert main(["trace", "zoo", "sd3", "--out", str(tmp_path / "z.zip")]) == 2
    assert "zoo: unknown model 'sd3'" in capsys.readouterr().err
