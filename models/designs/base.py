"""Design registry and the base class every accelerator design derives from.

A design builds its components under a top module, binds the pipeline's sockets, and turns each
(step, op) of a trace into `TileJob`s. It registers by name with `@design("name")`; variants and
ablations register as their own names (e.g. `mhdiff.no_packing`).
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any, ClassVar, Iterator

import attrs
import simpy

from tlm import ActivityRecorder, Clock, Module, TargetSocket
from workloads import Trace

from ..components.dram import DramFront
from ..components.pe_array import PeArray
from ..components.sram import Sram
from ..components.vector_unit import VectorUnit
from ..config import COMMON, HardwareConfig, structure
from ..errors import ConfigError
from ..memory import MemoryModel
from ..pipeline import Pipeline, TileJob

_DESIGNS: dict[str, type["Design"]] = {}


def design(name: str):
    """Class decorator registering a design under `name`."""

    def deco(cls):
        cls.name = name
        _DESIGNS[name] = cls
        return cls

    return deco


def available_designs() -> list[str]:
    return sorted(_DESIGNS)


def get_design(name: str) -> type["Design"]:
    try:
        return _DESIGNS[name]
    except KeyError:
        raise ConfigError(f"unknown design {name!r}; known: {', '.join(available_designs())}") from None


class Design:
    """Base class: owns the hardware config and the design's own parameters."""

    name: ClassVar[str]
    Params: ClassVar[type]
    trace_activation: ClassVar[str] = "silu"
    """Activation of the model variant the design needs ("relu" for designs assuming ReLU)."""

    def __init__(self, hw: HardwareConfig, params: dict[str, Any] | None = None):
        self.hw = hw
        overrides = {**hw.designs.get(self.name, {}), **(params or {})}
        self.params = structure(self.Params, overrides, f"designs.{self.name}")
        self.clock = Clock(hw.freq_mhz)
        self.notes: list[str] = []
        """Disclosures printed with results: assumptions in force, mechanisms not modelled."""
        self.events: dict[str, float] = defaultdict(float)
        """Event counts for the energy model, e.g. `mac.int8`, `mac.int4x8`, `sram.act.read_bytes`."""

    @classmethod
    def paper_hw(cls) -> HardwareConfig:
        """The design's own paper configuration (`--hw paper`); default: the common one."""
        return COMMON

    # The standard component set: DRAM front, four buffers, PE array, vector unit, pipeline.
    def build(self, env: simpy.Environment, top: Module, recorder: ActivityRecorder,
              memory: MemoryModel, trace: Trace, quantum_ps: int = 0) -> None:
        hw = self.hw
        n_ops = len(trace.ops)
        self.dram = DramFront("dram", top, env, memory, recorder, n_ops)
        b = hw.buffers
        self.buffers = {
            "global": Sram("global_buffer", top, env, b.global_buffer, self.clock, recorder,
                           serves_reads=self.uses_global_source(trace)),
            "act": Sram("act_buffer", top, env, b.activation, self.clock),
            "weight": Sram("weight_buffer", top, env, b.weight, self.clock),
            "out": Sram("out_buffer", top, env, b.output, self.clock),
        }
        units = self.make_units(top)
        self.pe, self.vector = units["pe"], units["vector"]
        sources = ["dram"] + (["global"] if self.buffers["global"].target else [])
        self.pipeline = Pipeline("pipeline", top, env, self.clock, recorder, units, self.buffers,
                                 "out", sources, n_ops, quantum_ps)
        self.pipeline.read_sockets["dram"].bind(self.dram.target)
        if "global" in sources:
            self.pipeline.read_sockets["global"].bind(self.buffers["global"].target)
        self.pipeline.write_socket.bind(self.write_target(env, top, recorder, n_ops))

    def write_target(self, env: simpy.Environment, top: Module, recorder: ActivityRecorder,
                     n_ops: int) -> TargetSocket:
        """Where the pipeline's writes go: the DRAM front, or a unit in front of it (e.g. a
        near-memory engine that forwards to DRAM)."""
        return self.dram.target

    def make_units(self, top: Module) -> dict[str, Module]:
        """The compute units, by the names jobs use. Must include "pe" (the MAC array, whose
        `macs_per_cycle` defines PE utilization) and "vector"; designs add their own units."""
        return {"pe": PeArray("pe_array", top, self.hw.pe_array),
                "vector": VectorUnit("vector_unit", top, self.hw.vector)}

    def extra_summary(self) -> dict[str, Any]:
        """Design-specific results merged into the summary (keys must name their units)."""
        return {}

    def uses_global_source(self, trace: Trace) -> bool:
        """Whether the global buffer serves reads in this run (e.g. resident weights)."""
        return False

    def jobs(self, trace: Trace, progress=None) -> Iterator[TileJob]:
        raise NotImplementedError

    def describe(self) -> dict[str, Any]:
        return {"design": self.name, "params": attrs.asdict(self.params)}
