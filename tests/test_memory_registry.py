"""The memory-model registry: names, parameter checks, entry-point plug-ins, the example."""

import subprocess
import sys
from pathlib import Path

import pytest

from models.errors import ConfigError
from models.memory import available_memory_models, base, create_memory_model, memory_model_config
from tlm import Command, Transaction

ROOT = Path(__file__).resolve().parents[1]


def test_presets_are_registered_by_name():
    names = available_memory_models()
    for name in ("ideal", "dram", "ddr4-3200", "ddr4-3200-2ch", "lpddr4-3200", "lpddr4-3200-4ch",
                 "lpddr4-2400", "lpddr4-2400-4ch", "hbm2-2000", "hbm2-2000-8ch"):
        assert name in names
    m = create_memory_model("lpddr4-3200-4ch")
    assert m.peak_bandwidth_gbps() == pytest.approx(25.6)
    cfg = memory_model_config("lpddr4-3200-4ch", m)
    assert cfg["params"]["channels"] == 4 and cfg["params"]["bus_width_bits"] == 16


def test_unknown_model_lists_known_ones():
    with pytest.raises(ConfigError) as exc:
        create_memory_model("ddr9-9999")
    assert "ddr9-9999" in str(exc.value) and "lpddr4-3200-4ch" in str(exc.value)


def test_unknown_parameter_lists_known_ones():
    with pytest.raises(ConfigError) as exc:
        create_memory_model("ddr4-3200", {"trcd_ns": 13.75})
    msg = str(exc.value)
    assert "trcd_ns" in msg and "trcd_ck" in msg and "page_policy" in msg


def test_entry_point_plugin(tmp_path, monkeypatch):
    (tmp_path / "fake_mem_plugin.py").write_text(
        "from models.memory import MemoryModel, MemoryResponse\n"
        "import attrs\n"
        "@attrs.frozen\n"
        "class P:\n"
        "    latency_ps: int = 7000\n"
        "class FixedLatency(MemoryModel):\n"
        "    '''Plug-in test model: fixed latency.'''\n"
        "    Params = P\n"
        "    def service(self, txn, arrival_ps):\n"
        "        t = arrival_ps + self.params.latency_ps\n"
        "        return MemoryResponse(arrival_ps, t, t, txn.nbytes)\n"
        "    def peak_bandwidth_gbps(self):\n"
        "        return float('inf')\n"
    )
    dist = tmp_path / "fake_mem_plugin-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: fake-mem-plugin\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(
        f"[{base.ENTRY_POINT_GROUP}]\nfixed-plugin = fake_mem_plugin:FixedLatency\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(base, "_REGISTRY", dict(base._REGISTRY))
    assert "fixed-plugin" in available_memory_models()
    m = create_memory_model("fixed-plugin", {"latency_ps": 5000})
    r = m.service(Transaction(Command.READ, 0, 64), 1000)
    assert (r.accept_ps, r.done_ps) == (1000, 6000)
    with pytest.raises(ConfigError, match="latency_ps"):
        create_memory_model("fixed-plugin", {"latency_ns": 5})


def test_example_custom_model_runs():
    out = subprocess.run([sys.executable, str(ROOT / "examples" / "custom_memory_model.py")],
                         capture_output=True, text=True, check=True, cwd=ROOT).stdout
    lines = out.strip().splitlines()
    assert len(lines) == 3 and "hits 1" in lines[1] and "hits 0" in lines[2]
