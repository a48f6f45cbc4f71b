"""Parity rules 1-3 (../shared/design/common-config.md): each design's neutral variant, given
nothing to exploit, behaves like `dense` on the same budget."""

import pytest

import difftlm

NEUTRAL = ("ditto.act_only", "mhdiff.all_focal", "sqdm.int8_dense")


@pytest.fixture(scope="module")
def neutral_run():
    return difftlm.compare(designs=("dense", *NEUTRAL))


@pytest.mark.parametrize("name", NEUTRAL)
def test_neutral_variant_matches_dense_within_2_percent(neutral_run, name):
    d, v = neutral_run["dense"].summary, neutral_run[name].summary
    assert v["total_cycles"] == pytest.approx(d["total_cycles"], rel=0.02)
    dram = lambda s: s["dram_read_bytes"] + s["dram_write_bytes"]  # noqa: E731
    assert dram(v) == pytest.approx(dram(d), rel=0.02)
    assert v["residency"]["spilled_tensors"] == d["residency"]["spilled_tensors"]
    assert v["energy_total_pj"] == pytest.approx(d["energy_total_pj"], rel=0.02)   # one energy ledger
    assert v["unpriced_events"] == []


def test_residency_never_sends_every_tensor_through_dram(neutral_run):
    from models.config import COMMON

    never = difftlm.replay(design="dense", hw=COMMON.evolve(residency="never")).summary
    auto = neutral_run["dense"].summary
    assert auto["residency"]["resident_tensors"] > 0 and never["residency"]["resident_tensors"] == 0
    assert never["dram_read_bytes"] > auto["dram_read_bytes"]
