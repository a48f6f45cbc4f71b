"""Ditto: DRAM bytes per op and mode against the spec's formulas (dataflows.md §6.3), zero-skip
and nibble-slot cycles on the common grid, the Defo static pass and runtime choice measured from
the simulation, the shared residency rule for the operands and the neutral `ditto.act_only`."""

import math

import pytest

from models.config import COMMON, MemoryConfig
from models.designs import get_design
from models.designs.ditto import Ditto
from models.errors import ConfigError
from models.replay import replay
from workloads import Trace, bundled_trace
from workloads.optable import OpTableBuilder
from workloads.trace import StepStats, write_trace

# every tensor through DRAM, so the byte formulas of the spec show whole (residency: own test)
IDEAL = COMMON.evolve(memory=MemoryConfig("ideal"), weight_residency="never", residency="never")
B_ACC = 2  # bytes per stored previous/current output at the default b_acc = 16 bits


def _trace(path, ops, steps, delta, kv=None, raw=(0.0, 0.25)):
    """`delta`/`kv`: op_id -> (zero, int4, int8, beyond8) fractions, the same every step >= 1."""
    mac = [op.op_id for op in ops if op.is_mac]
    stats = []
    for s in range(steps):
        sc = {"raw.zero_frac": {i: raw[0] for i in mac}, "raw.int4_frac": {i: raw[1] for i in mac}}
        if s:
            for prefix, table in (("delta", delta), ("kv_delta", kv or {})):
                for j, name in enumerate(("zero_frac", "int4_frac", "int8_frac", "beyond8_frac")):
                    sc.setdefault(f"{prefix}.{name}", {}).update({i: f[j] for i, f in table.items()})
        stats.append(StepStats(scalars=sc))
    manifest = {"model": "t", "steps": list(range(steps)), "batch": 1, "synthetic_stats": True,
                "provenance": {"generator": "test_ditto"}}
    write_trace(path, manifest, ops, stats)
    return str(path)


def _linear(d_in=64, d_out=64, tokens=64):
    b = OpTableBuilder()
    b.linear("lin", None, d_out, shape=(1, d_in, tokens, 1))
    return b.ops


def _row(res, step, op_id=0):
    n_ops = len(res.per_op) // res.trace["steps"]
    return res.per_op[step * n_ops + op_id]


def _bytes(row, direction):
    pre = f"dram_{direction}_"
    return {k[len(pre):-6]: v for k, v in row.items() if k.startswith(pre) and v}


ZERO = (1.0, 0.0, 0.0, 0.0)
ALL8 = (0.0, 0.0, 1.0, 0.0)


def test_registered_designs_and_budget():
    for name in ("ditto", "ditto.no_defo", "ditto.defo_plus", "ditto.act_only", "ditto.itc"):
        get_design(name)
    d = Ditto(COMMON)
    assert d.n_pe == 65536 // (4 * 4 * 8) == 512 and d.unused_units == 0
    # 512 PEs x 4 nibble multipliers spread over the common 32 x 32 grid: 2 slots per position
    assert d.grid.lanes_for(d.n_pe * 4, "ditto") == 2
    paper = Ditto.paper_hw()
    assert Ditto(paper).n_pe == 39398 and paper.freq_mhz == 1000
    itc = get_design("ditto.itc").paper_hw().pe_array
    assert itc.rows * itc.cols * itc.lanes == 27648
    with pytest.raises(ConfigError, match="does not fit"):
        Ditto(COMMON.evolve(compute_budget_units=100))
    with pytest.raises(ConfigError, match="b_acc_bits"):
        Ditto(COMMON, {"b_acc_bits": 12})


def test_bytes_per_mode_equal_the_spec_formulas(tmp_path):
    ops = _linear()
    E_in, E_w, E_out = ops[0].in_elems, ops[0].w_elems, ops[0].out_elems
    res = replay(_trace(tmp_path / "t.zip", ops, 3, {0: (0.5, 0.4, 0.1, 0.0)}), "ditto.no_defo", IDEAL)
    # step 0: ACT, plus the keep writes because step 1 runs in DIFF
    assert _bytes(_row(res, 0), "read") == {"act": E_in, "weight": E_w}
    assert _bytes(_row(res, 0), "write") == {"out": E_out, "keep_act": E_in, "keep_out": E_out * B_ACC}
    # step 1: DIFF, keeps for step 2
    assert _bytes(_row(res, 1), "read") == {"act": E_in, "prev_act": E_in, "prev_out": E_out * B_ACC, "weight": E_w}
    assert _bytes(_row(res, 1), "write") == {"out": E_out, "keep_act": E_in, "keep_out": E_out * B_ACC}
    # last step: no later step needs the keeps
    assert _bytes(_row(res, 2), "write") == {"out": E_out}
    # b_acc is a parameter
    res32 = replay(_trace(tmp_path / "t.zip", ops, 3, {0: (0.5, 0.4, 0.1, 0.0)}), "ditto.no_defo", IDEAL,
                   design_params={"b_acc_bits": 32})
    assert _row(res32, 1)["dram_read_prev_out_bytes"] == E_out * 4


