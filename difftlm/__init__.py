"""DiffTLM: transaction-level simulation of diffusion-model accelerators (CLI + API façade)."""

from .api import compare, default_trace_path, load_trace, replay

__all__ = ["compare", "default_trace_path", "load_trace", "replay"]
