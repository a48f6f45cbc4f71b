"""Energy model: Σ event count × energy per event, from per-event tables at a stated node.

Sources (all dynamic energy; leakage/standby is not charged):

* Arithmetic and SRAM: M. Horowitz, "Computing's energy problem (and what we can do about it)",
  ISSCC 2014, 45 nm figures: 8-bit add 0.03 pJ, 32-bit add 0.1 pJ, 8-bit multiply 0.2 pJ,
  32-bit multiply 3.1 pJ, fp16 add 0.4 pJ, fp16 multiply 1.1 pJ; SRAM 64-bit read 10 pJ (8 KB),
  20 pJ (32 KB), 100 pJ (1 MB).
* DRAM: not priced here. The memory model computes its own energy per command (ACT/PRE, read and
  write bits, refresh) from its preset (see models/memory/dram_presets.py); the replay reports it
  as `dram_energy_pj` and this module passes it through unscaled.

Derivations (project assumptions, each a named parameter of `EnergyTable`):

* A MAC is one multiply plus one accumulate. Integer multipliers scale by the bit-product proxy
  of the common config (assumption A-35): an a-bit × b-bit multiplier costs a·b/64 of the 8-bit
  multiplier. Integer MACs accumulate in 32 bits (0.1 pJ add). An int-a × fp16 multiplier is the
  fp16 multiplier scaled by a/16; fp16 and int × fp16 MACs accumulate with an fp16 add.
* SRAM energy per byte = (64-bit read energy) / 8, interpolated log-log in capacity between
  Horowitz's three points (extrapolated with the end slopes); writes cost the same as reads.
* `vector.elements` (and `sfu.elements`, special-function-unit elements): one fp16 multiply +
  one fp16 add per element per pass.
* `mult.intAxB`: an integer multiply alone (for units that accumulate separately).
* `add.int8` / `add.int32`: one integer add (control and pre-processing logic: comparators,
  classifiers, adders of the bitmask and packer units).
* Components may price events of their own (e.g. the near-data engine at its `ndp_pj_per_bit`);
  those prices are used as given, at the run's node.
* Node scaling: every on-chip figure is multiplied by (node_nm / 45) ** node_exponent, with
  node_exponent = 1 by default (switched capacitance shrinking with feature size at roughly
  constant supply voltage, which barely scaled below 45 nm). This is a first-order project
  assumption, not a measured figure; it is recorded with every result.

Every component prices the work it runs (parity rule 3); an event name no table knows is never
ignored silently: it is listed in `unpriced_events` as `component:event`.
"""

from __future__ import annotations

import math
import re
from typing import Any, Mapping

import attrs

SOURCE = "Horowitz, ISSCC 2014 (45 nm); DRAM energy from the memory model's own preset"
SOURCE_NODE_NM = 45


@attrs.frozen
class EnergyTable:
    """Per-event energies at `source_node_nm` (pJ) and how they are scaled."""

    source_node_nm: int = SOURCE_NODE_NM
    node_exponent: float = 1.0
    """Scale factor to node N is (N / source_node_nm) ** node_exponent."""
    int8_add_pj: float = 0.03
    int32_add_pj: float = 0.1
    int8_mult_pj: float = 0.2
    int32_mult_pj: float = 3.1
    fp16_add_pj: float = 0.4
    fp16_mult_pj: float = 1.1
    sram_64bit_read_pj: dict[str, float] = attrs.field(
        factory=lambda: {"8": 10.0, "32": 20.0, "1024": 100.0})
    """64-bit read energy by SRAM capacity in KiB (Horowitz's 8 KB, 32 KB, 1 MB points)."""

    def scale(self, node_nm: float) -> float:
        return (node_nm / self.source_node_nm) ** self.node_exponent

    # -- per-event energies at the source node -----------------------------------------------
    def mac_pj(self, precision: str) -> float | None:
        """Energy of one MAC of `precision` (`int8`, `int4x8`, `int3xfp16`, `fp16`, ...)."""
        m = re.fullmatch(r"int(\d+)(?:x(\d+))?", precision)
        if m:
            a = int(m.group(1))
            b = int(m.group(2) or a)
            return self.int8_mult_pj * a * b / 64 + self.int32_add_pj
        m = re.fullmatch(r"int(\d+)xfp16|fp16xint(\d+)", precision)
        if m:
            a = int(m.group(1) or m.group(2))
            return self.fp16_mult_pj * a / 16 + self.fp16_add_pj
        if precision in ("fp16", "fp16xfp16"):
            return self.fp16_mult_pj + self.fp16_add_pj
        return None

    def mult_pj(self, precision: str) -> float | None:
        """Energy of one integer multiply alone (`intAxB`, bit-product proxy A-35)."""
        m = re.fullmatch(r"int(\d+)(?:x(\d+))?", precision)
        if not m:
            return None
        a = int(m.group(1))
        return self.int8_mult_pj * a * int(m.group(2) or a) / 64

    def sram_pj_per_byte(self, capacity_bytes: float) -> float:
        """Per-byte access energy of an SRAM of `capacity_bytes`, log-log interpolated."""
        pts = sorted((float(k) * 1024, v) for k, v in self.sram_64bit_read_pj.items())
        xs = [math.log(c) for c, _ in pts]
        ys = [math.log(e) for _, e in pts]
        x = math.log(max(capacity_bytes, 1.0))
        i = 0 if x <= xs[1] else len(xs) - 2
        for j in range(len(xs) - 1):
            if xs[j] <= x <= xs[j + 1]:
                i = j
                break
        slope = (ys[i + 1] - ys[i]) / (xs[i + 1] - xs[i])
        return math.exp(ys[i] + slope * (x - xs[i])) / 8

    def vector_element_pj(self) -> float:
        return self.fp16_mult_pj + self.fp16_add_pj


