"""A user-written design in one file: int4 weights on int4×int8 multipliers (W4A8).

Everything else (tiling, mapping onto the common grid, residency, job building, energy ledger)
comes from `Design`. Run: python examples/custom_design.py
"""
import attrs

import difftlm
from models.components.pe_array import PeArray
from models.components.vector_unit import VectorUnit
from models.config import PeArrayConfig
from models.designs import BaseParams, Design, design, register_variant


@attrs.frozen
class W4A8Params(BaseParams):
    weight_bytes: float = 0.5
    """Bytes per weight (int4, two per byte)."""
    weight_bits: int = 4
    """Multiplier weight width; with 8-bit activations it sets a multiplier's area (A-35)."""


@design("example.w4a8")
class W4A8(Design):
    """Dense W4A8: int4 weights, int8 activations, iso-area int4×int8 multipliers."""

    Params = W4A8Params

    def make_units(self, top):
        hw, p = self.hw, self.params
        mults = hw.budget_units() // (8 * p.weight_bits)          # bit-product proxy, A-35
        lanes = mults // self.grid.positions                      # multipliers per grid position
        pe = PeArrayConfig(rows=self.grid.rows, cols=self.grid.cols, lanes=lanes)
        return {"pe": PeArray("pe_array", top, pe, precision=f"int8x{p.weight_bits}"),
                "vector": VectorUnit("vector_unit", top, hw.vector)}

    def step_key(self, trace, step):
        """It reads no trace statistics: steps differ only in where the weights come from, so
        the fast path may reuse a measured step for the steps that follow (A-41)."""
        return self.builder.weight_source(step)


register_variant("example.w8a8", "example.w4a8", "the same design at int8 weights (= dense)",
                 weight_bytes=1.0, weight_bits=8)

if __name__ == "__main__":
    res = difftlm.compare(designs=["dense", "example.w4a8", "example.w8a8"], jobs=1)
    for name, r in res.items():
        s = r.summary
        print(f"{name:14s} {s['total_cycles']:>12,.0f} cycles  "
              f"{s['dram_read_bytes'] + s['dram_write_bytes']:>12,} DRAM bytes  "
              f"{s['energy_total_pj'] / 1e6:8.1f} uJ")
