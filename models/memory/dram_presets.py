"""Named DRAM presets (JEDEC speed bins) for `DramModel`, registered on import.

Timing sources (values used as facts, rounded up to whole clocks as JEDEC prescribes):
- DDR4-3200AA (22-22-22), 8 Gb x8 device (Micron MT40A1G8 organisation: 4 bank groups x 4 banks,
  64K rows, 1K columns): JEDEC JESD79-4 speed-bin and timing tables. tCCD_L = max(5 nCK, 5 ns),
  tRRD_S/L (1 KB page) = max(4 nCK, 2.5 / 4.9 ns), tFAW = 21 ns, tWR = 15 ns, tWTR_L = tRTP =
  7.5 ns, tWTR_S = max(2 nCK, 2.5 ns) = 4 nCK, tRFC (8 Gb) = 350 ns, tREFI = 7.8 us, tRTW = CL +
  BL/2 - CWL + 2.
- LPDDR4-3200 / -2400, 8 Gb per x16 channel (8 banks, 64K rows, 1K columns, BL16): JEDEC
  JESD209-4. RL/WL (DBI off, WL set A) = 28/14 and 24/12; tRCD = tRPpb = 18 ns, tRAS = 42 ns,
  tRRD = 10 ns, tFAW = 40 ns, tWR = 18 ns, tWTR = max(10 ns, 8 nCK), tRTP = max(7.5 ns, 8 nCK),
  tRFCab (8 Gb) = 280 ns, tREFI = 3.904 us; tRTW = RL + BL/2 - WL + 2 + tDQSCKmax (3.5 ns).
- HBM2-2000 in pseudo-channel mode (64-bit pseudo channel, BL4, 4 bank groups x 4 banks, 1 KB
  page, 4H stack of 8 Gb dies = 256 MiB per pseudo channel): JESD235 values as collected in gem5's
  `HBM_2000_4H_1x64` configuration (tRCD 12, tRP 14, tCL 18, tCWL 7, tRAS 28, tCCD_L 3,
  tRRD_S/L 4/6, tFAW 16, tWR 14, tRTP 5, tWTR_L 9, tRTW 18 ns, tREFI 3.9 us) with tRFC = 350 ns
  for 8 Gb dies (JESD235 table, also in Ramulator 2.0's HBM2 model). That configuration gives no
  tWTR_S, so tWTR_L applies to every pair (`twtr_s_ck` unset).

Energy (dynamic; see `DramModel`): per-bit read/write energies are the usual published
per-standard access figures (DDR4 ~15 pJ/bit, LPDDR4 ~4.5 pJ/bit, HBM2 3.9 pJ/bit as reported by
O'Connor et al., "Fine-Grained DRAM", MICRO 2017) - project assumptions, not datasheet values.
ACT+PRE and REF energies follow the Micron TN-40-07 / DRAMPower current method for DDR4 with
Micron MT40A1G8 IDD values (IDD0 48, IDD2N 34, IDD3N 43, IDD5 250 mA at VDD 1.2 V, as listed in
gem5's DDR4_2400_8x8): E_ACT = VDD*(IDD0*tRC - IDD3N*tRAS - IDD2N*(tRC - tRAS)) per device,
E_REF = VDD*(IDD5 - IDD3N)*tRFC per device. LPDDR4 and HBM2 ACT/REF energies are scaled from the
DDR4 figure by page size / capacity and VDD^2 (1.1 V for LPDDR4): estimates, marked as such.
"""

from __future__ import annotations

from .base import register_preset
from .dram import DramModel


def _ddr4_act_pj(devices: int = 8, vdd: float = 1.2, idd0_ma=48, idd3n_ma=43, idd2n_ma=34,
                 trc_ns=46.25, tras_ns=32.0) -> float:
    """ACT+PRE energy of a rank by the IDD0 method (mA * ns * V = pJ)."""
    return devices * vdd * (idd0_ma * trc_ns - idd3n_ma * tras_ns - idd2n_ma * (trc_ns - tras_ns))


def _ddr4_ref_pj(devices: int = 8, vdd: float = 1.2, idd5_ma=250, idd3n_ma=43, trfc_ns=350.0):
    return devices * vdd * (idd5_ma - idd3n_ma) * trfc_ns


