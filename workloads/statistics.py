"""Per-(step, op) statistics of MAC-op inputs in the int8 domain (numpy only; no torch).

``op_stats(op, quant, cur, prev, cfg)`` returns ``{stat name: value}`` for one MAC op at one step,
from the op's fp input ``x`` (and, for attention matmuls, its second operand ``b`` = K or V) and
fp output ``y`` at this step (``cur``) and at the previous step (``prev``; ``None`` at step 0).

Step 0 has no previous step: the temporal statistics (``delta.*``, ``kv_delta.*``, ``camd.*``,
``mhd.l1_map``) are *absent* there (not zero); raw statistics, ``sqdm.*`` and ``mhd.int8_need``
are present at every step. Layouts follow the op table: conv inputs (N, C, H, W); linear inputs
(N, ..., C) seen as N × tokens × C; attention matmuls (B, heads, L, d) / (B, heads, L, Lk).
"""

from __future__ import annotations

import math
from typing import Any

import attrs
import numpy as np

from . import quant as Q
from .schema import OpRecord

GROUP = 60
"""Cambricon-D reduction group (60 int3 multipliers per PE)."""
HIST_BINS = 6
"""0, 1, 2, 3, 4 and more than 4 outliers per group."""


@attrs.define
class OpQuant:
    """Calibrated quantization parameters of one op (see quant.py)."""

    s_in: float = 1.0
    s_b: float = 1.0
    s_out: float = 1.0
    k4: int = 0
    ku: int = 0
    k3_in: int = 0
    k3_out: int = 0


@attrs.define
class OpTensors:
    """What one op saw at one step (fp arrays)."""

    x: np.ndarray
    y: np.ndarray | None = None
    b: np.ndarray | None = None


# ---------------------------------------------------------------- elementary statistics
def raw_fracs(q8: np.ndarray, k4: int) -> dict[str, float]:
    q8 = np.asarray(q8)
    n = q8.size
    return {
        "raw.zero_frac": float((q8 == 0).sum() / n),
        "raw.int4_frac": float(((q8 >= Q.INT4_RANGE[0]) & (q8 <= Q.INT4_RANGE[1])).sum() / n),
        "raw.int4_outlier_frac": float(Q.int4_outliers(q8, k4).sum() / n),
    }


def delta_fracs(q_t: np.ndarray, q_prev: np.ndarray, prefix: str = "delta") -> dict[str, float]:
    """Fractions of d = q_t - q_{t-1}: zero / non-zero in [-8, 7] / else in [-128, 127] / beyond."""
    d = np.asarray(q_t, dtype=np.int32) - np.asarray(q_prev, dtype=np.int32)
    n = d.size
    zero = int((d == 0).sum())
    in4 = int(((d >= Q.INT4_RANGE[0]) & (d <= Q.INT4_RANGE[1])).sum())
    in8 = int(((d >= Q.INT8_RANGE[0]) & (d <= Q.INT8_RANGE[1])).sum())
    return {
        f"{prefix}.zero_frac": zero / n,
        f"{prefix}.int4_frac": (in4 - zero) / n,
        f"{prefix}.int8_frac": (in8 - in4) / n,
        f"{prefix}.beyond8_frac": (n - in8) / n,
    }


def sign_flip_frac(y_t: np.ndarray, y_prev: np.ndarray) -> float:
    """Fraction of elements with sgn(y_t) != sgn(y_{t-1}) (sgn(0) = 0)."""
    return float((np.sign(y_t) != np.sign(y_prev)).sum() / np.asarray(y_t).size)


def reduction_rows(mask: np.ndarray, op: OpRecord) -> np.ndarray:
    """The op's input (here a mask) as rows of its reduction vectors (im2col for convs).

    conv2d: one row per output pixel, C·R·S long, ordered (c, r, s) with c outermost (padding
    positions are False); linear / attention matmuls: the last axis.
    """
    if op.kind == "conv2d":
        m = np.asarray(mask, dtype=bool)
        if op.pad:
            m = np.pad(m, ((0, 0), (0, 0), (op.pad, op.pad), (op.pad, op.pad)))
        win = np.lib.stride_tricks.sliding_window_view(m, (op.r, op.s), axis=(2, 3))
        win = win[:, :, :: op.stride, :: op.stride][:, :, : op.out_h, : op.out_w]
        return win.transpose(0, 2, 3, 1, 4, 5).reshape(-1, m.shape[1] * op.r * op.s)
    m = np.asarray(mask, dtype=bool)
    return m.reshape(-1, m.shape[-1])


