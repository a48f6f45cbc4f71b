"""Quantizers used by capture (numpy only; no torch).

All statistics live in the int8 domain of a static per-op scale (dataflows.md A-9):

- ``int8_scale(maxabs)``: symmetric int8 scale ``s8 = maxabs / 127`` where ``maxabs`` is the largest
  |x| seen for that tensor over *all* steps of a calibration run (a different seed than the run
  that is measured). Codes are ``q8 = clip(rint(x / s8), -128, 127)``.
- Per-output-channel int8 weights: ``s_w[k] = max|W[k]| / 127`` (``weight_int8``).
- The **int4 clip rule** (raw int4 for SQ-DM / MHDiff peripheral pixels): the int4 code of an
  element is ``rint(q8 / 2**k4)``, the op's shift ``k4`` being the smallest power of two (0..5) for
  which at most ``QuantConfig.int4_clip_frac`` of the calibration codes fall outside [-8, 7].
  An element outside [-8, 7] at that shift is an *int4 outlier* (clipped by SQ-DM's int4, kept as
  int8 by MHDiff: its int8-need bit is set).
- **uint4 after ReLU** (SQ-DM): ``clip(rint(q8 / 2**ku), 0, 15)`` with ``ku`` chosen by the same
  rule against [0, 15] on the calibration codes.
- **int3 inlier range** (Cambricon-D): a fp delta ``dX`` is an inlier when ``rint(dX / (s8 *
  2**k3))`` lies in [-4, 3]; ``k3`` (0..7) is the smallest shift for which at most
  ``QuantConfig.int3_outlier_frac`` of the calibration deltas fall outside. Inputs and outputs
  each get their own ``s8`` and ``k3``.

Rounding is numpy's ``rint`` (half to even) everywhere.
"""

from __future__ import annotations

from typing import Sequence

import attrs
import numpy as np

INT4_RANGE = (-8, 7)
UINT4_RANGE = (0, 15)
INT3_RANGE = (-4, 3)
INT8_RANGE = (-128, 127)
INT4_SHIFTS = tuple(range(6))
INT3_SHIFTS = tuple(range(8))


@attrs.frozen
class QuantConfig:
    int4_clip_frac: float = 0.01
    """Calibration rule: largest fraction of codes an int4 / uint4 shift may clip."""
    int3_outlier_frac: float = 0.01
    """Calibration rule: largest fraction of deltas the int3 scale may leave as outliers."""
    max_stat_elems: int = 2 ** 22
    """Attention matmuls whose (B, heads, L, ·) input or output holds more elements than this have
    their statistics (and shift calibration) taken on every k-th query row, k the smallest stride
    that fits (`manifest.quantization.stat_row_stride` lists them); 0 measures every row. The
    limit bounds capture memory at SD scale (4,096-token scores); the bundled models never reach it."""

    def describe(self) -> dict:
        return {
            "activation_scale": "static per-op symmetric int8, max|x| over all steps of a calibration run",
            "weights": "int8 per output channel, max|W[k]|/127",
            "int4_clip_rule": f"int4 = rint(q8/2^k), smallest k in 0..5 clipping <= {self.int4_clip_frac} "
                              "of calibration codes outside [-8,7]",
            "uint4_after_relu": "uint4 = clip(rint(q8/2^k),0,15), k by the same rule against [0,15]",
            "int3_inlier": f"rint(dX/(s8*2^k)) in [-4,3], smallest k in 0..7 leaving <= "
                           f"{self.int3_outlier_frac} calibration deltas outside",
            "rounding": "rint (half to even)",
            "attention_rows": f"every row; every k-th query row of attention matmuls over {self.max_stat_elems} "
                              "elements" if self.max_stat_elems else "every row",
            **attrs.asdict(self),
        }


def int8_scale(maxabs: float) -> float:
    """Symmetric int8 scale of a tensor whose calibrated max |x| is ``maxabs`` (1.0 if all zero)."""
    maxabs = float(maxabs)
    return maxabs / 127.0 if maxabs > 0 and np.isfinite(maxabs) else 1.0


def quantize_int8(x: np.ndarray, scale: float) -> np.ndarray:
    """int8 codes (as int16, so deltas cannot wrap) of ``x`` at ``scale``."""
    return np.clip(np.rint(np.asarray(x, dtype=np.float64) / scale), *INT8_RANGE).astype(np.int16)


def weight_int8(w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-output-channel (axis 0) int8 weights: (codes int8, scales of shape (K,))."""
    w = np.asarray(w, dtype=np.float64)
    flat = np.abs(w.reshape(w.shape[0], -1))
    scales = np.array([int8_scale(m) for m in flat.max(axis=1)])
    codes = np.clip(np.rint(w / scales.reshape((-1,) + (1,) * (w.ndim - 1))), *INT8_RANGE)
    return codes.astype(np.int8), scales


def shifted(q8: np.ndarray, shift: int) -> np.ndarray:
    """rint(q8 / 2**shift) as integers (unclipped)."""
    return np.rint(np.asarray(q8, dtype=np.float64) / float(2 ** shift)).astype(np.int32)


def outside(codes: np.ndarray, rng: tuple[int, int]) -> np.ndarray:
    return (codes < rng[0]) | (codes > rng[1])


def int4_outliers(q8: np.ndarray, shift: int) -> np.ndarray:
    """Mask of int4 outliers under the clip rule (the MHDiff int8-need bits)."""
    return outside(shifted(q8, shift), INT4_RANGE)


def int4_codes(q8: np.ndarray, shift: int) -> np.ndarray:
    return np.clip(shifted(q8, shift), *INT4_RANGE)


def uint4_codes(q8: np.ndarray, shift: int) -> np.ndarray:
    """uint4 codes of a post-ReLU tensor (negative codes clip to 0)."""
    return np.clip(shifted(q8, shift), *UINT4_RANGE)


def int3_outliers(dx: np.ndarray, scale8: float, shift: int) -> np.ndarray:
    """Mask of fp deltas outside the int3 inlier range at scale ``scale8 * 2**shift``."""
    codes = np.rint(np.asarray(dx, dtype=np.float64) / (scale8 * 2.0 ** shift))
    return (codes < INT3_RANGE[0]) | (codes > INT3_RANGE[1])


def choose_shift(overflow: Sequence[float], total: float, target: float) -> int:
    """Smallest shift whose overflow count is at most ``target * total`` (else the largest)."""
    for k, n in enumerate(overflow):
        if total == 0 or n <= target * total:
            return k
    return len(overflow) - 1


def overflow_counts_int4(q8: np.ndarray) -> np.ndarray:
    return np.array([int(int4_outliers(q8, k).sum()) for k in INT4_SHIFTS], dtype=np.int64)


def overflow_counts_uint4(q8: np.ndarray) -> np.ndarray:
    return np.array([int((shifted(q8, k) > UINT4_RANGE[1]).sum()) for k in INT4_SHIFTS], dtype=np.int64)


def overflow_counts_int3(dx: np.ndarray, scale8: float) -> np.ndarray:
    return np.array([int(int3_outliers(dx, scale8, k).sum()) for k in INT3_SHIFTS], dtype=np.int64)
