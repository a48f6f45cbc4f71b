"""DiffTLM: transaction-level simulation of diffusion-model accelerators (CLI + API façade)."""

from .api import Comparison, compare, default_trace_path, load_results, load_trace, replay

__all__ = ["Comparison", "compare", "default_trace_path", "load_results", "load_trace", "replay"]
