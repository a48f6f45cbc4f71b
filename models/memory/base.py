"""The memory-model interface and its registry.

A memory model services one coarse transaction at a time (read or write, address, bytes, tensor
kind) and returns when it was accepted, when its first data moved and when it completed, with
the bytes moved, row-buffer hits/misses and energy. It keeps its own state (open rows, queues,
refresh) between calls; calls arrive in non-decreasing `arrival_ps` order from one SimPy run.

Models are chosen by name. Names come from three places:
- `@memory_model("name")` on a `MemoryModel` subclass,
- `register_preset(name, cls, **defaults)` for named parameter sets of one class (DRAM presets),
- the Python entry-point group `difftlm.memory_models` (each entry point loads a subclass; its
  name is the entry point's name), so users plug in models without editing this project.
Parameters are an attrs class `Params` on the model; unknown or missing ones are a clear error.
"""

from __future__ import annotations

from importlib import metadata
from typing import Any, ClassVar

import attrs

from tlm import Transaction

from ..checks import check_fields
from ..errors import ConfigError

ENTRY_POINT_GROUP = "difftlm.memory_models"


@attrs.frozen
class MemoryResponse:
    """Timing and accounting of one serviced transaction (times are absolute, integer ps)."""

    accept_ps: int
    first_data_ps: int
    done_ps: int
    nbytes: int
    row_hits: int = 0
    row_misses: int = 0
    energy_pj: float = 0.0


class MemoryModel:
    """Base class of every memory model. Subclasses define `Params` and `service`."""

    Params: ClassVar[type]

    def __init__(self, params):
        self.params = params

    def service(self, txn: Transaction, arrival_ps: int) -> MemoryResponse:
        """Time one transaction arriving at `arrival_ps`; update internal state."""
        raise NotImplementedError

    def service_segments(self, txn: Transaction, arrival_ps: int) -> MemoryResponse | None:
        """Time a scatter-gather transaction (`txn.segments`) as one batch, or None where the
        model has no batched timing (the default; the caller then services each run as its own
        transaction arriving at `arrival_ps`, which is exact)."""
        return None

    def peak_bandwidth_gbps(self) -> float:
        """Peak data bandwidth in GB/s (10^9 bytes per second); inf when unbounded."""
        raise NotImplementedError

    def set_exact(self) -> None:
        """Turn off any speed-for-accuracy shortcut from now on (the replay's `--exact`)."""

    def fast_stats(self) -> dict[str, int]:
        """Counters of such shortcuts over the run (e.g. bytes timed exactly / extrapolated)."""
        return {}


@attrs.frozen
class _Entry:
    cls: type
    defaults: dict[str, Any]
    description: str


_REGISTRY: dict[str, _Entry] = {}


def memory_model(name: str, description: str = ""):
    """Class decorator registering a `MemoryModel` subclass under `name`."""

    def deco(cls):
        register_preset(name, cls, description=description or (cls.__doc__ or "").strip().split("\n")[0])
        return cls

    return deco


def register_preset(name: str, cls: type, description: str = "", **defaults) -> None:
    """Register `name` as `cls` with parameter defaults (e.g. a JEDEC preset)."""
    _check_params(name, cls, defaults)
    _REGISTRY[name] = _Entry(cls, dict(defaults), description)


def _check_params(name: str, cls: type, params: dict[str, Any]) -> None:
    known = [f.name for f in attrs.fields(cls.Params)]
    unknown = sorted(set(params) - set(known))
    if unknown:
        raise ConfigError(
            f"memory model {name!r}: unknown parameter(s) {', '.join(unknown)}; "
            f"known: {', '.join(known)}"
        )


def _load_entry_points() -> None:
    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
        if ep.name not in _REGISTRY:
            cls = ep.load()
            _REGISTRY[ep.name] = _Entry(cls, {}, (cls.__doc__ or "").strip().split("\n")[0])


def available_memory_models() -> dict[str, str]:
    """Registered model names (built in and from entry points) with one-line descriptions."""
    _load_entry_points()
    return {name: e.description for name, e in sorted(_REGISTRY.items())}


def create_memory_model(name: str, params: dict[str, Any] | None = None) -> MemoryModel:
    """Instantiate a registered model by name with validated parameters."""
    if name not in _REGISTRY:
        _load_entry_points()
    entry = _REGISTRY.get(name)
    if entry is None:
        raise ConfigError(
            f"unknown memory model {name!r}; known: {', '.join(available_memory_models())}"
        )
    params = dict(params or {})
    _check_params(name, entry.cls, params)
    try:
        check_fields(entry.cls.Params, params, "")
    except ConfigError as exc:
        raise ConfigError(f"memory model {name!r}: parameter {exc}") from None
    try:
        resolved = entry.cls.Params(**{**entry.defaults, **params})
    except TypeError as exc:  # a required parameter is missing
        raise ConfigError(f"memory model {name!r}: {exc}") from None
    except ValueError as exc:  # an attrs validator rejected a value
        raise ConfigError(f"memory model {name!r}: {exc}") from None
    return entry.cls(resolved)


def memory_model_config(name: str, model: MemoryModel) -> dict[str, Any]:
    """The fully resolved parameters of a model instance, for saving with results."""
    return {"name": name, "params": attrs.asdict(model.params)}
