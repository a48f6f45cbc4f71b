"""Bank-level DRAM timing model (DDR4 / LPDDR4 / HBM2 presets live in `dram_presets`).

Structure: channels x ranks x bank groups x banks x rows x columns. A transaction is split into
bursts (one burst = `bus_width_bits/8 * burst_length` bytes on one channel), the bursts are
decoded by the address mapping, spread over the channels, reordered per channel by an
FR-FCFS-style rule, then timed against JEDEC constraints. There are no SimPy events: one
`service` call computes all times of its bursts (numpy over bursts; a scalar step only at row
misses and refreshes) and carries bank, bus and refresh state to the next call.

Timing rules (all in memory clocks, commands on clock edges; per channel):
- column commands issue in schedule order, spaced by tCCD_L (same rank and bank group) or
  tCCD_S (otherwise), tRTW (read -> write) or CWL + BL/2 + tWTR (write -> read);
- a row miss precharges the open row (after tRAS since its ACT, tRTP after the last read,
  CWL + BL/2 + tWR after the last write), waits tRP, then activates subject to tRC, tRRD_S/L
  and tFAW (four ACTs per rank); the column command follows tRCD later. ACT/PRE may overlap
  earlier bursts' data (bank parallelism), but a burst cannot activate before it enters the
  controller queue (the burst `queue_depth` places ahead has issued its column command);
- data occupies [col + CL (CWL), + BL/2) on the channel's data bus;
- all-bank refresh every tREFI: banks are precharged, the channel is blocked tRFC, rows close.
Simplifications (documented, deliberate): no command-bus contention, no rank-to-rank switch
delay, no power-down, no write batching across calls; calls are serviced in arrival order.

Page policies: `open` keeps rows open across calls; `closed` precharges a bank as soon as no
queued burst of the same transaction hits its open row (close-adaptive), so a later call
finds it closed (ACT without PRE on its critical path).

FR-FCFS: per channel, bursts are cut into fixed windows of `read_queue_depth` /
`write_queue_depth` bursts; inside a window, the bursts of each bank are regrouped by row (the
row open at call start first, then rows by first appearance) and put back into that bank's
slots, so inter-bank interleaving is kept and row hits go first.

Energy (dynamic only; background/standby power is not charged): `act_energy_pj` per ACT+PRE
pair, `rd_energy_pj_per_bit` / `wr_energy_pj_per_bit` per transferred bit, `ref_energy_pj`
per all-bank refresh of a channel. Preset values and sources are in `dram_presets`.
"""

from __future__ import annotations

import bisect
import math

import attrs
import numpy as np

from tlm import Transaction

from ..checks import bounds
from ..errors import ConfigError
from .base import MemoryModel, MemoryResponse

_FIELDS = ("row", "bank", "bankgroup", "rank", "column", "channel")
_NEG = -(1 << 50)  # "long ago" in clocks
_NEVER = 1 << 62  # next refresh when refresh is off (fast path)


def _check_mapping(_inst, _attr, value: str) -> None:
    names = value.split(":")
    required = {"row", "bank", "rank", "column", "channel"}
    bad = [n for n in names if n not in _FIELDS]
    if bad or len(set(names)) != len(names) or not required <= set(names):
        raise ConfigError(
            f"address_mapping {value!r}: use each of row, bank, rank, column, channel once "
            f"(optionally bankgroup), most significant first, e.g. 'row:bank:rank:column:channel'"
        )


def _one_of(*choices):
    def check(_inst, attr, value):
        if value not in choices:
            raise ConfigError(f"{attr.name} {value!r}: choose one of {', '.join(choices)}")
    return check


_pos = attrs.validators.gt(0)
_nonneg = attrs.validators.ge(0)


_GEOM = bounds(le=1 << 24)
_CK = bounds(le=1 << 24)


def _ck(default: int):
    return attrs.field(default=default, converter=int, validator=_nonneg, metadata=_CK)


@attrs.frozen
class DramParams:
    """Geometry, JEDEC timings (memory clocks), controller policy and energy of one DRAM."""

    # geometry (per channel)
    channels: int = attrs.field(default=1, validator=_pos, metadata=_GEOM)
    ranks: int = attrs.field(default=1, validator=_pos, metadata=_GEOM)
    bank_groups: int = attrs.field(default=1, validator=_pos, metadata=_GEOM)
    banks_per_group: int = attrs.field(default=8, validator=_pos, metadata=_GEOM)
    rows: int = attrs.field(default=65536, validator=_pos, metadata=_GEOM)
    columns: int = attrs.field(default=1024, validator=_pos, metadata=_GEOM)
    """Column addresses per row; one column is `bus_width_bits` wide (row bytes = columns*width/8)."""
    bus_width_bits: int = attrs.field(default=64, validator=_pos, metadata=_GEOM)
    """Data-bus width of one channel (all devices of a rank together)."""
    burst_length: int = attrs.field(default=8, validator=_pos, metadata=_GEOM)
    # timing
    tck_ps: float = attrs.field(default=625.0, converter=float, validator=_pos,
                                metadata=bounds(ge=1, le=1e7))
    """Clock period; data moves on both edges (peak = 2 * width / tCK)."""
    trcd_ck: int = _ck(22)
    trp_ck: int = _ck(22)
    tcl_ck: int = _ck(22)
    tcwl_ck: int = _ck(16)
    tras_ck: int = _ck(52)
    trc_ck: int = _ck(74)
    tccd_s_ck: int = _ck(4)
    tccd_l_ck: int = _ck(8)
    trrd_s_ck: int = _ck(4)
    trrd_l_ck: int = _ck(8)
    tfaw_ck: int = _ck(34)
    twr_ck: int = _ck(24)
    twtr_ck: int = _ck(12)
    """Write data end -> read command (tWTR_L where S/L differ)."""
    trtw_ck: int = _ck(12)
    """Read command -> write command."""
    trtp_ck: int = _ck(12)
    trefi_ck: int = attrs.field(default=12480, converter=int, validator=_pos, metadata=_CK)
    trfc_ck: int = _ck(560)
    refresh_enabled: bool = attrs.field(default=True, converter=bool)
    # controller
    address_mapping: str = attrs.field(default="row:bank:rank:column:channel",
                                       validator=_check_mapping)
    """Address fields, most significant first; the burst offset is below the last one."""
    page_policy: str = attrs.field(default="open", validator=_one_of("open", "closed"))
    read_queue_depth: int = attrs.field(default=32, validator=_pos, metadata=_GEOM)
    write_queue_depth: int = attrs.field(default=32, validator=_pos, metadata=_GEOM)
    # energy
    act_energy_pj: float = attrs.field(default=0.0, converter=float, validator=_nonneg,
                                     metadata=bounds(le=1e9))
    rd_energy_pj_per_bit: float = attrs.field(default=0.0, converter=float, validator=_nonneg,
                                            metadata=bounds(le=1e9))
    wr_energy_pj_per_bit: float = attrs.field(default=0.0, converter=float, validator=_nonneg,
                                            metadata=bounds(le=1e9))
    ref_energy_pj: float = attrs.field(default=0.0, converter=float, validator=_nonneg,
                                     metadata=bounds(le=1e9))


