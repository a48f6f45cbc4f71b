"""Names and value checks of the per-(step, op) statistics a trace may hold.

Every statistic is measured in the int8 domain with a static per-op scale (trace-format.md §3).
Scalars are fractions in [0, 1]; arrays have a shape fixed by the op they describe.
"""

from __future__ import annotations

import math
from typing import Callable

import attrs
import numpy as np

from .errors import TraceError
from .schema import OpRecord


@attrs.frozen
class StatSpec:
    description: str
    shape: Callable[[OpRecord], tuple[int, ...]] | None = None
    """None for a scalar; else the array shape expected for an op."""
    fraction: bool = True
    """Values must lie in [0, 1] (else: finite and non-negative)."""
    kind: str = "f"
    """numpy dtype kind the stored values must have: "f" (floating point) or "u" (uint8 bits)."""


def _pixels(op: OpRecord) -> tuple[int, ...]:
    return (op.n, op.h, op.w)


STATS: dict[str, StatSpec] = {
    "raw.zero_frac": StatSpec("fraction of int8 input codes equal to 0"),
    "raw.int4_frac": StatSpec("fraction of int8 input codes within signed int4 [-8, 7]"),
    "raw.int4_outlier_frac": StatSpec("fraction of input codes clipped by the int4 clip rule"),
    "delta.zero_frac": StatSpec("fraction of temporal deltas q_t - q_{t-1} equal to 0"),
    "delta.int4_frac": StatSpec("fraction of temporal deltas non-zero and within [-8, 7]"),
    "delta.int8_frac": StatSpec("fraction of temporal deltas outside int4, within [-128, 127]"),
    "delta.beyond8_frac": StatSpec("fraction of temporal deltas outside [-128, 127]"),
    "kv_delta.zero_frac": StatSpec("attention matmuls: fraction of deltas of the second operand (K or V) equal to 0"),
    "kv_delta.int4_frac": StatSpec("attention matmuls: fraction of K/V deltas non-zero and within [-8, 7]"),
    "kv_delta.int8_frac": StatSpec("attention matmuls: fraction of K/V deltas outside int4, within [-128, 127]"),
    "kv_delta.beyond8_frac": StatSpec("attention matmuls: fraction of K/V deltas outside [-128, 127]"),
    "camd.dy_zero_frac": StatSpec("fraction of int8 output-code deltas equal to 0 (zero-aware compression)"),
    "camd.rho_in": StatSpec("fraction of input deltas outside the int3 inlier range"),
    "camd.rho_out": StatSpec("fraction of output deltas outside the compression inlier range"),
    "camd.sign_flip": StatSpec(
        "fraction of signs flipping between steps: of a MAC op's output, or of an activation op's input"
    ),
    "camd.group_outlier_hist": StatSpec(
        "fractions of 60-element reduction groups with 0,1,2,3,4,>4 outliers", lambda op: (6,)
    ),
    "sqdm.zero_frac_per_in_channel": StatSpec(
        "per-input-channel zero fraction after ReLU + uint4 quantization", lambda op: (op.c,)
    ),
    "mhd.l1_map": StatSpec(
        "per-pixel mean |delta| over channels (int8 codes; stored as float16)", _pixels, fraction=False
    ),
    "mhd.int8_need": StatSpec(
        "per-pixel int8-need bits over channels, packed (np.packbits along channels)",
        lambda op: (op.n, op.h * op.w, math.ceil(op.c / 8)), fraction=False, kind="u",
    ),
}


def validate_stat(name: str, value, op: OpRecord, where: str) -> None:
    spec = STATS.get(name)
    if spec is None:
        raise TraceError(f"{where}: unknown statistic; known: {', '.join(sorted(STATS))}")
    arr = np.asarray(value)
    if arr.dtype.kind != spec.kind:
        want = "uint8" if spec.kind == "u" else "floating-point"
        raise TraceError(f"{where}: dtype {arr.dtype} is not {want}; re-capture the trace")
    if spec.kind == "u" and arr.dtype != np.uint8:
        raise TraceError(f"{where}: dtype {arr.dtype} is not uint8; re-capture the trace")
    if spec.shape is None:
        if arr.ndim != 0:
            raise TraceError(f"{where}: expected a scalar, got shape {arr.shape}")
    elif arr.shape != spec.shape(op):
        raise TraceError(f"{where}: shape {arr.shape} does not match the op ({spec.shape(op)})")
    if arr.dtype.kind == "f":
        if not np.all(np.isfinite(arr)):
            raise TraceError(f"{where}: NaN or infinite value; re-capture the trace")
        if spec.fraction and (np.any(arr < 0) or np.any(arr > 1)):
            raise TraceError(f"{where}: fraction outside [0, 1]")
        if np.any(arr < 0):
            raise TraceError(f"{where}: negative value")


def validate_scalars(name: str, op_ids, values, n_ops: int, where: str) -> None:
    """`validate_stat` for every value of a scalar statistic at once; errors name the first
    offending op (`where: name[op i]: ...`)."""
    spec = STATS.get(name)
    if spec is None:
        raise TraceError(f"{where}: {name}: unknown statistic; known: {', '.join(sorted(STATS))}")
    ids = np.asarray(op_ids)
    vals = np.asarray(values)
    if ids.size == 0:
        return
    if ids.dtype.kind not in "iu" or ids.ndim != 1 or vals.shape != ids.shape:
        raise TraceError(f"{where}: {name}: op ids must be integers matching the values")
    bad = np.flatnonzero((ids < 0) | (ids >= n_ops))
    if bad.size:
        raise TraceError(f"{where}: {name} names op {ids[bad[0]]}, the op table has {n_ops} ops")
    at = lambda mask: f"{where}: {name}[op {ids[np.flatnonzero(mask)[0]]}]"  # noqa: E731
    if spec.shape is not None:
        raise TraceError(f"{where}: {name}[op {ids[0]}]: expected shape {spec.shape.__name__}, got a scalar")
    if vals.dtype.kind != spec.kind:
        raise TraceError(f"{where}: {name}[op {ids[0]}]: dtype {vals.dtype} is not floating-point; "
                         "re-capture the trace")
    finite = np.isfinite(vals)
    if not finite.all():
        raise TraceError(f"{at(~finite)}: NaN or infinite value; re-capture the trace")
    if spec.fraction and ((vals < 0) | (vals > 1)).any():
        raise TraceError(f"{at((vals < 0) | (vals > 1))}: fraction outside [0, 1]")
    if (vals < 0).any():
        raise TraceError(f"{at(vals < 0)}: negative value")
