"""Design registry and the base class every accelerator design derives from.

A design builds its components under a top module and turns each (step, op) of a trace into
`TileJob`s through the shared `JobBuilder`. What every design shares lives here, once: the
component set, the step/op loop, the weight-residency rule (resident only if the whole model
fits the global buffer), the activation residency rule (`models.residency`), tile plans at the
design's precision, the common mapping grid, and the result hook.

Registration: `@design("name")` on a class; `register_variant(name, base, doc, **overrides)` for
a variant that differs only in parameter values (e.g. `mhdiff.no_packing`); designs in other
packages plug in through the entry-point group `difftlm.designs` (an entry point names a module
or class whose import registers them).
"""

from __future__ import annotations

import ast
import functools
import inspect
import textwrap
from importlib import metadata
from typing import Any, ClassVar, Hashable, Iterable, Iterator

import attrs
import simpy

from tlm import ActivityRecorder, Clock, Module, TargetSocket
from workloads import OpRecord, Trace

from ..addresses import AddressMap
from ..components.dram import DramFront
from ..components.pe_array import PeArray
from ..components.sram import Sram
from ..components.vector_unit import VectorUnit, VectorWork
from ..config import COMMON, HardwareConfig, kib, structure
from ..errors import ConfigError
from ..jobs import Formats, JobBuilder, nbytes, operand
from ..mapping import Mapping
from ..memory import MemoryModel
from ..pipeline import Pipeline, TileJob
from ..residency import ResidencyPlan, plan_residency
from ..tiling import Precision, TilePlan, plan_tiles

ENTRY_POINT_GROUP = "difftlm.designs"

_DESIGNS: dict[str, type["Design"]] = {}
_VARIANTS: dict[str, tuple[str, dict[str, Any], str]] = {}


def design(name: str):
    """Class decorator registering a design under `name`."""

    def deco(cls):
        cls.name = name
        _DESIGNS[name] = cls
        return cls

    return deco


def register_variant(name: str, base: str, doc: str, **overrides: Any) -> None:
    """Register `name` as design `base` with parameter `overrides` (checked when created)."""
    _VARIANTS[name] = (base, overrides, doc)


def _load_entry_points() -> None:
    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
        ep.load()


def available_designs() -> list[str]:
    _load_entry_points()
    return sorted({*_DESIGNS, *_VARIANTS})


def resolve_design(name: str) -> tuple[type["Design"], dict[str, Any]]:
    """The class of design or variant `name` and the variant's parameter overrides."""
    if name not in _DESIGNS and name not in _VARIANTS:
        _load_entry_points()
    if name in _VARIANTS:
        base, overrides, _ = _VARIANTS[name]
        cls, more = resolve_design(base)
        return cls, {**more, **overrides}
    try:
        return _DESIGNS[name], {}
    except KeyError:
        raise ConfigError(f"unknown design {name!r}; known: {', '.join(available_designs())}") from None


def get_design(name: str) -> type["Design"]:
    return resolve_design(name)[0]


def create_design(name: str, hw: HardwareConfig, params: dict[str, Any] | None = None) -> "Design":
    cls, overrides = resolve_design(name)
    return cls(hw, params, name=name, variant=overrides)


def design_doc(name: str) -> str:
    if name in _VARIANTS:
        return _VARIANTS[name][2]
    return (inspect.getdoc(get_design(name)) or "").split("\n")[0]


def param_docs(cls: type) -> dict[str, str]:
    """Attribute docstrings of an attrs Params class (the string under each field), base first."""
    docs: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        if not attrs.has(klass):
            continue
        try:
            tree = ast.parse(textwrap.dedent(inspect.getsource(klass)))
        except (OSError, TypeError):
            continue
        body = tree.body[0].body
        for a, b in zip(body, body[1:]):
            if (isinstance(a, (ast.AnnAssign, ast.Assign)) and isinstance(b, ast.Expr)
                    and isinstance(b.value, ast.Constant) and isinstance(b.value.value, str)):
                target = a.target if isinstance(a, ast.AnnAssign) else a.targets[0]
                if isinstance(target, ast.Name):
                    docs[target.id] = " ".join(b.value.value.split())
    return docs


