"""Energy model: cited per-event tables, explicit node scaling, unknown events reported."""

from __future__ import annotations

import pytest

from models.config import COMMON
from models.energy import DEFAULT_TABLE, EnergyTable, energy_summary, price_events

HW45 = {**COMMON.to_dict(), "node_nm": 45}


def test_mac_energies_follow_the_bit_product_proxy():
    t = DEFAULT_TABLE
    assert t.mac_pj("int8") == pytest.approx(0.2 + 0.1)           # Horowitz: 8b mult + 32b add
    assert t.mac_pj("int4x8") == pytest.approx(0.1 + 0.1)
    assert t.mac_pj("int4x4") == pytest.approx(0.05 + 0.1)
    assert t.mac_pj("fp16") == pytest.approx(1.1 + 0.4)
    assert t.mac_pj("int3xfp16") == pytest.approx(1.1 * 3 / 16 + 0.4)
    assert t.mac_pj("bf17") is None


def test_sram_table_hits_the_cited_points_and_grows_with_size():
    t = DEFAULT_TABLE
    for kib, pj in ((8, 10.0), (32, 20.0), (1024, 100.0)):
        assert t.sram_pj_per_byte(kib * 1024) * 8 == pytest.approx(pj)
    sizes = [4, 8, 48, 132, 360, 1024, 4096]
    e = [t.sram_pj_per_byte(k * 1024) for k in sizes]
    assert e == sorted(e) and len(set(e)) == len(e)


def test_node_scaling_is_explicit():
    ev = {"mac.int8": 1000.0, "vector.elements": 10.0}
    e45, _, _ = price_events(ev, HW45)
    e28, unit28, _ = price_events(ev, COMMON.to_dict())
    assert e45["mac.int8"] == pytest.approx(300.0)
    assert e28["mac.int8"] / e45["mac.int8"] == pytest.approx(28 / 45)
    t2 = EnergyTable(node_exponent=2.0)
    e28b, _, _ = price_events(ev, COMMON.to_dict(), t2)
    assert e28b["mac.int8"] / e45["mac.int8"] == pytest.approx((28 / 45) ** 2)


def test_unknown_events_are_reported_not_priced():
    s = {"events": {"mac.int8": 10.0, "warp.drive": 5.0, "sram.nowhere.read_bytes": 3.0,
                    "sram.act.read_bytes": 1.0, "sram.act.write_bytes": 1.0},
         "dram_energy_pj": 7.0, "dram_read_bytes_by_kind": {}, "dram_write_bytes": 0}
    out = energy_summary(s, HW45)
    assert out["unpriced_events"] == ["sram.nowhere.read_bytes", "warp.drive"]
    assert "warp.drive" not in out["energy_by_event_pj"]
    assert any("warp.drive" in n for n in out["energy_notes"])
    assert out["energy_pj"]["dram"] == 7.0                              # passed through unscaled
    assert out["energy_total_pj"] == pytest.approx(sum(out["energy_pj"].values()))
    assert out["energy_pj"]["pe_mac"] == pytest.approx(10 * 0.3)


def test_sram_traffic_derived_when_not_counted():
    s = {"events": {"mac.int8": 1.0}, "dram_energy_pj": 0.0,
         "dram_read_bytes_by_kind": {"weight": 100, "act": 50}, "dram_write_bytes": 40}
    out = energy_summary(s, HW45)
    d = out["energy_derived_events"]
    assert d["sram.weight.write_bytes"] == 100 and d["sram.act.write_bytes"] == 50
    assert d["sram.out.write_bytes"] == 40 and d["sram.out.read_bytes"] == 40
    assert d["sram.weight.read_bytes"] == 100                            # lower bound: read once
    assert out["energy_pj"]["sram"] > 0 and out["energy_notes"]


def test_replay_attaches_energy(small_trace):
    import difftlm

    r = difftlm.replay(small_trace, "dense")
    s = r.summary
    assert s["energy_model"]["node_nm"] == 28 and s["energy_model"]["node_scale"] == pytest.approx(28 / 45)
    assert s["energy_pj"]["pe_mac"] == pytest.approx(s["macs"] * 0.3 * 28 / 45)
    assert s["energy_pj"]["dram"] == s["dram_energy_pj"] > 0
    assert s["energy_total_pj"] == pytest.approx(sum(s["energy_pj"].values()))
    assert s["unpriced_events"] == []
    # a smaller node costs less on chip, DRAM unchanged
    r16 = difftlm.replay(small_trace, "dense", COMMON.evolve(node_nm=16))
    assert r16.summary["energy_pj"]["pe_mac"] < s["energy_pj"]["pe_mac"]
    assert r16.summary["energy_pj"]["dram"] == s["energy_pj"]["dram"]
