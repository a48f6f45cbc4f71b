"""One simulation time base (integer picoseconds) and clocks that convert cycles to it.

Every SimPy time in a DiffTLM run is an integer number of picoseconds, so components with
different clocks (a 500 MHz PE array, a 1600 MHz DRAM bus) share one exact time line.
"""

from __future__ import annotations

import math

import attrs

PS_PER_NS = 1_000
PS_PER_US = 1_000_000


def ns_to_ps(ns: float) -> int:
    """Nanoseconds to the integer picosecond time base (rounded up: time never shrinks)."""
    return math.ceil(ns * PS_PER_NS - 1e-9)


@attrs.frozen
class Clock:
    """A clock of `freq_mhz`; converts cycle counts to picoseconds and back."""

    freq_mhz: float = attrs.field(validator=attrs.validators.gt(0))

    @property
    def period_ps(self) -> float:
        return 1e6 / self.freq_mhz

    def cycles_to_ps(self, cycles: float) -> int:
        """Duration of `cycles` cycles in integer ps (rounded up to the next picosecond)."""
        return math.ceil(cycles * 1e6 / self.freq_mhz - 1e-9)

    def ps_to_cycles(self, ps: float) -> float:
        """A picosecond duration in (fractional) cycles of this clock."""
        return ps * self.freq_mhz / 1e6