class _Channel:
    """Mutable state of one channel: banks, column bus, ACT history, refresh.

    Per-bank state is kept in plain Python lists of ints (the scalar fast path indexes them
    millions of times; numpy scalar access is slow); the general path converts with
    `np.asarray` where it needs vector operations and writes results back in place.
    """

    __slots__ = ("open_row", "act_ck", "pre_ready", "act_ready", "col_ready", "last_col",
                 "last_grp", "last_wr", "last_act", "last_act_grp", "faw", "next_ref")

    def __init__(self, nbanks: int, ranks: int, trefi_ck: int):
        self.open_row = [-1] * nbanks
        self.act_ck = [_NEG] * nbanks      # last ACT (tRAS)
        self.pre_ready = [_NEG] * nbanks   # column-side earliest PRE
        self.act_ready = [_NEG] * nbanks   # tRC / tRP / refresh
        self.col_ready = [_NEG] * nbanks   # ACT + tRCD
        self.last_col = _NEG
        self.last_grp = -1
        self.last_wr = False
        self.last_act = [_NEG] * ranks
        self.last_act_grp = [-1] * ranks
        self.faw = [[] for _ in range(ranks)]
        self.next_ref = trefi_ck


class DramModel(MemoryModel):
    """Bank-level DRAM: JEDEC timings, address mapping, open/closed page, FR-FCFS, refresh."""

    Params = DramParams

    def __init__(self, params: DramParams):
        super().__init__(params)
        p = params
        if p.columns % p.burst_length:
            raise ConfigError(f"columns ({p.columns}) must be a multiple of burst_length "
                              f"({p.burst_length})")
        self.burst_bytes = p.bus_width_bits * p.burst_length // 8
        self.burst_ck = p.burst_length // 2
        self.banks_per_rank = p.bank_groups * p.banks_per_group
        self.nbanks = p.ranks * self.banks_per_rank
        names = p.address_mapping.split(":")
        self._split_bg = "bankgroup" in names
        sizes = {"row": p.rows, "rank": p.ranks, "column": p.columns // p.burst_length,
                 "channel": p.channels, "bankgroup": p.bank_groups,
                 "bank": p.banks_per_group if self._split_bg else self.banks_per_rank}
        self._fields = [(n, sizes[n]) for n in reversed(names)]  # least significant first
        self._tccd_s = max(p.tccd_s_ck, self.burst_ck)
        self._tccd_l = max(p.tccd_l_ck, self._tccd_s)
        self._wtr_gap = p.tcwl_ck + self.burst_ck + p.twtr_ck
        self._rtw_gap = max(p.trtw_ck, self._tccd_s)
        self._rec_rd = p.trtp_ck
        self._rec_wr = p.tcwl_ck + self.burst_ck + p.twr_ck
        self.channels = [_Channel(self.nbanks, p.ranks, p.trefi_ck) for _ in range(p.channels)]
        self.refreshes = 0
        self._init_fast_path()

    # ------------------------------------------------------------------ public API
    def peak_bandwidth_gbps(self) -> float:
        p = self.params
        return p.channels * p.bus_width_bits / 8 * 2 / (p.tck_ps / 1000)

    def capacity_bytes(self) -> int:
        p = self.params
        return p.channels * self.nbanks * p.rows * (p.columns // p.burst_length) * self.burst_bytes

    def service(self, txn: Transaction, arrival_ps: int) -> MemoryResponse:
        nbytes = txn.nbytes
        if nbytes <= 0:
            return MemoryResponse(arrival_ps, arrival_ps, arrival_ps, 0)
        addr = txn.address
        bb = self.burst_bytes
        first = addr // bb
        last = (addr + nbytes - 1) // bb
        if self._fast:
            res = self._service_fast(first, last, bool(txn.is_write), arrival_ps, nbytes)
            if res is not None:
                return res
        bursts = np.arange(first, last + 1, dtype=np.int64)
        return self._service_bursts(bursts, txn.is_write, arrival_ps, txn.nbytes)

    def service_addresses(self, addresses, is_write, arrival_ps: int) -> MemoryResponse:
        """Time a gather/scatter of one burst per byte address (arrays, all arriving together).

        `is_write` is a bool or a bool array (mixed reads and writes). Used by benchmarks and
        the `difftlm dram` command for non-contiguous patterns; `service` is the usual path.
        """
        addr = np.asarray(addresses, dtype=np.int64)
        wr = np.asarray(is_write, dtype=bool)
        return self._service_bursts(addr // self.burst_bytes, wr if wr.ndim else bool(wr),
                                    arrival_ps, len(addr) * self.burst_bytes)

    # ------------------------------------------------------------------ decoding
    def _decode(self, bursts: np.ndarray) -> dict[str, np.ndarray]:
        out = {}
        k = bursts
        last = len(self._fields) - 1
        for i, (name, size) in enumerate(self._fields):
            if i == last:  # the most significant field wraps at the device capacity
                out[name] = k % size
            else:
                k, out[name] = np.divmod(k, size)
        return out

    def _service_bursts(self, bursts, wr, arrival_ps: int, nbytes: int) -> MemoryResponse:
        p = self.params
        f = self._decode(bursts)
        bank = f["bank"]
        if self._split_bg:
            bank = f["bankgroup"] + p.bank_groups * bank
        grp = bank % p.bank_groups if p.bank_groups > 1 else np.zeros_like(bank)
        if p.ranks > 1:
            grp = grp + f["rank"] * p.bank_groups
            bank = bank + f["rank"] * self.banks_per_rank
        row = f["row"]
        arr = math.ceil(arrival_ps / p.tck_ps - 1e-9)
        per_wr = not isinstance(wr, bool)
        totals = [0, 0, 0, 0]  # hits, misses, acts, refreshes
        firsts, dones, starts = [], [], []
        if p.channels == 1:
            parts = [(0, slice(None))]
        else:
            ch = f["channel"]
            order = np.argsort(ch, kind="stable")
            counts = np.bincount(ch, minlength=p.channels)
            ends = np.cumsum(counts)
            parts = [(c, order[ends[c] - counts[c]:ends[c]]) for c in range(p.channels)
                     if counts[c]]
        for c, sel in parts:
            w = wr[sel] if per_wr else wr
            res = self._run_channel(self.channels[c], bank[sel], row[sel], grp[sel], w, arr)
            starts.append(res[0]); firsts.append(res[1]); dones.append(res[2])
            for t in range(4):
                totals[t] += res[3 + t]
        n_wr = int(np.count_nonzero(wr)) if per_wr else (len(bursts) if wr else 0)
        bits = self.burst_bytes * 8
        energy = (totals[2] * p.act_energy_pj + totals[3] * p.ref_energy_pj
                  + bits * (n_wr * p.wr_energy_pj_per_bit
                            + (len(bursts) - n_wr) * p.rd_energy_pj_per_bit))
        to_ps = p.tck_ps
        return MemoryResponse(
            accept_ps=max(int(arrival_ps), math.ceil(min(starts) * to_ps - 1e-6)),
            first_data_ps=math.ceil(min(firsts) * to_ps - 1e-6),
            done_ps=math.ceil(max(dones) * to_ps - 1e-6),
            nbytes=nbytes, row_hits=totals[0], row_misses=totals[1], energy_pj=energy,
        )

    # ------------------------------------------------------------------ fast path
    # A contiguous single-direction `service` call under a mapping whose least significant
    # fields are `column` and `channel` splits, per channel, into a few "row runs" (consecutive
    # bursts on one bank and row, spaced tCCD_L). `_service_fast` walks those runs in scalar
    # Python and reproduces `_service_bursts` / `_run_channel` exactly (same times, counts,
    # energy and channel state); it declines (returns None) when FR-FCFS would reorder.
    def _init_fast_path(self) -> None:
        sizes = dict(self._fields)
        low = ("column", "channel")
        live = [n for n, s in self._fields if s > 1]  # size-1 fields decode to 0 and divide by 1
        k = 0
        while k < len(live) and live[k] in low:
            k += 1
        # use the fast path where it applies (tests set _fast = False to compare with the general one)
        self._fast = not any(n in low for n in live[k:])
        self._fast_col_low = bool(live) and live[0] == "column" and sizes["channel"] > 1
        self._ncol = sizes["column"]
        self._block = sizes["column"] * self.params.channels  # bursts per (bank, row) block
        self._upper = [(n, s) for n, s in self._fields if n not in low]
        p = self.params
        self._blocks = {}  # decode cache: block -> (bank, row, group)
        self._fast_consts = (p.refresh_enabled, self._tccd_l, self._tccd_s, p.tras_ck, p.trp_ck,
                             p.trc_ck, p.trcd_ck, p.trrd_l_ck, p.trrd_s_ck, p.tfaw_ck,
                             self.banks_per_rank, p.page_policy == "closed", p.tcl_ck,
                             p.tcwl_ck, self.burst_ck, self._rtw_gap, self._wtr_gap,
                             self._rec_rd, self._rec_wr)
        self._fast_call = (self._block, p.channels, self._fast_col_low, self._ncol,
                           p.read_queue_depth, p.write_queue_depth, p.tck_ps,
                           self.burst_bytes * 8, p.act_energy_pj, p.ref_energy_pj,
                           p.wr_energy_pj_per_bit, p.rd_energy_pj_per_bit)

    def _decode_block(self, u: int):
        """(bank, row, group) of block u (burst index // `_block`), as `_decode` would give."""
        run = self._blocks.get(u)
        if run is not None:
            return run
        p = self.params
        f = {}
        v = u
        last = len(self._upper) - 1
        for i, (name, size) in enumerate(self._upper):
            if i == last:  # the most significant field wraps at the device capacity
                f[name] = v % size
            else:
                v, f[name] = divmod(v, size)
        bank = f["bank"]
        if self._split_bg:
            bank = f["bankgroup"] + p.bank_groups * bank
        grp = bank % p.bank_groups if p.bank_groups > 1 else 0
        if p.ranks > 1:
            grp += f["rank"] * p.bank_groups
            bank += f["rank"] * self.banks_per_rank
        if len(self._blocks) >= 1 << 16:  # bound the cache
            self._blocks.clear()
        run = self._blocks[u] = (bank, f["row"], grp)
        return run

    def _service_fast(self, first: int, last: int, wr: bool, arrival_ps: int, nbytes: int):
        """Time a contiguous call over per-channel row runs; None where FR-FCFS would reorder.

        A call inside one (bank, row) block gives each channel at most one run; its common case
        (no refresh due before the run's last column command, no queue admission wait since
        the run starts at position 0) is timed inline here, exactly as `_fast_channel` would,
        and only committed once it is known to apply; everything else goes to `_fast_channel`.
        """
        (S, nch, col_low, ncol, rwin, wwin, tck, bits, e_act, e_ref, e_wr,
         e_rd) = self._fast_call
        window = wwin if wr else rwin
        arr = math.ceil(arrival_ps / tck - 1e-9)
        chans = self.channels
        hits = misses = acts = refs = irefs = 0  # irefs: refreshes issued inline here
        start = first_data = done = None
        u = first // S
        blocks = self._blocks
        if u == last // S:  # one block: at most one run per channel, nothing to reorder
            run = blocks.get(u)
            if run is None:
                run = self._decode_block(u)
            b, row, grp = run
            (ref_on, gl, gs, tras, trp, trc, trcd, trrd_l, trrd_s, tfaw, bpr, closed,
             tcl, tcwl, bck, rtw, wtr, rec_rd, rec_wr) = self._fast_consts
            sw, rec = (rtw, rec_wr) if wr else (wtr, rec_rd)
            lo = u * S
            for c in range(nch):
                if nch == 1:
                    cnt = last - first + 1
                elif col_low:
                    hi = lo + ncol - 1
                    cnt = (last if last < hi else hi) - (first if first > lo else lo) + 1
                    lo += ncol
                    if cnt <= 0:
                        continue
                else:
                    cnt = (last - c) // nch - (first - 1 - c) // nch
                    if cnt <= 0:
                        continue
                st = chans[c]
                # --- inline `_fast_channel` for the one run (b, row, grp, cnt); refreshes due
                # before its first column command are handled here, a refresh falling inside
                # its column commands hands the rest to `_fast_channel`
                nr = st.next_ref if ref_on else _NEVER
                base = st.last_col
                if base > _NEG:  # + _gap(st.last_grp, st.last_wr, grp, wr)
                    g = gl if st.last_grp == grp else gs
                    if st.last_wr != wr and sw > g:
                        g = sw
                    base += g
                if arr > base:
                    base = arr
                open_row = st.open_row
                refreshed = False
                ok = False
                if open_row[b] == row:  # row hit
                    c0 = st.col_ready[b]
                    if base > c0:
                        c0 = base
                    if c0 < nr:
                        end = c0 + (cnt - 1) * gl
                        if end < nr:
                            pre_ready = st.pre_ready
                            x = end + rec
                            if x > pre_ready[b]:
                                pre_ready[b] = x
                            hits += cnt
                            cmd = c0
                            ok = True
                        hit = True
                    else:  # refresh first (at the column time of burst 0); then a miss
                        irefs += self._refresh(st, c0)
                        nr = st.next_ref
                        hit = False
                else:
                    hit = False
                if not hit:  # row miss: _activate_time at position 0 (no queue admission)
                    pre_ready, act_ck, act_ready = st.pre_ready, st.act_ck, st.act_ready
                    last_act, last_act_grp = st.last_act, st.last_act_grp
                    r = b // bpr
                    faw = st.faw[r]
                    while True:
                        t = arr
                        pre = None
                        if open_row[b] >= 0:
                            pre = pre_ready[b]
                            if t > pre:
                                pre = t
                            x = act_ck[b] + tras
                            if x > pre:
                                pre = x
                            t = pre + trp
                        x = act_ready[b]
                        if x > t:
                            t = x
                        x = last_act[r] + (trrd_l if last_act_grp[r] == grp else trrd_s)
                        if x > t:
                            t = x
                        if len(faw) == 4:
                            x = faw[0] + tfaw
                            if x > t:
                                t = x
                        if not refreshed and t >= nr:
                            irefs += self._refresh(st, t)
                            nr = st.next_ref
                            refreshed = True
                            continue
                        break
                    x = t + trcd
                    c0 = x if x > base else base
                    end = c0 + (cnt - 1) * gl
                    if end < nr:  # no refresh inside the column commands
                        open_row[b] = row  # _commit_act
                        act_ck[b] = t
                        act_ready[b] = t + trc
                        st.col_ready[b] = x
                        x = end + rec
                        pre_ready[b] = x if x > t else t
                        last_act[r] = t
                        last_act_grp[r] = grp
                        faw.append(t)
                        if len(faw) > 4:
                            del faw[0]
                        acts += 1
                        misses += 1
                        hits += cnt - 1
                        cmd = pre if pre is not None else t
                        ok = True
                if ok:
                    st.last_col = end
                    st.last_grp = grp
                    st.last_wr = wr
                    if closed:
                        self._close_all(st)
                else:  # nothing committed yet but refreshes: the general loop goes on from here
                    cmd, c0, end, h, mi, ac, rf = self._fast_channel(
                        ((st, ((b, row, grp, cnt),)),), wr, arr, window, refreshed)
                    hits += h; misses += mi; acts += ac; refs += rf
                if start is None:
                    start, first_data, done = cmd, c0, end
                else:
                    if cmd < start:
                        start = cmd
                    if c0 < first_data:
                        first_data = c0
                    if end > done:
                        done = end
        else:
            runs = [[] for _ in range(nch)]  # per channel, schedule order: (bank, row, grp, count)
            banks = set()
            for u in range(u, last // S + 1):
                base = u * S
                a = first if first > base else base
                b = last if last < base + S - 1 else base + S - 1
                run = blocks.get(u)
                if run is None:
                    run = self._decode_block(u)
                bank, row, grp = run
                banks.add(bank)
                if nch == 1:
                    runs[0].append((bank, row, grp, b - a + 1))
                elif col_low:
                    lo = base
                    for c in range(nch):
                        hi = lo + ncol - 1
                        cnt = (b if b < hi else hi) - (a if a > lo else lo) + 1
                        if cnt > 0:
                            runs[c].append((bank, row, grp, cnt))
                        lo += ncol
                else:
                    for c in range(nch):
                        cnt = (b - c) // nch - (a - 1 - c) // nch
                        if cnt > 0:
                            runs[c].append((bank, row, grp, cnt))
            for rl in runs if len(banks) < last // S - first // S + 1 else ():  # repeated bank
                # FR-FCFS has nothing to reorder iff no (window, bank) sees two rows
                if len(rl) > 1:
                    seen = {}
                    pos = 0
                    for bank, row, _g, cnt in rl:
                        prev = seen.get(bank)
                        if prev is not None and prev[0] != row and prev[1] >= pos // window:
                            return None
                        pos += cnt
                        seen[bank] = (row, (pos - 1) // window)
            cmd, c0, end, h, mi, ac, rf = self._fast_channel(
                [(chans[c], runs[c]) for c in range(nch) if runs[c]], wr, arr, window)
            hits += h; misses += mi; acts += ac; refs += rf
            start, first_data, done = cmd, c0, end
        if irefs:
            self.refreshes += irefs
            refs += irefs
        n = last - first + 1
        n_wr = n if wr else 0
        energy = (acts * e_act + refs * e_ref
                  + bits * (n_wr * e_wr + (n - n_wr) * e_rd))
        lat = self._fast_consts[13 if wr else 12]
        return MemoryResponse(  # accept, first data, done, nbytes, hits, misses, energy
            max(int(arrival_ps), math.ceil(start * tck - 1e-6)),
            math.ceil((first_data + lat) * tck - 1e-6),
            math.ceil((done + lat + self.burst_ck) * tck - 1e-6),
            nbytes, hits, misses, energy)

    def _fast_channel(self, work, wr: bool, arr: int, window: int, refreshed0: bool = False):
        """`_run_channel` for each (channel, row runs [(bank, row, grp, count)]) of `work`.

        Runs are in schedule order (no reorder). Returns (first command, first column command,
        last column command: min, min, max over the channels; hits, misses, ACTs, refreshes:
        sums) in clocks. `refreshed0` says the first channel's first ACT has had its refresh
        check (`_service_fast` ran it inline and refreshed). Per burst k (channel position) the general path computes
        col[k] = max(col[k-1] + gap[k], col_ready[bank], arrival) after activating misses; inside
        a run that is col[first] + m * tCCD_L. Refresh is handled as there: a burst at or past
        `next_ref` that is not the start of a segment (a miss, or burst 0) refreshes first and
        becomes a miss; a segment-starting miss completes first and refreshes right after if its
        segment goes on; a hit as burst 0 refreshes at its own column time. The column gap to
        the previous call (`_gap`) and ACT timing and commit (`_activate_time` / `_commit_act`)
        are inlined (keep them in step).
        """
        (ref_on, gl, gs, tras, trp, trc, trcd, trrd_l, trrd_s, tfaw, bpr, closed,
         tcl, tcwl, bck, rtw, wtr, rec_rd, rec_wr) = self._fast_consts
        sw, rec = (rtw, rec_wr) if wr else (wtr, rec_rd)
        hits = misses = acts = refs = 0
        start = first_data = done = None
        for st, rl in work:
            refreshed = refreshed0  # for the ACT at position 0 (the only one there)
            refreshed0 = False
            open_row, col_ready, pre_ready = st.open_row, st.col_ready, st.pre_ready
            nr = st.next_ref if ref_on else _NEVER
            piece_pos = []  # column-command times so far, as pieces (start position, time)
            piece_t = []
            prev_col = st.last_col
            prev_grp = -1
            first_cmd = first_col = None
            pos = 0
            nruns = len(rl)
            act_ck, act_ready = st.act_ck, st.act_ready
            last_act, last_act_grp = st.last_act, st.last_act_grp
            for ri, (b, row, grp, cnt) in enumerate(rl):
                # common case first: the whole run in one segment, no refresh due before its last
                # column command; state is written only once that is known, else the loop below
                # times the run from its start
                if pos:
                    base = prev_col + (gl if grp == prev_grp else gs)
                elif prev_col > _NEG:
                    g = gl if st.last_grp == grp else gs
                    if st.last_wr != wr and sw > g:
                        g = sw
                    base = prev_col + g
                else:
                    base = prev_col
                if arr > base:
                    base = arr
                ob = open_row[b]
                if ob == row:
                    c0 = col_ready[b]
                    if base > c0:
                        c0 = base
                    end = c0 + (cnt - 1) * gl
                    if end < nr:
                        x = end + rec
                        if x > pre_ready[b]:
                            pre_ready[b] = x
                        hits += cnt
                        piece_pos.append(pos)
                        piece_t.append(c0)
                        if first_col is None:
                            first_col = c0
                            if first_cmd is None:
                                first_cmd = c0
                        prev_col = end
                        pos += cnt
                        prev_grp = grp
                        continue
                else:
                    t = arr
                    if pos >= window:  # queue admission: column time of burst pos - window
                        q = pos - window
                        j = bisect.bisect_right(piece_pos, q) - 1
                        tq = piece_t[j] + (q - piece_pos[j]) * gl
                        if tq > t:
                            t = tq
                    pre = None
                    if ob >= 0:
                        pre = pre_ready[b]
                        if t > pre:
                            pre = t
                        x = act_ck[b] + tras
                        if x > pre:
                            pre = x
                        t = pre + trp
                    x = act_ready[b]
                    if x > t:
                        t = x
                    r = b // bpr
                    x = last_act[r] + (trrd_l if last_act_grp[r] == grp else trrd_s)
                    if x > t:
                        t = x
                    faw = st.faw[r]
                    if len(faw) == 4:
                        x = faw[0] + tfaw
                        if x > t:
                            t = x
                    x = t + trcd
                    c0 = x if x > base else base
                    end = c0 + (cnt - 1) * gl
                    if end < nr:  # and so t < nr: no refresh before the ACT either
                        open_row[b] = row  # _commit_act
                        act_ck[b] = t
                        act_ready[b] = t + trc
                        col_ready[b] = x
                        x = end + rec
                        pre_ready[b] = x if x > t else t
                        last_act[r] = t
                        last_act_grp[r] = grp
                        faw.append(t)
                        if len(faw) > 4:
                            del faw[0]
                        acts += 1
                        misses += 1
                        hits += cnt - 1
                        if first_cmd is None:
                            first_cmd = pre if pre is not None else t
                        piece_pos.append(pos)
                        piece_t.append(c0)
                        if first_col is None:
                            first_col = c0
                        prev_col = end
                        pos += cnt
                        prev_grp = grp
                        continue
                m = 0
                while m < cnt:
                    k = pos + m
                    if m:
                        g = gl
                    elif k:
                        g = gl if grp == prev_grp else gs
                    elif prev_col > _NEG:  # _gap(st.last_grp, st.last_wr, grp, wr)
                        g = gl if st.last_grp == grp else gs
                        if st.last_wr != wr and sw > g:
                            g = sw
                    else:
                        g = 0
                    hit = open_row[b] == row
                    if hit:
                        cr = col_ready[b]
                        pr = pre_ready[b]
                    else:
                        r = b // bpr
                        faw = st.faw[r]
                        if k:  # the first ACT may come with `refreshed` set
                            refreshed = False
                        while True:  # _activate_time
                            t = arr
                            if k >= window:  # queue admission: column time of burst k - window
                                q = k - window
                                j = bisect.bisect_right(piece_pos, q) - 1
                                tq = piece_t[j] + (q - piece_pos[j]) * gl
                                if tq > t:
                                    t = tq
                            pre = None
                            if open_row[b] >= 0:
                                pre = pre_ready[b]
                                if t > pre:
                                    pre = t
                                x = act_ck[b] + tras
                                if x > pre:
                                    pre = x
                                t = pre + trp
                            x = act_ready[b]
                            if x > t:
                                t = x
                            x = last_act[r] + (trrd_l if last_act_grp[r] == grp else trrd_s)
                            if x > t:
                                t = x
                            if len(faw) == 4:
                                x = faw[0] + tfaw
                                if x > t:
                                    t = x
                            if not refreshed and t >= nr:
                                refs += self._refresh(st, t)
                                nr = st.next_ref
                                refreshed = True
                                continue
                            break
                        open_row[b] = row  # _commit_act
                        act_ck[b] = t
                        act_ready[b] = t + trc
                        cr = t + trcd
                        col_ready[b] = cr
                        pre_ready[b] = pr = t
                        last_act[r] = t
                        last_act_grp[r] = grp
                        faw.append(t)
                        if len(faw) > 4:
                            del faw[0]
                        acts += 1
                        misses += 1
                        if first_cmd is None:
                            first_cmd = pre if pre is not None else t
                    c0 = prev_col + g
                    if cr > c0:
                        c0 = cr
                    if arr > c0:
                        c0 = arr
                    rest = cnt - m
                    take = rest
                    crossed = False
                    if c0 >= nr:
                        if hit:
                            refs += self._refresh(st, c0 if k == 0 else nr)
                            nr = st.next_ref
                            continue  # burst k is now a miss
                        take = 1
                        if rest > 1:
                            crossed = True
                        elif ri + 1 < nruns:
                            nxt = rl[ri + 1]
                            crossed = open_row[nxt[0]] == nxt[1]
                    elif rest > 1 and c0 + (rest - 1) * gl >= nr:
                        take = -(-(nr - c0) // gl)
                        crossed = True
                    end = c0 + (take - 1) * gl
                    piece_pos.append(k)
                    piece_t.append(c0)
                    if first_col is None:
                        first_col = c0
                        if first_cmd is None:
                            first_cmd = c0
                    hits += take if hit else take - 1
                    x = end + rec
                    if x > pr:
                        pre_ready[b] = x
                    prev_col = end
                    m += take
                    if crossed:
                        refs += self._refresh(st, nr)
                        nr = st.next_ref
                pos += cnt
                prev_grp = grp
            st.last_col = prev_col
            st.last_grp = prev_grp
            st.last_wr = wr
            if closed:
                self._close_all(st)
            if start is None:
                start, first_data, done = first_cmd, first_col, prev_col
            else:
                if first_cmd < start:
                    start = first_cmd
                if first_col < first_data:
                    first_data = first_col
                if prev_col > done:
                    done = prev_col
        self.refreshes += refs
        return start, first_data, done, hits, misses, acts, refs

    # ------------------------------------------------------------------ scheduling
    def _frfcfs(self, st: _Channel, bank, row, window: int):
        """Schedule order (indices) after per-bank row grouping in fixed windows, or None."""
        n = len(bank)
        g = (np.arange(n) // window) * self.nbanks + bank
        o = np.argsort(g, kind="stable")
        gs, rs = g[o], row[o]
        same_g = gs[1:] == gs[:-1]
        if not np.any(same_g & (rs[1:] != rs[:-1])):
            return None  # each (window, bank) touches a single row: nothing to reorder
        pair = gs * (self.params.rows + 1) + rs
        _, first_pos, inv = np.unique(pair, return_index=True, return_inverse=True)
        rank = first_pos[inv]  # position (in o order) where this (group, row) first appears
        in_w0 = o < window
        open_row = np.asarray(st.open_row, np.int64)
        rank = np.where(in_w0 & (row[o] == open_row[bank[o]]), -1, rank)
        b_list = o[np.lexsort((np.arange(n), rank, gs))]
        sched = np.empty(n, np.int64)
        sched[o] = b_list
        return sched

    def _run_channel(self, st: _Channel, bank, row, grp, wr, arr: int):
        p = self.params
        n = len(bank)
        per_wr = not isinstance(wr, bool)
        any_wr = bool(np.any(wr)) if per_wr else wr
        window = p.write_queue_depth if any_wr else p.read_queue_depth
        if n > 1:
            sched = self._frfcfs(st, bank, row, window)
            if sched is not None:
                bank, row, grp = bank[sched], row[sched], grp[sched]
                if per_wr:
                    wr = wr[sched]
        # column-to-column gaps (g[0] is the gap to the previous call's last column command)
        w0 = bool(wr[0]) if per_wr else wr
        g = np.empty(n, np.int64)
        g[0] = self._gap(st.last_grp, st.last_wr, int(grp[0]), w0) if st.last_col > _NEG else 0
        if n > 1:
            g[1:] = np.where(grp[1:] == grp[:-1], self._tccd_l, self._tccd_s)
            if per_wr:
                np.maximum(g[1:], np.where(~wr[:-1] & wr[1:], self._rtw_gap, 0), out=g[1:])
                np.maximum(g[1:], np.where(wr[:-1] & ~wr[1:], self._wtr_gap, 0), out=g[1:])
        G = np.cumsum(g)
        if per_wr:
            lat = np.where(wr, p.tcwl_ck, p.tcl_ck)
            rec = np.where(wr, self._rec_wr, self._rec_rd)
        else:
            lat = p.tcwl_ck if wr else p.tcl_ck
            rec = self._rec_wr if wr else self._rec_rd
        # static hits: previous burst to the same bank (this call) or the open row (state)
        if n == 1:
            prev_same = np.full(1, -1, np.int64)
            hit = np.array([st.open_row[bank[0]] == row[0]])
        else:
            ob = np.argsort(bank, kind="stable")
            same = bank[ob[1:]] == bank[ob[:-1]]
            prev_same = np.full(n, -1, np.int64)
            prev_same[ob[1:][same]] = ob[:-1][same]
            prow = np.where(prev_same >= 0, row[prev_same], np.asarray(st.open_row, np.int64)[bank])
            hit = prow == row
        miss_idx = np.flatnonzero(~hit)
        col_ready = np.array(st.col_ready, np.int64)  # mirror, kept in step below
        col = np.empty(n, np.int64)
        u_prev = st.last_col  # col[i-1] - G[i-1]; G[-1] = 0
        first_cmd = None
        hits = misses = acts = refs = 0
        i = 0
        while i < n:
            b = int(bank[i])
            if not hit[i]:
                act, pre = self._activate_time(st, b, int(grp[i]), arr, col, i, window)
                if p.refresh_enabled and act >= st.next_ref:
                    refs += self._refresh(st, act)
                    hit[i + 1:] &= prev_same[i + 1:] >= i
                    miss_idx = np.flatnonzero(~hit)
                    act, pre = self._activate_time(st, b, int(grp[i]), arr, col, i, window)
                self._commit_act(st, b, int(grp[i]), int(row[i]), act)
                col_ready[b] = st.col_ready[b]  # the only change to col_ready here
                acts += 1
                misses += 1
                if first_cmd is None:
                    first_cmd = pre if pre is not None else act
            k = np.searchsorted(miss_idx, i, side="right")
            e = int(miss_idx[k]) if k < len(miss_idx) else n
            ready = col_ready[bank[i:e]]
            t = np.maximum(ready, arr) - G[i:e]
            if t[0] < u_prev:
                t[0] = u_prev
            np.maximum.accumulate(t, out=t)
            c = t + G[i:e]
            if p.refresh_enabled and c[-1] >= st.next_ref:
                j = int(np.searchsorted(c, st.next_ref, side="left"))
                if j == 0 and hit[i]:  # refresh first; burst i then re-activates
                    refs += self._refresh(st, int(c[0]))
                    hit[i:] &= prev_same[i:] >= i
                    miss_idx = np.flatnonzero(~hit)
                    continue
                j = max(j, 1)  # a miss activated before the refresh was due completes first
                if j < e - i:
                    e = i + j
                    c = c[:j]
                    crossed = True
                else:
                    crossed = False
            else:
                crossed = False
            col[i:e] = c
            if first_cmd is None:
                first_cmd = int(c[0])
            hits += (e - i) - (0 if hit[i] else 1)
            r = rec[i:e] if per_wr else rec
            if e - i == 1:
                st.pre_ready[b] = max(int(st.pre_ready[b]), int(c[0]) + int(r if not per_wr else r[0]))
            else:
                pr = np.asarray(st.pre_ready, np.int64)
                np.maximum.at(pr, bank[i:e], c + r)
                st.pre_ready[:] = pr.tolist()
            u_prev = int(c[-1]) - int(G[e - 1])
            i = e
            if crossed:
                refs += self._refresh(st, int(st.next_ref))
                hit[e:] &= prev_same[e:] >= e
                miss_idx = np.flatnonzero(~hit)
        # carry bus state to the next call
        st.last_col = int(col[-1])
        st.last_grp = int(grp[-1])
        st.last_wr = bool(wr[-1]) if per_wr else wr
        if p.page_policy == "closed":
            self._close_all(st)
        ends = col + lat
        first_data = int(ends.min()) if per_wr else int(col[0]) + lat
        done = int((ends + self.burst_ck).max()) if per_wr else int(col[-1]) + lat + self.burst_ck
        self.refreshes += refs
        return first_cmd, first_data, done, hits, misses, acts, refs

    def _gap(self, prev_grp: int, prev_wr: bool, grp: int, wr: bool) -> int:
        gap = self._tccd_l if prev_grp == grp else self._tccd_s
        if prev_wr and not wr:
            gap = max(gap, self._wtr_gap)
        elif wr and not prev_wr:
            gap = max(gap, self._rtw_gap)
        return gap

    def _activate_time(self, st: _Channel, b: int, grp: int, arr: int, col, i: int, window: int):
        """Earliest ACT for a miss at schedule position i on bank b (and its PRE, if any)."""
        p = self.params
        t = arr
        if i >= window:
            t = max(t, int(col[i - window]))  # queue admission
        pre = None
        if st.open_row[b] >= 0:
            pre = max(t, int(st.pre_ready[b]), int(st.act_ck[b]) + p.tras_ck)
            t = pre + p.trp_ck
        t = max(t, int(st.act_ready[b]))
        r = b // self.banks_per_rank
        gap = p.trrd_l_ck if st.last_act_grp[r] == grp else p.trrd_s_ck
        t = max(t, st.last_act[r] + gap)
        faw = st.faw[r]
        if len(faw) == 4:
            t = max(t, faw[0] + p.tfaw_ck)
        return t, pre

    def _commit_act(self, st: _Channel, b: int, grp: int, row: int, act: int) -> None:
        p = self.params
        st.open_row[b] = row
        st.act_ck[b] = act
        st.act_ready[b] = act + p.trc_ck
        st.col_ready[b] = act + p.trcd_ck
        st.pre_ready[b] = act
        r = b // self.banks_per_rank
        st.last_act[r] = act
        st.last_act_grp[r] = grp
        faw = st.faw[r]
        faw.append(act)
        if len(faw) > 4:
            del faw[0]

    def _close_all(self, st: _Channel) -> None:
        """Precharge every open bank as early as allowed (closed-page policy)."""
        tras, trp = self.params.tras_ck, self.params.trp_ck
        open_row, pre_ready, act_ck, act_ready = st.open_row, st.pre_ready, st.act_ck, st.act_ready
        for b in range(len(open_row)):
            if open_row[b] >= 0:
                pre = pre_ready[b]
                x = act_ck[b] + tras
                if x > pre:
                    pre = x
                pre += trp
                if pre > act_ready[b]:
                    act_ready[b] = pre
                open_row[b] = -1

    def _refresh(self, st: _Channel, t: int) -> int:
        """Issue every all-bank refresh due at or before clock t; returns how many."""
        p = self.params
        if st.next_ref > t:
            return 0
        start = st.next_ref
        open_row, pre_ready, act_ck, act_ready = st.open_row, st.pre_ready, st.act_ck, st.act_ready
        tras = p.tras_ck
        pre = None  # latest PRE over the open banks
        for b in range(len(open_row)):
            if open_row[b] >= 0:
                x = pre_ready[b]
                y = act_ck[b] + tras
                if y > x:
                    x = y
                if pre is None or x > pre:
                    pre = x
                open_row[b] = -1
        if pre is not None:
            start = max(start, pre) + p.trp_ck
        start = max(start, max(act_ready))  # tRC after ACTs, tRP after closes
        end = start + p.trfc_ck
        st.next_ref += p.trefi_ck
        count = 1
        if st.next_ref <= t:  # refreshes that fell into idle time
            k = (t - st.next_ref) // p.trefi_ck + 1
            end = max(end, st.next_ref + (k - 1) * p.trefi_ck) + p.trfc_ck
            st.next_ref += k * p.trefi_ck
            count += k
        for b in range(len(act_ready)):
            if act_ready[b] < end:
                act_ready[b] = end
        return count
