"""The op table: one U-Net forward as a DAG of ops with shapes and element counts.

Field conventions (see ../shared/design/trace-format.md and dataflows.md §1):
- conv2d: input (n, c, h, w); k output channels; kernel r×s; stride; pad; groups; output
  (n, k, out_h, out_w).
- linear: n = batch, h = tokens, w = 1, c = d_in, k = d_out (r = s = 1).
- matmul_qk: n = batch, `heads`, `tokens` query tokens, `kv_tokens` key tokens, `head_dim` d;
  output (n·heads, tokens, kv_tokens). matmul_pv: same, output (n·heads, tokens, head_dim).
- other kinds (norms, activations, add, concat, up/down-sampling): input (n, c, h, w), output
  (n, k, out_h, out_w) with k = c unless the op changes channels (concat).
Element counts (`in_elems`, `w_elems`, `out_elems`) and `macs` are stored and cross-checked.
For attention matmuls the second operand (Kᵀ or V) is counted in `w_elems`.
"""

from __future__ import annotations

import math
from typing import Any

import attrs

from . import limits
from .errors import TraceError

MAC_KINDS = ("conv2d", "linear", "matmul_qk", "matmul_pv")
VECTOR_KINDS = (
    "groupnorm", "layernorm", "silu", "relu", "gelu", "softmax", "add", "mul", "concat",
    "upsample", "downsample",
)
OP_KINDS = MAC_KINDS + VECTOR_KINDS


@attrs.frozen
class OpRecord:
    op_id: int
    name: str
    kind: str
    n: int = 1
    c: int = 0
    h: int = 1
    w: int = 1
    k: int = 0
    r: int = 1
    s: int = 1
    stride: int = 1
    pad: int = 0
    groups: int = 1
    out_h: int = 1
    out_w: int = 1
    heads: int = 0
    tokens: int = 0
    kv_tokens: int = 0
    head_dim: int = 0
    macs: int = 0
    in_elems: int = 0
    w_elems: int = 0
    out_elems: int = 0
    block: int = 0
    """Index of the U-Net block the op belongs to (0 = stem; SQ-DM treats first/last specially)."""
    preds: tuple[int, ...] = attrs.field(default=(), converter=tuple)
    """Ops whose outputs this op reads (skip connections included), by op_id."""
    input_from_relu: bool = False
    cross_attn_kv: bool = False
    kernel_profile: tuple[float, ...] = attrs.field(default=(), converter=tuple)
    """conv2d: the layer's normalised kernel profile, r·s values in row-major order, each the sum of
    |weight| over output and input channels at that tap, the whole summing to 1 (MHDiff's
    fine-tuning kernel); empty when the trace was not captured from weights (shape-only traces)."""

    @property
    def is_mac(self) -> bool:
        return self.kind in MAC_KINDS

    def to_dict(self) -> dict[str, Any]:
        d = attrs.asdict(self)
        d["preds"] = list(self.preds)
        return d