def test_all_zero_differences_do_no_macs_but_move_the_state(tmp_path):
    ops = _linear()
    E_in, E_out = ops[0].in_elems, ops[0].out_elems
    res = replay(_trace(tmp_path / "t.zip", ops, 3, {0: ZERO}), "ditto.no_defo", IDEAL)
    r1 = _row(res, 1)
    assert r1["pe_busy_cycles"] == 0
    assert _row(res, 0)["pe_busy_cycles"] > 0
    assert r1["dram_read_prev_act_bytes"] == E_in and r1["dram_read_prev_out_bytes"] == E_out * B_ACC
    assert r1["dram_write_keep_act_bytes"] == E_in and r1["dram_write_out_bytes"] == E_out
    # only step 0 did products: 2 nibble slots per MAC
    assert res.summary["macs"] == 2 * ops[0].macs


def test_all_8bit_differences_cost_at_least_act_mode(tmp_path):
    ops = _linear(128, 128, 128)
    res = replay(_trace(tmp_path / "t.zip", ops, 3, {0: ALL8}), "ditto.no_defo", IDEAL)
    a, d = _row(res, 0), _row(res, 1)
    assert d["pe_busy_cycles"] >= a["pe_busy_cycles"] > 0
    assert d["window_cycles"] >= a["window_cycles"]


def test_nibble_slot_cycles_match_the_closed_form(tmp_path):
    # cycles_PE_DIFF = MACs (f4 + 2 f8 + 3 f9) / (PEs · 4) when the shapes divide evenly
    ops = _linear(128, 128, 128)
    f = (0.25, 0.5, 0.125, 0.125)
    res = replay(_trace(tmp_path / "t.zip", ops, 2, {0: f}), "ditto.no_defo", IDEAL)
    macs = ops[0].macs
    assert _row(res, 1)["pe_busy_cycles"] == pytest.approx(macs * (f[1] + 2 * f[2] + 3 * f[3]) / (512 * 4))
    assert _row(res, 0)["pe_busy_cycles"] == pytest.approx(macs * 2 / (512 * 4))
    cls = replay(_trace(tmp_path / "t.zip", ops, 2, {0: f}, raw=(0.25, 0.75)), "ditto.no_defo", IDEAL,
                 design_params={"act_mode_encoding": "classify"})  # A-33b
    assert _row(cls, 0)["pe_busy_cycles"] == pytest.approx(macs * (0.5 + 2 * 0.25) / (512 * 4))


def test_self_attention_two_sub_op_bytes_and_cross_attention_kv_as_weights(tmp_path):
    b = OpTableBuilder()
    q = b.linear("q", None, 32, shape=(1, 32, 64, 1))
    k = b.linear("k", None, 32, shape=(1, 32, 64, 1))
    qk = b.matmul("matmul_qk", "qk", q, k, heads=2, head_dim=16, tokens=64, kv_tokens=64)
    ops = b.ops
    f = (0.5, 0.5, 0.0, 0.0)
    path = _trace(tmp_path / "a.zip", ops, 3, {i: f for i in (q, k, qk)}, kv={qk: (0.25, 0.5, 0.25, 0.0)})
    res = replay(path, "ditto.no_defo", IDEAL)
    op = ops[qk]
    E_in, E_w, E_out = op.in_elems, op.w_elems, op.out_elems
    r = _row(res, 1, qk)
    assert _bytes(r, "read") == {"act": E_in + E_w, "prev_act": E_in + E_w, "prev_out": E_out * B_ACC}
    assert _bytes(r, "write") == {"out": E_out, "keep_act": E_in + E_w, "keep_out": E_out * B_ACC}
    # slots: dQ x K_{t-1} (delta) + Q_t x dK (kv_delta)
    assert r["pe_busy_cycles"] == pytest.approx(op.macs * (0.5 + (0.5 + 2 * 0.25)) / (512 * 4), rel=0.02)
    # cross-attention: K is a weight, no dK sub-op and no previous K
    cross = [o if o.op_id != qk else type(o)(**{**o.to_dict(), "preds": tuple(o.preds), "cross_attn_kv": True})
             for o in ops]
    resx = replay(_trace(tmp_path / "x.zip", cross, 3, {i: f for i in (q, k, qk)}), "ditto.no_defo", IDEAL)
    rx = _row(resx, 1, qk)
    assert _bytes(rx, "read") == {"act": E_in, "prev_act": E_in, "weight": E_w, "prev_out": E_out * B_ACC}
    assert rx["pe_busy_cycles"] == pytest.approx(op.macs * 0.5 / (512 * 4), rel=0.02)


