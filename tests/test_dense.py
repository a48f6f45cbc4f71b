"""The dense int8 design: bytes against closed forms, invariants, overlap behaviour."""

import attrs
import pytest

from difftlm.layer import conv_op, gemm_op, run_layers
from models.config import COMMON, BufferConfig, BuffersConfig, MemoryConfig
from models.errors import ConfigError
from models.replay import replay
from models.tiling import Precision, plan_tiles

IDEAL = MemoryConfig("ideal")


def with_buffers(act_kib, w_kib, out_kib, double=True, memory=IDEAL):
    mk = lambda k: BufferConfig(k, double_buffer=double)  # noqa: E731
    return COMMON.evolve(buffers=BuffersConfig(BufferConfig(360), mk(act_kib), mk(w_kib), mk(out_kib)),
                         memory=memory)


def kinds(res):
    s = res.summary
    return s["dram_read_bytes_by_kind"], s["dram_write_bytes_by_kind"]


def test_bytes_equal_weights_inputs_outputs_when_all_fit():
    res = run_layers(conv_op(8, 8, 16, 32, 3, 3, pad=1), COMMON.evolve(memory=IDEAL))
    rd, wr = kinds(res)
    assert rd == {"act": 8 * 8 * 16, "weight": 32 * 16 * 9}
    assert wr == {"out": 8 * 8 * 32}


def test_rereads_match_the_tiler_and_the_closed_form_when_operands_do_not_fit():
    # linear: 128 tokens x 256 -> 128. Inputs 32 KiB, weights 32 KiB, outputs 16 KiB.
    hw = with_buffers(act_kib=32, w_kib=16, out_kib=64)  # budgets: 16 KiB act, 8 KiB weights
    ops = gemm_op(128, 128, 256)
    plan = plan_tiles(ops[0], Precision(), 16 * 1024, 8 * 1024, 32 * 1024, 32)
    I, W, O = 128 * 256, 256 * 128, 128 * 128
    row_tiles, n_blocks = 2, 4  # 64 rows of 256 B per act tile; 32 columns of 256 B per weight tile
    expect_in_w = min(W + n_blocks * I, I + row_tiles * W)
    res = run_layers(ops, hw)
    rd, wr = kinds(res)
    assert rd["act"] + rd["weight"] == expect_in_w == plan.in_bytes + plan.w_bytes
    assert (rd["act"], rd["weight"]) == (plan.in_bytes, plan.w_bytes)
    assert wr["out"] == O


def test_conv_row_tiles_reread_the_kernel_halo():
    # 32x32x8 conv 3x3 pad 1 (an 8 KiB input) with an act budget of 7 KiB -> row tiles with halo
    hw = with_buffers(act_kib=14, w_kib=48, out_kib=132)
    ops = conv_op(32, 32, 8, 8, 3, 3, pad=1)
    plan = plan_tiles(ops[0], Precision(), 7 * 1024, 24 * 1024, 66 * 1024, 32, 32)
    tiles = len({(t.r0, t.r1) for t in plan.tiles})
    assert tiles > 1
    halo = (tiles - 1) * 2 * 32 * 8  # each internal boundary re-reads R - stride = 2 rows
    res = run_layers(ops, hw)
    assert kinds(res)[0]["act"] == 32 * 32 * 8 + halo


def test_replay_invariants_and_time_identity(small_trace):
    hw = COMMON.evolve(memory=MemoryConfig("ideal", {"bandwidth_gbps": 8.0, "latency_ns": 80}))
    res = replay(small_trace, "dense", hw)
    s = res.summary
    assert s["compute_ps"] + s["memory_ps"] - s["overlap_ps"] + s["idle_ps"] == s["total_ps"]
    assert sum(r["window_cycles"] for r in res.per_op) == pytest.approx(s["total_cycles"])
    assert sum(r["total_cycles"] for r in res.per_step) == pytest.approx(s["total_cycles"])
    per_op_read = sum(v for r in res.per_op for k, v in r.items() if k.startswith("dram_read_"))
    assert per_op_read == s["dram_read_bytes"]
    caps = {"global_buffer": 360, "act_buffer": 132, "weight_buffer": 48, "out_buffer": 132}
    for name, peak in s["buffer_peak_bytes"].items():
        assert peak <= caps[name] * 1024
    assert s["macs"] == sum(op["macs"] for op in res.per_op)


def test_unbounded_memory_has_no_memory_stall(small_trace):
    # ideal DRAM and a global buffer (the residency store) whose port never limits
    wide = attrs.evolve(COMMON.buffers, global_buffer=BufferConfig(360, bytes_per_cycle=1 << 30))
    res = replay(small_trace, "dense", COMMON.evolve(memory=IDEAL, buffers=wide))
    s = res.summary
    assert s["memory_only_cycles"] == 0 and s["idle_cycles"] == 0
    assert s["total_cycles"] == s["pe_busy_cycles"] + s["vector_busy_cycles"]


def test_slow_memory_makes_a_layer_memory_bound_with_partial_overlap():
    slow = MemoryConfig("ideal", {"bandwidth_gbps": 0.5, "latency_ns": 100})
    res = run_layers(gemm_op(256, 256, 256), with_buffers(32, 16, 64, memory=slow))
    s = res.summary
    assert s["memory_cycles"] > s["compute_cycles"]
    assert 0 < s["overlap_cycles"] < s["compute_cycles"]
    assert s["memory_only_cycles"] > 0


def test_double_buffering_overlaps_loads_with_compute():
    mem = MemoryConfig("ideal", {"bandwidth_gbps": 16.0})
    ops = gemm_op(512, 128, 256)
    on = run_layers(ops, with_buffers(32, 16, 64, True, mem)).summary
    off = run_layers(ops, with_buffers(16, 8, 32, False, mem)).summary  # same tile budgets
    assert on["dram_read_bytes"] == off["dram_read_bytes"]
    assert on["overlap_cycles"] > off["overlap_cycles"]
    assert on["total_cycles"] < off["total_cycles"]


def test_weights_resident_when_the_model_fits_the_global_buffer(small_trace):
    hw = COMMON.evolve(memory=IDEAL,
                       buffers=attrs.evolve(COMMON.buffers, global_buffer=BufferConfig(4096)))
    res = replay(small_trace, "dense", hw)
    w = [sum(r.get("dram_read_weight_bytes", 0) for r in res.per_op if r["step"] == s) for s in range(3)]
    assert w[0] > 0 and w[1] == 0 and w[2] == 0
    never = replay(small_trace, "dense", hw.evolve(weight_residency="never"))
    assert never.summary["dram_read_bytes_by_kind"]["weight"] == 3 * w[0]
    assert any("resident" in n for n in res.notes)


def test_tile_that_cannot_fit_is_a_config_error():
    with pytest.raises(ConfigError, match="weight buffer"):
        run_layers(conv_op(8, 8, 4, 4, 3, 3), with_buffers(132, 0.001, 132))


def test_replays_are_deterministic_and_a_quantum_approximates_exact_timing(small_trace):
    hw = COMMON.evolve(memory=MemoryConfig("ideal", {"bandwidth_gbps": 8.0}))
    a = replay(small_trace, "dense", hw).to_dict()
    b = replay(small_trace, "dense", hw).to_dict()
    assert a == b
    q = replay(small_trace, "dense", hw, quantum_ps=10_000_000).summary
    # with a quantum the loader hands tiles on before their data lands (loosely timed)
    assert q["total_ps"] == pytest.approx(a["summary"]["total_ps"], rel=0.05)
    assert q["dram_read_bytes"] == a["summary"]["dram_read_bytes"]