def expected_counts(op: OpRecord) -> dict[str, int]:
    """macs and element counts implied by the op's shape fields (the cross-check)."""
    if op.kind == "conv2d":
        return {
            "macs": op.n * op.k * op.out_h * op.out_w * (op.c // op.groups) * op.r * op.s,
            "in_elems": op.n * op.c * op.h * op.w,
            "w_elems": op.k * (op.c // op.groups) * op.r * op.s,
            "out_elems": op.n * op.k * op.out_h * op.out_w,
        }
    if op.kind == "linear":
        return {
            "macs": op.n * op.h * op.w * op.c * op.k,
            "in_elems": op.n * op.h * op.w * op.c,
            "w_elems": op.c * op.k,
            "out_elems": op.n * op.h * op.w * op.k,
        }
    if op.kind in ("matmul_qk", "matmul_pv"):
        bh = op.n * op.heads
        if op.kind == "matmul_qk":
            return {
                "macs": bh * op.tokens * op.kv_tokens * op.head_dim,
                "in_elems": bh * op.tokens * op.head_dim,
                "w_elems": bh * op.kv_tokens * op.head_dim,
                "out_elems": bh * op.tokens * op.kv_tokens,
            }
        return {
            "macs": bh * op.tokens * op.kv_tokens * op.head_dim,
            "in_elems": bh * op.tokens * op.kv_tokens,
            "w_elems": bh * op.kv_tokens * op.head_dim,
            "out_elems": bh * op.tokens * op.head_dim,
        }
    return {}


_SHAPE_FIELDS = ("n", "c", "h", "w", "k", "r", "s", "stride", "pad", "groups", "out_h", "out_w",
                 "heads", "tokens", "kv_tokens", "head_dim")


def _fail(i: int, field: str, msg: str) -> TraceError:
    return TraceError(f"ops[{i}].{field}: {msg}")


def op_from_dict(i: int, d: dict[str, Any]) -> OpRecord:
    """Build and validate one op-table row; errors name the row and field."""
    if not isinstance(d, dict):
        raise TraceError(f"ops[{i}]: expected an object, got {type(d).__name__}")
    known = {f.name for f in attrs.fields(OpRecord)}
    unknown = sorted(set(d) - known)
    if unknown:
        raise _fail(i, unknown[0], f"unknown field; known fields: {', '.join(sorted(known))}")
    for req in ("op_id", "name", "kind"):
        if req not in d:
            raise _fail(i, req, "missing required field")
    try:
        op = OpRecord(**d)
    except TypeError as exc:
        raise TraceError(f"ops[{i}]: {exc}") from None
    validate_op(i, op)
    return op


def validate_op(i: int, op: OpRecord) -> None:
    if op.op_id != i:
        raise _fail(i, "op_id", f"is {op.op_id}, expected {i} (ops are numbered in execution order)")
    if op.kind not in OP_KINDS:
        raise _fail(i, "kind", f"unknown kind {op.kind!r}; known: {', '.join(OP_KINDS)}")
    for f in attrs.fields(OpRecord):
        v = getattr(op, f.name)
        if f.type == "int" and (not isinstance(v, int) or isinstance(v, bool) or v < 0):
            raise _fail(i, f.name, f"must be a non-negative integer, got {v!r}")
    for f in _SHAPE_FIELDS:
        if getattr(op, f) > limits.MAX_DIM:
            raise _fail(i, f, f"is {getattr(op, f):,}, over the limit of {limits.MAX_DIM:,} "
                              f"({limits.ENV_PREFIX}MAX_DIM)")
    for f in ("in_elems", "w_elems", "out_elems"):
        if getattr(op, f) > limits.MAX_TENSOR_ELEMS:
            raise _fail(i, f, f"is {getattr(op, f):,}, over the limit of {limits.MAX_TENSOR_ELEMS:,} "
                              f"elements per tensor ({limits.ENV_PREFIX}MAX_TENSOR_ELEMS)")
    if op.macs > limits.MAX_OP_MACS:
        raise _fail(i, "macs", f"is {op.macs:,}, over the limit of {limits.MAX_OP_MACS:,} MACs per op "
                               f"({limits.ENV_PREFIX}MAX_OP_MACS)")
    if op.kind in VECTOR_KINDS:
        for f in ("n", "c", "h", "w", "k", "out_h", "out_w"):
            if getattr(op, f) < 1:
                raise _fail(i, f, f"a {op.kind} op needs {f} >= 1, got {getattr(op, f)}")
    for p in op.preds:
        if not isinstance(p, int) or not 0 <= p < i:
            raise _fail(i, "preds", f"predecessor {p!r} must be an earlier op id")
    if op.kernel_profile:
        prof = op.kernel_profile
        if op.kind != "conv2d" or len(prof) != op.r * op.s:
            raise _fail(i, "kernel_profile", f"needs r*s = {op.r * op.s} values on a conv2d op, got "
                                             f"{len(prof)} on a {op.kind}")
        if not all(isinstance(v, (int, float)) and math.isfinite(v) and v >= 0 for v in prof) \
                or abs(sum(prof) - 1) > 1e-3:
            raise _fail(i, "kernel_profile", "must be finite non-negative values summing to 1 "
                                             "(re-capture the trace)")
    if op.kind == "conv2d":
        if op.stride < 1 or op.groups < 1 or op.c % op.groups or op.k % op.groups:
            raise _fail(i, "groups", "stride and groups must be >= 1 and groups must divide c and k")
        for field, size, ker in (("out_h", op.h, op.r), ("out_w", op.w, op.s)):
            expect = (size + 2 * op.pad - ker) // op.stride + 1
            if getattr(op, field) != expect:
                raise _fail(i, field, f"is {getattr(op, field)}, the conv shape gives {expect}")
    for field, expect in expected_counts(op).items():
        if getattr(op, field) != expect:
            raise _fail(i, field, f"is {getattr(op, field)}, the op's shape gives {expect}")
    if op.is_mac and op.macs == 0:
        raise _fail(i, "macs", "a MAC op must have macs > 0")