def describe_design(name: str) -> dict[str, Any]:
    """Name, base, one-line doc and parameters (default, variant value, doc) of a design."""
    cls, overrides = resolve_design(name)
    docs = param_docs(cls.Params)
    params = []
    for f in attrs.fields(cls.Params):
        default = f.default.factory() if isinstance(f.default, attrs.Factory) else f.default
        params.append({"name": f.name, "default": overrides.get(f.name, default),
                       "doc": docs.get(f.name, "")})
    return {"name": name, "class": f"{cls.__module__}.{cls.__qualname__}",
            "variant_of": _VARIANTS[name][0] if name in _VARIANTS else None,
            "overrides": overrides, "doc": design_doc(name), "params": params}


@attrs.frozen
class BaseParams:
    act_bytes: float = 1.0
    """Bytes per activation element in DRAM and buffers (int8)."""
    weight_bytes: float = 1.0
    """Bytes per weight (int8, per-output-channel scales folded into requantization)."""
    acc_bytes: int = 4
    """Bytes per partial-sum accumulator held in the output buffer (int32)."""


class Design:
    """Base class: the shared component set, step/op loop and residency rules."""

    name: ClassVar[str]
    Params: ClassVar[type] = BaseParams
    trace_activation: ClassVar[str] = "silu"
    """Activation of the model variant the design needs ("relu" for designs assuming ReLU)."""
    mac_unit: ClassVar[str] = "pe"
    """The unit whose `macs_per_cycle` defines PE utilisation."""
    op_jobs_pure: ClassVar[bool] = False
    """True when an op's jobs depend only on the op, its plan and the step's `step_key`, and
    making them changes no design state (its `begin_step` yields nothing): the fast path may
    then reuse an op's jobs in a later simulated step with an equal key (A-70)."""

    def __init__(self, hw: HardwareConfig, params: dict[str, Any] | None = None, *,
                 name: str | None = None, variant: dict[str, Any] | None = None):
        self.hw = hw
        self.name = name or type(self).name
        overrides = {**(variant or {}), **hw.designs.get(self.name, {}), **(params or {})}
        self.params = structure(self.Params, overrides, f"designs.{self.name}")
        self.clock = Clock(hw.freq_mhz)
        self.grid = Mapping(hw.pe_array.rows, hw.pe_array.cols)
        """The common output grid every MAC array maps onto (parity rule 1, A-37)."""
        self.notes: list[str] = []
        """Disclosures printed with results: assumptions in force, mechanisms not modelled."""
        self.events: dict[str, float] = {}
        """Energy events of control logic outside the units (priced like any other)."""

    @classmethod
    def paper_hw(cls) -> HardwareConfig:
        """The design's own paper configuration (`--hw paper`); default: the common one."""
        return COMMON

    # -- structure ----------------------------------------------------------------------------
    def build(self, env: simpy.Environment, top: Module, recorder: ActivityRecorder,
              memory: MemoryModel, trace: Trace, quantum_ps: int = 0) -> None:
        """The standard component set: DRAM front, four buffers (the global one serving resident
        weights and activations), the design's units and the pipeline."""
        hw = self.hw
        n_ops = len(trace.ops)
        self.dram = DramFront("dram", top, env, memory, recorder, n_ops)
        b = hw.buffers
        self.buffers = {
            "global": Sram("global_buffer", top, env, b.global_buffer, self.clock, recorder, serves=True),
            "act": Sram("act_buffer", top, env, b.activation, self.clock),
            "weight": Sram("weight_buffer", top, env, b.weight, self.clock),
            "out": Sram("out_buffer", top, env, b.output, self.clock),
        }
        self.units = self.make_units(top)
        self.pe = self.units[self.mac_unit]
        self.pipeline = Pipeline("pipeline", top, env, self.clock, recorder, self.units, self.buffers,
                                 "out", ("dram", "global"), n_ops, quantum_ps)
        self.pipeline.read_sockets["dram"].bind(self.dram.target)
        self.pipeline.read_sockets["global"].bind(self.buffers["global"].target)
        self.pipeline.write_sockets["global"].bind(self.buffers["global"].target)
        self.pipeline.write_sockets["dram"].bind(self.write_target(env, top, recorder, n_ops))

    def write_target(self, env: simpy.Environment, top: Module, recorder: ActivityRecorder,
                     n_ops: int) -> TargetSocket:
        """Where the pipeline's DRAM writes go: the DRAM front, or a unit in front of it (e.g. a
        near-memory engine that forwards to DRAM)."""
        return self.dram.target

    def make_units(self, top: Module) -> dict[str, Module]:
        """The compute units, by the names jobs use (must include `mac_unit`). Every unit has
        `cycles(work)` and `energy_events(work)`."""
        return {"pe": PeArray("pe_array", top, self.hw.pe_array),
                "vector": VectorUnit("vector_unit", top, self.hw.vector)}

    # -- formats (a design's storage rules) ----------------------------------------------------
    def act_bpe(self, tensor: int) -> float:
        """Bytes per element of tensor `tensor` (op id, -1 = network input) where it is stored."""
        return self.params.act_bytes

    def weight_bpe(self, op: OpRecord) -> float:
        return self.params.weight_bytes

    def formats(self, op: OpRecord) -> Formats:
        """Storage formats of a MAC op's input, weights (or second operand) and output."""
        w = self.weight_bpe(op) if op.kind in ("conv2d", "linear") else self.act_bpe(self._operand(op, 1))
        return Formats(self.act_bpe(self._operand(op, 0)), w, self.act_bpe(op.op_id))

    def precision(self, op: OpRecord) -> Precision:
        """On-chip bytes per element the tiler sizes tiles with."""
        f = self.formats(op)
        return Precision(f.act, f.weight, f.out, self.params.acc_bytes)

    def tensor_elements(self, tensor: int) -> int:
        return self.ops[0].in_elems if tensor < 0 else self.ops[tensor].out_elems

    def tensor_bytes(self, tensor: int) -> int:
        """Bytes of a tensor in its storage format (what residency charges, what DRAM moves)."""
        return nbytes(self.tensor_elements(tensor), self.act_bpe(tensor))

    def weight_bytes_total(self, ops: list[OpRecord]) -> int:
        return int(sum(op.w_elems * self.weight_bpe(op) for op in ops if op.kind in ("conv2d", "linear")))

    def _operand(self, op: OpRecord, i: int) -> int:
        return operand(self.ops, op, i)

    # -- run preparation: the shared rules -------------------------------------------------
    def weights_resident(self, trace: Trace) -> bool:
        """The common rule: weights stay in the global buffer after step 0 only if the whole
        model fits it (`hw.weight_residency`: auto / never / always)."""
        policy = self.hw.weight_residency
        need = self.weight_bytes_total(trace.ops)
        cap = self.hw.buffers.global_buffer.capacity_bytes
        if policy == "always" and need > cap:
            raise ConfigError(f"weight_residency = 'always' but {self.name}'s weights ({kib(need)}) exceed "
                              f"the global buffer ({kib(cap)}); use 'auto' or 'never'")
        return policy == "always" or (policy == "auto" and need <= cap and trace.n_steps > 1)

    def plan(self, op: OpRecord, prec: Precision) -> TilePlan:
        """The one tiler, at `prec`, the buffers' tile budgets and the common grid's alignment;
        operands the residency rules keep on chip cost `hw.onchip_byte_cost` per byte (A-39)."""
        b, jb = self.buffers, self.builder
        cost = {"global": self.hw.onchip_byte_cost, "dram": 1.0}
        in_cost = cost[jb.source(self._operand(op, 0))]
        w_src = jb.weight_source(1) if op.kind in ("conv2d", "linear") else jb.source(self._operand(op, 1))
        return plan_tiles(op, prec, b["act"].tile_budget, b["weight"].tile_budget,
                          b["out"].tile_budget, self.grid.cols, self.grid.rows, in_cost, cost[w_src])

    def plan_all(self, ops: list[OpRecord]) -> dict[int, TilePlan]:
        return {op.op_id: self.plan(op, self.precision(op)) for op in ops if op.is_mac}

    def prepare(self, trace: Trace) -> None:
        """Everything a run computes once: address map, weight and activation residency, tile
        plans and the job builder. Designs extend it with their own per-run state."""
        ops = self.ops = trace.ops
        self.addr = AddressMap(ops, max(self.act_bpe(t) for t in range(-1, len(ops))),
                               max([self.weight_bpe(op) for op in ops if op.w_elems] or [1.0]))
        resident_w = self.weights_resident(trace)
        w_bytes = self.weight_bytes_total(ops) if resident_w else 0
        cap = max(0, self.hw.buffers.global_buffer.capacity_bytes - w_bytes)
        self.residency: ResidencyPlan = plan_residency(ops, self.tensor_bytes, cap, self.hw.residency)
        self.builder = JobBuilder(ops, self.addr, self.residency, resident_w,
                                  self.buffers["act"].tile_budget, self.buffers["out"].tile_budget)
        self.plans = self.plan_all(ops)
        if resident_w:
            self.notes.append(f"weights resident in the global buffer after step 0 ({kib(w_bytes)})")
        r = self.residency
        self.notes.append(
            f"activation residency ({r.policy}, A-38): {len(r.resident)} tensors kept on chip in the "
            f"global buffer's {kib(cap)} (peak {kib(r.peak_bytes)}), {len(r.spilled)} through DRAM")

    # -- the step/op loop, once for every design -----------------------------------------
    def jobs(self, trace: Trace, steps: Iterable[int] | None = None, progress=None,
             per_op=None) -> Iterator[TileJob]:
        """The job stream of `steps` (default: every step), in order; `prepare` comes first.
        `per_op(step, op, make)`, if given, yields op `op`'s jobs in step `step` in place of
        `make()` (its generator): the fast path's op reuse (A-70)."""
        for step in range(trace.n_steps) if steps is None else steps:
            yield from self.begin_step(trace, step)
            for op in trace.ops:
                if op.is_mac:
                    make = functools.partial(self.mac_jobs, step, op)
                elif op.kind != "concat":
                    make = functools.partial(self.vector_jobs, step, op)
                else:
                    continue
                yield from make() if per_op is None else per_op(step, op, make)
            if progress is not None:
                progress(step)

    def step_key(self, trace: Trace, step: int) -> Hashable:
        """Everything besides the plans that shapes step `step`'s job stream: steps with equal keys
        replay identically, so the fast path may reuse one's measurements for the others (A-41).
        Default, safe for any design: the weights' source, whether the step is the first, second
        or last, and a fingerprint of all of the step's statistics. A design that reads fewer
        inputs returns less (and so reuses more)."""
        return self.step_class(trace, step), trace.step_fingerprint(step)

    def step_class(self, trace: Trace, step: int) -> Hashable:
        """What shapes step `step`'s job stream besides its statistics: consecutive steps of one
        class whose keys differ only in their statistics may be sampled (A-71). Default: the
        weight source and the first / second / last position (the default `step_key` is this
        class and the statistics' fingerprint); a design that overrides `step_key` with more than
        that must return it here too."""
        return (self.builder.weight_source(step), min(step, 2), step == trace.n_steps - 1)

    def begin_step(self, trace: Trace, step: int) -> Iterator:
        """Hook before a step's ops (e.g. a `Barrier`, per-step statistics)."""
        return iter(())

    def mac_jobs(self, step: int, op: OpRecord) -> Iterator[TileJob]:
        """Default: every tile on the MAC array as a GEMM tile."""
        plan = self.plans[op.op_id]
        g, fmt = plan.geom, self.formats(op)
        for t in plan.tiles:
            work = plan.work(t)
            yield self.builder.mac_job(step, op, g, t, {"main": ("pe", work)}, work.macs, fmt)

    def vector_work(self, step: int, op: OpRecord, elements: int) -> dict[str, Any]:
        return {"main": ("vector", VectorWork(op.kind, elements))}

    def vector_jobs(self, step: int, op: OpRecord) -> Iterator[TileJob]:
        """Default: read every input tensor, run the op on the vector unit, write the output."""
        reads, writes = self.builder.vector_streams(op, self.tensor_bytes)
        yield from self.builder.vector_jobs(step, op, op.out_elems,
                                            lambda e: self.vector_work(step, op, e), reads, writes)

    # -- results ------------------------------------------------------------------------
    def step_counts(self) -> dict[str, float]:
        """Additive counts a design's `report` derives figures from (default: none). The fast
        path advances them for the steps it does not simulate (A-41, A-71), as it does every
        other counter, and hands them back with `set_step_counts` before `report`."""
        return {}

    def set_step_counts(self, counts: dict[str, float]) -> None:
        """Take back the advanced `step_counts` (keys as returned)."""

    def report(self) -> dict[str, Any]:
        """Design-level results merged into the summary (keys name their units)."""
        out: dict[str, Any] = {"residency": self.residency.describe(self.ops),
                               "weights_resident": self.builder.weights_resident}
        if self.events:
            out["control_events"] = dict(self.events)
        return out

    def describe(self) -> dict[str, Any]:
        return {"design": self.name, "params": attrs.asdict(self.params)}
