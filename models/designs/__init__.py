"""Accelerator designs, registered by name. Every module in this package is imported so its
`@design(...)` registrations take effect (a new design is a new module, nothing else to edit)."""

import importlib
import pkgutil

from .base import Design, available_designs, design, get_design

for _mod in pkgutil.iter_modules(__path__):
    if _mod.name != "base":
        importlib.import_module(f"{__name__}.{_mod.name}")

__all__ = ["Design", "available_designs", "design", "get_design"]
