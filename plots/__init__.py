"""Figures from result tables (matplotlib, Agg backend); no simulation logic."""

from .figures import (KINDS, breakdown, energy, has_quality, make, quality, save_figure, speedup,
                      speedups, timeline, traffic, write_all)

__all__ = ["KINDS", "breakdown", "energy", "has_quality", "make", "quality", "save_figure", "speedup",
           "speedups", "timeline", "traffic", "write_all"]
