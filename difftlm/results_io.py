"""Saving comparison results: one JSON with everything, plus per-design CSV tables, atomically."""

from __future__ import annotations

import json
import os
import tempfile

from models.result import Result


def write_text_atomic(path: str, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(os.path.abspath(path)), prefix=".tmp-")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def save_results(results: dict[str, Result], out_dir: str) -> list[str]:
    """Write `results.json` and `<design>.per_op.csv` / `<design>.per_step.csv`; returns paths."""
    os.makedirs(out_dir, exist_ok=True)
    written = []
    for name, res in results.items():
        for table in ("per_op", "per_step"):
            path = os.path.join(out_dir, f"{name}.{table}.csv")
            write_text_atomic(path, res.table_csv(table))
            written.append(path)
    path = os.path.join(out_dir, "results.json")
    write_text_atomic(path, json.dumps({n: r.to_dict() for n, r in results.items()}, indent=1))
    written.append(path)
    return written


def load_results(path: str) -> dict[str, Result]:
    with open(path) as f:
        data = json.load(f)
    return {name: Result.from_dict(d) for name, d in data.items()}
