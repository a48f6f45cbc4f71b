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
    s = {"events_by_component": {
            "pe": {"mac.int8": 10.0, "warp.drive": 5.0},
            "sram": {"sram.nowhere.read_bytes": 3.0, "sram.act.read_bytes": 1.0, "sram.act.write_bytes": 1.0}},
         "dram_energy_pj": 7.0}
    out = energy_summary(s, HW45)
    assert out["unpriced_events"] == ["pe:warp.drive", "sram:sram.nowhere.read_bytes"]
    assert "pe:warp.drive" not in out["energy_by_event_pj"]
    assert any("warp.drive" in n for n in out["energy_notes"])
    assert out["energy_pj"]["dram"] == 7.0                              # passed through unscaled
    assert out["energy_total_pj"] == pytest.approx(sum(out["energy_pj"].values()))
    assert out["energy_pj"]["pe"] == pytest.approx(10 * 0.3)


def test_components_price_their_own_events():
    s = {"events_by_component": {"ndp": {"ndp.bits": 1000.0}}, "event_prices_pj": {"ndp.bits": 0.5},
         "dram_energy_pj": 0.0}
    out = energy_summary(s, HW45)
    assert out["energy_pj"]["ndp"] == pytest.approx(500.0) and out["unpriced_events"] == []


def test_a_unit_without_an_energy_table_is_a_one_line_error():
    import simpy

    from models.components.sram import Sram
    from models.config import BufferConfig
    from models.errors import ConfigError
    from models.pipeline import Pipeline
    from tlm import ActivityRecorder, Clock, Module

    class Silent(Module):
        def cycles(self, work):
            return 1

    env, top, clock = simpy.Environment(), Module("acc"), Clock(500.0)
    unit = Silent("mystery_unit", top)
    bufs = {"out": Sram("out", top, env, BufferConfig(1), clock)}
    with pytest.raises(ConfigError, match="mystery_unit.*no energy table") as exc:
        Pipeline("pipeline", top, env, clock, ActivityRecorder(), {"pe": unit}, bufs, "out", ["dram"], 1)
    assert "\n" not in str(exc.value)


def test_replay_attaches_energy(small_trace):
    import difftlm

    r = difftlm.replay(small_trace, "dense")
    s = r.summary
    assert s["energy_model"]["node_nm"] == 28 and s["energy_model"]["node_scale"] == pytest.approx(28 / 45)
    assert s["energy_pj"]["pe"] == pytest.approx(s["macs"] * 0.3 * 28 / 45)
    assert s["energy_pj"]["dram"] == s["dram_energy_pj"] > 0
    assert s["energy_total_pj"] == pytest.approx(sum(s["energy_pj"].values()))
    assert s["unpriced_events"] == []
    # a smaller node costs less on chip, DRAM unchanged
    r16 = difftlm.replay(small_trace, "dense", COMMON.evolve(node_nm=16))
    assert r16.summary["energy_pj"]["pe"] < s["energy_pj"]["pe"]
    assert r16.summary["energy_pj"]["dram"] == s["energy_pj"]["dram"]