_DDR4_ACT_PJ = _ddr4_act_pj()          # ~3451 pJ for an 8 KB rank page
_DDR4_REF_PJ = _ddr4_ref_pj()          # ~0.70 uJ for a 64 Gb rank
_LP_VDD2 = (1.1 / 1.2) ** 2

DDR4_3200 = dict(
    channels=1, ranks=1, bank_groups=4, banks_per_group=4, rows=65536, columns=1024,
    bus_width_bits=64, burst_length=8, tck_ps=625.0,
    trcd_ck=22, trp_ck=22, tcl_ck=22, tcwl_ck=16, tras_ck=52, trc_ck=74,
    tccd_s_ck=4, tccd_l_ck=8, trrd_s_ck=4, trrd_l_ck=8, tfaw_ck=34,
    twr_ck=24, twtr_ck=12, twtr_s_ck=4, trtw_ck=12, trtp_ck=12, trefi_ck=12480, trfc_ck=560,
    act_energy_pj=_DDR4_ACT_PJ, rd_energy_pj_per_bit=15.0, wr_energy_pj_per_bit=15.0,
    ref_energy_pj=_DDR4_REF_PJ,
)

_LPDDR4_COMMON = dict(
    ranks=1, bank_groups=1, banks_per_group=8, rows=65536, columns=1024,
    bus_width_bits=16, burst_length=16, tccd_s_ck=8, tccd_l_ck=8,
    act_energy_pj=_DDR4_ACT_PJ * (2 / 8) * _LP_VDD2, rd_energy_pj_per_bit=4.5,
    wr_energy_pj_per_bit=4.5, ref_energy_pj=_DDR4_REF_PJ * (8 / 64) * _LP_VDD2,
)

LPDDR4_3200 = dict(
    _LPDDR4_COMMON, channels=1, tck_ps=625.0,
    trcd_ck=29, trp_ck=29, tcl_ck=28, tcwl_ck=14, tras_ck=68, trc_ck=97,
    trrd_s_ck=16, trrd_l_ck=16, tfaw_ck=64, twr_ck=29, twtr_ck=16, trtw_ck=30, trtp_ck=12,
    trefi_ck=6246, trfc_ck=448,
)

LPDDR4_2400 = dict(
    _LPDDR4_COMMON, channels=1, tck_ps=2500 / 3,
    trcd_ck=22, trp_ck=22, tcl_ck=24, tcwl_ck=12, tras_ck=51, trc_ck=73,
    trrd_s_ck=12, trrd_l_ck=12, tfaw_ck=48, twr_ck=22, twtr_ck=12, trtw_ck=27, trtp_ck=9,
    trefi_ck=4684, trfc_ck=336,
)

HBM2_2000 = dict(
    channels=1, ranks=1, bank_groups=4, banks_per_group=4, rows=16384, columns=128,
    bus_width_bits=64, burst_length=4, tck_ps=1000.0,
    trcd_ck=12, trp_ck=14, tcl_ck=18, tcwl_ck=7, tras_ck=28, trc_ck=42,
    tccd_s_ck=2, tccd_l_ck=3, trrd_s_ck=4, trrd_l_ck=6, tfaw_ck=16,
    twr_ck=14, twtr_ck=9, trtw_ck=18, trtp_ck=5, trefi_ck=3900, trfc_ck=350,
    act_energy_pj=_DDR4_ACT_PJ / 8, rd_energy_pj_per_bit=3.9, wr_energy_pj_per_bit=3.9,
    ref_energy_pj=_DDR4_REF_PJ * (2 / 64),
)

