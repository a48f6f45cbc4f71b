"""Quantizers of workloads.quant against hand-computed codes."""

import numpy as np
import pytest

from workloads import quant as Q


def test_int8_scale_and_codes_round_and_clip():
    s = Q.int8_scale(12.7)
    assert s == pytest.approx(0.1)
    q = Q.quantize_int8(np.array([0.0, 0.04, 0.06, -0.26, 12.7, 20.0, -30.0]), s)
    assert q.tolist() == [0, 0, 1, -3, 127, 127, -128]
    assert Q.int8_scale(0.0) == 1.0


def test_weight_int8_is_per_output_channel():
    w = np.array([[1.0, -0.5], [0.02, 0.01]])
    codes, scales = Q.weight_int8(w)
    assert scales.tolist() == pytest.approx([1 / 127, 0.02 / 127])
    assert codes.tolist() == [[127, -64], [127, 64]]  # -63.5 and 63.5 round half to even


def test_int4_clip_rule_shift_and_outliers():
    q8 = np.array([0, 7, -8, 8, -9, 20, 100, -100])
    assert Q.int4_outliers(q8, 0).tolist() == [False, False, False, True, True, True, True, True]
    # shift 3: rint(q/8) = 0, 1, -1, 1, -1, 2, 12, -12 -> two outliers
    assert Q.int4_outliers(q8, 3).sum() == 2
    counts = Q.overflow_counts_int4(q8)
    assert counts.tolist() == [5, 3, 2, 2, 0, 0]           # shift 2: only +-100 -> +-25 clip
    assert Q.choose_shift(counts, q8.size, 0.3) == 2      # 2/8 <= 0.3 < 3/8
    assert Q.choose_shift(counts, q8.size, 0.2) == 4
    assert Q.choose_shift([5, 5], 8, 0.0) == 1            # none meets the target: largest shift
    assert Q.int4_codes(q8, 3).tolist() == [0, 1, -1, 1, -1, 2, 7, -8]


def test_uint4_after_relu_and_int3_inliers():
    q8 = np.array([-5, 0, 1, 2, 3, 60, 127])
    assert Q.uint4_codes(q8, 2).tolist() == [0, 0, 0, 0, 1, 15, 15]  # 3/4 -> 1, 2/4 -> 0 (half even)
    assert Q.overflow_counts_uint4(q8).tolist()[:5] == [2, 2, 1, 1, 0]  # 127/8 -> 16 > 15
    dx = np.array([0.0, 0.3, -0.4, 0.36, -0.46, 1.0])
    # scale 0.1 * 2**0: codes 0, 3, -4, 4, -5, 10 -> outliers at 3 positions
    assert Q.int3_outliers(dx, 0.1, 0).tolist() == [False, False, False, True, True, True]
    # shift 2 (scale 0.4): codes 0, 1, -1, 1, -1, 2 -> none
    assert not Q.int3_outliers(dx, 0.1, 2).any()
    assert Q.overflow_counts_int3(dx, 0.1).tolist()[:3] == [3, 1, 0]
