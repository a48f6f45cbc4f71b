"""Workload traces: schema, container, op-table builder, synthetic traces (capture lives apart)."""

from .bundled import bundled_trace
from .errors import TraceError
from .schema import MAC_KINDS, OP_KINDS, VECTOR_KINDS, OpRecord
from .trace import SCHEMA_VERSION, StepStats, Trace, write_trace

__all__ = [
    "bundled_trace", "MAC_KINDS", "OP_KINDS", "OpRecord", "SCHEMA_VERSION", "StepStats", "Trace", "TraceError",
    "VECTOR_KINDS", "write_trace",
]
