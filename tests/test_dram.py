"""Validation of the bank-level DRAM model against closed forms (architecture.md §8)."""

import json
import zlib

import hypothesis
import hypothesis.strategies as st
import numpy as np
import pytest

from difftlm.commands import dram as dram_cmd
from models.errors import ConfigError
from models.memory import create_memory_model
from models.memory.dram_presets import PRESETS
from tlm import Command, Transaction

READ, WRITE = Command.READ, Command.WRITE


def mem(name, **params):
    return create_memory_model(name, params)


def row_stride(m):
    """Bytes between two addresses in the same bank, adjacent rows (default mapping: row on top)."""
    return m.capacity_bytes() // m.params.rows


def ck(m, n):
    return n * m.params.tck_ps


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_unloaded_row_conflict_read_latency(name):
    """Definition: open-page policy, idle memory, a one-burst read to a bank whose open row is a
    different row; latency = done_ps - arrival_ps = tRP + tRCD + tCL + BL/2 (± 1 clock)."""
    m = mem(name, refresh_enabled=False)
    p = m.params
    m.service(Transaction(READ, 0, m.burst_bytes), 0)  # opens row 0 of bank 0
    t0 = 1_000_001  # idle long after; not on a clock edge
    r = m.service(Transaction(READ, row_stride(m), m.burst_bytes), t0)
    assert (r.row_hits, r.row_misses) == (0, 1)
    expect = ck(m, p.trp_ck + p.trcd_ck + p.tcl_ck + p.burst_length // 2)
    assert abs((r.done_ps - t0) - expect) <= p.tck_ps
    assert abs((r.first_data_ps - t0) - ck(m, p.trp_ck + p.trcd_ck + p.tcl_ck)) <= p.tck_ps


def stream(m, total_bytes, chunk=1 << 16, write=False):
    now = 0
    hits = misses = 0
    for a in range(0, total_bytes, chunk):
        r = m.service(Transaction(WRITE if write else READ, a, chunk), now)
        now = r.accept_ps
        last = r.done_ps
        hits, misses = hits + r.row_hits, misses + r.row_misses
    return total_bytes / (last / 1000), hits / (hits + misses)


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_streaming_bandwidth_never_exceeds_peak(name):
    for write in (False, True):
        m = mem(name)
        bw, hit_rate = stream(m, 1 << 21, write=write)
        assert 0.3 * m.peak_bandwidth_gbps() < bw <= m.peak_bandwidth_gbps()
        per_row = m.params.columns // m.params.burst_length  # one miss per row at best
        assert hit_rate > min(0.95, 1 - 1.5 / per_row)


def test_refresh_costs_about_trfc_over_trefi():
    p = PRESETS["lpddr4-3200"][0]
    bw_on, _ = stream(mem("lpddr4-3200"), 1 << 22)
    bw_off, _ = stream(mem("lpddr4-3200", refresh_enabled=False), 1 << 22)
    loss = 1 - bw_on / bw_off
    expect = p["trfc_ck"] / p["trefi_ck"]  # 7.2 %
    assert expect * 0.8 < loss < expect * 1.5


def hit_rate(m, pattern, n=2000, nbytes=64):
    addr, writes = dram_cmd.make_requests(pattern, n, nbytes, m.capacity_bytes(), 0)
    return dram_cmd.measure(m, addr, writes, nbytes, 8)["row_hit_rate"]


def test_row_hit_rate_sequential_vs_row_stride():
    for name in ("ddr4-3200", "lpddr4-3200-4ch", "hbm2-2000"):
        m = mem(name, refresh_enabled=False)
        assert hit_rate(m, "seq") > 0.95
        m = mem(name, refresh_enabled=False)
        assert hit_rate(m, f"stride:{row_stride(m)}", nbytes=m.burst_bytes) == 0.0


def test_tccd_long_vs_short_in_bandwidth():
    """Same bank group back to back is tCCD_L-bound; bank-group interleaving runs at tCCD_S.
    (bank_group_gaps off: with it, the next row's bursts fill the tCCD_L slots at row ends.)"""
    same = mem("ddr4-3200", refresh_enabled=False, bank_group_gaps=False)
    inter = mem("ddr4-3200", refresh_enabled=False, bank_group_gaps=False,
                address_mapping="row:column:rank:bank:channel")
    bw_same, _ = stream(same, 1 << 20)
    bw_inter, _ = stream(inter, 1 << 20)
    p = same.params
    assert bw_same == pytest.approx(same.peak_bandwidth_gbps() * 4 / p.tccd_l_ck, rel=0.05)
    assert bw_inter / bw_same == pytest.approx(p.tccd_l_ck / p.tccd_s_ck, rel=0.1)
    # spacing of two column reads: same group -> tCCD_L, other group -> tCCD_S
    m = mem("ddr4-3200", refresh_enabled=False, address_mapping="row:column:rank:bank:channel")
    r = m.service_addresses([0, 64], False, 0)  # banks 0 and 1 = groups 0 and 1
    assert r.done_ps - r.first_data_ps == ck(m, p.tccd_s_ck + 4)
    m = mem("ddr4-3200", refresh_enabled=False, address_mapping="row:column:rank:bank:channel")
    r = m.service_addresses([0, 4 * 64], False, 0)  # banks 0 and 4: both group 0
    assert r.done_ps - r.first_data_ps == ck(m, p.tccd_l_ck + 4)


def test_open_vs_closed_page_policy():
    lat = {}
    for policy in ("open", "closed"):
        m = mem("ddr4-3200", refresh_enabled=False, page_policy=policy)
        m.service(Transaction(READ, 0, 64), 0)
        same = m.service(Transaction(READ, 64, 64), 1_000_000)
        other = m.service(Transaction(READ, row_stride(m), 64), 2_000_000)
        lat[policy] = (same.done_ps - 1_000_000, same.row_hits, other.done_ps - 2_000_000)
    p = PRESETS["ddr4-3200"][0]
    tck = p["tck_ps"]
    assert lat["open"] == (ck_ps(p, p["tcl_ck"] + 4), 1, ck_ps(p, p["trp_ck"] + p["trcd_ck"] + p["tcl_ck"] + 4))
    # closed: every new call activates, but the precharge is already done
    assert lat["closed"] == (ck_ps(p, p["trcd_ck"] + p["tcl_ck"] + 4), 0,
                             ck_ps(p, p["trcd_ck"] + p["tcl_ck"] + 4))
    assert tck > 0


def ck_ps(p, n):
    return n * p["tck_ps"]


def test_frfcfs_reordering_raises_row_hits():
    """Two rows of one bank interleaved A0 B0 A1 B1 ...: FCFS misses every time, FR-FCFS groups."""
    m0 = mem("ddr4-3200", refresh_enabled=False, read_queue_depth=1)
    m32 = mem("ddr4-3200", refresh_enabled=False, read_queue_depth=32)
    rs = row_stride(m0)
    addr = np.array([(k % 2) * rs + (k // 2) * 64 for k in range(256)])
    fcfs = m0.service_addresses(addr, False, 0)
    frfcfs = m32.service_addresses(addr, False, 0)
    assert fcfs.row_hits == 0
    assert frfcfs.row_hits >= 256 - 2 * (256 // 32)
    assert frfcfs.done_ps < fcfs.done_ps / 3


def test_state_is_carried_across_calls():
    m = mem("lpddr4-3200", refresh_enabled=False)
    a = m.service(Transaction(READ, 0, 32), 0)
    b = m.service(Transaction(READ, 32, 32), a.done_ps)
    assert (a.row_misses, b.row_hits, b.row_misses) == (1, 1, 0)
    # a write then a read of the same row pays the write-to-read turnaround
    w = m.service(Transaction(WRITE, 64, 32), b.done_ps)
    r = m.service(Transaction(READ, 96, 32), w.accept_ps)
    p = m.params
    assert r.accept_ps - w.accept_ps >= ck(m, p.tcwl_ck + 8 + p.twtr_ck) - p.tck_ps


def test_channels_scale_bandwidth_and_energy_orders():
    bw1, _ = stream(mem("lpddr4-3200", refresh_enabled=False), 1 << 20)
    bw4, _ = stream(mem("lpddr4-3200-4ch", refresh_enabled=False), 1 << 20)
    assert bw4 == pytest.approx(4 * bw1, rel=0.05)
    m = mem("ddr4-3200")
    seq = m.service(Transaction(READ, 0, 4096), 0)
    rnd = mem("ddr4-3200").service_addresses(np.arange(64) * row_stride(m), False, 0)
    assert rnd.energy_pj > seq.energy_pj > 0  # same bytes, more activations


def test_refresh_happens_and_closes_rows():
    m = mem("lpddr4-3200")
    m.service(Transaction(READ, 0, 32), 0)
    r = m.service(Transaction(READ, 32, 32), int(10 * ck(m, m.params.trefi_ck)))
    assert r.row_misses == 1 and m.refreshes >= 10


def test_cli_json_and_errors():
    import argparse

    parser = argparse.ArgumentParser()
    dram_cmd.register(parser.add_subparsers())
    args = parser.parse_args(["dram", "--memory", "lpddr4-3200-4ch", "--requests", "500",
                              "--pattern", "seq", "--json"])
    import contextlib
    import io

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        assert args.func(args) == 0
    out = json.loads(buf.getvalue())
    assert out["peak_bandwidth_gbps"] == pytest.approx(25.6)
    assert 0 < out["bandwidth_gbps"] <= 25.6 and out["row_hit_rate"] > 0.9
    assert out["p99_read_latency_ns"] >= out["p50_read_latency_ns"] > 0
    for bad in (["--memory", "nope"], ["--param", "bogus_ck=3"], ["--pattern", "zigzag"]):
        args = parser.parse_args(["dram", *bad])
        with pytest.raises(ConfigError) as exc:
            args.func(args)
        assert "nope" in str(exc.value) or "known" in str(exc.value) or "choose" in str(exc.value)


def test_bad_parameter_values_are_config_errors():
    with pytest.raises(ConfigError, match="address_mapping"):
        mem("ddr4-3200", address_mapping="row:bank")
    with pytest.raises(ConfigError, match="page_policy"):
        mem("ddr4-3200", page_policy="sometimes")


# ---------------------------------------------------------------- fast path == general path
# `service` on a contiguous range takes a scalar fast path (`DramModel._service_fast`); with
# `_fast = False` it takes the general numpy path. Both must agree exactly: responses and state.
def _state(m):
    out = [m.refreshes]
    for ch in m.channels:
        # per-bank state stays plain Python ints (numpy scalars would slow the scheduler down)
        for v in (ch.open_row, ch.act_ck, ch.pre_ready, ch.act_ready, ch.col_ready, ch.bank_col,
                  *ch.act_t, *ch.act_g, ch.q_rd, ch.q_wr, *ch.holes,
                  [ch.last_col, ch.last_grp, ch.next_ref]):
            assert all(type(x) is int for x in v if type(x) is not bool), v
        assert type(ch.last_wr) is bool
        out.append((list(ch.open_row), list(ch.act_ck), list(ch.pre_ready),
                    list(ch.act_ready), list(ch.col_ready), list(ch.bank_col), ch.last_col,
                    ch.last_grp, ch.last_wr, [list(a) for a in ch.act_t],
                    [list(a) for a in ch.act_g], list(ch.q_rd), list(ch.q_wr),
                    [list(h) for h in ch.holes], ch.next_ref, [list(w) for w in ch.wbuf], ch.wn,
                    ch.w_arr))
    return out


def _pair(name, **params):
    """(fast, general) models; fast.taken counts the calls its fast path serviced (or its
    write buffers took). The stream
    fast-forward (an approximation, tests/test_dram_fastforward.py) is off."""
    fast, slow = mem(name, **params), mem(name, **params)
    fast.set_exact()
    slow._fast = False
    fast.taken = 0
    inner = fast._service_fast

    def counted(*args):
        res = inner(*args)
        fast.taken += res is not None
        return res

    fast._service_fast = counted
    buffered = fast._service_buffered  # writes into the buffers (`write_batching`) decode fast too

    def counted_buffered(*args):
        fast.taken += 1
        return buffered(*args)

    fast._service_buffered = counted_buffered
    return fast, slow


def _run_pair(fast, slow, calls):
    for write, addr, nbytes, arrival in calls:
        txn = Transaction(WRITE if write else READ, addr, nbytes)
        r_slow = slow.service(txn, arrival)
        r_fast = fast.service(txn, arrival)
        assert r_fast == r_slow, (write, addr, nbytes, arrival)
        assert _state(fast) == _state(slow), (write, addr, nbytes, arrival)


def _random_calls(rng, m, n, max_bytes=1 << 18, region=None):
    """Contiguous calls: sizes 1 B..max_bytes, unaligned, streams and jumps, reads and writes,
    back-to-back and idle gaps (some longer than several tREFI)."""
    trefi_ps = m.params.trefi_ck * m.params.tck_ps
    region = region or 64 * row_stride(m)
    calls, now = [], int(rng.integers(0, 1000))
    for _ in range(n):
        if rng.random() < 0.3:
            nbytes = int(rng.choice([1, m.burst_bytes, 100, 2000, 4096]))
        else:
            nbytes = int(np.exp(rng.uniform(0, np.log(max_bytes))))
        if calls and rng.random() < 0.5:
            addr = calls[-1][1] + calls[-1][2]  # continue the stream
        else:
            addr = int(rng.integers(0, region))
        gap = rng.choice([0, 0, int(rng.integers(0, 2000)), int(rng.integers(0, 200_000)),
                          int(rng.uniform(0.5, 3) * trefi_ps), int(rng.uniform(5, 30) * trefi_ps)])
        now += int(gap)
        calls.append((bool(rng.random() < 0.4), addr, nbytes, now))
    return calls


@pytest.mark.parametrize("name", sorted(PRESETS))
@pytest.mark.parametrize("policy", ["open", "closed"])
def test_fast_path_equals_general_path(name, policy):
    rng = np.random.default_rng([zlib.crc32(name.encode()), policy == "open"])
    for refresh, batching in ((True, False), (False, False), (True, True)):
        fast, slow = _pair(name, page_policy=policy, refresh_enabled=refresh, write_batching=batching)
        assert fast._fast
        _run_pair(fast, slow, _random_calls(rng, fast, 50))
        assert fast.taken == 50  # the default mapping never needs FR-FCFS reordering here


# mappings (bank-group and column-below-channel orders, ranks), tiny queues (queue admission),
# short tREFI (refresh inside runs), few banks with a deep queue (FR-FCFS reorders: fallback)
VARIANTS = [
    ("ddr4-3200", dict(address_mapping="row:bank:rank:bankgroup:column:channel")),
    ("ddr4-3200-2ch", dict(address_mapping="row:bank:rank:channel:column", ranks=2)),
    ("lpddr4-3200-4ch", dict(address_mapping="row:rank:bank:channel:column", ranks=2)),
    ("lpddr4-3200-4ch", dict(read_queue_depth=3, write_queue_depth=5)),
    ("hbm2-2000-8ch", dict(trefi_ck=150, trfc_ck=40)),
    ("lpddr4-3200", dict(trefi_ck=97, trfc_ck=10, tfaw_ck=5, read_queue_depth=1)),
    ("ddr4-3200", dict(bank_groups=1, banks_per_group=2, columns=128, read_queue_depth=64,
                       write_queue_depth=40)),
    ("ddr4-3200-2ch", dict(bank_groups=2, banks_per_group=1, columns=64, read_queue_depth=20,
                           trefi_ck=200, trfc_ck=30)),
    ("ddr4-3200", dict(bank_group_gaps=True)),
    ("ddr4-3200-2ch", dict(bank_group_gaps=True, trefi_ck=300, trfc_ck=40, read_queue_depth=4)),
    ("hbm3-6400", dict(bank_group_gaps=True)),
    ("ddr4-3200", dict(stall_slot_align=True)),
    ("ddr4-3200", dict(twtr_s_ck=None)),  # one tWTR for every pair
    ("lpddr5-6400", dict(stall_slot_align=True, trefi_ck=900, trfc_ck=60)),
]


def test_bank_group_gaps_interleave_bank_groups():
    """Reads 256 B apart: 32 per DDR4 row, consecutive rows in other bank groups. In arrival
    order the column bus runs at tCCD_L (half the peak); with `bank_group_gaps` a younger
    request of the next bank group takes the slots between, as DRAMsim3's per-bank queues do."""
    out = {}
    for flag in (False, True):
        m = mem("ddr4-3200", bank_group_gaps=flag, refresh_enabled=False)
        addr, wr = dram_cmd.make_requests("stride:256", 4000, 64, m.capacity_bytes(), 0)
        out[flag] = dram_cmd.measure(m, addr, wr, 64, 32)["bandwidth_gbps"]
    peak = m.peak_bandwidth_gbps()
    assert out[False] <= 0.51 * peak
    assert out[True] >= 0.7 * peak


def test_write_to_read_turnaround_short_across_bank_groups():
    """DDR4: a read after a write waits CWL + BL/2 + tWTR_L in the same bank group, tWTR_S
    (4 clocks) in another; `twtr_s_ck=None` keeps tWTR_L for both."""
    def read_done(other_group: bool, **kw) -> int:
        m = mem("ddr4-3200", refresh_enabled=False, **kw)
        b = 8192 if other_group else 4 * 8192  # bank 1 (group 1) or bank 4 (group 0)
        m.service(Transaction(READ, 0, 64), 0)  # open both rows
        m.service(Transaction(READ, b, 64), 0)
        m.service(Transaction(WRITE, 0, 64), 1_000_000)
        return m.service(Transaction(READ, b, 64), 1_000_000).done_ps
    p = mem("ddr4-3200").params
    assert p.twtr_s_ck == 4 and p.twtr_ck == 12
    assert read_done(False) - read_done(True) == ck(mem("ddr4-3200"), p.twtr_ck - p.twtr_s_ck)
    assert read_done(False, twtr_s_ck=None) == read_done(True, twtr_s_ck=None)


def test_stall_slot_align_keeps_lpddr4_random_reads_on_the_bus():
    """LPDDR4-x32 (DRAMsim3 timing set): tRRD = tCCD = tFAW/4, so random reads are bus-bound;
    bursts held by tRC (47 clocks) leave part-slot gaps when booked at each bank's earliest time.
    On the slot grid (A-69) the bus stays busy; unloaded reads are not delayed."""
    bw = {}
    for align in (False, True):
        m = mem("lpddr4-2400-x32", stall_slot_align=align, refresh_enabled=False)
        addr, wr = dram_cmd.make_requests("random", 6000, 64, m.capacity_bytes(), 0)
        bw[align] = dram_cmd.measure(m, addr, wr, 64, 32)["bandwidth_gbps"] / m.peak_bandwidth_gbps()
        one = dram_cmd.measure(mem("lpddr4-2400-x32", stall_slot_align=align,
                                   refresh_enabled=False), addr[:300], wr[:300], 64, 1)
        bw[align, 1] = one["avg_read_latency_ns"]
    assert bw[False] < 0.9 and bw[True] > 0.95, bw  # 6k reads: the ramp costs ~1 %
    assert bw[True, 1] <= bw[False, 1] + 8 * m.params.tck_ps / 1000, bw  # at most one slot


@pytest.mark.parametrize("name,params", VARIANTS)
def test_fast_path_equals_general_path_variants(name, params):
    rng = np.random.default_rng(zlib.crc32(repr((name, params)).encode()))
    for policy in ("open", "closed"):
        fast, slow = _pair(name, page_policy=policy, **params)
        assert fast._fast
        region = int(rng.choice([4, 64])) * row_stride(fast)
        _run_pair(fast, slow, _random_calls(rng, fast, 40, region=region))
        assert fast.taken > 0


def test_fast_path_declines_reordering_and_other_mappings():
    fast, slow = _pair("ddr4-3200", bank_groups=1, banks_per_group=2, columns=128,
                       read_queue_depth=64)
    _run_pair(fast, slow, [(False, 0, 64 * 64, 0)])  # bank 0 rows 0 and 1 in one window
    assert fast.taken == 0
    m = mem("ddr4-3200", address_mapping="row:column:rank:bank:channel")
    assert not m._fast  # bank below column: general path only


@hypothesis.settings(max_examples=40, deadline=None)
@hypothesis.given(
    name=st.sampled_from(sorted(PRESETS)),
    policy=st.sampled_from(["open", "closed"]),
    refresh=st.booleans(),
    calls=st.lists(st.tuples(st.booleans(), st.integers(0, 1 << 23), st.integers(1, 1 << 18),
                             st.sampled_from([0, 1, 700, 50_000, 3_000_000, 40_000_000])),
                   min_size=1, max_size=12),
)
def test_fast_path_equals_general_path_hypothesis(name, policy, refresh, calls):
    fast, slow = _pair(name, page_policy=policy, refresh_enabled=refresh)
    now, timed = 0, []
    for write, addr, nbytes, gap in calls:
        now += gap
        timed.append((write, addr, nbytes, now))
    _run_pair(fast, slow, timed)


def test_decode_is_one_to_one_when_row_is_not_the_top_field():
    m = create_memory_model("lpddr4-3200-4ch", {"address_mapping": "bank:row:rank:column:channel"})
    per_row = m.params.channels * m.params.columns // m.params.burst_length  # bursts below `row`
    rng = np.random.default_rng(0)
    top = per_row * m.params.rows * m.nbanks
    bursts = np.unique(np.concatenate([[0, per_row * m.params.rows], rng.integers(0, top, 50_000)]))
    f = m._decode(bursts)
    keys = set(zip(*(f[k].tolist() for k in ("bank", "row", "rank", "column", "channel"))))
    assert len(keys) == len(bursts)
    j = int(np.searchsorted(bursts, per_row * m.params.rows))  # the first burst of bank 1
    assert f["bank"][j] == 1 and f["row"][j] == 0


# ---------------------------------------------------------------- physical bounds
def _bounds(m):
    """(sequential bound, random bound) in GB/s: bus peak x (1 - tRFC/tREFI), the sequential
    stream at BL/2 per column gap of the mapping (tCCD_L when consecutive bursts share a bank
    group), random 64 B reads at min(bus, tRRD_S, tFAW/4) per ACT."""
    p = m.params
    ref = 1 - (p.trfc_ck / p.trefi_ck if p.refresh_enabled else 0)
    peak = m.peak_bandwidth_gbps() * ref
    tck_ns = p.tck_ps / 1000
    seq_gap = m._tccd_l if p.bank_groups > 1 and m._fields[0][0] != "bankgroup" else m._tccd_s
    seq = peak * m.burst_ck / seq_gap
    per_act = max(p.trrd_s_ck, p.tfaw_ck / 4) * tck_ns  # ns per ACT, per channel
    # bytes one ACT serves: a 64 B request, split over channels when `channel` is lowest
    req = m.burst_bytes if p.channels > 1 and m._fields[0][0] == "channel" else max(64, m.burst_bytes)
    rnd = min(peak, req * p.channels / per_act * ref)
    return seq, rnd


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_physical_bounds_sequential_and_random(name):
    m = mem(name)
    seq_b, rnd_b = _bounds(m)
    nreq = 3000
    addr, writes = dram_cmd.make_requests("seq", nreq, 64, m.capacity_bytes(), 0)
    seq = dram_cmd.measure(m, addr, writes, 64, 64)["bandwidth_gbps"]
    ref = 1 - m.params.trfc_ck / m.params.trefi_ck  # a short run sees fewer refreshes
    # filling the slots a same-bank-group spacing leaves (bank_group_gaps) may beat the tCCD_L
    # figure, never the bus
    upper = m.peak_bandwidth_gbps() if m.params.bank_group_gaps else seq_b / ref
    assert 0.8 * seq_b <= seq <= upper * 1.01
    m = mem(name)
    addr, writes = dram_cmd.make_requests("random", nreq, 64, m.capacity_bytes(), 0)
    rnd = dram_cmd.measure(m, addr, writes, 64, 64)["bandwidth_gbps"]
    assert rnd <= rnd_b / ref * 1.01, (rnd, rnd_b)
    if m.params.channels < 8:  # 16 channels with 64 host requests in flight: host-bound (Little)
        assert 0.6 * rnd_b <= rnd, (rnd, rnd_b)


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_unloaded_random_latency_open_page(name):
    """One outstanding random read: tRP + tRCD + CL + BL/2 (+ ctrl_delay_ck) for a conflict."""
    for delay in (0, 3):
        m = mem(name, refresh_enabled=False, ctrl_delay_ck=delay)
        p = m.params
        m.service(Transaction(READ, 0, m.burst_bytes), 0)
        r = m.service(Transaction(READ, row_stride(m), m.burst_bytes), 10_000_000)
        expect = ck(m, delay + p.trp_ck + p.trcd_ck + p.tcl_ck + m.burst_ck)
        assert abs(r.done_ps - 10_000_000 - expect) <= p.tck_ps


def test_random_reads_overtake_a_stalled_bank():
    """A read to a busy bank does not hold up reads to idle banks issued after it."""
    m = mem("ddr4-3200", refresh_enabled=False)
    rs = row_stride(m)
    m.service(Transaction(READ, 0, 64), 0)
    slow = m.service(Transaction(READ, rs, 64), 0)  # bank 0, other row: PRE + ACT
    fast = m.service(Transaction(READ, 8192, 64), 0)  # bank 1, idle
    assert fast.done_ps < slow.done_ps


def test_compact_mapping_names():
    assert mem("ddr4-3200", address_mapping="RoBaRaCoCh").params.address_mapping == \
        "row:bank:rank:column:channel"
    assert mem("ddr4-3200", address_mapping="rochrababgco").params.address_mapping == \
        "row:channel:rank:bank:bankgroup:column"


def test_bank_group_slots_inside_runs_lpddr5():
    """64 B LPDDR5 requests are two 32 B bursts on one bank: with bank_group_gaps the slot
    between them takes a burst of the next row (another bank group), so a sequential stream
    runs above the one-group tCCD_L rate; without it, it does not."""
    bw = {}
    for gaps in (True, False):
        m = mem("lpddr5-6400", refresh_enabled=False, bank_group_gaps=gaps)
        addr, writes = dram_cmd.make_requests("seq", 4000, 64, m.capacity_bytes(), 0)
        bw[gaps] = dram_cmd.measure(m, addr, writes, 64, 32)["bandwidth_gbps"]
    p = m.params
    tccd_l_rate = m.peak_bandwidth_gbps() * m.burst_ck / p.tccd_l_ck
    assert bw[False] <= tccd_l_rate * 1.02
    assert bw[True] > tccd_l_rate * 1.3


# ---------------------------------------------------------------- write batching
def _closed_loop(m, addr, writes, outstanding=32, nbytes=64):
    """Host with `outstanding` requests in flight, then `flush`; (GB/s up to the last data end,
    responses, flush response)."""
    import heapq
    pending, now, last, out = [], 0, 0, []
    for a, w in zip(addr.tolist(), writes.tolist()):
        if len(pending) >= outstanding:
            now = max(now, heapq.heappop(pending))
        r = m.service(Transaction(WRITE if w else READ, a, nbytes), now)
        heapq.heappush(pending, r.done_ps)
        out.append(r)
        last = max(last, r.done_ps)
    f = m.flush(now)
    return len(addr) * nbytes / (max(last, f.done_ps) / 1000), out, f


@pytest.mark.parametrize("name", ["ddr4-3200", "lpddr4-3200-4ch", "lpddr5-6400", "hbm2-2000-8ch"])
@pytest.mark.parametrize("pattern", ["seq", "random"])
def test_write_batching_physical_bounds(name, pattern):
    """2:1 mixes: batching turns the bus around once per batch, so it beats in-order service;
    never above peak x (1 - tRFC/tREFI) (with the final flush's data); every burst's row hit or
    miss and every write's bytes are reported exactly once."""
    n = 3000
    m = mem(name, write_batching=True)
    addr, _ = dram_cmd.make_requests(pattern, n, 64, m.capacity_bytes(), 0)
    writes = np.arange(n) % 3 == 2
    bw, out, f = _closed_loop(m, addr, writes)
    bw_off, _, _ = _closed_loop(mem(name, write_batching=False), addr, writes)
    p = m.params
    assert bw <= m.peak_bandwidth_gbps() * (1 - p.trfc_ck / p.trefi_ck) * 1.01
    # (DDR4 random: 1.04x; most of its turnarounds cross bank groups, where tWTR_S is short)
    assert bw > 1.02 * bw_off, (bw, bw_off)
    rows = sum(r.row_hits + r.row_misses for r in out) + f.row_hits + f.row_misses
    assert rows == n * max(1, 64 // m.burst_bytes)  # aligned 64 B requests
    assert m._wpend == 0 and all(st.wn == 0 and not st.wbuf for st in m.channels)
    assert sum(r.nbytes for r in out) == n * 64 and f.nbytes == 0
    # a buffered write completes when accepted: at its arrival (clock edge, no controller delay)
    acc = [r for r, w in zip(out, writes) if w and r.done_ps - r.accept_ps <= p.tck_ps]
    assert len(acc) > n // 6


@pytest.mark.parametrize("name", ["ddr4-3200", "lpddr4-3200-4ch", "lpddr5-6400"])
def test_write_batching_leaves_read_and_write_only_streams_alone(name):
    """Read-only and write-only streams: no write waits for a read, so batching changes no
    response; a write-only stream stays near its column-spacing bound."""
    for write in (False, True):
        on, off = mem(name, write_batching=True), mem(name, write_batching=False)
        addr, _ = dram_cmd.make_requests("seq", 2000, 64, on.capacity_bytes(), 0)
        writes = np.full(2000, write)
        bw, r_on, _ = _closed_loop(on, addr, writes)
        _, r_off, _ = _closed_loop(off, addr, writes)
        assert r_on == r_off
    seq_b, _ = _bounds(on)
    assert 0.9 * seq_b <= bw <= on.peak_bandwidth_gbps() * 1.01


def test_write_batching_watermarks():
    """Reads queued: writes wait in the buffer until the high watermark, then a drain leaves the
    newest low-watermark bursts; a write call longer than the buffers is timed in its call."""
    m = mem("ddr4-3200", refresh_enabled=False, write_batching=True)
    hi, lo = m._w_hi, m._w_lo
    assert (hi, lo) == (26, 6)  # 0.8 and 0.2 of 32
    m.service(Transaction(READ, 0, 64 * 200), 0)  # a long read keeps the read queue busy
    rs = row_stride(m)
    for k in range(hi - 1):
        r = m.service(Transaction(WRITE, 3 * rs + 64 * k, 64), 1000 + k)
        assert r.done_ps <= r.accept_ps + m.params.tck_ps and r.row_hits + r.row_misses == 0
    assert m._wpend == hi - 1
    r = m.service(Transaction(WRITE, 3 * rs + 64 * hi, 64), 2000)
    assert m._wpend == lo and r.row_hits + r.row_misses == hi - lo
    big = m.service(Transaction(WRITE, 5 * rs, 64 * 33), 3000)
    assert m._wpend == 0 and big.row_hits + big.row_misses == lo + 33
    assert big.done_ps > r.done_ps


def test_write_watermarks_must_be_ordered():
    with pytest.raises(ConfigError):
        mem("ddr4-3200", write_high_watermark_frac=0.2, write_low_watermark_frac=0.5)
