"""Scatter-gather transactions (`tlm.Transaction.segments`, `models.pipeline.gather`): the
exact twin (runs one by one) against separate transactions, and the batched DRAM timing."""

import numpy as np
import pytest
import simpy

from models.components.dram import DramFront
from models.components.sram import Sram
from models.config import BufferConfig
from models.memory import create_memory_model
from models.pipeline import gather
from tlm import ActivityRecorder, Clock, Command, Transaction


def _runs(seed: int, n: int = 40) -> tuple[np.ndarray, np.ndarray]:
    """`n` short runs at scattered, ascending addresses (as a channel-last tile slice has)."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(8, 200, n)
    gaps = rng.integers(1, 5000, n)
    return np.cumsum(gaps + np.concatenate(([0], lengths[:-1]))), lengths


def _front(exact: bool) -> tuple[simpy.Environment, DramFront]:
    env = simpy.Environment()
    model = create_memory_model("lpddr4-3200", {})
    if exact:
        model.set_exact()
    return env, DramFront("dram", None, env, model, ActivityRecorder(), n_ops=1)


def test_gather_joins_contiguous_runs():
    a = gather("dram", "act", [0, 64, 128, 1000], [64, 64, 10, 24])
    assert a.segments[0].tolist() == [0, 1000] and a.segments[1].tolist() == [138, 24]
    assert (a.address, a.nbytes, a.runs) == (0, 162, 2)
    one = gather("dram", "act", [256, 320], [64, 32])
    assert one.segments is None and (one.address, one.nbytes, one.runs) == (256, 96, 1)


@pytest.mark.parametrize("command", [Command.READ, Command.WRITE])
def test_exact_scatter_gather_equals_its_runs_as_transactions(command):
    addr, n = _runs(1)
    env_a, seg = _front(exact=True)
    env_b, sep = _front(exact=True)
    for call in range(3):  # state carries across calls alike
        txn = Transaction(command, int(addr[0]), int(n.sum()), "act", 0, 0, segments=(addr, n))
        wait_a = seg.transport(txn, 0)
        wait_b = max(sep.transport(Transaction(command, int(a), int(b), "act", 0, 0), 0)
                     for a, b in zip(addr.tolist(), n.tolist()))
        assert wait_a == wait_b and txn.done_ps == wait_a
        addr = addr + 7 * 4096
    for key in ("dram_transactions", "dram_row_hits", "dram_row_misses", "dram_energy_pj"):
        assert seg.report()[key] == sep.report()[key], key
    assert seg.report()["dram_transactions"] == 3 * len(n)
    assert dict(seg.bytes) == dict(sep.bytes)


def test_batched_scatter_gather_keeps_bytes_and_physical_bounds():
    """Batched, the runs are one FR-FCFS batch: the same bursts, bytes and energy order as one
    by one, never faster than the bus allows, and no slower than issuing them one by one."""
    addr, n = _runs(2, 200)
    waits, fronts = {}, {}
    for exact in (False, True):
        env, front = _front(exact)
        txn = Transaction(Command.READ, int(addr[0]), int(n.sum()), "act", 0, 0, segments=(addr, n))
        waits[exact], fronts[exact] = front.transport(txn, 0), front
    fast, exact = fronts[False].report(), fronts[True].report()
    assert dict(fronts[False].bytes) == dict(fronts[True].bytes)
    assert fast["dram_transactions"] == exact["dram_transactions"] == len(n)
    assert fast["dram_row_hits"] + fast["dram_row_misses"] == exact["dram_row_hits"] + exact["dram_row_misses"]
    model = fronts[False].model
    bursts = fast["dram_row_hits"] + fast["dram_row_misses"]
    bus_ps = bursts * model.burst_bytes / model.peak_bandwidth_gbps() * 1e3
    assert bus_ps <= waits[False] <= waits[True] * 1.02


def test_sram_scatter_gather_takes_its_runs_port_time():
    env = simpy.Environment()
    clock = Clock(500)
    sram = Sram("glb", None, env, BufferConfig(capacity_kib=64, bytes_per_cycle=64), clock)
    addr, n = _runs(3)
    txn = Transaction(Command.READ, int(addr[0]), int(n.sum()), "act", 0, 0, segments=(addr, n))
    assert sram.transport(txn, 0) == sum(sram.port_ps(int(b)) for b in n)


@pytest.mark.parametrize("memory, tol", [("lpddr4-3200", 0.005), ("hbm2-2000", 0.01),
                                         ("ddr4-3200", 0.025)])
@pytest.mark.parametrize("command", [Command.READ, Command.WRITE])
def test_gather_sampling_stays_close_to_timing_every_burst(memory, tol, command):
    """A-72: long scatter-gathers (runs of random length at random gaps, as a channel-last
    layout's tile slices give, 64 tiles' worth in a macro job) timed from a head and a tail with
    the middle at the measured rate, against timing every burst, over six calls (refreshes
    included): summed time within `tol` (the common configuration's LPDDR4 0.5 %; DDR4's bank
    groups make the head's rate noisier on random runs), energy within 1 %, row misses within
    2 %, and the middle really skipped."""
    rng = np.random.default_rng(7)
    models = {g: create_memory_model(memory, {"gather_sample_bursts": g}) for g in (0, 2048)}
    got = {g: [] for g in models}
    t = 0
    for call in range(6):
        lengths = rng.integers(16, 400, 3000)
        addr = np.cumsum(rng.integers(64, 3000, 3000) + np.concatenate(([0], lengths[:-1])))
        addr = addr + call * (1 << 26)
        txn = Transaction(command, int(addr[0]), int(lengths.sum()), "act", 0, 0,
                          segments=(addr, lengths))
        for g, m in models.items():
            r = m.service_segments(txn, t)
            got[g].append((r.done_ps - t, r.row_hits, r.row_misses, r.energy_pj))
        t += got[0][-1][0]
    exact, sampled = np.array(got[0], float).sum(0), np.array(got[2048], float).sum(0)
    assert sampled[0] == pytest.approx(exact[0], rel=tol)
    assert sampled[1] + sampled[2] == exact[1] + exact[2]  # every burst is a hit or a miss
    assert sampled[2] == pytest.approx(exact[2], rel=0.02)
    assert sampled[3] == pytest.approx(exact[3], rel=0.01)
    stats = models[2048].fast_stats()
    assert stats["extrapolated_bytes"] > stats["exact_bytes"]
    assert models[0].fast_stats()["extrapolated_bytes"] == 0
