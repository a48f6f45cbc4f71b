"""Designs as plug-ins: one variant mechanism, `difftlm designs`, --design-param, entry points."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from difftlm.cli import main
from models.designs import available_designs, base, create_design, describe_design
from models.config import COMMON

ROOT = Path(__file__).resolve().parents[1]

PLUGIN = '''
from models.designs import BaseParams, Design, design, register_variant

@design("plug.dense_twin")
class Twin(Design):
    """A design installed from outside the repository."""
    Params = BaseParams

register_variant("plug.dense_twin.fp16", "plug.dense_twin", "fp16 tensors", act_bytes=2.0, weight_bytes=2.0)
'''


def test_variants_resolve_to_their_base_with_overrides():
    assert "mhdiff.no_packing" in available_designs()
    d = create_design("mhdiff.no_packing", COMMON)
    assert d.name == "mhdiff.no_packing" and d.params.packing is False
    info = describe_design("mhdiff.no_packing")
    assert info["variant_of"] == "mhdiff" and info["overrides"] == {"packing": False}
    assert any(p["name"] == "bias" and p["doc"] for p in info["params"])


def test_designs_json_lists_parameters_with_defaults(capsys):
    assert main(["designs", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    names = {d["name"]: d for d in out["designs"]}
    assert {"dense", "ditto.act_only", "mhdiff.all_focal", "sqdm.int8_dense"} <= set(names)
    acc = next(p for p in names["dense"]["params"] if p["name"] == "acc_bytes")
    assert acc["default"] == 4 and "accumulator" in acc["doc"]


def test_unknown_design_param_is_rejected_with_the_valid_keys(capsys):
    assert main(["replay", "--design", "dense", "--design-param", "biass=0.2", "--json"]) == 2
    err = capsys.readouterr().err.strip()
    assert "biass" in err and "act_bytes" in err and "\n" not in err
    assert main(["compare", "--designs", "dense,mhdiff", "--design-param", "bias=0.3",
                 "--out", "-", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["designs"]["mhdiff"]["total_cycles"] > 0


def test_design_installed_through_the_entry_point_is_listed_and_replays(tmp_path):
    (tmp_path / "plug_design.py").write_text(PLUGIN)
    dist = tmp_path / "plug_design-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: plug-design\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(f"[{base.ENTRY_POINT_GROUP}]\ntwin = plug_design\n")
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    run = lambda *a: subprocess.run([sys.executable, "-m", "difftlm.cli", *a], capture_output=True,  # noqa: E731
                                    text=True, env=env, cwd=tmp_path, check=True).stdout
    listed = run("designs")
    assert "plug.dense_twin: A design installed from outside the repository." in listed
    assert "plug.dense_twin.fp16 (variant of plug.dense_twin" in listed
    # exact twins: in fast mode dense reuses steps its key declares equal, the plug-in does not
    twin = json.loads(run("replay", "--design", "plug.dense_twin", "--json", "--exact"))
    dense = json.loads(run("replay", "--design", "dense", "--json", "--exact"))
    assert twin["total_cycles"] == dense["total_cycles"]
    fp16 = json.loads(run("replay", "--design", "plug.dense_twin.fp16", "--json"))
    assert fp16["dram_read_bytes"] > dense["dram_read_bytes"]


def test_example_design_runs():
    out = subprocess.run([sys.executable, str(ROOT / "examples" / "custom_design.py")],
                         capture_output=True, text=True, check=True, cwd=ROOT).stdout
    rows = {line.split()[0]: line for line in out.strip().splitlines()}
    assert rows["example.w8a8"].split()[1] == rows["dense"].split()[1]     # int8 twin = dense
    assert rows["example.w4a8"].split()[1] != rows["dense"].split()[1]


@pytest.mark.parametrize("name", ["dense"])
def test_unit_without_energy_table_fails_naming_it(name, monkeypatch, capsys):
    from models.components.vector_unit import VectorUnit

    monkeypatch.delattr(VectorUnit, "energy_events")
    assert main(["replay", "--design", name, "--json"]) == 2
    err = capsys.readouterr().err
    assert "vector_unit" in err and "energy table" in err
