"""One residency rule (parity rule 2): tensors stay on chip while the live set fits, for every
design alike."""

import os

import attrs
import pytest

from models.config import COMMON, BufferConfig
from models.replay import replay
from models.residency import plan_residency
from workloads.optable import OpTableBuilder
from workloads.trace import StepStats, write_trace

NEUTRAL = ("dense", "ditto.act_only", "mhdiff.all_focal", "sqdm.int8_dense")


def _net():
    """conv → relu → conv → add(skip from the relu) → conv: the relu output outlives one layer."""
    b = OpTableBuilder()
    c0 = b.conv("c0", None, 16, r=3, pad=1, shape=(1, 8, 16, 16))
    a = b.elementwise("relu", "act", [c0])
    c1 = b.conv("c1", a, 16, r=3, pad=1, relu_in=True)
    s = b.elementwise("add", "sum", [c1, a])
    b.conv("c2", s, 8, r=3, pad=1)
    return b.ops


def test_live_set_that_fits_stays_on_chip_and_one_byte_less_spills():
    ops = _net()
    size = lambda t: ops[t].out_elems  # noqa: E731  (int8)
    whole = plan_residency(ops, size, 1 << 40)
    assert whole.spilled == () and len(whole.resident) == 4   # the last output leaves to DRAM
    peak = whole.peak_bytes
    assert peak == 3 * 16 * 16 * 16          # c1's output, the relu output and the sum coexist
    fits = plan_residency(ops, size, peak)
    assert fits.spilled == () and fits.peak_bytes <= peak
    tight = plan_residency(ops, size, peak - 1)
    assert tight.spilled and tight.peak_bytes <= peak - 1
    assert plan_residency(ops, size, peak, "never").resident == frozenset()


def test_concat_travels_with_its_inputs():
    b = OpTableBuilder()
    x = b.conv("x", None, 8, r=1, shape=(1, 4, 8, 8))
    y = b.conv("y", x, 8, r=1)
    cat = b.elementwise("concat", "cat", [x, y], out_shape=(1, 16, 8, 8))
    b.conv("z", cat, 4, r=1)
    ops = b.ops
    size = lambda t: ops[t].out_elems  # noqa: E731
    both = plan_residency(ops, size, 1 << 20)
    assert {x, y, cat} <= both.resident
    small = plan_residency(ops, size, 8 * 8 * 8)         # room for one input only: both spill
    assert x not in small.resident and y not in small.resident


@pytest.fixture(scope="module")
def chain_trace(tmp_path_factory):
    path = os.path.join(tmp_path_factory.mktemp("res"), "chain.trace.zip")
    manifest = {"model": "chain", "steps": [0], "batch": 1, "synthetic_stats": True,
                "provenance": {"generator": "test_residency"}}
    write_trace(path, manifest, _net(), [StepStats()])
    return path


@pytest.mark.parametrize("slack", [0, -1], ids=["just_fits", "just_does_not"])
def test_every_design_spills_the_same_tensors(chain_trace, slack):
    ops = _net()
    peak = plan_residency(ops, lambda t: ops[t].out_elems, 1 << 40).peak_bytes
    bufs = attrs.evolve(COMMON.buffers, global_buffer=BufferConfig((peak + slack) / 1024))
    hw = COMMON.evolve(buffers=bufs, weight_residency="never", memory=attrs.evolve(COMMON.memory, model="ideal"))
    spilled = {d: replay(chain_trace, d, hw).summary["residency"]["spilled_tensors"] for d in NEUTRAL}
    assert len(set(map(tuple, spilled.values()))) == 1, spilled
    assert bool(spilled["dense"]) == (slack < 0)