def test_static_bypass_between_consecutive_linear_ops(tmp_path):
    b = OpTableBuilder()
    a = b.linear("a", None, 64, shape=(1, 64, 64, 1))
    c = b.linear("c", a, 64)
    ops = b.ops
    E = ops[a].out_elems
    path = _trace(tmp_path / "b.zip", ops, 3, {a: ZERO, c: ZERO})
    res = replay(path, "ditto", IDEAL)
    assert a in res.summary["ditto_bypassed_ops"]
    ra, rc = _row(res, 1, a), _row(res, 1, c)
    assert _bytes(ra, "write") == {"delta": E, "keep_act": ops[a].in_elems}  # no out, no keep_out
    assert "prev_out" not in _bytes(ra, "read")
    assert _bytes(rc, "read") == {"delta": E, "prev_out": E * B_ACC, "weight": ops[c].w_elems}
    nb = replay(path, "ditto.no_defo", IDEAL)
    assert nb.summary["ditto_bypassed_ops"] == []
    assert _row(nb, 1, a)["dram_write_out_bytes"] == E


def test_defo_picks_the_mode_measured_cheaper_at_steps_0_and_1(tmp_path):
    b = OpTableBuilder()
    z = b.linear("zero", None, 128, shape=(1, 512, 256, 1))  # compute-bound: zero-skip pays off
    w = b.linear("wide", None, 128, shape=(1, 128, 128, 1))  # 8-bit deltas: DIFF only adds traffic
    ops = b.ops
    path = _trace(tmp_path / "d.zip", ops, 5, {z: ZERO, w: ALL8})
    res = replay(path, "ditto", COMMON)  # bank-level LPDDR4: windows include DRAM stalls
    dec = res.summary["defo_decisions"]
    for op_id, name in ((z, "zero"), (w, "wide")):
        d = dec[name]
        assert d["mode"] == ("diff" if d["act_cycles"] > d["diff_cycles"] else "act")
        # the decision reads this run's own measured windows
        assert d["act_cycles"] == pytest.approx(_row(res, 0, op_id)["window_cycles"])
        if op_id == z:
            assert d["diff_cycles"] == pytest.approx(_row(res, 1, op_id)["window_cycles"])
    assert dec["zero"]["mode"] == "diff" and dec["wide"]["mode"] == "act"
    assert res.summary["defo_act_layers"] == 1 and res.summary["defo_diff_layers"] == 1
    for s in range(2, 5):
        assert _row(res, s, w).get("dram_read_prev_act_bytes", 0) == 0
        assert _row(res, s, w)["pe_busy_cycles"] == _row(res, 0, w)["pe_busy_cycles"]
        assert _row(res, s, z)["dram_read_prev_act_bytes"] > 0


def test_step1_without_temporal_statistics_is_a_clear_error(tmp_path):
    ops = _linear()
    path = _trace(tmp_path / "n.zip", ops, 2, {})
    with pytest.raises(ConfigError, match="delta"):
        replay(path, "ditto", IDEAL)


def test_defo_plus_notes_its_spatial_fallback(tmp_path):
    ops = _linear()
    res = replay(_trace(tmp_path / "p.zip", ops, 3, {0: ALL8}, raw=(0.5, 0.75)), "ditto.defo_plus", IDEAL)
    assert any("spatial" in n for n in res.notes)
    assert _row(res, 0)["pe_busy_cycles"] == pytest.approx(ops[0].macs * (0.25 + 2 * 0.25) / 2048)


@pytest.mark.slow
def test_no_defo_moves_more_dram_bytes_than_defo_on_the_bundled_trace():
    trace = Trace(bundled_trace("tiny-silu"))
    on = replay(trace, "ditto").summary
    off = replay(trace, "ditto.no_defo").summary
    assert off["dram_read_bytes"] + off["dram_write_bytes"] > on["dram_read_bytes"] + on["dram_write_bytes"]
    assert on["defo_act_layers"] + on["defo_diff_layers"] == sum(op.is_mac for op in trace.ops)
    assert math.isclose(on["compute_ps"] + on["memory_ps"] - on["overlap_ps"] + on["idle_ps"], on["total_ps"])


def test_act_mode_maps_on_the_common_grid_like_dense(tmp_path):
    # ACT = 2 nibble slots per MAC on 2 slots per position: per tile exactly the dense int8 array,
    # also when the shapes do not divide the grid
    ops = _linear(100, 70, 50)
    path = _trace(tmp_path / "g.zip", ops, 1, {})
    d = replay(path, "dense", IDEAL)
    a = replay(path, "ditto", IDEAL)
    assert _row(a, 0)["pe_busy_cycles"] == _row(d, 0)["pe_busy_cycles"] > 0
    assert a.summary["macs"] == 2 * d.summary["macs"]  # nibble products
    assert a.summary["events_by_component"]["pe"] == {"mult.int4x8": 2 * ops[0].macs, "add.int32": ops[0].macs}
    assert a.summary["energy_pj"]["pe"] == pytest.approx(d.summary["energy_pj"]["pe"])   # = int8 MACs