DEFAULT_TABLE = EnergyTable()

_BUFFER_ALIASES = {
    "global": "global_buffer", "global_buffer": "global_buffer",
    "act": "activation", "activation": "activation", "act_buffer": "activation",
    "weight": "weight", "weight_buffer": "weight",
    "out": "output", "output": "output", "out_buffer": "output",
}
"""Event buffer names (`sram.<name>.read_bytes`) → `hw.buffers` fields."""


def _capacity_bytes(hw: Mapping[str, Any], buffer: str) -> float | None:
    field = _BUFFER_ALIASES.get(buffer)
    bufs = hw.get("buffers", {})
    if field is None or field not in bufs:
        return None
    return float(bufs[field]["capacity_kib"]) * 1024


def price_events(events: Mapping[str, float], hw: Mapping[str, Any],
                 table: EnergyTable = DEFAULT_TABLE) -> tuple[dict[str, float], dict[str, float], list[str]]:
    """Energy per event name and per-event unit energy at `hw["node_nm"]` (pJ), plus the names
    that could not be priced."""
    k = table.scale(hw.get("node_nm", table.source_node_nm))
    by_event, unit, unpriced = {}, {}, []
    for name in sorted(events):
        e = None
        parts = name.split(".")
        if parts[0] == "mac" and len(parts) == 2:
            e = table.mac_pj(parts[1])
        elif parts[0] == "mult" and len(parts) == 2:
            e = table.mult_pj(parts[1])
        elif parts[0] == "sram" and len(parts) == 3 and parts[2] in ("read_bytes", "write_bytes"):
            cap = _capacity_bytes(hw, parts[1])
            e = table.sram_pj_per_byte(cap) if cap else None
        elif name in ("vector.elements", "sfu.elements"):
            e = table.vector_element_pj()
        elif name == "add.int8":
            e = table.int8_add_pj
        elif name == "add.int32":
            e = table.int32_add_pj
        if e is None:
            unpriced.append(name)
            continue
        unit[name] = e * k
        by_event[name] = events[name] * e * k
    return by_event, unit, unpriced


def energy_summary(summary: Mapping[str, Any], hw: Mapping[str, Any],
                   table: EnergyTable = DEFAULT_TABLE) -> dict[str, Any]:
    """Summary keys for one replay: `energy_pj` by component, `energy_total_pj`, per-event
    energies, `unpriced_events`, and the scaled table used.

    `summary["events_by_component"]` holds, per component (a compute unit by its name in the
    design, `sram`, `ndp`, `control`), the energy events of the work it ran; components may
    price their own events (`summary["event_prices_pj"]`, pJ at the run's node)."""
    ledger = summary.get("events_by_component", {})
    prices = summary.get("event_prices_pj", {})
    by_comp: dict[str, float] = {}
    by_event: dict[str, float] = {}
    unit: dict[str, float] = {}
    unpriced: list[str] = []
    for comp in sorted(ledger):
        events = ledger[comp]
        own = {k: v for k, v in events.items() if k in prices}
        std, per, missing = price_events({k: v for k, v in events.items() if k not in prices}, hw, table)
        for name, count in own.items():
            std[name] = count * prices[name]
            per[name] = prices[name]
        by_comp[comp] = sum(std.values())
        for name, e in std.items():
            by_event[f"{comp}:{name}"] = e
        unit.update(per)
        unpriced += [f"{comp}:{name}" for name in missing]
    by_comp["dram"] = float(summary.get("dram_energy_pj", 0.0))
    notes = [f"unpriced events (not in the energy total): {', '.join(unpriced)}"] if unpriced else []
    node = hw.get("node_nm", table.source_node_nm)
    return {
        "energy_pj": by_comp,
        "energy_total_pj": sum(by_comp.values()),
        "energy_by_event_pj": by_event,
        "energy_per_event_pj": unit,
        "unpriced_events": unpriced,
        "energy_notes": notes,
        "energy_model": {
            "source": SOURCE, "source_node_nm": table.source_node_nm, "node_nm": node,
            "node_scale": table.scale(node),
            "node_scaling": f"(node_nm / {table.source_node_nm}) ** {table.node_exponent}",
            "table_at_source_node": attrs.asdict(table),
        },
    }


__all__ = ["DEFAULT_TABLE", "EnergyTable", "SOURCE", "energy_summary", "price_events"]
