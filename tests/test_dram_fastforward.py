"""Stream fast-forward (`DramParams.stream_sample_bytes`) against the exact model (`set_exact`).

Each pattern runs on two models of one preset: the default (long contiguous transactions are
timed exactly for a sample and extrapolated) and its exact twin. Bounds: completion of the
whole sequence within 1 %, every transaction of >= 64 KiB within 1 % (its time from arrival to
done, with arrivals shared by both models), identical byte counts, ACTs (= row misses) and row
hits within 2 %, energy within 1 %.
"""

import attrs
import numpy as np
import pytest

from models.memory import create_memory_model
from models.memory.dram_presets import PRESETS
from tlm import Command, Transaction

KIB = 1024
SIZES = [4 * KIB, 16 * KIB, 64 * KIB, 256 * KIB, 1024 * KIB, 4096 * KIB]


def pair(name, **params):
    fast = create_memory_model(name, params)
    exact = create_memory_model(name, params)
    exact.set_exact()
    return fast, exact


def back_to_back(rng, sizes, write_share=0.3):
    """Contiguous transactions one after another (a tensor streamed in pieces)."""
    addr, calls = int(rng.integers(0, 1 << 20)) * 64, []
    for nbytes in sizes:
        calls.append((bool(rng.random() < write_share), addr, int(nbytes)))
        addr += int(nbytes)
    return calls


def interleaved(rng, n_long, region):
    """Long transfers with random short ones (64 B .. 2 KiB, random addresses) between them."""
    calls = []
    for _ in range(n_long):
        calls += [(bool(rng.random() < 0.3), int(rng.integers(0, region // 64)) * 64,
                   int(rng.choice([64, 256, 2048]))) for _ in range(int(rng.integers(1, 6)))]
        calls.append((bool(rng.random() < 0.3), int(rng.integers(0, region // 4096)) * 4096 + 64,
                      int(rng.choice([300 * KIB, 1024 * KIB, 3 * 1024 * KIB]))))
    return calls


def run(m, calls, arrivals=None):
    """Service `calls`; arrival = the previous call's accept time unless `arrivals` is given."""
    out, now = [], 0
    for k, (write, addr, nbytes) in enumerate(calls):
        arr = now if arrivals is None else arrivals[k]
        r = m.service(Transaction(Command.WRITE if write else Command.READ, addr, nbytes), arr)
        out.append((arr, r))
        now = r.accept_ps
    return out


def compare(fast, exact, calls, spaced=False):
    """Run both; check the bounds. `spaced`: arrivals far apart (shared by both models), so every
    transaction is also checked on its own."""
    arrivals = None
    if spaced:
        res = run(exact, calls)
        # each call arrives after the exact model's previous completion plus an idle gap
        arrivals, t = [], 0
        for (_a, r) in res:
            arrivals.append(t)
            t += (r.done_ps - _a) * 2 + 10_000
        exact = create_memory_model_like(exact)
        exact.set_exact()
    re_ = run(exact, calls, arrivals)
    rf = run(fast, calls, arrivals)
    end_e = max(r.done_ps for _a, r in re_)
    end_f = max(r.done_ps for _a, r in rf)
    assert end_f == pytest.approx(end_e, rel=0.01)
    for (write, addr, nbytes), (a, e), (_b, f) in zip(calls, re_, rf):
        assert e.nbytes == f.nbytes == nbytes
        if spaced and nbytes >= 64 * KIB:
            assert f.done_ps - a == pytest.approx(e.done_ps - a, rel=0.01), (write, addr, nbytes)
    tot = {k: [sum(getattr(r, k) for _a, r in x) for x in (re_, rf)]
           for k in ("row_hits", "row_misses", "energy_pj")}
    assert tot["row_misses"][1] == pytest.approx(tot["row_misses"][0], rel=0.02, abs=2)
    assert tot["row_hits"][1] == pytest.approx(tot["row_hits"][0], rel=0.02)
    assert tot["energy_pj"][1] == pytest.approx(tot["energy_pj"][0], rel=0.01)
    st = fast.fast_stats()
    assert st["exact_bytes"] + st["extrapolated_bytes"] == sum(c[2] for c in calls)
    assert exact.fast_stats()["extrapolated_bytes"] == 0
    return st, (end_f - end_e) / end_e


def create_memory_model_like(m):
    return type(m)(attrs.evolve(m.params))


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_back_to_back_streams(name):
    rng = np.random.default_rng(1)
    for policy in ("open", "closed"):
        fast, exact = pair(name, page_policy=policy)
        sizes = [s for s in SIZES for _ in range(2)] + [SIZES[-1]] * 2
        st, _err = compare(fast, exact, back_to_back(rng, sizes))
        assert st["extrapolated_bytes"] > 0


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_isolated_transactions(name):
    """Arrivals far apart: every transaction >= 64 KiB within 1 % on its own (reads, writes)."""
    rng = np.random.default_rng(2)
    fast, exact = pair(name)
    sizes = rng.choice(SIZES, 16).tolist()
    compare(fast, exact, back_to_back(rng, sizes, write_share=0.5), spaced=True)


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_long_transfers_between_random_short_ones(name):
    rng = np.random.default_rng(3)
    fast, exact = pair(name)
    compare(fast, exact, interleaved(rng, 8, fast.capacity_bytes() // 4))


@pytest.mark.parametrize("name", ["lpddr4-3200", "ddr4-3200", "hbm2-2000-8ch", "hbm3-6400"])
def test_transfers_spanning_many_refresh_intervals(name):
    for write in (False, True):
        fast, exact = pair(name)
        calls = [(write, k * 16 * 1024 * KIB, 16 * 1024 * KIB) for k in range(2)]
        compare(fast, exact, calls)
        assert fast.refreshes == pytest.approx(exact.refreshes, rel=0.01)
        assert exact.refreshes > 20


def test_sample_zero_and_set_exact_are_exact():
    rng = np.random.default_rng(4)
    calls = back_to_back(rng, SIZES)
    ref = run(create_memory_model("ddr4-3200", {"stream_sample_bytes": 0}), calls)
    m = create_memory_model("ddr4-3200")
    m.set_exact()
    assert run(m, calls) == ref
    assert m.fast_stats() == {"exact_bytes": sum(SIZES), "extrapolated_bytes": 0}
