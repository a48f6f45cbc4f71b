"""Design-space sweeps: a TOML spec of axes over hardware, memory and design settings, run on
a local process pool or a Dask cluster into a Parquet store (see docs/sweeps.md)."""

from .points import Point, plan
from .run import SweepReport, estimate, run_sweep
from .spec import Axis, Spec, load_spec, spec_from_dict
from .store import is_sweep_dir, load, load_manifest, load_result

__all__ = ["Axis", "Point", "Spec", "SweepReport", "estimate", "is_sweep_dir", "load", "load_manifest",
           "load_result", "load_spec", "plan", "run_sweep", "spec_from_dict"]
