"""Systolic fold model through the whole simulation, against SCALE-Sim's closed forms."""

import math

import attrs
import pytest

from difftlm.layer import conv_op, gemm_op, run_layers
from models.config import COMMON, BufferConfig, BuffersConfig, MemoryConfig

BIG = BuffersConfig(*(BufferConfig(64 * 1024),) * 4)  # 64 MiB each: every layer is one tile


def hw(rows, cols, dataflow, model="systolic"):
    return COMMON.evolve(
        pe_array=attrs.evolve(COMMON.pe_array, model=model, rows=rows, cols=cols, dataflow=dataflow),
        buffers=BIG, memory=MemoryConfig("ideal"),
    )


def closed_form(dataflow, R, C, out_px, filters, window):
    # (Sr, Sc, cycles per fold) with T = window (OS), output pixels (WS) or filters (IS)
    if dataflow == "os":
        sr, sc, per = out_px, filters, R + C + window - 2
    elif dataflow == "ws":
        sr, sc, per = window, filters, 2 * R + C + out_px - 2
    else:
        sr, sc, per = window, out_px, 2 * R + C + filters - 2
    return math.ceil(sr / R) * math.ceil(sc / C) * per


CASES = [
    # (name, ops factory, output pixels, filters, window)
    ("gemm", lambda: gemm_op(64, 48, 100), 64, 48, 100),
    ("ragged", lambda: gemm_op(70, 33, 17), 70, 33, 17),
    ("gemv", lambda: gemm_op(1, 40, 300), 1, 40, 300),
    # im2col of a padded, strided conv: 15x15x3 input, 10 filters 3x3, stride 2, pad 1 -> 8x8
    ("conv_s2_p1", lambda: conv_op(15, 15, 3, 10, 3, 3, stride=2, pad=1), 64, 10, 27),
    ("conv_5x3", lambda: conv_op(12, 9, 4, 7, 5, 3, stride=1, pad=0), 8 * 7, 7, 60),
]


@pytest.mark.parametrize("dataflow", ["os", "ws", "is"])
@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
@pytest.mark.parametrize("array", [(8, 8), (16, 4)])
def test_systolic_cycles_equal_closed_form_with_ideal_memory(case, dataflow, array):
    _, make, out_px, filters, window = case
    R, C = array
    res = run_layers(make(), hw(R, C, dataflow))
    expect = closed_form(dataflow, R, C, out_px, filters, window)
    assert res.summary["total_cycles"] == expect
    assert res.summary["memory_cycles"] == 0 and res.summary["idle_cycles"] == 0


def test_broadcast_model_cycles():
    # 32x32 PEs of 4 lanes: ceil(m/32)*ceil(n/32)*ceil(k/4)
    h = hw(32, 32, "os", model="broadcast")
    h = h.evolve(pe_array=attrs.evolve(h.pe_array, lanes=4))
    res = run_layers(gemm_op(100, 40, 30), h)
    assert res.summary["total_cycles"] == 4 * 2 * 8


SMALL = BuffersConfig(BufferConfig(360), BufferConfig(2), BufferConfig(1), BufferConfig(8))  # many tiles


@pytest.mark.parametrize("dataflow", ["os", "ws", "is"])
@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
@pytest.mark.parametrize("array", [(8, 8), (16, 4)])
def test_tiled_cycles_equal_closed_form_whatever_the_buffers(case, dataflow, array):
    # the tile plan under small buffers, each tile timed with fold continuation
    from difftlm.layer import tiled_cycles

    _, make, out_px, filters, window = case
    R, C = array
    h = hw(R, C, dataflow).evolve(buffers=SMALL)
    assert tiled_cycles(make()[0], h) == closed_form(dataflow, R, C, out_px, filters, window)
