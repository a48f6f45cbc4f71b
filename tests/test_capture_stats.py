"""Each statistic of workloads.statistics equals its hand-computed value (no torch needed)."""

import numpy as np
import pytest

from workloads import statistics as S
from workloads.optable import OpTableBuilder
from workloads.stats import validate_stat


def conv_op(c=20, h=3, w=3, k=4, r=3, n=1, relu=False):
    b = OpTableBuilder()
    b.conv("c", None, k, r=r, shape=(n, c, h, w), relu_in=relu)
    return b.ops[0]


def linear_op(n, tokens, c, k=8):
    b = OpTableBuilder()
    b.linear("l", None, k, shape=(n, c, tokens, 1))
    return b.ops[0]


def test_delta_fractions_known_mix():
    prev = np.zeros(100, dtype=np.int16)
    cur = np.zeros(100, dtype=np.int16)
    cur[40:55], cur[55:70] = 7, -8           # 30 within int4, non-zero
    cur[70:80], cur[80:90] = 8, -128        # 20 need int8
    prev[90:100], cur[90:100] = -128, 127   # 10 beyond int8 (delta 255)
    d = S.delta_fracs(cur, prev)
    assert d == {"delta.zero_frac": 0.4, "delta.int4_frac": 0.3, "delta.int8_frac": 0.2,
                 "delta.beyond8_frac": 0.1}


def test_raw_fractions():
    q8 = np.array([0, 0, 3, -8, 9, 40, -100, 127, 0, 1])
    r = S.raw_fracs(q8, k4=3)   # shift 3: 40/8 = 5, -100/8 = -12 (out), 127/8 = 16 (out)
    assert r == {"raw.zero_frac": 0.3, "raw.int4_frac": 0.6, "raw.int4_outlier_frac": 0.2}


def test_sign_flip():
    assert S.sign_flip_frac(np.array([1.0, -2, 3, 0]), np.array([2.0, 1, -1, 0])) == 0.5


def test_group_outlier_hist_conv_im2col():
    op = conv_op(c=20)          # C*R*S = 180 -> 3 groups of 60 per output pixel, 9 output pixels
    mask = np.zeros((1, 20, 3, 3), bool)
    mask[0, 0, 1, 1] = True     # channel 0 lies in group 0 (c outermost); every window sees (1,1)
    hist = S.group_outlier_hist(mask, op)
    assert hist.tolist() == pytest.approx([18 / 27, 9 / 27, 0, 0, 0, 0])
    mask[0, 19, :, :] = True    # channel 19 -> elements 171..179, group 2; centre window sees 9
    hist = S.group_outlier_hist(mask, op)
    # group 2 of output pixel (i, j) holds as many outliers as its window has in-bounds taps:
    # corners 4, edges 6, centre 9 -> 4 groups with 4, 5 with >4; group 0 keeps its 1, group 1 0
    assert hist.tolist() == pytest.approx([9 / 27, 9 / 27, 0, 0, 4 / 27, 5 / 27])
    validate_stat("camd.group_outlier_hist", hist, op, "t")


def test_group_outlier_hist_linear_partial_group():
    op = linear_op(n=1, tokens=2, c=130)   # groups of 60, 60, 10 per token -> 6 groups
    mask = np.zeros((1, 2, 130), bool)
    mask[0, 0, 125:130] = True            # 5 outliers in the short last group of token 0
    mask[0, 1, 0:2] = True
    assert S.group_outlier_hist(mask, op).tolist() == pytest.approx([4 / 6, 0, 1 / 6, 0, 0, 1 / 6])


def test_l1_map_and_int8_need_bits():
    op = conv_op(c=10, h=2, w=2)
    prev = np.zeros((1, 10, 2, 2), np.int16)
    cur = prev.copy()
    cur[0, :, 0, 1] = 3          # pixel (0,1): every channel changes by 3
    cur[0, 0, 1, 0] = -10        # pixel (1,0): one channel by 10 -> mean 1
    m = S.l1_map(cur, prev, op)
    assert m.shape == (1, 2, 2)
    assert m.astype(float).tolist() == [[[0.0, 3.0], [1.0, 0.0]]]
    bits = S.int8_need_bits(cur, 0, op)          # shift 0: |code| > 7 needs int8
    assert bits.shape == (1, 4, 2)               # ceil(10 / 8) bytes per pixel
    unpacked = np.unpackbits(bits, axis=-1)[..., :10]
    assert unpacked.sum() == 1 and unpacked[0, 2, 0] == 1   # pixel index 2 = (1, 0), channel 0
    validate_stat("mhd.int8_need", bits, op, "t")
    validate_stat("mhd.l1_map", m, op, "t")


def test_channel_zero_frac_relu_uint4():
    op = conv_op(c=3, h=2, w=2, relu=True)
    q8 = np.zeros((1, 3, 2, 2), np.int16)
    q8[0, 1] = [[1, 2], [3, 40]]   # shift 2: 0, 0 (half even), 1, 10 -> 2 of 4 zero
    q8[0, 2] = 100                 # all non-zero (clip to 15)
    z = S.channel_zero_frac(q8, op, shift=2, relu=True)
    assert z.tolist() == [1.0, 0.5, 0.0]


def test_op_stats_step0_has_no_temporal_stats_and_step1_matches_hand_values():
    op = conv_op(c=2, h=2, w=2, k=1, r=1)
    q = S.OpQuant(s_in=1.0, s_out=1.0, k4=0, ku=0, k3_in=0, k3_out=0)
    x0 = np.zeros((1, 2, 2, 2))
    x1 = x0.copy()
    x1[0, 0, 0, 0] = 5.0      # delta 5: int4, int3 outlier
    x1[0, 1, 1, 1] = 2.0      # delta 2: int4, int3 inlier
    y0, y1 = np.array([1.0, -1.0]), np.array([1.0, 1.0])
    s0 = S.op_stats(op, q, S.OpTensors(x0, y0), None)
    assert not any(k.startswith(("delta.", "camd.", "mhd.l1")) for k in s0)
    assert s0["raw.zero_frac"] == 1.0
    s1 = S.op_stats(op, q, S.OpTensors(x1, y1), S.OpTensors(x0, y0))
    assert s1["delta.zero_frac"] == 0.75 and s1["delta.int4_frac"] == 0.25
    assert s1["camd.rho_in"] == 0.125
    assert s1["camd.sign_flip"] == 0.5
    assert s1["camd.rho_out"] == 0.0          # dy = 2 is an int3 inlier
    assert s1["raw.int4_frac"] == 1.0 and s1["raw.zero_frac"] == 0.75
    assert s1["mhd.l1_map"].astype(float).tolist() == [[[2.5, 0.0], [0.0, 1.0]]]
    assert s1["sqdm.zero_frac_per_in_channel"].tolist() == [0.75, 0.75]