def group_outlier_hist(mask: np.ndarray, op: OpRecord, group: int = GROUP) -> np.ndarray:
    """Fractions of reduction groups of ``group`` elements holding 0, 1, 2, 3, 4, >4 outliers.

    Each reduction vector is cut into ceil(len/group) groups; the last one may be shorter.
    """
    rows = reduction_rows(mask, op)
    m, length = rows.shape
    g = math.ceil(length / group)
    padded = np.zeros((m, g * group), dtype=bool)
    padded[:, :length] = rows
    counts = padded.reshape(m, g, group).sum(axis=2).ravel()
    hist = np.bincount(np.minimum(counts, HIST_BINS - 1), minlength=HIST_BINS)
    return (hist / counts.size).astype(np.float64)


def as_pixels(x: np.ndarray, op: OpRecord) -> np.ndarray:
    """(n, pixels, channels) view of a conv input (N,C,H,W) or a linear input (N, ..., C)."""
    x = np.asarray(x)
    if op.kind == "conv2d":
        return x.transpose(0, 2, 3, 1).reshape(x.shape[0], -1, x.shape[1])
    return x.reshape(x.shape[0], -1, x.shape[-1])


def l1_map(q_t: np.ndarray, q_prev: np.ndarray, op: OpRecord) -> np.ndarray:
    """MHDiff per-pixel change: mean over channels of |q_t - q_{t-1}|, shape (n, h, w)."""
    d = np.abs(as_pixels(q_t, op).astype(np.int32) - as_pixels(q_prev, op).astype(np.int32))
    return d.mean(axis=2).astype(np.float16).reshape(op.n, op.h, op.w)


def int8_need_bits(q8: np.ndarray, k4: int, op: OpRecord) -> np.ndarray:
    """MHDiff identifier vectors: int4-outlier bits per pixel over channels, packed along C."""
    return np.packbits(Q.int4_outliers(as_pixels(q8, op), k4), axis=-1)


def channel_zero_frac(x_q8: np.ndarray, op: OpRecord, shift: int, relu: bool) -> np.ndarray:
    """SQ-DM per-input-channel zero fraction after (ReLU +) 4-bit quantization.

    Post-ReLU inputs use uint4; other inputs the signed int4 clip rule. Channel axis: 1 for
    convs, the last axis otherwise (d_in, head_dim for QK, key tokens for PV).
    """
    codes = Q.uint4_codes(x_q8, shift) if relu else Q.int4_codes(x_q8, shift)
    axis = 1 if op.kind == "conv2d" else codes.ndim - 1
    moved = np.moveaxis(codes == 0, axis, -1)
    return moved.reshape(-1, moved.shape[-1]).mean(axis=0).astype(np.float32)


# ---------------------------------------------------------------- one op, one step
def op_stats(
    op: OpRecord, q: OpQuant, cur: OpTensors, prev: OpTensors | None, *, int8_need: bool = True
) -> dict[str, Any]:
    """All statistics of MAC op ``op`` at one step (temporal ones only when ``prev`` is given)."""
    out: dict[str, Any] = {}
    q8 = Q.quantize_int8(cur.x, q.s_in)
    out.update(raw_fracs(q8, q.k4))
    relu = op.input_from_relu
    out["sqdm.zero_frac_per_in_channel"] = channel_zero_frac(q8, op, q.ku if relu else q.k4, relu)
    spatial = op.kind in ("conv2d", "linear")
    if spatial and int8_need:
        out["mhd.int8_need"] = int8_need_bits(q8, q.k4, op)
    if prev is None:
        return out
    q8p = Q.quantize_int8(prev.x, q.s_in)
    out.update(delta_fracs(q8, q8p))
    dx = np.asarray(cur.x, dtype=np.float64) - np.asarray(prev.x, dtype=np.float64)
    mask = Q.int3_outliers(dx, q.s_in, q.k3_in)
    out["camd.rho_in"] = float(mask.sum() / mask.size)
    out["camd.group_outlier_hist"] = group_outlier_hist(mask, op)
    if cur.y is not None and prev.y is not None:
        dy = np.asarray(cur.y, dtype=np.float64) - np.asarray(prev.y, dtype=np.float64)
        out["camd.rho_out"] = float(Q.int3_outliers(dy, q.s_out, q.k3_out).sum() / dy.size)
        out["camd.sign_flip"] = sign_flip_frac(cur.y, prev.y)
        dq = Q.quantize_int8(cur.y, q.s_out).astype(np.int32) - Q.quantize_int8(prev.y, q.s_out)
        out["camd.dy_zero_frac"] = float((dq == 0).sum() / dq.size)
    if cur.b is not None and prev.b is not None:
        out.update(delta_fracs(Q.quantize_int8(cur.b, q.s_b), Q.quantize_int8(prev.b, q.s_b), "kv_delta"))
    if spatial:
        out["mhd.l1_map"] = l1_map(q8, q8p, op)
    return out
