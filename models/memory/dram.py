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
delay, no power-down; calls are serviced in arrival order, except that writes wait in
per-channel write buffers and are drained in batches (`write_batching`; see `flush`). A drain
is timed when a call triggers it, after the bursts already timed (it does not preempt reads
queued before it); a write completes when accepted into the buffer.

Stream fast-forward (`stream_sample_bytes`, `_service_stream`): a long contiguous call is timed
exactly for a head sample and its last row block, the whole blocks between extrapolated at the
measured per-block rate with refreshes at their tREFI period; `set_exact()` turns it off.

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
import operator

import attrs
import numpy as np

from tlm import Transaction

from ..checks import bounds
from ..errors import ConfigError
from .base import MemoryModel, MemoryResponse

_FIELDS = ("row", "bank", "bankgroup", "rank", "column", "channel")
_NEG = -(1 << 50)  # "long ago" in clocks
_NEVER = 1 << 62  # next refresh when refresh is off (fast path)
_HI = operator.itemgetter(3)
_FF_WARM = 2  # stream fast-forward: head blocks not measured (the stream settles)
_FF_MIN_HEAD = _FF_WARM + 2  # head blocks at least: two measured ones


def _check_mapping(_inst, _attr, value: str) -> None:
    names = value.split(":")
    required = {"row", "bank", "rank", "column", "channel"}
    bad = [n for n in names if n not in _FIELDS]
    if bad or len(set(names)) != len(names) or not required <= set(names):
        raise ConfigError(
            f"address_mapping {value!r}: use each of row, bank, rank, column, channel once "
            f"(optionally bankgroup), most significant first, e.g. 'row:bank:rank:column:channel'"
        )


_TOKENS = {"ro": "row", "ba": "bank", "bg": "bankgroup", "ra": "rank", "co": "column",
           "ch": "channel"}


def _mapping(value: str) -> str:
    """Accept the colon form (`row:bank:rank:column:channel`) or the compact two-letter form of
    the reference simulators (`RoBaRaCoCh`, `rochrababgco`), most significant field first."""
    value = str(value).strip()
    if ":" in value or len(value) % 2 or not value:
        return value
    toks = [value[i:i + 2].lower() for i in range(0, len(value), 2)]
    if all(t in _TOKENS for t in toks):
        return ":".join(_TOKENS[t] for t in toks)
    return value


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
    """Write data end -> read command in the same bank group (tWTR_L); to any bank when
    `twtr_s_ck` is None."""
    twtr_s_ck: int | None = attrs.field(default=None, converter=attrs.converters.optional(int),
                                        validator=attrs.validators.optional(_nonneg), metadata=_CK)
    """Write data end -> read command in another bank group (tWTR_S, JEDEC DDR4/DDR5/LPDDR5/HBM);
    None: `twtr_ck` for every pair (the former single tWTR)."""
    trtw_ck: int = _ck(12)
    """Read command -> write command."""
    trtp_ck: int = _ck(12)
    trefi_ck: int = attrs.field(default=12480, converter=int, validator=_pos, metadata=_CK)
    trfc_ck: int = _ck(560)
    refresh_enabled: bool = attrs.field(default=True, converter=bool)
    ctrl_delay_ck: int = _ck(0)
    """Fixed controller delay (clocks) between a request's arrival and its first command."""
    # controller
    address_mapping: str = attrs.field(default="row:bank:rank:column:channel",
                                       converter=_mapping, validator=_check_mapping)
    """Address fields, most significant first; the burst offset is below the last one."""
    page_policy: str = attrs.field(default="open", validator=_one_of("open", "closed"))
    bank_group_gaps: bool = attrs.field(default=True, converter=bool)
    """Let a later burst of another bank group issue in the bus slot that two back-to-back
    column commands leave when their spacing (tCCD_L, a turnaround) is at least 2 x tCCD_S.
    False: such a slot is lost unless a stall opened it (a controller serving requests in
    arrival order). True (default): it is filled like a stall's gap, as a controller with per-bank
    command queues picking any ready bank does (DRAMsim3's PER_BANK queue structure), or an
    FR-FCFS queue of single bursts (Ramulator 2: a 64 B LPDDR5 request is two 32 B
    transactions). The slots inside a run of one call's bursts on one row are offered too,
    unless the run covers the whole row (a long stream passing through; simplification: such
    streams stay tCCD_L-bound, which keeps the stream fast-forward's per-block rate exact).
    A channel
    remembers as many bus gaps as a queue holds bursts (the oldest is forgotten)."""
    stall_slot_align: bool = attrs.field(default=False, converter=bool)
    """Assumption A-69. A command held by its own bank (tRC, tRCD) lands between the slots
    (tCCD_S for bursts, tRRD_S for ACTs) that the commands before it set, and leaves a
    part-slot gap that no later command fits. True: while the previous command is less than
    2 x tRC back (the bus is busy), such a command is rounded up onto that slot grid, so the
    slots stay whole for the bursts of other banks, as DRAMsim3's clocked FR-FCFS controller
    keeps them on LPDDR4 random reads (tRRD = tCCD = tFAW / 4: the ACT, tFAW and bus bounds
    coincide and every part-slot gap is lost bandwidth). False: a command issues as soon as
    its bank allows. On in `lpddr4-2400-x32` (DRAMsim3's timing set); unloaded latency and
    conflict-free streams are unchanged."""
    read_queue_depth: int = attrs.field(default=32, validator=_pos, metadata=_GEOM)
    write_queue_depth: int = attrs.field(default=32, validator=_pos, metadata=_GEOM)
    write_batching: bool = attrs.field(default=False, converter=bool)
    """Off by default (every call in arrival order, a plain JEDEC reading) until the replay
    records drained writes' bus time and drains the buffers at the run's end; the comparisons
    with Ramulator 2 and DRAMsim3 (`scripts/validate_dram.py`) turn it on. True: a channel buffers up to `write_queue_depth` write bursts and drains them
    in batches, as the controllers of Ramulator 2 and DRAMsim3 do, so the bus turns around once
    per batch. A write completes when accepted into the buffer (when drained in its own call:
    at that drain's end). A channel drains all its buffered writes as soon as no read is queued
    there (at the last queued read's column command, or at once), else the oldest down to the
    low watermark once the buffer reaches the high one; drained writes are grouped by bank and
    row (first appearance order). A write call longer than all buffers together
    (`write_queue_depth` x channels bursts) is timed in full in its call, after the buffered
    ones. Gathers (`service_addresses`) are not buffered. Buffered writes' bytes and per-bit
    energy count in their own call; their row hits, misses, ACT and refresh energy in the call
    that drains them (`flush` drains the rest). False: every call is timed in arrival order."""
    write_high_watermark_frac: float = attrs.field(default=0.8, converter=float,
                                                   metadata=bounds(gt=0, le=1))
    """Fraction of `write_queue_depth` (rounded up) at which a write drain starts while reads are
    queued (Ramulator 2: 0.8)."""
    write_low_watermark_frac: float = attrs.field(default=0.2, converter=float,
                                                  metadata=bounds(ge=0, le=1))
    """Fraction of `write_queue_depth` (rounded down) of newest writes a drain leaves buffered
    (Ramulator 2: 0.2); below the high watermark."""
    stream_sample_bytes: int = attrs.field(default=65536, converter=int, validator=_nonneg,
                                           metadata=bounds(le=1 << 40))
    """Stream fast-forward: a contiguous transaction longer than this (plus its last row block)
    is timed exactly for its first `stream_sample_bytes` (rounded up to whole row blocks, at
    least four) and extrapolated over its whole middle row blocks at the per-block rate
    measured there; its last block is timed exactly again. 0: every burst is timed exactly
    (also `set_exact()`). Default: see docs/memory-models.md (error and speed per size)."""
    gather_sample_bursts: int = attrs.field(default=2048, converter=int, validator=_nonneg,
                                            metadata=bounds(le=1 << 40))
    """Gather sampling (assumption A-72): the bursts a scatter-gather (`service_segments`) puts
    on a channel, when more than 3 x this many, are timed exactly for at least their first
    `gather_sample_bursts` (in chunks of a quarter of that) and their last half of that; the
    runs between advance the channel at the rate per burst measured on the head after its first
    chunk, with refreshes at their tREFI period and each run's row miss counted
    (`_schedule_sampled`). 0: every burst is timed (also `set_exact()`)."""
    # energy
    act_energy_pj: float = attrs.field(default=0.0, converter=float, validator=_nonneg,
                                     metadata=bounds(le=1e9))
    rd_energy_pj_per_bit: float = attrs.field(default=0.0, converter=float, validator=_nonneg,
                                            metadata=bounds(le=1e9))
    wr_energy_pj_per_bit: float = attrs.field(default=0.0, converter=float, validator=_nonneg,
                                            metadata=bounds(le=1e9))
    ref_energy_pj: float = attrs.field(default=0.0, converter=float, validator=_nonneg,
                                     metadata=bounds(le=1e9))

    def __attrs_post_init__(self):
        q = self.write_queue_depth
        if not (0 <= self.write_low_watermark_frac and self.write_high_watermark_frac <= 1
                and math.floor(self.write_low_watermark_frac * q)
                < math.ceil(self.write_high_watermark_frac * q)):
            raise ConfigError(
                f"write watermarks: need 0 <= write_low_watermark_frac "
                f"({self.write_low_watermark_frac}) < write_high_watermark_frac "
                f"({self.write_high_watermark_frac}) <= 1 (in whole bursts of {q})")


