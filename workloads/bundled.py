"""Paths of the bundled traces (captured from the trained tiny and small models)."""

from __future__ import annotations

from pathlib import Path

from .errors import TraceError

TRACE_DIR = Path(__file__).resolve().parent / "data" / "traces"
BUNDLED_MODELS = ("tiny", "small")
"""Bundled models; each has a SiLU and a ReLU twin trained with the same seed and recipe."""
BUNDLED = tuple(f"{m}-{act}" for m in BUNDLED_MODELS for act in ("silu", "relu"))


def bundled_trace(name: str = "tiny-silu") -> Path:
    """Path of the bundled 50-step DDIM trace of ``name`` (e.g. "tiny-silu", "small-relu")."""
    if name not in BUNDLED:
        raise TraceError(f"bundled trace: unknown name {name!r}; known: {', '.join(BUNDLED)}")
    path = TRACE_DIR / f"{name}-50.trace.zip"
    if not path.exists():
        raise TraceError(f"bundled trace {path} is missing; regenerate it with scripts/make_bundled_traces.sh")
    return path
