"""Accelerator designs, registered by name. Every module in this package is imported so its
`@design(...)` registrations take effect (a new design is a new module, nothing else to edit)."""

import importlib
import pkgutil

from .base import (
    BaseParams, Design, available_designs, create_design, describe_design, design, get_design, register_variant,
    resolve_design,
)

for _mod in pkgutil.iter_modules(__path__):
    if _mod.name != "base":
        importlib.import_module(f"{__name__}.{_mod.name}")

__all__ = ["BaseParams", "Design", "available_designs", "create_design", "describe_design", "design", "get_design",
           "register_variant", "resolve_design"]
