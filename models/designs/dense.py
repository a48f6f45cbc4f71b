"""`dense`: the int8 W8A8 baseline (dataflows.md §8.1).

Every MAC op is tiled by the common tiler and mapped onto the common 32 × 32 grid, one int8 MAC
per PE per cycle; non-MAC ops run on the vector unit (no fusion with the producing layer);
`concat` is layout only. Everything else is the shared rules of `Design`: weights re-read from
DRAM every step unless the whole model fits the global buffer, activations kept on chip while
the live set fits (A-38), otherwise through DRAM.
"""

from __future__ import annotations

from typing import Hashable

from workloads import Trace

from .base import BaseParams, Design, design


@design("dense")
class Dense(Design):
    """Dense int8 baseline."""

    Params = BaseParams
    op_jobs_pure = True

    def step_key(self, trace: Trace, step: int) -> Hashable:
        """Dense reads no statistics: its steps differ only in where the weights come from."""
        return self.builder.weight_source(step)
