"""The public Python API, mirroring the CLI: `replay(...)`, `compare(...)`, `load_trace(...)`."""

from __future__ import annotations

import os
from typing import Any, Iterable

from models.config import COMMON, HardwareConfig, load_hw
from models.designs import available_designs, get_design
from models.replay import replay as _replay
from models.result import Result
from workloads import Trace
from workloads.errors import TraceError


def default_trace_path(activation: str = "silu") -> str:
    """Path of the bundled trace of the tiny model with `activation` ("silu" or "relu")."""
    try:
        from workloads.bundled import bundled_trace
    except ImportError:
        raise TraceError("no bundled trace is installed; pass --trace PATH") from None
    return bundled_trace(f"tiny-{activation}")


def load_trace(path: str | os.PathLike | None = None, activation: str = "silu") -> Trace:
    return Trace(path if path is not None else default_trace_path(activation))


def _hw(hw: HardwareConfig | str | None) -> HardwareConfig:
    return hw if isinstance(hw, HardwareConfig) else load_hw(hw)


def replay(trace: str | os.PathLike | Trace | None = None, design: str = "dense",
           hw: HardwareConfig | str | None = None, memory: str | None = None,
           memory_params: dict[str, Any] | None = None, **kwargs) -> Result:
    """Replay a trace (default: the bundled one matching the design's activation) on a design."""
    cls = get_design(design)
    if trace is None:
        trace = load_trace(activation=cls.trace_activation)
    return _replay(trace, design, _hw(hw), memory, memory_params, **kwargs)


def compare(trace: str | os.PathLike | None = None, designs: Iterable[str] | None = None,
            hw: HardwareConfig | str | None = None, memory: str | None = None,
            memory_params: dict[str, Any] | None = None, progress: bool = False) -> dict[str, Result]:
    """Replay the same trace on several designs (default: every registered design)."""
    names = list(designs) if designs else available_designs()
    for n in names:
        get_design(n)
    resolved = _hw(hw)
    return {
        n: replay(trace, n, resolved, memory, memory_params, progress=progress) for n in names
    }


__all__ = ["COMMON", "Result", "compare", "default_trace_path", "load_trace", "replay"]
