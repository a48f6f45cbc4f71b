"""Size limits that keep a small or hostile input from allocating unbounded memory or time.

Each limit is a module constant, overridable by an environment variable of the same name with the
prefix `DIFFTLM_` (e.g. `DIFFTLM_MAX_OP_MACS=1e15`), read when this module is first imported.
Exceeding one is a one-line error naming the limit and its variable.

- `MAX_DIM`: largest single shape field of an op (`n`, `c`, `h`, `w`, `k`, `tokens`, ...).
- `MAX_TENSOR_ELEMS`: largest element count of one op's input, weight or output tensor.
- `MAX_OP_MACS`: largest MAC count of one op (2^38; SD v1.5's largest op at batch 2 is 2^34.8,
  and one op at the limit replays in minutes).
- `MAX_FORWARD_MACS`: largest MAC count of one op table (one U-Net forward; SD v1.5 is ~2^39.5).
- `MAX_MEMBER_BYTES`: largest decompressed size of one member of a trace archive (and of one
  array inside a step file); a highly compressible member is refused before it is read.
- `MAX_REQUEST_BYTES`: largest `difftlm dram --request-bytes`.
- `MAX_REQUESTS`: largest `difftlm dram --requests`.
"""

from __future__ import annotations

import os

ENV_PREFIX = "DIFFTLM_"


def _setting(name: str, default: int) -> int:
    raw = os.environ.get(ENV_PREFIX + name)
    if raw is None:
        return default
    try:
        value = int(float(raw))
    except ValueError:
        raise ValueError(f"{ENV_PREFIX}{name}={raw!r}: expected a number") from None
    return max(value, 1)


MAX_DIM = _setting("MAX_DIM", 1 << 24)
MAX_TENSOR_ELEMS = _setting("MAX_TENSOR_ELEMS", 1 << 32)
MAX_OP_MACS = _setting("MAX_OP_MACS", 1 << 38)
MAX_FORWARD_MACS = _setting("MAX_FORWARD_MACS", 1 << 42)
MAX_MEMBER_BYTES = _setting("MAX_MEMBER_BYTES", 1 << 30)
MAX_REQUEST_BYTES = _setting("MAX_REQUEST_BYTES", 1 << 24)
MAX_REQUESTS = _setting("MAX_REQUESTS", 1 << 24)

def check_forward(ops) -> None:
    """The op table's total MACs are within MAX_FORWARD_MACS."""
    from .errors import TraceError

    total = sum(op.macs for op in ops)
    if total > MAX_FORWARD_MACS:
        raise TraceError(f"ops: {total:,} MACs in one forward, over the limit of {MAX_FORWARD_MACS:,} "
                         f"({ENV_PREFIX}MAX_FORWARD_MACS)")


__all__ = ["ENV_PREFIX", "MAX_DIM", "MAX_FORWARD_MACS", "check_forward", "MAX_MEMBER_BYTES", "MAX_OP_MACS", "MAX_REQUESTS",
           "MAX_REQUEST_BYTES", "MAX_TENSOR_ELEMS"]
