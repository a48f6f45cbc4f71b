"""Accelerator designs, registered by name."""

from . import dense  # noqa: F401
from .base import Design, available_designs, design, get_design

__all__ = ["Design", "available_designs", "design", "get_design"]
