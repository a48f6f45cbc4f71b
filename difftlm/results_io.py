"""Saving comparison results atomically: one JSON with everything (results, fully resolved
configs, versions, trace ids), plus per-design, per-op and per-step tables as CSV (and Parquet
when pyarrow is installed). Saved files are deterministic: two identical runs give identical
bytes (wall-clock times are not saved)."""

from __future__ import annotations

import csv
import io
import json
import os
import tempfile
from typing import Any, Mapping

from models.result import Result

FORMAT = "difftlm-results"
FORMAT_VERSION = 1


def write_text_atomic(path: str, text: str) -> None:
    def write(tmp: str) -> None:
        with open(tmp, "w") as f:
            f.write(text)

    _write_atomic(path, write)


def _write_atomic(path: str, writer) -> None:
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-")
    os.close(fd)
    try:
        writer(tmp)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _flatten(d: Mapping[str, Any], prefix: str = "", skip: tuple[str, ...] = ()) -> dict[str, Any]:
    out = {}
    for k, v in d.items():
        if k in skip:
            continue
        key = f"{prefix}{k}"
        if isinstance(v, Mapping):
            out.update(_flatten(v, key + "."))
        elif isinstance(v, (list, tuple)):
            out[key] = ";".join(map(str, v))
        else:
            out[key] = v
    return out


def summary_rows(results: Mapping[str, Result]) -> list[dict[str, Any]]:
    """One flat row per design (nested summary keys joined with '.', e.g. `energy_pj.dram`)."""
    rows = []
    for name, r in results.items():
        row = {"design": name, "trace_id": r.trace["trace_id"], "trace_model": r.trace["model"],
               "synthetic_stats": r.trace["synthetic_stats"], "hw": r.config["hw"]["name"],
               "memory": r.config["memory"]["name"]}
        row.update(_flatten(r.summary, skip=("energy_model", "energy_notes", "design")))
        rows.append(row)
    return rows


def table_rows(results: Mapping[str, Result], table: str) -> list[dict[str, Any]]:
    """`per_op` or `per_step` rows of every design, with a leading `design` column."""
    return [{"design": name, **row} for name, r in results.items() for row in getattr(r, table)]


def _columns(rows: list[dict[str, Any]]) -> list[str]:
    cols: dict[str, None] = {}
    for row in rows:
        for k in row:
            cols.setdefault(k, None)
    return list(cols)


def rows_csv(rows: list[dict[str, Any]]) -> str:
    buf = io.StringIO()
    if rows:
        w = csv.DictWriter(buf, fieldnames=_columns(rows), lineterminator="\n", restval="")
        w.writeheader()
        w.writerows(rows)
    return buf.getvalue()


def _write_parquet(path: str, rows: list[dict[str, Any]]) -> bool:
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        return False
    cols = _columns(rows)
    data = {}
    for c in cols:
        vals = [row.get(c) for row in rows]
        if any(isinstance(v, float) for v in vals) and all(isinstance(v, (int, float, type(None))) and not isinstance(v, bool) for v in vals):
            vals = [None if v is None else float(v) for v in vals]
        data[c] = vals
    table = pa.table(data) if rows else pa.table({})
    _write_atomic(path, lambda tmp: pq.write_table(table, tmp))
    return True


def results_document(results: Mapping[str, Result], meta: Mapping[str, Any] | None = None) -> dict:
    return {"format": FORMAT, "format_version": FORMAT_VERSION, **(meta or {}),
            "trace_ids": {n: r.trace["trace_id"] for n, r in results.items()},
            "results": {n: r.to_dict() for n, r in results.items()}}


def save_results(results: Mapping[str, Result], out_dir: str, meta: Mapping[str, Any] | None = None,
                 parquet: bool = True) -> list[str]:
    """Write `results.json` (everything: summaries, tables, resolved configs, versions, trace
    ids, energy tables) and `summary` / `per_op` / `per_step` tables as CSV (+ Parquet);
    returns the paths written."""
    os.makedirs(out_dir, exist_ok=True)
    written = []
    tables = {"summary": summary_rows(results), "per_op": table_rows(results, "per_op"),
              "per_step": table_rows(results, "per_step")}
    for name, rows in tables.items():
        path = os.path.join(out_dir, f"{name}.csv")
        write_text_atomic(path, rows_csv(rows))
        written.append(path)
        if parquet:
            path = os.path.join(out_dir, f"{name}.parquet")
            if _write_parquet(path, rows):
                written.append(path)
    path = os.path.join(out_dir, "results.json")
    # compact separators keep the C encoder (an indented dump of the per-op rows is ~10x slower)
    write_text_atomic(path, json.dumps(results_document(results, meta), separators=(",", ":")) + "\n")
    written.append(path)
    return written


def load_document(path: str) -> dict[str, Any]:
    with open(path) as f:
        return json.load(f)


def load_results(path: str) -> dict[str, Result]:
    """Results from `results.json` (a compare run), a single saved `Result` (`replay --out`), or
    a directory holding `results.json`."""
    if os.path.isdir(path):
        path = os.path.join(path, "results.json")
    data = load_document(path)
    if data.get("format") == FORMAT:
        data = data["results"]
    elif "summary" in data and "design" in data:
        data = {data["design"]: data}
    return {name: Result.from_dict(d) for name, d in data.items()}


__all__ = ["load_results", "rows_csv", "save_results", "summary_rows", "table_rows",
           "write_text_atomic"]
