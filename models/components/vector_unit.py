"""`VectorUnit`: nonlinear and elementwise ops (norms, activations, softmax, add, resampling)."""

from __future__ import annotations

import attrs

from tlm import Module

from ..config import VectorUnitConfig, ceil_div


@attrs.frozen
class VectorWork:
    kind: str
    elements: int


class VectorUnit(Module):
    """`lanes` elements per cycle; an op kind takes `ops_per_element[kind]` passes (default 1)."""

    def __init__(self, name: str, parent: Module, cfg: VectorUnitConfig):
        super().__init__(name, parent)
        self.cfg = cfg

    def cycles(self, work: VectorWork) -> int:
        passes = self.cfg.ops_per_element.get(work.kind, 1.0)
        return ceil_div(int(round(work.elements * passes)), self.cfg.lanes)

    def energy_events(self, work: VectorWork) -> dict[str, float]:
        """One fp16 multiply-add per element per pass."""
        return {"vector.elements": work.elements * self.cfg.ops_per_element.get(work.kind, 1.0)}
