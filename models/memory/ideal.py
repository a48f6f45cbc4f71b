"""The `ideal` memory: fixed latency plus a bandwidth-limited, pipelined data bus."""

from __future__ import annotations

import math

import attrs

from tlm import Transaction, ns_to_ps

from ..checks import bounds
from .base import MemoryModel, MemoryResponse, memory_model


MIN_BANDWIDTH_GBPS = 1e-3
"""Smallest `bandwidth_gbps` accepted (1 MB/s): below it a run's time in ps overflows."""


@attrs.frozen
class IdealParams:
    latency_ns: float = attrs.field(default=0.0, validator=attrs.validators.ge(0), metadata=bounds(le=1e9))
    """Time from acceptance to first data, ns; it does not occupy the data bus."""
    bandwidth_gbps: float = attrs.field(default=math.inf, validator=attrs.validators.gt(0),
                                        metadata=bounds(ge=MIN_BANDWIDTH_GBPS, allow_inf=True))
    """Data-bus bandwidth in GB/s (bytes per ns); `inf` = unbounded."""
    energy_pj_per_bit: float = attrs.field(default=0.0, validator=attrs.validators.ge(0),
                                           metadata=bounds(le=1e9))
    """Energy per transferred bit, pJ (0 by default: the ideal model has no energy data)."""


@memory_model("ideal", "fixed latency + bandwidth; no banks, rows or refresh")
class IdealMemory(MemoryModel):
    """Fixed latency plus a pipelined data bus of fixed bandwidth; no banks, rows or refresh."""

    Params = IdealParams

    def __init__(self, params: IdealParams):
        super().__init__(params)
        self._latency_ps = ns_to_ps(params.latency_ns)
        self._bus_free_ps = 0

    def _transfer_ps(self, nbytes: int) -> int:
        if math.isinf(self.params.bandwidth_gbps):
            return 0
        return math.ceil(nbytes * 1000 / self.params.bandwidth_gbps - 1e-9)

    def service(self, txn: Transaction, arrival_ps: int) -> MemoryResponse:
        start = max(arrival_ps, self._bus_free_ps)
        transfer = self._transfer_ps(txn.nbytes)
        self._bus_free_ps = start + transfer
        first = start + self._latency_ps
        return MemoryResponse(
            accept_ps=start,
            first_data_ps=first,
            done_ps=first + transfer,
            nbytes=txn.nbytes,
            energy_pj=txn.nbytes * 8 * self.params.energy_pj_per_bit,
        )

    def peak_bandwidth_gbps(self) -> float:
        return self.params.bandwidth_gbps