# LPDDR4-2400, two x16 devices on one 32-bit bus (BL16: 64 B per access), 8 banks, 4 KiB row.
# Timing set shipped with DRAMsim3 (configs/LPDDR4_8Gb_x16_2400.ini: tCK 0.83 ns, CL 17,
# CWL 14, tRCD 15, tRP 15, tRAS 32, tRRD 8, tFAW 32, tWR 30, tWTR_L 16, tRTP 12, tRFC 392,
# tREFI 8660); tRC = tRAS + tRP. NOTE: CL/tRCD/tRP there are shorter than JEDEC JESD209-4
# LPDDR4-2400 (RL 24, tRCD = tRPpb = 18 ns = 22 clocks; see `lpddr4-2400`). tCCD = BL/2 = 8
# (JESD209-4; the ini's tCCD_S/L 4/6 are below one BL16 burst on the bus). Commands stay on the
# slot grid under load as DRAMsim3's controller keeps them (`stall_slot_align`, assumption A-69).
LPDDR4_2400_X32 = dict(
    _LPDDR4_COMMON, channels=1, bus_width_bits=32, tck_ps=2500 / 3,
    trcd_ck=15, trp_ck=15, tcl_ck=17, tcwl_ck=14, tras_ck=32, trc_ck=47,
    trrd_s_ck=8, trrd_l_ck=8, tfaw_ck=32, twr_ck=30, twtr_ck=16, trtw_ck=27, trtp_ck=12,
    trefi_ck=8660, trfc_ck=392, stall_slot_align=True,
    act_energy_pj=_DDR4_ACT_PJ * (4 / 8) * _LP_VDD2, ref_energy_pj=_DDR4_REF_PJ * (16 / 64) * _LP_VDD2,
)

# LPDDR5-6400, one x16 channel. Follows Ramulator 2 (CMU-SAFARI/ramulator2 @ c5b1c3a,
# python/ramulator/dram/lpddr5.py): organisation preset LPDDR5_8Gb_x16 (8 Gb, x16, 1 rank,
# 4 bank groups x 4 banks, 32K rows, 1K columns) and timing preset LPDDR5_6400 (CK 1250 ps,
# CKR 4:1, BG mode; nBL_min 2 = BL16; nCL 17, nRCD 15, nRP 15, nRAS 34, nRC 49, nWR 28, nRTP 8,
# nCWL 9, nCCDS/L 2/4, nWTRS/L 5/10 CK) with its secondary timings from JESD209-5B (nRRDS = nRRDL =
# max(4, 5 ns) = 4, nFAW = max(16, 20 ns) = 16, tRFCab 8 Gb 210 ns = 168, tREFI 3906 ns = 3125 CK)
# and its read->write gap nCL + nBL_min + 2 - nCWL = 12 CK. This model's clock is the data-rate
# half period (312.5 ps, 6400 MT/s DDR), so every CK value is x4 here.
LPDDR5_6400 = dict(
    channels=1, ranks=1, bank_groups=4, banks_per_group=4, rows=32768, columns=1024,
    bus_width_bits=16, burst_length=16, tck_ps=312.5,
    trcd_ck=60, trp_ck=60, tcl_ck=68, tcwl_ck=36, tras_ck=136, trc_ck=196,
    tccd_s_ck=8, tccd_l_ck=16, trrd_s_ck=16, trrd_l_ck=16, tfaw_ck=64,
    twr_ck=112, twtr_ck=40, twtr_s_ck=20, trtw_ck=(17 + 2 + 2 - 9) * 4, trtp_ck=32,
    trefi_ck=12500, trfc_ck=672,
    act_energy_pj=_DDR4_ACT_PJ * (2 / 8) * (1.05 / 1.2) ** 2, rd_energy_pj_per_bit=4.0,
    wr_energy_pj_per_bit=4.0, ref_energy_pj=_DDR4_REF_PJ * (8 / 64) * (1.05 / 1.2) ** 2,
)

