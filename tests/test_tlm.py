import json

import numpy as np
import pytest
import simpy
from tlm.activity import merge_intervals
from hypothesis import given, settings, strategies as st

from tlm import (
    ActivityRecorder, Channel, Clock, Command, ElaborationError, InitiatorSocket, Module,
    QuantumKeeper, TargetSocket, Transaction, elaborate,
)


def test_module_names_are_dotted_and_unbound_socket_fails_elaboration():
    top = Module("acc")
    dram = Module("dram", top)
    loader = Module("loader", top)
    target = TargetSocket(dram, "target", lambda txn, d: d)
    InitiatorSocket(Module("writer", top), "mem").bind(target)
    InitiatorSocket(loader, "mem")
    assert dram.name == "acc.dram"
    with pytest.raises(ElaborationError, match=r"acc\.loader\.mem"):
        elaborate(top)


def test_bound_sockets_elaborate_and_transport_annotates_delay():
    top = Module("acc")
    seen = []

    def transport(txn, delay):
        seen.append((txn.address, delay))
        return delay + 7

    tgt = TargetSocket(Module("mem", top), "t", transport)
    ini = InitiatorSocket(Module("cpu", top), "i")
    ini.bind(tgt)
    elaborate(top)
    out = ini.b_transport(Transaction(Command.READ, 64, 32), 5)
    assert out == 12 and seen == [(64, 5)]
    with pytest.raises(ElaborationError):
        ini.bind(tgt)


def test_clock_converts_cycles_to_integer_ps():
    assert Clock(500).cycles_to_ps(3) == 6000
    assert Clock(1200).cycles_to_ps(1) == 834  # 833.33 ps rounded up
    assert Clock(1000).ps_to_cycles(2500) == 2.5


def test_channel_blocks_producer_when_full():
    env = simpy.Environment()
    ch = Channel(env, "c", capacity=1)
    puts = []

    got = []

    def producer():
        for i in range(3):
            yield from ch.put(i)
            puts.append(env.now)

    def consumer():
        yield env.timeout(10)
        for _ in range(3):
            got.append((yield from ch.get()))
            yield env.timeout(10)

    env.process(producer())
    env.process(consumer())
    env.run()
    assert puts == [0, 10, 20]
    assert got == [0, 1, 2]


def test_channel_behaves_like_a_simpy_store_of_the_same_capacity():
    """Same put/get times and order as simpy.Store under random producer/consumer delays."""
    import random

    def run(kind, seed):
        env = simpy.Environment()
        rnd = random.Random(seed)
        delays = [(rnd.randint(0, 3), rnd.randint(0, 3)) for _ in range(40)]
        log = []
        if kind == "store":
            st = simpy.Store(env, capacity=2)
            put = lambda x: (yield st.put(x))  # noqa: E731
            get = lambda: (yield st.get())  # noqa: E731
        else:
            ch = Channel(env, "c", capacity=2)
            put, get = ch.put, ch.get

        def producer():
            for i, (dp, _) in enumerate(delays):
                yield env.timeout(dp)
                yield from put(i)
                log.append(("put", i, env.now))

        def consumer():
            for _, dc in delays:
                item = yield from get()
                log.append(("get", item, env.now))
                yield env.timeout(dc)

        env.process(producer())
        env.process(consumer())
        env.run()
        return sorted(log, key=lambda e: (e[0], e[1]))

    for seed in range(5):
        assert run("channel", seed) == run("store", seed)


def test_quantum_keeper_syncs_only_past_the_quantum():
    env = simpy.Environment()
    qk = QuantumKeeper(env, quantum_ps=100)
    syncs = []

    def proc():
        for _ in range(10):
            qk.inc(30)
            if qk.need_sync():
                syncs.append(qk.local_ps)
                yield qk.sync()
        yield qk.sync()

    env.process(proc())
    env.run()
    assert env.now == 300
    assert syncs == [120, 120]
    exact = QuantumKeeper(simpy.Environment(), 0)
    exact.inc(1)
    assert exact.need_sync()


def _brute(intervals_c, intervals_m, total):
    c = np.zeros(total, bool)
    m = np.zeros(total, bool)
    for s, e in intervals_c:
        c[s:e] = True
    for s, e in intervals_m:
        m[s:e] = True
    return c.sum(), m.sum(), (c & m).sum(), (~(c | m)).sum()


