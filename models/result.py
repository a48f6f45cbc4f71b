"""`Result`: what one replay measured, as summary keys with units plus per-op/per-step tables."""

from __future__ import annotations

import csv
import io
import json
import os
from typing import Any

import attrs

from tlm import write_json_atomic


@attrs.define
class Result:
    design: str
    summary: dict[str, Any]
    """Scalar results; every key names its unit (`_cycles`, `_ns`, `_bytes`, `_pj`, ...)."""
    per_step: list[dict[str, Any]]
    per_op: list[dict[str, Any]]
    """One row per (step, op): time window breakdown, busy times, MACs, DRAM bytes by kind."""
    components: dict[str, Any]
    config: dict[str, Any]
    """Fully resolved hardware config, design parameters and memory model parameters."""
    trace: dict[str, Any]
    versions: dict[str, str]
    notes: list[str]
    wall_s: float = attrs.field(default=0.0, eq=False)
    """Wall-clock seconds of the run (not saved: saved results are deterministic)."""

    def to_dict(self) -> dict[str, Any]:
        """The saved form (everything but `wall_s`); fields already hold plain dicts and lists."""
        return {a.name: getattr(self, a.name) for a in attrs.fields(Result) if a.name != "wall_s"}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Result":
        return cls(**d)

    def save_json(self, path: str | os.PathLike) -> None:
        write_json_atomic(path, self.to_dict())

    @classmethod
    def load_json(cls, path: str | os.PathLike) -> "Result":
        with open(path) as f:
            return cls.from_dict(json.load(f))

    def table_csv(self, table: str) -> str:
        """`per_op` or `per_step` as CSV text."""
        rows = getattr(self, table)
        buf = io.StringIO()
        if rows:
            w = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
            w.writeheader()
            w.writerows(rows)
        return buf.getvalue()

    def to_pandas(self, table: str = "per_op"):
        """A table as a pandas DataFrame (needs the optional `tables` extra)."""
        import pandas as pd

        return pd.DataFrame(getattr(self, table))
