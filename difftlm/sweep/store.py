"""The results store of a sweep directory.

    DIR/sweep.json                      the spec and every point (index, hash, design, trace, values)
    DIR/points/<hash>.json              one record per finished point: status, error, wall_s, summary row
    DIR/points/<hash>.result.json.gz    the point's full result (as `replay --out` saves it)
    DIR/points.parquet                  one row per point, in point order (pandas, polars, DuckDB)

Each point's files are written atomically as it finishes (result first, then its record), so
a killed sweep leaves only whole points; `points.parquet` is rebuilt from the records at the end
of every run. Everything but the `wall_s` column is deterministic.
"""

from __future__ import annotations

import fcntl
import gzip
import json
import os
from typing import Any

from difftlm.results_io import _write_atomic, summary_rows, write_text_atomic
from models.errors import ConfigError
from models.result import Result

from .points import Point
from .spec import Spec

FORMAT = "difftlm-sweep"
FORMAT_VERSION = 1
MANIFEST = "sweep.json"
TABLE = "points.parquet"
FIXED_COLUMNS = ("point", "config_hash", "design", "trace", "trace_id", "status", "error", "wall_s")


def is_sweep_dir(path: str) -> bool:
    return os.path.isfile(os.path.join(path, MANIFEST))


class Store:
    """A sweep directory opened for writing; holds an exclusive lock while open (a POSIX record
    lock: forked workers do not inherit it, and it goes when this process dies)."""

    def __init__(self, out: str, resume: bool):
        self.out = out
        self.points_dir = os.path.join(out, "points")
        parent = os.path.dirname(os.path.abspath(out))
        if os.path.lexists(out) and not os.path.isdir(out):
            raise ConfigError(f"--out {out}: exists and is not a directory; give a directory path")
        if not os.path.isdir(parent):
            raise ConfigError(f"--out {out}: the parent directory {parent} does not exist; create it first")
        if os.path.isdir(out) and os.listdir(out):
            if not is_sweep_dir(out):
                raise ConfigError(f"--out {out}: a non-empty directory that is not a sweep; give a new "
                                  "or empty directory")
            if not resume:
                raise ConfigError(f"--out {out}: already holds a sweep; pass --resume to continue it "
                                  "(finished points are kept) or give a new directory")
        os.makedirs(self.points_dir, exist_ok=True)
        self._lock = open(os.path.join(out, ".lock"), "w")
        try:
            fcntl.lockf(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            self._lock.close()
            raise ConfigError(f"--out {out}: another sweep is writing to this directory; wait for it "
                              "or give another directory") from None
        for d in (out, self.points_dir):  # temporary files of a writer that was killed
            for name in os.listdir(d):
                if name.startswith(".tmp-"):
                    os.unlink(os.path.join(d, name))

    def close(self) -> None:
        self._lock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def write_manifest(self, spec: Spec, points: list[Point]) -> None:
        doc = {"format": FORMAT, "format_version": FORMAT_VERSION, "name": spec.name,
               "spec": {"hw": spec.hw, "traces": list(spec.traces), "designs": list(spec.designs),
                        "fixed": spec.fixed, "quality": spec.quality,
                        "axes": [{"key": a.key, "values": list(a.values), "zip": a.zip} for a in spec.axes]},
               "points": [{"point": p.index, "config_hash": p.config_hash, "design": p.design,
                           "trace": p.trace, "trace_id": p.trace_id, "values": p.values} for p in points]}
        write_text_atomic(os.path.join(self.out, MANIFEST), json.dumps(doc, indent=1) + "\n")

    def _record_path(self, config_hash: str) -> str:
        return os.path.join(self.points_dir, f"{config_hash}.json")

    def result_path(self, config_hash: str) -> str:
        return os.path.join(self.points_dir, f"{config_hash}.result.json.gz")

    def finished(self) -> set[str]:
        """Hashes of points stored as ok with their full result."""
        out = set()
        for name in os.listdir(self.points_dir):
            if name.endswith(".json") and not name.startswith("."):
                h = name[: -len(".json")]
                rec = read_record(self.points_dir, h)
                if rec and rec["status"] == "ok" and os.path.exists(self.result_path(h)):
                    out.add(h)
        return out

    def write_point(self, point: Point, outcome: dict[str, Any]) -> dict[str, Any]:
        """Store one finished point (full result, then its record); returns the record."""
        summary = None
        if outcome["status"] == "ok":
            result = outcome["result"]
            data = gzip.compress(json.dumps(result, separators=(",", ":")).encode(), mtime=0)
            _write_atomic(self.result_path(point.config_hash), lambda tmp: _write_bytes(tmp, data))
            summary = _summary_row(point.design, result)
        rec = {"config_hash": point.config_hash, "status": outcome["status"], "error": outcome["error"],
               "wall_s": outcome["wall_s"], "summary": summary}
        write_text_atomic(self._record_path(point.config_hash), json.dumps(rec) + "\n")
        return rec

    def write_table(self, points: list[Point]) -> str:
        """`points.parquet`: one row per point of the current spec, in point order."""
        import pyarrow.parquet as pq

        table = _table([point_row(p, read_record(self.points_dir, p.config_hash)) for p in points])
        path = os.path.join(self.out, TABLE)
        _write_atomic(path, lambda tmp: pq.write_table(table, tmp))
        return path


def _write_bytes(path: str, data: bytes) -> None:
    with open(path, "wb") as f:
        f.write(data)


def _summary_row(design: str, result: dict[str, Any]) -> dict[str, Any]:
    row = summary_rows({design: Result.from_dict(result)})[0]
    for k in ("design", "trace_id"):
        row.pop(k)
    row["hw_name"], row["memory_model"] = row.pop("hw"), row.pop("memory")
    return row


def read_record(points_dir: str, config_hash: str) -> dict[str, Any] | None:
    try:
        with open(os.path.join(points_dir, f"{config_hash}.json")) as f:
            return json.load(f)
    except FileNotFoundError:
        return None


def point_row(p: Point, rec: dict[str, Any] | None) -> dict[str, Any]:
    row = {"point": p.index, "config_hash": p.config_hash, "design": p.design, "trace": p.trace,
           "trace_id": p.trace_id, "status": rec["status"] if rec else "missing",
           "error": rec["error"] if rec else None, "wall_s": rec["wall_s"] if rec else None}
    row.update(p.values)
    row.update((rec or {}).get("summary") or {})
    return row


def _table(rows: list[dict[str, Any]]):
    """A pyarrow table of `rows` (columns in first-seen order; a column whose values do not share
    one type is stored as strings)."""
    import pyarrow as pa

    cols: dict[str, None] = {}
    for row in rows:
        for k in row:
            cols.setdefault(k, None)
    data = {}
    for c in cols:
        vals = [row.get(c) for row in rows]
        if all(isinstance(v, (int, float, type(None))) and not isinstance(v, bool) for v in vals) and \
                any(isinstance(v, float) for v in vals):
            vals = [None if v is None else float(v) for v in vals]
        try:
            data[c] = pa.array(vals)
        except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
            data[c] = pa.array([None if v is None else str(v) for v in vals], pa.string())
    return pa.table(data)


def load(path: str):
    """The store of sweep directory `path` as a pyarrow Table (one row per point)."""
    import pyarrow.parquet as pq

    table = os.path.join(path, TABLE)
    if not is_sweep_dir(path):
        raise ConfigError(f"{path}: not a sweep directory (no {MANIFEST}); run difftlm sweep --out {path}")
    if not os.path.exists(table):
        raise ConfigError(f"{path}: no {TABLE} yet (the sweep was interrupted); run difftlm sweep --resume")
    return pq.read_table(table)


def load_manifest(path: str) -> dict[str, Any]:
    with open(os.path.join(path, MANIFEST)) as f:
        return json.load(f)


def load_result(path: str, config_hash: str) -> Result:
    """The full result of one point."""
    with gzip.open(os.path.join(path, "points", f"{config_hash}.result.json.gz"), "rt") as f:
        return Result.from_dict(json.load(f))