# HBM2 legacy (non-pseudo-channel) mode: one 128-bit channel, BL4 = 64 B, 4 bank groups x 4
# banks, 32K rows x 64 columns (1 KiB row). DRAMsim3 configs/HBM2_8Gb_x128.ini: tCK 1 ns, CL 14,
# CWL 4, tRCD 14, tRP 14, tRAS 34, tRRD_S/L 4/6, tFAW 30, tWR 16, tWTR_S/L 6/8, tRTP_L 6,
# tCCD_S/L 1/2 (the bus needs BL/2 = 2), tRFC 260, tREFI 3900; tRC = tRAS + tRP.
HBM2_2000_128B = dict(
    channels=1, ranks=1, bank_groups=4, banks_per_group=4, rows=32768, columns=64,
    bus_width_bits=128, burst_length=4, tck_ps=1000.0,
    trcd_ck=14, trp_ck=14, tcl_ck=14, tcwl_ck=4, tras_ck=34, trc_ck=48,
    tccd_s_ck=2, tccd_l_ck=2, trrd_s_ck=4, trrd_l_ck=6, tfaw_ck=30,
    twr_ck=16, twtr_ck=8, twtr_s_ck=6, trtw_ck=14, trtp_ck=6, trefi_ck=3900, trfc_ck=260,
    act_energy_pj=_DDR4_ACT_PJ / 8, rd_energy_pj_per_bit=3.9, wr_energy_pj_per_bit=3.9,
    ref_energy_pj=_DDR4_REF_PJ * (4 / 64),
)

# DDR5-4800B (JEDEC JESD79-5 speed bin 40-39-39, tCK 416.67 ps), 16 Gb x8 device (8 bank groups
# x 4 banks, 64K rows, 1K columns, 1 KB page), BL16. One DIMM channel = two independent 32-bit
# subchannels (modelled as 2 channels, 4 x8 devices each: 64 B per burst, 4 KiB row per
# subchannel). JESD79-5 values: tRAS 32 ns, tRC = tRAS + tRP, tWR 30 ns, tRTP 7.5 ns, CWL = CL - 2,
# tCCD_S 8 nCK (BL16), tCCD_L max(8 nCK, 5 ns), tRRD_S 8 nCK, tRRD_L max(8 nCK, 5 ns), tFAW (1 KB
# page) 32 nCK, tWTR_S/L 2.5 / 10 ns (6 / 24 nCK), tRFC1 (16 Gb) 295 ns, tREFI 3.9 us;
# read->write = CL + BL/2 - CWL + 2. Ramulator 2's DDR5_4800BN preset has 36-36-36 and tFAW
# 20 ns = 48 nCK instead; its tCCD_L_WR (48 nCK, same-group writes) has no counterpart here (one
# tCCD_L for both).
# Energy: estimates scaled from DDR4 (VDD 1.1 V; 4 KB subchannel page; 64 Gb per subchannel).
_DDR5_VDD2 = (1.1 / 1.2) ** 2
DDR5_4800 = dict(
    channels=2, ranks=1, bank_groups=8, banks_per_group=4, rows=65536, columns=1024,
    bus_width_bits=32, burst_length=16, tck_ps=2500 / 6,
    trcd_ck=39, trp_ck=39, tcl_ck=40, tcwl_ck=38, tras_ck=77, trc_ck=116,
    tccd_s_ck=8, tccd_l_ck=12, trrd_s_ck=8, trrd_l_ck=12, tfaw_ck=32,
    twr_ck=72, twtr_ck=24, twtr_s_ck=6, trtw_ck=40 + 8 - 38 + 2, trtp_ck=18, trefi_ck=9360, trfc_ck=708,
    act_energy_pj=_DDR4_ACT_PJ * (4 / 8) * _DDR5_VDD2,
    rd_energy_pj_per_bit=15.0 * _DDR5_VDD2, wr_energy_pj_per_bit=15.0 * _DDR5_VDD2,
    ref_energy_pj=_DDR4_REF_PJ * (295 / 350) * _DDR5_VDD2,
)