interval = st.tuples(st.integers(0, 90), st.integers(1, 30)).map(lambda t: (t[0], t[0] + t[1]))


@settings(max_examples=60, deadline=None)
@given(st.lists(interval, max_size=12), st.lists(interval, max_size=12), st.integers(1, 5))
def test_breakdown_matches_brute_force(comp, mem, cuts):
    rec = ActivityRecorder()
    pe, vec, dram = rec.register("pe", "compute"), rec.register("vec", "compute"), rec.register("dram", "memory")
    for i, (s, e) in enumerate(comp):
        rec.record(pe if i % 2 else vec, s, e, label=i % 3)
    for s, e in mem:
        rec.record(dram, s, e)
    total = 130
    bounds = sorted({0, total, *np.linspace(0, total, cuts + 2).astype(int).tolist()})
    parts = rec.breakdowns(bounds)
    whole = rec.breakdowns([0, total])[0]
    assert (whole.compute_ps, whole.memory_ps, whole.overlap_ps, whole.idle_ps) == _brute(comp, mem, total)
    assert whole.compute_ps + whole.memory_ps - whole.overlap_ps + whole.idle_ps == total
    assert sum(p.compute_ps for p in parts) == whole.compute_ps
    assert sum(p.idle_ps for p in parts) == whole.idle_ps
    assert sum(p.overlap_ps for p in parts) == whole.overlap_ps


def test_recorder_merges_back_to_back_intervals_and_exports_chrome_trace():
    rec = ActivityRecorder()
    pe = rec.register("acc.pe", "compute")
    act = rec.activity_id("mac")
    for i in range(100):
        rec.record(pe, 10 * i, 10 * i + 10, label=0, activity=act)
    rec.record(pe, 2000, 2500, label=1, activity=act)
    assert len(rec.arrays()["start"]) == 2
    assert rec.busy_ps() == {"acc.pe": 1500}
    trace = rec.chrome_trace(["op0", "op1"])
    json.dumps(trace)
    xs = [e for e in trace["traceEvents"] if e["ph"] == "X"]
    assert [e["dur"] for e in xs] == [1000 / 1e6, 500 / 1e6]
    assert xs[1]["args"]["label"] == "op1"
    names = {e["args"]["name"] for e in trace["traceEvents"] if e["name"] == "thread_name"}
    assert names == {"acc.pe"}


@settings(max_examples=80, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 500), st.integers(0, 60)), max_size=60))
def test_merge_intervals_is_the_union(pairs):
    """Against a per-picosecond mask: the merged intervals cover exactly the union, sorted,
    disjoint and not touching (empty intervals dropped)."""
    starts = np.array([a for a, _ in pairs], np.int64)
    ends = np.array([a + n for a, n in pairs], np.int64)
    ms, me = merge_intervals(starts, ends)
    covered = np.zeros(600, bool)
    for a, b in zip(starts, ends):
        covered[a:b] = True
    got = np.zeros(600, bool)
    for a, b in zip(ms, me):
        got[a:b] = True
    assert np.array_equal(got, covered)
    assert np.all(me > ms) and np.all(ms[1:] > me[:-1])


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**31 - 1))
def test_breakdowns_by_time_slices_equal_one_union(seed):
    """The class unions are merged slice by slice (`_SLICE` intervals); slices of 2 intervals
    give the same breakdowns as one slice."""
    import tlm.activity as activity

    rng = np.random.default_rng(seed)
    rec = ActivityRecorder()
    ids = [rec.register("pe", "compute"), rec.register("vec", "compute"), rec.register("dram", "memory")]
    for _ in range(60):
        s = int(rng.integers(0, 2000))
        rec.record(ids[int(rng.integers(0, 3))], s, s + int(rng.integers(1, 150)), int(rng.integers(0, 4)))
    bounds = np.sort(rng.integers(0, 2300, size=9))
    whole = rec.breakdowns(bounds)
    old = activity._SLICE
    try:
        activity._SLICE = 2
        assert rec.breakdowns(bounds) == whole
    finally:
        activity._SLICE = old
