"""Memory models behind one interface, chosen by name (see `base` for the contract)."""

from . import ideal  # noqa: F401  (registers "ideal")
from . import dram_presets  # noqa: F401  (registers the DRAM presets)
from .base import (
    ENTRY_POINT_GROUP, MemoryModel, MemoryResponse, available_memory_models,
    create_memory_model, memory_model, memory_model_config, register_preset,
)

__all__ = [
    "ENTRY_POINT_GROUP", "MemoryModel", "MemoryResponse", "available_memory_models",
    "create_memory_model", "memory_model", "memory_model_config", "register_preset",
]