# HBM3-6400, one 32-bit pseudo channel (JEDEC JESD238: 16 channels x 64 bit per stack, two
# 32-bit pseudo channels per channel, BL8 = 32 B per access, 6.4 Gb/s per pin). Figures as
# collected in Ramulator 2 (python/ramulator/dram/hbm3.py, which cites JESD238 Table 4 for the
# organisation and Table 84 for tRFCab): org HBM3_16Gb_8hi (16 Gb die, 8 Gb channel, 2 SIDs x
# 4 bank groups x 4 banks, 16K rows, 1 KiB row per pseudo channel) and timing HBM3_6400Mbps
# (CK 625 ps; nBL 2, nCL 20, nRCDRD 31, nRP 26, nRAS 45, nRC 72, nWR 33, nRTP 9, nCWL 10,
# nCCDS/L 2/4, nRRDS/L 4/5, nFAW 24, nWTRS/L 7/10, nRTW 20, tREFI 3.9 us = 6240, tRFCab (8 Gb
# channel) 350 ns = 560 CK). Here: clock 312.5 ps (data-rate half period), so CK values x2;
# the two SIDs become 8 bank groups of one rank (tRRD/tFAW are per pseudo channel as in
# Ramulator 2); one tRCD (the read one, nRCDRD; nRCDWR 15 is not modelled); nCCDR (3, reads
# across SIDs) is taken as tCCD_S. Energy: HBM2 figures (estimate).
HBM3_6400 = dict(
    channels=1, ranks=1, bank_groups=8, banks_per_group=4, rows=16384, columns=256,
    bus_width_bits=32, burst_length=8, tck_ps=312.5,
    trcd_ck=62, trp_ck=52, tcl_ck=40, tcwl_ck=20, tras_ck=90, trc_ck=144,
    tccd_s_ck=4, tccd_l_ck=8, trrd_s_ck=8, trrd_l_ck=10, tfaw_ck=48,
    twr_ck=66, twtr_ck=20, twtr_s_ck=14, trtw_ck=40, trtp_ck=18, trefi_ck=12480, trfc_ck=1120,
    act_energy_pj=_DDR4_ACT_PJ / 8, rd_energy_pj_per_bit=3.9, wr_energy_pj_per_bit=3.9,
    ref_energy_pj=_DDR4_REF_PJ * (8 / 64) / 16,
)

PRESETS = {
    "ddr4-3200": (DDR4_3200, "DDR4-3200AA 22-22-22, 8Gb x8, one 64-bit channel, 1 rank (25.6 GB/s)"),
    "ddr4-3200-2ch": (dict(DDR4_3200, channels=2), "DDR4-3200, two 64-bit channels (51.2 GB/s)"),
    "lpddr4-3200": (LPDDR4_3200, "LPDDR4-3200, one x16 channel, 8 banks (6.4 GB/s)"),
    "lpddr4-3200-4ch": (dict(LPDDR4_3200, channels=4),
                        "LPDDR4-3200, 4 x16 channels = 64 bit (25.6 GB/s); the common config's DRAM"),
    "lpddr4-2400": (LPDDR4_2400, "LPDDR4-2400, one x16 channel (4.8 GB/s)"),
    "lpddr4-2400-4ch": (dict(LPDDR4_2400, channels=4), "LPDDR4-2400, 4 x16 channels (19.2 GB/s)"),
    "lpddr4-2400-x32": (LPDDR4_2400_X32, "LPDDR4-2400, 2 x16 devices on a 32-bit bus, 8 banks, "
                        "DRAMsim3 timing set (9.6 GB/s)"),
    "lpddr5-6400": (LPDDR5_6400, "LPDDR5-6400, one x16 channel: Ramulator 2 LPDDR5_8Gb_x16 "
                    "organisation, LPDDR5_6400 timings (12.8 GB/s)"),
    "ddr5-4800": (DDR5_4800, "DDR5-4800B 40-39-39, 16Gb x8, one DIMM channel = 2 x 32-bit "
                  "subchannels, 8x4 banks, BL16 (38.4 GB/s)"),
    "hbm3-6400": (HBM3_6400, "HBM3 6.4 Gb/s/pin, one 32-bit pseudo channel, 2 SIDs x 4x4 banks, "
                  "BL8 (25.6 GB/s)"),
    "hbm2-2000-128b": (HBM2_2000_128B, "HBM2 2 Gb/s/pin, one 128-bit legacy channel, DRAMsim3 "
                       "timings (32 GB/s)"),
    "hbm2-2000": (HBM2_2000, "HBM2 2 Gb/s/pin, one 64-bit pseudo channel (16 GB/s)"),
    "hbm2-2000-8ch": (dict(HBM2_2000, channels=16),
                      "HBM2 stack: 8 channels in pseudo-channel mode = 16 x 64-bit (256 GB/s)"),
}

register_preset("dram", DramModel, "bank-level DRAM timing model (DDR4-3200 defaults)")
for _name, (_values, _desc) in PRESETS.items():
    register_preset(_name, DramModel, _desc, **_values)