def test_units_price_their_own_work(tmp_path):
    ops = _linear()
    res = replay(_trace(tmp_path / "e.zip", ops, 3, {0: (0.5, 0.4, 0.1, 0.0)}), "ditto.no_defo", IDEAL)
    ev = res.summary["events_by_component"]
    # Encoding Unit: subtract + classify per differenced input element (steps 1 and 2)
    assert ev["encoder"] == {"add.int8": 2 * 2 * ops[0].in_elems}
    k = ops[0].c
    slots = math.ceil(k * (0.4 + 2 * 0.1))
    assert ev["pe"]["mult.int4x8"] == ops[0].out_elems * (2 * k + 2 * slots)
    nonzero = math.ceil(k * (0.4 + 0.1))        # one accumulate per non-zero delta
    assert ev["pe"]["add.int32"] == ops[0].out_elems * (k + 2 * nonzero)
    assert res.summary["unpriced_events"] == []
    # Defo's compares are the only control events: one add.int32 per layer
    on = replay(_trace(tmp_path / "e.zip", ops, 3, {0: (0.5, 0.4, 0.1, 0.0)}), "ditto", IDEAL)
    assert on.summary["control_events"] == {"add.int32": 1}
    assert on.summary["unpriced_events"] == []


def test_operands_follow_the_shared_residency_rule_state_stays_in_dram(tmp_path):
    b = OpTableBuilder()
    a = b.linear("a", None, 64, shape=(1, 64, 64, 1))
    b.elementwise("silu", "act", [a])
    ops = b.ops
    path = _trace(tmp_path / "r.zip", ops, 3, {a: (0.5, 0.5, 0.0, 0.0)})
    hw = COMMON.evolve(memory=MemoryConfig("ideal"), weight_residency="never")  # residency auto
    res = replay(path, "ditto.no_defo", hw)
    dense = replay(path, "dense", hw)
    # the linear's output stays on chip for its consumer in both designs ...
    for r in (dense, res):
        assert _row(r, 1, a)["dram_write_out_bytes"] == 0
    # ... while Ditto's cross-step state goes through DRAM
    E_in, E_out = ops[a].in_elems, ops[a].out_elems
    r1 = _row(res, 1, a)
    assert r1["dram_read_prev_act_bytes"] == E_in and r1["dram_write_keep_act_bytes"] == E_in
    assert r1["dram_read_prev_out_bytes"] == r1["dram_write_keep_out_bytes"] == E_out * B_ACC


def test_act_only_moves_exactly_what_dense_moves(tmp_path):
    b = OpTableBuilder()
    q = b.linear("q", None, 32, shape=(1, 32, 64, 1))
    k = b.linear("k", None, 32, shape=(1, 32, 64, 1))
    b.matmul("matmul_qk", "qk", q, k, heads=2, head_dim=16, tokens=64, kv_tokens=64)
    ops = b.ops
    path = _trace(tmp_path / "o.zip", ops, 3, {o.op_id: ZERO for o in ops if o.is_mac})
    for hw in (COMMON, COMMON.evolve(residency="never")):
        d, a = replay(path, "dense", hw).summary, replay(path, "ditto.act_only", hw).summary
        assert a["total_cycles"] == d["total_cycles"]
        assert a["dram_read_bytes_by_kind"] == d["dram_read_bytes_by_kind"]
        assert a["dram_write_bytes_by_kind"] == d["dram_write_bytes_by_kind"]
        assert a["pe_busy_cycles"] == d["pe_busy_cycles"]
        assert "defo_decisions" not in a and a["ditto_bypassed_ops"] == []
        assert a["unpriced_events"] == []


@pytest.mark.slow
def test_act_only_matches_dense_on_the_bundled_trace():
    # parity rule 4: the neutral variant within 2 % of dense (5,440,654 cycles, 10,998,136 bytes)
    trace = Trace(bundled_trace("tiny-silu"))
    d = replay(trace, "dense").summary
    a = replay(trace, "ditto.act_only").summary
    assert a["total_cycles"] == pytest.approx(d["total_cycles"], rel=0.02)
    db = d["dram_read_bytes"] + d["dram_write_bytes"]
    ab = a["dram_read_bytes"] + a["dram_write_bytes"]
    assert ab == pytest.approx(db, rel=0.02)
    assert a["unpriced_events"] == []