class _Channel:
    """Mutable state of one channel: banks, column-bus timeline, ACT history, queues, refresh.

    Per-bank state is kept in plain Python lists of ints (the scheduler indexes them per burst;
    numpy scalar access is slow).
    """

    __slots__ = ("open_row", "act_ck", "pre_ready", "act_ready", "col_ready", "bank_col",
                 "last_col", "last_grp", "last_wr", "holes", "act_t", "act_g", "q_rd", "q_wr",
                 "next_ref", "wbuf", "wn", "w_arr")

    def __init__(self, nbanks: int, ranks: int, trefi_ck: int):
        self.open_row = [-1] * nbanks
        self.act_ck = [_NEG] * nbanks      # last ACT (tRAS)
        self.pre_ready = [_NEG] * nbanks   # column-side earliest PRE
        self.act_ready = [_NEG] * nbanks   # tRC / tRP / refresh
        self.col_ready = [_NEG] * nbanks   # ACT + tRCD
        self.bank_col = [_NEG] * nbanks    # last column command of the bank (per-bank order)
        self.last_col = _NEG               # latest column command on the channel (bus tail)
        self.last_grp = -1
        self.last_wr = False
        self.holes = []                    # bus gaps left by stalls: [lo, lo_grp, lo_wr, hi, hi_grp, hi_wr]
        self.act_t = [[] for _ in range(ranks)]  # recent ACT times per rank, sorted
        self.act_g = [[] for _ in range(ranks)]  # their bank groups
        self.q_rd = []                     # sorted: the queue_depth latest column times
        self.q_wr = []
        self.next_ref = trefi_ck
        self.wbuf = []                     # buffered write runs, oldest first: [bank, row, grp, count]
        self.wn = 0                        # buffered write bursts
        self.w_arr = _NEG                  # arrival of the newest buffered write


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
        wtr_s = p.twtr_ck if p.twtr_s_ck is None else p.twtr_s_ck
        self._wtr_s_gap = p.tcwl_ck + self.burst_ck + wtr_s
        self._rtw_gap = max(p.trtw_ck, self._tccd_s)
        self._rec_rd = p.trtp_ck
        self._rec_wr = p.tcwl_ck + self.burst_ck + p.twr_ck
        self.channels = [_Channel(self.nbanks, p.ranks, p.trefi_ck) for _ in range(p.channels)]
        self.refreshes = 0
        self._serviced_bytes = 0
        self._extrapolated_bytes = 0
        self._skipped_bursts = 0  # by gather sampling
        self._consts = (p.refresh_enabled, self._tccd_l, self._tccd_s, p.tras_ck, p.trp_ck,
                        p.trc_ck, p.trcd_ck, self.banks_per_rank, p.tcl_ck, p.tcwl_ck,
                        self.burst_ck, self._rtw_gap, self._wtr_gap, self._rec_rd, self._rec_wr,
                        p.read_queue_depth, p.write_queue_depth, 2 * self._tccd_s, self._wtr_s_gap)
        self._act_hist = max(p.tfaw_ck, p.trrd_l_ck, p.trrd_s_ck)
        self._bg_gaps = p.bank_group_gaps
        self._align = p.stall_slot_align
        self._align_win = 2 * p.trc_ck  # the slot grid holds this long after a command
        # bus gaps remembered per channel (the oldest is forgotten): as many as a queue holds bursts
        self._max_holes = max(p.read_queue_depth, p.write_queue_depth)
        self._rrd_faw = (p.trrd_l_ck, p.trrd_s_ck, p.tfaw_ck)
        self._batch = p.write_batching
        self._w_hi = math.ceil(p.write_high_watermark_frac * p.write_queue_depth)
        self._w_lo = math.floor(p.write_low_watermark_frac * p.write_queue_depth)
        self._w_big = p.write_queue_depth * p.channels  # longer write calls: timed in full
        self._wpend = 0  # buffered write bursts, all channels
        self._carry = [0, 0, 0, 0]  # drained, not yet reported: bursts, misses, ACTs, refreshes
        self._batch_segments = True
        self._gather_head = p.gather_sample_bursts
        self._init_fast_path()

    # ------------------------------------------------------------------ public API
    def peak_bandwidth_gbps(self) -> float:
        p = self.params
        return p.channels * p.bus_width_bits / 8 * 2 / (p.tck_ps / 1000)

    def capacity_bytes(self) -> int:
        p = self.params
        return p.channels * self.nbanks * p.rows * (p.columns // p.burst_length) * self.burst_bytes

    def set_exact(self) -> None:
        """Time every burst exactly from now on (stream fast-forward and batched scatter-gather
        off)."""
        self._ff_head = 0
        self._gather_head = 0
        self._batch_segments = False

    def fast_stats(self) -> dict[str, int]:
        """Bytes serviced so far, timed exactly and extrapolated by the stream fast-forward."""
        return {"exact_bytes": self._serviced_bytes - self._extrapolated_bytes,
                "extrapolated_bytes": self._extrapolated_bytes}

    def service(self, txn: Transaction, arrival_ps: int) -> MemoryResponse:
        nbytes = txn.nbytes
        if nbytes <= 0:
            return MemoryResponse(arrival_ps, arrival_ps, arrival_ps, 0)
        self._serviced_bytes += nbytes
        addr = txn.address
        bb = self.burst_bytes
        first = addr // bb
        last = (addr + nbytes - 1) // bb
        if self._batch and (self._wpend or txn.is_write):
            arr = self._arrival_ck(arrival_ps)
            if self._wpend:
                self._drain_idle(arr)
            if txn.is_write:
                if last - first < self._w_big:
                    if self._reads_queued(first, last, arr):
                        return self._service_buffered(first, last, arr, arrival_ps, nbytes)
                elif self._wpend:
                    self._drain_all(arr)
        if self._fast:
            res = self._service_fast(first, last, bool(txn.is_write), arrival_ps, nbytes)
            if res is not None:
                return res
        bursts = np.arange(first, last + 1, dtype=np.int64)
        return self._service_bursts(bursts, txn.is_write, arrival_ps, txn.nbytes)

    def service_segments(self, txn: Transaction, arrival_ps: int) -> MemoryResponse | None:
        """A scatter-gather's bursts as one batch through the general path (FR-FCFS across its
        runs, as a controller holding all of them would order them); None under `set_exact`,
        where the caller issues the runs one by one."""
        if not self._batch_segments:
            return None
        addr, n = txn.segments
        bb = self.burst_bytes
        first = addr // bb
        count = (addr + n - 1) // bb - first + 1
        ends = np.cumsum(count)
        bursts = np.arange(ends[-1], dtype=np.int64) + np.repeat(first - (ends - count), count)
        return self._service_gather(bursts, bool(txn.is_write), arrival_ps, txn.nbytes,
                                    sample=True)

    def service_addresses(self, addresses, is_write, arrival_ps: int) -> MemoryResponse:
        """Time a gather/scatter of one burst per byte address (arrays, all arriving together).

        `is_write` is a bool or a bool array (mixed reads and writes). Used by benchmarks and
        the `difftlm dram` command for non-contiguous patterns; `service` is the usual path.
        """
        addr = np.asarray(addresses, dtype=np.int64)
        wr = np.asarray(is_write, dtype=bool)
        return self._service_gather(addr // self.burst_bytes, wr if wr.ndim else bool(wr),
                                    arrival_ps, len(addr) * self.burst_bytes)

    def _service_gather(self, bursts: np.ndarray, is_write, arrival_ps: int, nbytes: int,
                        sample: bool = False) -> MemoryResponse:
        """Bursts arriving together, through the general path after the write buffers drain
        (`sample`: gather sampling, A-72, where long enough)."""
        self._serviced_bytes += nbytes
        if self._wpend:
            self._drain_all(self._arrival_ck(arrival_ps))
        return self._service_bursts(bursts, is_write, arrival_ps, nbytes,
                                    sample and len(bursts) > 3 * self._gather_head > 0)

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

    def _arrival_ck(self, arrival_ps: int) -> int:
        p = self.params
        return math.ceil(arrival_ps / p.tck_ps - 1e-9) + p.ctrl_delay_ck

    def _response(self, arrival_ps, start, first_data, done, nbytes, n, n_wr, misses, acts, refs,
                  n_rows=None):
        """Response of a call of n bursts (n_wr writes); `n_rows` of them (default n) get their
        row hits counted here; drained writes not yet reported are added."""
        p = self.params
        tck = p.tck_ps
        if n_rows is None:
            n_rows = n
        c = self._carry
        if c[0]:
            n_rows += c[0]
            misses += c[1]
            acts += c[2]
            refs += c[3]
            self._carry = [0, 0, 0, 0]
        energy = (acts * p.act_energy_pj + refs * p.ref_energy_pj
                  + self.burst_bytes * 8 * (n_wr * p.wr_energy_pj_per_bit
                                            + (n - n_wr) * p.rd_energy_pj_per_bit))
        return MemoryResponse(
            max(int(arrival_ps), math.ceil(start * tck - 1e-6)),
            math.ceil(first_data * tck - 1e-6), math.ceil(done * tck - 1e-6),
            nbytes, n_rows - misses, misses, energy)

    def _service_bursts(self, bursts, wr, arrival_ps: int, nbytes: int,
                        sample: bool = False) -> MemoryResponse:
        """General path: decode, FR-FCFS order per channel, runs of one (bank, row, dir), schedule
        (`sample`: `_schedule_sampled`)."""
        schedule = self._schedule_sampled if sample else self._schedule
        skipped = self._skipped_bursts
        start, first_data, done, misses, acts, refs = schedule(
            self._work(bursts, wr), self._arrival_ck(arrival_ps))
        n = len(bursts)
        if self._skipped_bursts > skipped:  # extrapolated: the skipped share of the bytes
            self._extrapolated_bytes += nbytes * (self._skipped_bursts - skipped) // n
        per_wr = not isinstance(wr, bool)
        n_wr = int(np.count_nonzero(wr)) if per_wr else (n if wr else 0)
        return self._response(arrival_ps, start, first_data, done, nbytes, n, n_wr, misses,
                              acts, refs)

    def _work(self, bursts, wr):
        """[(channel state, runs [(bank, row, grp, count, wr)])] of `bursts` in FR-FCFS order."""
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
        per_wr = not isinstance(wr, bool)
        if p.channels == 1:
            parts = [(0, slice(None))]
        else:
            ch = f["channel"]
            order = np.argsort(ch, kind="stable")
            counts = np.bincount(ch, minlength=p.channels)
            ends = np.cumsum(counts)
            parts = [(c, order[ends[c] - counts[c]:ends[c]]) for c in range(p.channels)
                     if counts[c]]
        work = []
        for c, sel in parts:
            b, r, g = bank[sel], row[sel], grp[sel]
            w = wr[sel] if per_wr else np.full(len(b), wr, bool)
            window = p.write_queue_depth if w.any() else p.read_queue_depth
            if len(b) > 1:
                sched = self._frfcfs(self.channels[c], b, r, window)
                if sched is not None:
                    b, r, g, w = b[sched], r[sched], g[sched], w[sched]
            # runs: consecutive bursts on one bank, row and direction
            n = len(b)
            if n > 1:
                cut = np.flatnonzero((b[1:] != b[:-1]) | (r[1:] != r[:-1]) | (w[1:] != w[:-1])) + 1
                heads = np.concatenate(([0], cut))
                cnts = np.diff(np.concatenate((heads, [n])))
                runs = list(zip(b[heads].tolist(), r[heads].tolist(), g[heads].tolist(),
                                cnts.tolist(), w[heads].tolist()))
            else:
                runs = ((int(b[0]), int(r[0]), int(g[0]), 1, bool(w[0])),)
            work.append((self.channels[c], runs))
        return work

    # ------------------------------------------------------------------ fast path
    # A contiguous single-direction `service` call under a mapping whose least significant
    # fields are `column` and `channel` splits, per channel, into a few "row runs" (consecutive
    # bursts on one bank and row). `_service_fast` computes those runs arithmetically (no numpy)
    # and hands them to the same scheduler as the general path; it declines (returns None) when
    # FR-FCFS would reorder.
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
        self._blocks = {}  # decode cache: block -> (bank, row, group)
        p = self.params
        self._energy = (p.act_energy_pj, p.ref_energy_pj, self.burst_bytes * 8,
                        p.wr_energy_pj_per_bit, p.rd_energy_pj_per_bit)
        self._fast1 = (self._block, p.channels, self._fast_col_low, self._ncol, p.tck_ps,
                       p.ctrl_delay_ck, self._act_hist, p.trrd_l_ck, p.trrd_s_ck, p.tfaw_ck,
                       p.page_policy == "closed")
        # stream fast-forward: with row the most significant live field, consecutive blocks
        # cycle through all banks (same bank again nbanks blocks later, next row); FR-FCFS
        # cannot reorder when no queue window reaches from one block to the next on its bank
        live_up = [n for n, s in self._upper if s > 1]
        window = max(p.read_queue_depth, p.write_queue_depth)
        ok = (self._fast and bool(live_up) and live_up[-1] == "row"
              and (self.nbanks - 1) * self._ncol + 1 >= window)
        sample = -(-p.stream_sample_bytes // (self.burst_bytes * self._block))
        self._ff_head = max(sample, _FF_MIN_HEAD) if ok and p.stream_sample_bytes else 0

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
        """Time a contiguous call over per-channel row runs; None where FR-FCFS would reorder."""
        if first // self._block == last // self._block:
            return self._service_one_block(first, last, wr, arrival_ps, nbytes)
        if self._ff_head and last // self._block - first // self._block > self._ff_head:
            return self._service_stream(first, last, wr, arrival_ps, nbytes)
        p = self.params
        S, nch, col_low, ncol = self._block, p.channels, self._fast_col_low, self._ncol
        window = p.write_queue_depth if wr else p.read_queue_depth
        arr = self._arrival_ck(arrival_ps)
        chans = self.channels
        blocks = self._blocks
        u0, u1 = first // S, last // S
        runs = [[] for _ in range(nch)]  # per channel, schedule order: (bank, row, grp, count, wr)
        banks = set()
        for u in range(u0, u1 + 1):
            base = u * S
            a = first if first > base else base
            b = last if last < base + S - 1 else base + S - 1
            run = blocks.get(u)
            if run is None:
                run = self._decode_block(u)
            bank, row, grp = run
            banks.add(bank)
            if nch == 1:
                runs[0].append((bank, row, grp, b - a + 1, wr))
            elif col_low:
                lo = base
                for c in range(nch):
                    hi = lo + ncol - 1
                    cnt = (b if b < hi else hi) - (a if a > lo else lo) + 1
                    if cnt > 0:
                        runs[c].append((bank, row, grp, cnt, wr))
                    lo += ncol
            else:
                for c in range(nch):
                    cnt = (b - c) // nch - (a - 1 - c) // nch
                    if cnt > 0:
                        runs[c].append((bank, row, grp, cnt, wr))
        if len(banks) < u1 - u0 + 1:  # a repeated bank: does FR-FCFS reorder?
            for rl in runs:
                # FR-FCFS has nothing to reorder iff no (window, bank) sees two rows
                if len(rl) > 1:
                    seen = {}
                    pos = 0
                    for bank, row, _g, cnt, _w in rl:
                        prev = seen.get(bank)
                        if prev is not None and prev[0] != row and prev[1] >= pos // window:
                            return None
                        pos += cnt
                        seen[bank] = (row, (pos - 1) // window)
        start, first_data, done, misses, acts, refs = self._schedule(
            [(chans[c], runs[c]) for c in range(nch) if runs[c]], arr)
        n = last - first + 1
        return self._response(arrival_ps, start, first_data, done, nbytes, n, n if wr else 0,
                              misses, acts, refs)

    def _block_work(self, u: int, first: int, last: int, wr: bool):
        """[(channel state, [run])] for the bursts of block u within [first, last]."""
        S, nch, col_low, ncol = self._block, self.params.channels, self._fast_col_low, self._ncol
        base = u * S
        a = first if first > base else base
        b = last if last < base + S - 1 else base + S - 1
        bank, row, grp = self._decode_block(u)
        chans = self.channels
        if nch == 1:
            return [(chans[0], [(bank, row, grp, b - a + 1, wr)])]
        work = []
        for c in range(nch):
            if col_low:
                lo = base + c * ncol
                cnt = (b if b < lo + ncol - 1 else lo + ncol - 1) - (a if a > lo else lo) + 1
            else:
                cnt = (b - c) // nch - (a - 1 - c) // nch
            if cnt > 0:
                work.append((chans[c], [(bank, row, grp, cnt, wr)]))
        return work

    def _service_stream(self, first: int, last: int, wr: bool, arrival_ps: int, nbytes: int):
        """Stream fast-forward of a contiguous call over more than `_ff_head` + 1 row blocks.

        Head: blocks timed exactly, one `_schedule` per block, until `_ff_head` blocks are done
        and two refresh-free blocks after `_FF_WARM` were measured: per channel, the bus-tail
        advance per block P and, from the last measured block, its bank's times relative to
        the bus tail. Middle (whole blocks up to the last): per channel the tail moves by
        n x P plus, for each refresh due in that span (tREFI apart from the channel's next
        one), a stall: the model's refresh rule (PRE after the open banks' tRAS / recovery,
        tRP, tRFC, then ACT + tRCD) applied to the head's end state. The state is left as the
        exact run would leave it: banks of the blocks after the last refresh open on their rows
        with the measured relative times (ACT history alike), earlier ones closed by it, bus
        tail, queue and recent bus gaps shifted by the span, refresh clock advanced. ACTs and
        misses: the measured per-block count x n, plus one re-ACT per refresh. Last block:
        exact.
        """
        S = self._block
        u0, u1 = first // S, last // S
        arr = self._arrival_ck(arrival_ps)
        chans = self.channels
        nch = len(chans)
        first_cmd = first_data = done = None
        misses = acts = refs = 0
        period = [0] * nch  # bus-tail advance over the measured blocks
        rel = [None] * nch  # measured block's bank: (act_ck, pre_ready, act_ready, col_ready,
        #                     bank_col) - bus tail, and the block's bus-tail advance
        lc_prev = [st.last_col for st in chans]
        n_meas = m_meas = a_meas = 0
        u = u0
        while u < u1:
            s, fd, dn, mi, ac, rf = self._schedule(self._block_work(u, first, last, wr), arr,
                                                   close=False)
            if first_cmd is None or s < first_cmd:
                first_cmd = s
            if first_data is None or fd < first_data:
                first_data = fd
            if done is None or dn > done:
                done = dn
            misses += mi
            acts += ac
            refs += rf
            if u - u0 >= _FF_WARM and not rf:
                n_meas += 1
                m_meas += mi
                a_meas += ac
                bank = self._decode_block(u)[0]
                for c, st in enumerate(chans):
                    lc = st.last_col
                    period[c] += lc - lc_prev[c]
                    rel[c] = (st.act_ck[bank] - lc, st.pre_ready[bank] - lc,
                              st.act_ready[bank] - lc, st.col_ready[bank] - lc,
                              st.bank_col[bank] - lc, lc - lc_prev[c])
            lc_prev = [st.last_col for st in chans]
            u += 1
            if u - u0 >= self._ff_head and n_meas >= 2:
                break
        n_mid = u1 - u
        if n_mid > 0:
            m, a, r = self._fast_forward(u, n_mid, wr, period, n_meas, rel)
            misses += m_meas * n_mid // n_meas + m
            acts += a_meas * n_mid // n_meas + a
            refs += r
            self._extrapolated_bytes += n_mid * S * self.burst_bytes
        s, fd, dn, mi, ac, rf = self._schedule(self._block_work(u1, first, last, wr), arr)
        if done is None or dn > done:
            done = dn
        misses += mi
        acts += ac
        refs += rf
        n = last - first + 1
        return self._response(arrival_ps, first_cmd, first_data, done, nbytes, n,
                              n if wr else 0, misses, acts, refs)

    def _fast_forward(self, u: int, n_mid: int, wr: bool, period, n_meas: int, rel):
        """Advance every channel's state over blocks u .. u + n_mid - 1 (see `_service_stream`);
        returns (misses, ACTs, refreshes) from the refreshes in that span."""
        p = self.params
        ref_on, trefi, trcd = p.refresh_enabled, p.trefi_ck, p.trcd_ck
        bpr = self.banks_per_rank
        q_wr = bool(wr)
        # the last block on each bank (newest first): (blocks before the last, bank, row, grp)
        last_blocks, seen_all = [], set()
        for k in range(n_mid - 1, max(-1, n_mid - 1 - self.nbanks), -1):
            bank, row, grp = self._decode_block(u + k)
            if bank not in seen_all:
                seen_all.add(bank)
                last_blocks.append((n_mid - 1 - k, bank, row, grp))
        grp_last = last_blocks[0][3]
        extra = 0
        for c, st in enumerate(self.channels):
            per = period[c] / n_meas  # clocks per block
            lc = st.last_col
            r_act, r_pre, r_ar, r_cr, r_bc, r_blk = rel[c]
            nref = 0
            end = lc + n_mid * per
            if ref_on and st.next_ref <= end:
                stall = self._refresh_stall(st, per / self._ncol)
                while st.next_ref + nref * trefi <= end:
                    nref += 1
                    end += stall
            t_end = round(end)
            span = t_end - lc
            # banks of the last blocks: open on their rows, times relative to their block end
            ref_end = round(st.next_ref + (nref - 1) * trefi + stall - trcd) if nref else None
            seen = {}  # bank -> its tRRD group
            for j, bank, row, grp in last_blocks:
                e = round(end - j * per)
                if nref and e < ref_end + trcd:
                    break  # closed by the last refresh
                seen[bank] = grp
                st.open_row[bank] = row
                st.act_ck[bank] = e + r_act
                st.pre_ready[bank] = e + r_pre
                st.act_ready[bank] = e + r_ar
                st.col_ready[bank] = e + r_cr
                st.bank_col[bank] = e + r_bc
            if nref:
                for b in range(self.nbanks):
                    if b not in seen:
                        st.open_row[b] = -1
                        if st.act_ready[b] < ref_end:
                            st.act_ready[b] = ref_end
                st.next_ref += nref * trefi
                extra += nref
            # ACT history: the banks just opened (sorted by time), after the older entries
            acts_new = sorted((st.act_ck[b], b) for b in seen)
            for r in range(p.ranks):
                pairs = list(zip(st.act_t[r], st.act_g[r]))
                pairs += [(t, seen[b]) for t, b in acts_new if b // bpr == r]
                pairs.sort()
                st.act_t[r] = [t for t, _ in pairs]
                st.act_g[r] = [g for _, g in pairs]
            q = st.q_wr if q_wr else st.q_rd
            q[:] = [x + span for x in q]
            st.holes[:] = [[h[0] + span, h[1], h[2], h[3] + span, h[4], h[5]]
                           for h in st.holes if h[0] >= lc - r_blk]
            st.last_col = t_end
            st.last_grp = grp_last
            st.last_wr = q_wr
        self.refreshes += extra
        return extra, extra, extra

    def _service_one_block(self, first: int, last: int, wr: bool, arrival_ps: int, nbytes: int):
        """A call inside one (bank, row) block: at most one run per channel, nothing to reorder.

        Each channel's run is timed inline, as `_schedule` would time it, in its common case:
        the whole run issues in one piece after the bus tail (no bus gap to fill, no refresh
        due before its column commands). Nothing is committed for a channel until that is
        known; any other case hands the channel to `_schedule` (its only side effects before
        committing, dropping expired gaps and ACT history, are idempotent).
        """
        (ref_on, gl, gs, tras, trp, trc, trcd, bpr, tcl, tcwl, bck, rtw, wtr, rec_rd, rec_wr,
         qrd, qwr, hole_min, wtr_s) = self._consts
        (S, nch, col_low, ncol, tck, ctrl, hist, trrd_l, trrd_s, tfaw, closed) = self._fast1
        run_gaps = self._bg_gaps and gl >= hole_min
        align = self._align_win if self._align else 0  # A-69 window, 0: off
        max_holes = self._max_holes
        arr = math.ceil(arrival_ps / tck - 1e-9) + ctrl
        u = first // S
        run = self._blocks.get(u)
        if run is None:
            run = self._decode_block(u)
        b, row, grp = run
        if wr:
            lat, rec, Q = tcwl, rec_wr, qwr
        else:
            lat, rec, Q = tcl, rec_rd, qrd
        first_cmd = first_data = done = None
        misses = acts = refs = irefs = 0  # irefs: refreshes issued inline here
        chans = self.channels
        lo_c = u * S
        for ch in range(nch):
            if nch == 1:
                cnt = last - first + 1
            elif col_low:
                hi = lo_c + ncol - 1
                cnt = (last if last < hi else hi) - (first if first > lo_c else lo_c) + 1
                lo_c += ncol
                if cnt <= 0:
                    continue
            else:
                cnt = (last - ch) // nch - (first - 1 - ch) // nch
                if cnt <= 0:
                    continue
            st = chans[ch]
            holes = st.holes
            if holes and holes[0][3] <= arr:
                holes[:] = [h for h in holes if h[3] > arr]
            nr = st.next_ref if ref_on else _NEVER
            q = st.q_wr if wr else st.q_rd
            adm = q[0] if len(q) >= Q and q[0] > arr else arr
            while True:  # restarted after a refresh, as `_schedule` re-evaluates the burst
                ok = True
                act = None
                open_b = st.open_row[b]
                if open_b != row:  # --- ACT (as in `_schedule`)
                    t = adm
                    pre = None
                    if open_b >= 0:
                        pre = st.pre_ready[b]
                        if t > pre:
                            pre = t
                        x = st.act_ck[b] + tras
                        if x > pre:
                            pre = x
                        t = pre + trp
                    x = st.act_ready[b]
                    if x > t:
                        t = x
                    r = b // bpr
                    at = st.act_t[r]
                    ag = st.act_g[r]
                    if len(at) > 8 and at[0] < arr - hist:
                        k = bisect.bisect_left(at, arr - hist)
                        del at[:k]
                        del ag[:k]
                    if at:
                        last_a = at[-1]
                        x = last_a + (trrd_l if ag[-1] == grp else trrd_s)
                        y = at[-4] + tfaw if len(at) >= 4 else _NEG
                        if t < x or t < y:
                            if t >= last_a:  # after every earlier ACT: tRRD, tFAW to the last
                                t = x if x > y else y
                            else:
                                t = self._act_slot(st, r, grp, t)
                        if align:
                            t = self._act_align(st, r, grp, t)
                    if t >= nr:
                        irefs += self._refresh(st, t)
                        nr = st.next_ref
                        continue
                    act = t
                    R = t + trcd
                else:
                    R = st.col_ready[b]
                # --- column commands after the bus tail, in one piece
                x = st.bank_col[b] + gl
                if x > R:
                    R = x
                if adm > R:
                    R = adm
                gap = False
                if holes and holes[-1][3] > R:  # a bus gap it might fill: as `_schedule`
                    for h in holes[bisect.bisect_right(holes, R, key=_HI):]:
                        lo, lg, lw, hi, hg, hw = h
                        g = gl if lg == grp else gs
                        if lw != wr:
                            x = (wtr if lg == grp else wtr_s) if lw else rtw
                            if x > g:
                                g = x
                        c = lo + g
                        if R > c:
                            c = R
                        g = gl if hg == grp else gs
                        if hw != wr:
                            x = (wtr if hg == grp else wtr_s) if wr else rtw
                            if x > g:
                                g = x
                        if c + g <= hi:
                            ok = False  # it fits: `_schedule` places it
                            break
                    if not ok:
                        break
                lc = st.last_col
                c = R
                if lc > _NEG:
                    lg = st.last_grp
                    g = gl if lg == grp else gs
                    lw = st.last_wr
                    if lw != wr:
                        x = (wtr if lg == grp else wtr_s) if lw else rtw
                        if x > g:
                            g = x
                    if lc + g < R:
                        if R >= nr and act is None:
                            irefs += self._refresh(st, R)
                            nr = st.next_ref
                            continue
                        gap = R - lc >= hole_min
                        if align:  # `stall_slot_align`, as `_schedule`
                            x = lc - (lc - R) // gs * gs
                            if x < nr and R - lc < align:
                                c = R = x
                                gap = R - lc >= hole_min
                    else:
                        c = lc + g
                        gap = g >= hole_min and self._bg_gaps
                if c >= nr and act is None:
                    irefs += self._refresh(st, c)
                    nr = st.next_ref
                    continue
                end = c + (cnt - 1) * gl
                if end >= nr and (act is None or cnt > 1):  # split by a refresh: `_schedule`
                    ok = False
                elif 1 < cnt < ncol and run_gaps:  # slots inside the run to offer: `_schedule`
                    ok = False
                break
            if not ok:
                s, fd, dn, mi, ac, rf = self._schedule(((st, ((b, row, grp, cnt, wr),)),), arr)
                misses += mi
                acts += ac
                refs += rf
                if first_cmd is None or s < first_cmd:
                    first_cmd = s
                if first_data is None or fd < first_data:
                    first_data = fd
                if done is None or dn > done:
                    done = dn
                continue
            pre_ready = st.pre_ready
            if act is not None:  # commit the ACT
                st.open_row[b] = row
                st.act_ck[b] = act
                st.act_ready[b] = act + trc
                st.col_ready[b] = act + trcd
                if act >= at[-1] if at else True:
                    at.append(act)
                    ag.append(grp)
                else:
                    i = bisect.bisect_right(at, act)
                    at.insert(i, act)
                    ag.insert(i, grp)
                misses += 1
                acts += 1
                s = pre if pre is not None else act
            else:
                s = c
            if gap:
                holes.append([lc, lg, lw, c, grp, wr])
                if len(holes) > max_holes:
                    del holes[0]
            st.last_col = end
            st.last_grp = grp
            st.last_wr = wr
            st.bank_col[b] = end
            x = end + rec  # > act: covers pre_ready >= ACT
            if x > pre_ready[b]:
                pre_ready[b] = x
            if cnt >= Q:
                q[:] = range(end - (Q - 1) * gl, end + 1, gl)
            else:
                if cnt == 1:
                    q.append(c)
                else:
                    q.extend(range(c, end + 1, gl))
                if len(q) > Q:
                    del q[:len(q) - Q]
            if first_cmd is None or s < first_cmd:
                first_cmd = s
            x = c + lat
            if first_data is None or x < first_data:
                first_data = x
            x = end + lat + bck
            if done is None or x > done:
                done = x
            if closed:
                self._close_all(st)
        if irefs:
            self.refreshes += irefs
            refs += irefs
        n = last - first + 1  # as `_response`, inline
        n_rows = n
        c = self._carry
        if c[0]:  # drained writes not yet reported
            n_rows += c[0]
            misses += c[1]
            acts += c[2]
            refs += c[3]
            self._carry = [0, 0, 0, 0]
        e_act, e_ref, bits, e_wr, e_rd = self._energy
        energy = (acts * e_act + refs * e_ref
                  + bits * ((n * e_wr + 0 * e_rd) if wr else (0 * e_wr + n * e_rd)))
        x = math.ceil(first_cmd * tck - 1e-6)
        a = int(arrival_ps)
        return MemoryResponse(a if a > x else x,
                              math.ceil(first_data * tck - 1e-6), math.ceil(done * tck - 1e-6),
                              nbytes, n_rows - misses, misses, energy)

    # ------------------------------------------------------------------ write batching
    def flush(self, now_ps: int) -> MemoryResponse:
        """Drain every buffered write (no earlier than `now_ps`): the run's end. The response
        carries the drained writes' row hits, misses and ACT / refresh energy (no bytes)."""
        arr = self._arrival_ck(now_ps)
        first_cmd, first_data, done = self._drain_all(arr)
        if first_cmd is None:
            first_cmd = first_data = done = arr
        return self._response(now_ps, first_cmd, first_data, done, 0, 0, 0, 0, 0, 0)

    def _reads_queued(self, first: int, last: int, arr: int) -> bool:
        """Whether a channel that bursts first..last touch has a read whose column command is
        after clock arr (after `_drain_idle`, only such channels hold buffered writes)."""
        chans = self.channels
        nch = len(chans)
        touched = chans
        if nch > 1 and self._fast:  # the channel is a low address field: its bursts' channels
            if self._fast_col_low:
                first, last = first // self._ncol, last // self._ncol
            if last - first < nch - 1:
                c0, c1 = first % nch, last % nch
                touched = chans[c0:c1 + 1] if c0 <= c1 else chans[c0:] + chans[:c1 + 1]
        for st in touched:
            q = st.q_rd
            if q and q[-1] > arr:
                return True
        return False

    def _pop(self, st: _Channel, k: int):
        """Take the k oldest buffered writes out of channel st: (st, runs) for `_drained`."""
        buf = st.wbuf
        if len(buf) == 1 and buf[0][3] == k:  # common: one run, drained whole
            b, row, g, cnt = buf.pop()
            runs = ((b, row, g, cnt, True),)
        else:
            runs = self._take(buf, k)
        st.wn -= k
        if not st.wn:
            st.w_arr = _NEG
        self._wpend -= k
        self._carry[0] += k
        return st, runs

    def _drained(self, work, arr: int):
        """Time popped writes (`_pop`) from clock arr; their misses, ACTs and refreshes go to
        the carry. Returns (first command, first data, data end) in clocks."""
        s, fd, dn, mi, ac, rf = self._schedule(work, arr)
        c = self._carry
        c[1] += mi
        c[2] += ac
        c[3] += rf
        return s, fd, dn

    @staticmethod
    def _take(buf, k: int):
        """Remove the k oldest bursts of write buffer `buf`; their runs grouped by bank and row
        (first appearance order)."""
        groups = {}
        left = k
        i = 0
        while left:
            b, row, g, cnt = buf[i]
            if cnt > left:
                buf[i][3] = cnt - left
                cnt = left
            else:
                i += 1
            left -= cnt
            x = groups.get((b, row))
            if x is None:
                groups[(b, row)] = [b, row, g, cnt, True]
            else:
                x[3] += cnt
        del buf[:i]
        return [tuple(x) for x in groups.values()]

    def _drain_idle(self, arr: int) -> None:
        """Drain each channel's buffered writes if its read queue ran empty by clock arr."""
        for st in self.channels:
            if st.wn:
                q = st.q_rd
                t = q[-1] if q else _NEG
                if t <= arr:
                    self._drained((self._pop(st, st.wn),), t if t > st.w_arr else st.w_arr)

    def _drain_all(self, arr: int):
        """Drain every channel's buffered writes from clock arr; (first command, first data,
        data end) over them, None where nothing was buffered."""
        work = [self._pop(st, st.wn) for st in self.channels if st.wn]
        return self._drained(work, arr) if work else (None, None, None)

    def _service_buffered(self, first: int, last: int, arr: int, arrival_ps: int, nbytes: int):
        """A write call into the channels' write buffers (`write_batching`)."""
        if self._fast:
            S = self._block
            u0, u1 = first // S, last // S
            if u0 == u1:
                work = self._block_work(u0, first, last, True)
            else:
                per = {}
                for u in range(u0, u1 + 1):
                    for st, runs in self._block_work(u, first, last, True):
                        per.setdefault(st, []).extend(runs)
                work = per.items()
        else:
            work = self._work(np.arange(first, last + 1, dtype=np.int64), True)
        hi, lo = self._w_hi, self._w_lo
        own, old = [], []  # drains with some of this call's bursts, drains of older ones only
        for st, runs in work:
            n = 0
            buf = st.wbuf
            for b, row, g, cnt, _w in runs:
                buf.append([b, row, g, cnt])
                n += cnt
            st.wn += n
            self._wpend += n
            st.w_arr = arr
            q = st.q_rd
            if not q or q[-1] <= arr:
                k = st.wn  # no read queued: drain now
            elif st.wn >= hi:
                k = st.wn - lo
            else:
                continue
            (own if k > st.wn - n else old).append(self._pop(st, k))
        if old:
            self._drained(old, arr)
        if own:
            first_cmd, first_data, done = self._drained(own, arr)
        else:  # accepted into the buffers
            first_cmd = first_data = done = arr
        n = last - first + 1
        return self._response(arrival_ps, first_cmd, first_data, done, nbytes, n, n, 0, 0, 0,
                              n_rows=0)

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

    def _act_align(self, st: _Channel, r: int, grp: int, t: int) -> int:
        """`stall_slot_align` for an ACT placed at t, later than tRRD allows after the ACT before
        it (p, less than `_align_win` back): the earliest valid time on p's tRRD_S grid."""
        at = st.act_t[r]
        i = bisect.bisect_left(at, t)
        if i:
            p = at[i - 1]
            rl, rs, _ = self._rrd_faw
            if (t - p) % rs and p + (rl if st.act_g[r][i - 1] == grp else rs) < t < \
                    p + self._align_win:
                return self._act_slot(st, r, grp, p - (p - t) // rs * rs)
        return t

    def _act_slot(self, st: _Channel, r: int, grp: int, t: int) -> int:
        """Earliest ACT time >= t on rank r that keeps tRRD_S/L to both neighbouring ACTs and at
        most four ACTs in any tFAW window (ACTs may go between earlier-scheduled ones)."""
        at, ag = st.act_t[r], st.act_g[r]
        rl, rs, faw = self._rrd_faw
        n = len(at)
        bisect_right = bisect.bisect_right
        while True:
            i = bisect_right(at, t)
            nt = t
            if i:
                x = at[i - 1] + (rl if ag[i - 1] == grp else rs)
                if x > nt:
                    nt = x
            if i < n:
                gap = rl if ag[i] == grp else rs
                if at[i] - t < gap:  # too close to the next ACT
                    x = at[i] + gap
                    if x > nt:
                        nt = x
            if nt == t and n >= 4:
                # windows of five consecutive ACTs (t inserted at index i) must span >= tFAW:
                # the one ending at t moves t to at[i-4] + tFAW; any other one (t not last)
                # moves t past the next ACT (at[i] + tRRD)
                if i >= 4 and t - at[i - 4] < faw:
                    nt = at[i - 4] + faw
                if i < n:
                    hi = i if i <= n - 4 else n - 4
                    s0 = i - 3 if i >= 3 else 0
                    for s in range(s0, hi + 1):
                        if (at[s + 3] - at[s] if s < i else at[i + 3] - t) < faw:
                            x = at[i] + (rl if ag[i] == grp else rs)
                            if x > nt:
                                nt = x
                            break
            if nt == t:
                return t
            t = nt

    def _schedule(self, work, arr: int, close: bool = True):
        """Time, for each (channel state, runs [(bank, row, grp, count, wr)]) of `work`, the runs
        in schedule order.

        Per burst: admission (the queue holds `queue_depth` bursts per direction: a burst enters
        when the queue_depth-th latest earlier column command has issued), ACT on a row miss
        (PRE after tRAS / tRTP / write recovery, tRP, tRC, `_act_slot`), then the column command
        at the earliest time >= max(tRCD after ACT, the bank's previous column + tCCD_L,
        admission) that keeps the column-to-column gaps (tCCD_S/L, turnarounds) to its bus
        neighbours: either in a gap an earlier stall left on the bus, or after the bus tail.
        Bursts of other banks thus overtake a burst that waits for its bank (bank parallelism);
        each bank's bursts stay in order. Returns (first command, first data, last data end:
        min, min, max over the channels; misses, ACTs, refreshes: sums) in clocks.
        """
        (ref_on, gl, gs, tras, trp, trc, trcd, bpr, tcl, tcwl, bck, rtw, wtr, rec_rd, rec_wr,
         qrd, qwr, hole_min, wtr_s) = self._consts
        hist = self._act_hist
        p = self.params
        trrd_l, trrd_s, tfaw = p.trrd_l_ck, p.trrd_s_ck, p.tfaw_ck
        first_cmd = first_data = _NEVER  # every run commits at least one burst
        done = _NEG
        misses = acts = refs = 0
        insort = bisect.insort
        closed = close and self.params.page_policy == "closed"
        bg_gaps = self._bg_gaps
        run_gaps = bg_gaps and gl >= hole_min
        align = self._align_win if self._align else 0  # A-69 window, 0: off
        max_holes = self._max_holes
        ncol = self._ncol
        for st, runs in work:
            open_row, col_ready, pre_ready = st.open_row, st.col_ready, st.pre_ready
            act_ck, act_ready, bank_col = st.act_ck, st.act_ready, st.bank_col
            holes, q_rd, q_wr, act_t_r, act_g_r = st.holes, st.q_rd, st.q_wr, st.act_t, st.act_g
            last_col, last_grp, last_wr = st.last_col, st.last_grp, st.last_wr
            if holes and holes[0][3] <= arr:
                holes[:] = [h for h in holes if h[3] > arr]
            nr = st.next_ref if ref_on else _NEVER
            refs0 = refs
            for b, row, grp, cnt, wr in runs:
                if wr:
                    lat, rec, q, Q = tcwl, rec_wr, q_wr, qwr
                else:
                    lat, rec, q, Q = tcl, rec_rd, q_rd, qrd
                m = 0
                just = False  # the burst right after its ACT completes even if a refresh is due
                while m < cnt:
                    adm = q[0] if len(q) >= Q and q[0] > arr else arr
                    if open_row[b] != row:
                        t = adm
                        pre = None
                        if open_row[b] >= 0:
                            pre = pre_ready[b]
                            if t > pre:
                                pre = t
                            x = act_ck[b] + tras
                            if x > pre:
                                pre = x
                            t = pre + trp
                        if act_ready[b] > t:
                            t = act_ready[b]
                        r = b // bpr
                        at = act_t_r[r]
                        if len(at) > 8 and at[0] < arr - hist:  # cannot constrain ACTs >= arr
                            k = bisect.bisect_left(at, arr - hist)
                            del at[:k]
                            del act_g_r[r][:k]
                        ag = act_g_r[r]
                        if at:  # common case: after every earlier ACT of the rank
                            la = at[-1]
                            x = la + (trrd_l if ag[-1] == grp else trrd_s)
                            y = at[-4] + tfaw if len(at) >= 4 else _NEG
                            if t < x or t < y:
                                if t >= la:  # still after them: tRRD and tFAW to the last ones
                                    t = x if x > y else y
                                else:
                                    t = self._act_slot(st, r, grp, t)
                            if align:
                                t = self._act_align(st, r, grp, t)
                        if t >= nr:
                            refs += self._refresh(st, t)
                            nr = st.next_ref
                            continue
                        open_row[b] = row
                        act_ck[b] = t
                        act_ready[b] = t + trc
                        col_ready[b] = t + trcd
                        if pre_ready[b] < t:
                            pre_ready[b] = t
                        if not at or t >= at[-1]:
                            at.append(t)
                            ag.append(grp)
                        else:
                            i = bisect.bisect_right(at, t)
                            at.insert(i, t)
                            ag.insert(i, grp)
                        misses += 1
                        acts += 1
                        x = pre if pre is not None else t
                        if x < first_cmd:
                            first_cmd = x
                        just = True
                    R = col_ready[b]
                    x = bank_col[b] + gl
                    if x > R:
                        R = x
                    if adm > R:
                        R = adm
                    hole = -1
                    if holes and holes[-1][3] > R:  # try the gaps stalls left on the bus
                        for hi_ in range(bisect.bisect_right(holes, R, key=_HI), len(holes)):
                            lo, lg, lw, hi, hg, hw = holes[hi_]
                            g = gl if lg == grp else gs
                            if lw != wr:
                                x = (wtr if lg == grp else wtr_s) if lw else rtw
                                if x > g:
                                    g = x
                            c = lo + g
                            if R > c:
                                c = R
                            g = gl if hg == grp else gs
                            if hw != wr:
                                x = (wtr if hg == grp else wtr_s) if wr else rtw
                                if x > g:
                                    g = x
                            if c + g <= hi:
                                if align:  # `stall_slot_align`: on the slot grid from lo
                                    x = lo - (lo - c) // gs * gs
                                    if x + g <= hi and c - lo < align:
                                        c = x
                                hole = hi_
                                break
                    if hole >= 0:
                        take = 1
                        if c >= nr and not just:
                            refs += self._refresh(st, c)
                            nr = st.next_ref
                            continue
                        lo, lg, lw, hi, hg, hw = holes[hole]
                        new = []
                        if c - lo >= hole_min:
                            new.append([lo, lg, lw, c, grp, wr])
                        if hi - c >= hole_min:
                            new.append([c, grp, wr, hi, hg, hw])
                        holes[hole:hole + 1] = new
                        end = c
                    else:  # after the bus tail; the rest of the run follows at tCCD_L
                        lc = last_col
                        spaced = False  # a bank-group slot to offer (`bank_group_gaps`)
                        if lc > _NEG:
                            g = gl if last_grp == grp else gs
                            if last_wr != wr:
                                x = (wtr if last_grp == grp else wtr_s) if last_wr else rtw
                                if x > g:
                                    g = x
                            c = lc + g
                            if R > c:
                                if R >= nr and not just:
                                    refs += self._refresh(st, R)
                                    nr = st.next_ref
                                    continue
                                if align:  # `stall_slot_align`: on the slot grid from lc
                                    x = lc - (lc - R) // gs * gs
                                    if x < nr and R - lc < align:
                                        R = x
                                if R - lc >= hole_min:  # a stall: later bursts may fill the gap
                                    holes.append([lc, last_grp, last_wr, R, grp, wr])
                                    if len(holes) > max_holes:
                                        del holes[0]
                                c = R
                            elif bg_gaps and g >= hole_min:
                                spaced = True
                        else:
                            c = R
                        if c >= nr and not just:
                            refs += self._refresh(st, c)
                            nr = st.next_ref
                            continue
                        if spaced:
                            holes.append([lc, last_grp, last_wr, c, grp, wr])
                            if len(holes) > max_holes:
                                del holes[0]
                        rest = cnt - m
                        if c >= nr:
                            take = 1
                        else:
                            take = (nr - c - 1) // gl + 1
                            if take > rest:
                                take = rest
                        end = c + (take - 1) * gl
                        if take > 1 and run_gaps and cnt < ncol:  # slots inside (`bank_group_gaps`)
                            x = c + (take - 1 - max_holes if take > max_holes + 1 else 0) * gl
                            while x < end:
                                holes.append([x, grp, wr, x + gl, grp, wr])
                                x += gl
                            if len(holes) > max_holes:
                                del holes[:len(holes) - max_holes]
                        last_col = end
                        last_grp = grp
                        last_wr = wr
                    # commit the `take` bursts c, c + gl, ..., end on bank b
                    just = False
                    bank_col[b] = end
                    x = end + rec
                    if x > pre_ready[b]:
                        pre_ready[b] = x
                    if hole >= 0:
                        insort(q, c)
                        if len(q) > Q:
                            del q[0]
                    elif take >= Q:
                        q[:] = range(end - (Q - 1) * gl, end + 1, gl)
                    else:  # after the tail: later than every queued column time
                        if take == 1:
                            q.append(c)
                        else:
                            q.extend(range(c, end + 1, gl))
                        if len(q) > Q:
                            del q[:len(q) - Q]
                    if c < first_cmd:
                        first_cmd = c
                    x = c + lat
                    if x < first_data:
                        first_data = x
                    x = end + lat + bck
                    if x > done:
                        done = x
                    m += take
            st.last_col, st.last_grp, st.last_wr = last_col, last_grp, last_wr
            self.refreshes += refs - refs0
            if closed:
                self._close_all(st)
        return first_cmd, first_data, done, misses, acts, refs

    def _schedule_sampled(self, work, arr: int):
        """`_schedule` with gather sampling (A-72, `gather_sample_bursts` = H): on a channel with
        more than 3 H bursts, a head of whole runs is timed in chunks of H / 4 until at least H
        bursts are done (the first chunk lets the queue settle; the bus-tail advance over the
        others, less a `_refresh_stall` per refresh in them, is the rate per burst), the runs up
        to the last H / 2 bursts are skipped by `_skip`, and the rest is timed. Other channels
        are timed in full."""
        head = self._gather_head
        chunk = max(head // 4, 1)
        first_cmd = first_data = _NEVER
        done = _NEG
        misses = acts = refs = 0

        def timed(st, runs, close):
            nonlocal first_cmd, first_data, done, misses, acts, refs
            s, fd, dn, mi, ac, rf = self._schedule([(st, runs)], arr, close)
            first_cmd, first_data, done = min(first_cmd, s), min(first_data, fd), max(done, dn)
            misses, acts, refs = misses + mi, acts + ac, refs + rf
            return rf

        for st, runs in work:
            cum = np.cumsum([r[3] for r in runs])
            i = 0
            if cum[-1] > 3 * head:
                tail = int(np.searchsorted(cum, cum[-1] - head // 2))  # first run of the tail
                meas_b = meas_ck = meas_rf = 0
                while i < tail and (i == 0 or cum[i - 1] < head):
                    done_b = int(cum[i - 1]) if i else 0
                    j = min(int(np.searchsorted(cum, done_b + chunk)) + 1, tail)
                    lc0 = st.last_col
                    rf = timed(st, runs[i:j], False)
                    if i:
                        meas_b += int(cum[j - 1]) - done_b
                        meas_ck += st.last_col - lc0
                        meas_rf += rf
                    i = j
                if i < tail and meas_b:
                    rate = meas_ck / meas_b
                    free = (meas_ck - meas_rf * self._refresh_stall(st, rate)) / meas_b
                    mi, rf = self._skip(st, runs[i:tail], free if free > 0 else rate)
                    misses, acts, refs = misses + mi, acts + mi, refs + rf
                    i = tail
            timed(st, runs[i:], True)
        return first_cmd, first_data, done, misses, acts, refs

    def _skip(self, st: _Channel, runs, per_burst: float) -> tuple[int, int]:
        """Advance channel `st` over `runs` without timing them (A-72): the bus tail moves by
        per_burst x their bursts plus a refresh stall (`_refresh_stall`) per tREFI due in that
        span, and every time of the channel moves with it. Each refresh closes the rows at the
        burst it falls on; a run on a row other than its bank's open one is a miss, and each
        bank is left open on the row of its last run. Returns (misses = ACTs, refreshes)."""
        p = self.params
        n = sum(r[3] for r in runs)
        lc = st.last_col
        end = lc + n * per_burst
        ref_at = []  # bursts done when each refresh falls
        if p.refresh_enabled and st.next_ref <= end:
            stall = self._refresh_stall(st, per_burst)
            while st.next_ref + len(ref_at) * p.trefi_ck <= end:
                ref_at.append((st.next_ref + len(ref_at) * (p.trefi_ck - stall) - lc) / per_burst)
                end += stall
        open_row = st.open_row
        misses = done = k = 0
        nxt = ref_at[0] if ref_at else _NEVER
        for b, row, _g, cnt, _w in runs:
            if done >= nxt:
                open_row[:] = [-1] * len(open_row)
                k += 1
                nxt = ref_at[k] if k < len(ref_at) else _NEVER
            if open_row[b] != row:
                open_row[b] = row
                misses += 1
            done += cnt
        span = round(end) - lc
        for name in ("act_ck", "pre_ready", "act_ready", "col_ready", "bank_col"):
            setattr(st, name, [x + span if x > _NEG else x for x in getattr(st, name)])
        st.act_t = [[t + span for t in at] for at in st.act_t]
        st.q_rd[:] = [x + span for x in st.q_rd]
        st.q_wr[:] = [x + span for x in st.q_wr]
        st.holes[:] = [[h[0] + span, h[1], h[2], h[3] + span, h[4], h[5]] for h in st.holes]
        st.last_col = lc + span
        st.next_ref += len(ref_at) * p.trefi_ck
        self.refreshes += len(ref_at)
        self._skipped_bursts += n
        return misses, len(ref_at)

    def _refresh_stall(self, st: _Channel, burst_ck: float) -> float:
        """Bus-tail delay of one refresh at channel `st`'s state, against the column that would
        have followed the bus tail (one burst of `burst_ck` later): PRE of the open banks (after
        tRAS / recovery), tRP, tRFC, then ACT and tRCD."""
        p = self.params
        lc = st.last_col
        open_row, pre_ready, act_ck = st.open_row, st.pre_ready, st.act_ck
        pre = max((max(pre_ready[b], act_ck[b] + p.tras_ck) for b in range(self.nbanks)
                   if open_row[b] >= 0), default=lc) - lc
        start = max(max(burst_ck / 2, pre) + p.trp_ck, max(st.act_ready) - lc)
        return start + p.trfc_ck + p.trcd_ck - burst_ck

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
        st.holes.clear()  # a burst in a gap before it would reopen a row the refresh closed
        return count
