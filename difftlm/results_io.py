"""Saving comparison results atomically: one JSON with everything (results, fully resolved
configs, versions, trace ids), plus per-design, per-op and per-step tables as CSV (and Parquet
when pyarrow is installed). Saved files are deterministic: two identical runs give identical
bytes (wall-clock times are not saved)."""

from __future__ import annotations

import contextlib
import csv
import errno
import io
import json
import os
import shutil
import tempfile
from typing import Any, Mapping

import attrs

from models.errors import ConfigError
from models.result import Result

FORMAT = "difftlm-results"
FORMAT_VERSION = 1


def write_text_atomic(path: str, text: str) -> None:
    def write(tmp: str) -> None:
        with open(tmp, "w") as f:
            f.write(text)

    _write_atomic(path, write)


def _umask_mode(path: str, mode: int = 0o666) -> None:
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, mode & ~umask)


def _write_atomic(path: str, writer) -> None:
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-")
    os.close(fd)
    try:
        writer(tmp)
        _umask_mode(tmp)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _flatten(d: Mapping[str, Any], prefix: str = "", skip: tuple[str, ...] = ()) -> dict[str, Any]:
    """Nested keys joined with '.'; per-layer series (keys ending `_by_layer`) stay in results.json."""
    out = {}
    for k, v in d.items():
        if k in skip or k.endswith("_by_layer"):
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
        cols = _columns(rows)
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(cols)
        w.writerows([row.get(c, "") for c in cols] for row in rows)
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
        types = set(map(type, vals))  # a numeric column with a float in it is all floats
        if any(issubclass(t, float) for t in types) and all(
                t is type(None) or (issubclass(t, (int, float)) and not issubclass(t, bool)) for t in types):
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
    doc = results_document(results, meta)
    try:
        text = json.dumps(doc, separators=(",", ":"), allow_nan=False)
    except ValueError:  # NaN / infinity somewhere: strict JSON gets null plus a note saying where
        from .commands.common import strict_json

        undefined: list[str] = []
        doc = strict_json(doc, "", undefined)
        doc["json_notes"] = [f"null: {p} is undefined or unbounded (NaN/infinity has no JSON form)"
                             for p in undefined]
        text = json.dumps(doc, separators=(",", ":"), allow_nan=False)
    write_text_atomic(path, text + "\n")
    written.append(path)
    return written


def load_document(path: str) -> dict[str, Any]:
    """The parsed results document; a one-line ResultsError when it is not one."""
    if os.path.isdir(path):
        check_complete(path)
        path = os.path.join(path, "results.json")
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except FileNotFoundError:
        raise ResultsError(f"{path}: no such file") from None
    except OSError as exc:
        raise ResultsError(f"{path}: cannot read ({exc.strerror or exc})") from None
    if not raw.strip():
        raise ResultsError(f"{path}: empty file, not a DiffTLM results file; run compare --out again")
    try:
        data = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise ResultsError(f"{path}: binary data, not a DiffTLM results file") from None
    except (json.JSONDecodeError, RecursionError) as exc:
        raise ResultsError(f"{path}: not valid JSON, truncated or corrupt "
                           f"({str(exc).splitlines()[0]}); run compare --out again") from None
    if not isinstance(data, dict):
        raise ResultsError(f"{path}: expected a JSON object, got {type(data).__name__}; not a DiffTLM "
                           "results file")
    return data


_RESULT_KEYS = tuple(a.name for a in attrs.fields(Result) if a.name != "wall_s")


def _result(path: str, name: str, d: Any) -> Result:
    if not isinstance(d, dict):
        raise ResultsError(f"{path}: results.{name}: expected an object, got {type(d).__name__}")
    missing = [k for k in _RESULT_KEYS if k not in d]
    if missing:
        raise ResultsError(f"{path}: results.{name}: missing field {missing[0]!r}; not a DiffTLM result")
    unknown = sorted(set(d) - set(_RESULT_KEYS))
    if unknown:
        raise ResultsError(f"{path}: results.{name}: unknown field {unknown[0]!r}")
    for key, typ in (("summary", dict), ("per_step", list), ("per_op", list), ("config", dict),
                     ("trace", dict), ("notes", list)):
        if not isinstance(d[key], typ):
            raise ResultsError(f"{path}: results.{name}.{key}: expected a JSON {typ.__name__}")
    for key in ("total_cycles", "total_ns"):
        v = d["summary"].get(key)
        if not isinstance(v, (int, float)) or isinstance(v, bool):
            raise ResultsError(f"{path}: results.{name}.summary.{key}: expected a number")
    return Result.from_dict(d)


def load_results(path: str) -> dict[str, Result]:
    """Results from `results.json` (a compare run), a single saved `Result` (`replay --out`), or
    a directory holding a complete result set (see `result_set`). An incomplete, foreign or
    misshapen file is a one-line ResultsError."""
    data = load_document(path)
    where = os.path.join(path, "results.json") if os.path.isdir(path) else path
    if data.get("format") == FORMAT:
        if data.get("format_version") != FORMAT_VERSION:
            raise ResultsError(f"{where}: results format version {data.get('format_version')!r} is not "
                               f"supported (this DiffTLM reads {FORMAT_VERSION})")
        data = data.get("results")
        if not isinstance(data, dict):
            raise ResultsError(f"{where}: 'results' must be an object of design -> result")
    elif "summary" in data and "design" in data:
        data = {data["design"]: data}
    else:
        raise ResultsError(f"{where}: not a DiffTLM results file (no format {FORMAT!r} marker)")
    return {name: _result(where, name, d) for name, d in data.items()}


# ---------------------------------------------------------------- result sets (compare --out)
COMPLETE_MARKER = ".difftlm-complete"
"""Written last into a result set: the format and every file's size. Readers check it."""


class ResultsError(ConfigError):
    """A result set that cannot be written, or a results file that cannot be read."""


def check_complete(directory: str) -> dict[str, Any]:
    """The completion marker of result set `directory`, checked against the files it lists."""
    marker = os.path.join(directory, COMPLETE_MARKER)
    try:
        with open(marker) as f:
            info = json.load(f)
    except FileNotFoundError:
        hint = ("an incomplete or pre-marker result set" if os.path.exists(os.path.join(directory, "results.json"))
                else "not a DiffTLM result set")
        raise ResultsError(f"{directory}: {hint} (no {COMPLETE_MARKER}); run compare --out again") from None
    except (OSError, ValueError) as exc:
        raise ResultsError(f"{directory}: unreadable {COMPLETE_MARKER} ({exc}); run compare --out again") from None
    if not isinstance(info, dict) or info.get("format") != FORMAT or not isinstance(info.get("files"), dict):
        raise ResultsError(f"{directory}: {COMPLETE_MARKER} is not a DiffTLM result-set marker")
    for name, size in info["files"].items():
        try:
            actual = os.path.getsize(os.path.join(directory, name))
        except OSError:
            raise ResultsError(f"{directory}: incomplete result set ({name} is missing)") from None
        if actual != size:
            raise ResultsError(f"{directory}: incomplete result set ({name} is {actual} bytes, "
                               f"the set recorded {size})")
    return info


def is_result_set(directory: str) -> bool:
    return os.path.exists(os.path.join(directory, COMPLETE_MARKER)) or (
        os.path.exists(os.path.join(directory, "results.json"))
        and os.path.exists(os.path.join(directory, "summary.csv")))


def check_out_dir(out: str, flag: str = "--out") -> None:
    """Refuse, before any simulation, an --out that cannot become a result set: a file, a missing
    or read-only parent, or a non-empty directory that is not a previous result set."""
    out_abs = os.path.abspath(out)
    parent = os.path.dirname(out_abs)
    if os.path.lexists(out_abs) and not os.path.isdir(out_abs):
        raise ResultsError(f"{flag} {out}: exists and is not a directory; give a directory path")
    if not os.path.isdir(parent):
        what = "is not a directory" if os.path.exists(parent) else "does not exist"
        raise ResultsError(f"{flag} {out}: the parent directory {parent} {what}; create it first")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ResultsError(f"{flag} {out}: the parent directory {parent} is not writable")
    if os.path.islink(out_abs):
        raise ResultsError(f"{flag} {out}: is a symbolic link; give the directory itself")
    if os.path.isdir(out_abs):
        try:
            entries = os.listdir(out_abs)
        except OSError as exc:
            raise ResultsError(f"{flag} {out}: cannot list the directory ({exc.strerror})") from None
        if entries and not is_result_set(out_abs):
            raise ResultsError(f"{flag} {out}: a non-empty directory that is not a DiffTLM result set; "
                               "give a new or empty directory (a result set is replaced as a whole)")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _clean_stale(parent: str, base: str) -> None:
    """Remove temporary sets of writers that died (kill -9) before renaming theirs into place."""
    try:
        names = os.listdir(parent)
    except OSError:
        return
    for name in names:
        prefix = next((p for p in (f".{base}.tmp-", f".{base}.old-") if name.startswith(p)), None)
        if prefix is None:
            continue
        try:
            pid = int(name[len(prefix):].split("-", 1)[0])
        except ValueError:
            continue
        if pid != os.getpid() and not _pid_alive(pid):
            shutil.rmtree(os.path.join(parent, name), ignore_errors=True)


def _exchange(a: str, b: str) -> bool:
    """Atomically swap two paths (Linux renameat2 RENAME_EXCHANGE); False where unsupported."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        fn = libc.renameat2
    except (OSError, AttributeError):
        return False
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    at_fdcwd, rename_exchange = -100, 2
    if fn(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP if hasattr(errno, "ENOTSUP") else -1):
        return False
    raise OSError(err, os.strerror(err), a, None, b)


@contextlib.contextmanager
def result_set(out: str, flag: str = "--out"):
    """Write a result set atomically: yields a private temporary directory beside `out`
    (`.<name>.tmp-<pid>-XXXX`); on success it writes the completion marker and swaps the directory
    into place in one step (renameat2 exchange; elsewhere rename out -> .<name>.old-..., then tmp ->
    out), then removes the previous set. On any error or signal the temporary directory is removed
    and the previous set stays as it was. Concurrent writers each swap in a complete set: the
    last one wins, and no set is ever a mix. Files get the umask's mode."""
    check_out_dir(out, flag)
    out_abs = os.path.abspath(out)
    parent, base = os.path.split(out_abs)
    _clean_stale(parent, base)
    with _sigterm_as_exit():
        try:
            tmp = tempfile.mkdtemp(prefix=f".{base}.tmp-{os.getpid()}-", dir=parent)
            _umask_mode(tmp, 0o777)
        except OSError as exc:
            raise ResultsError(f"{flag} {out}: cannot create a directory beside it ({exc.strerror})") from None
        with _removed_on_failure(tmp, out, flag):
            yield tmp
            _finish(tmp, out_abs)


@contextlib.contextmanager
def _sigterm_as_exit():
    """While a set is written, SIGTERM raises SystemExit (so cleanup runs) instead of killing."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_term(signum, frame):
        raise SystemExit(128 + signum)

    old = signal.signal(signal.SIGTERM, on_term)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)


def _finish(tmp: str, out_abs: str) -> None:
    """Write the completion marker into `tmp`, then swap it into place."""
    files = {}
    for root, _dirs, names in os.walk(tmp):
        for name in names:
            full = os.path.join(root, name)
            files[os.path.relpath(full, tmp)] = os.path.getsize(full)
    with open(os.path.join(tmp, COMPLETE_MARKER), "w") as f:
        json.dump({"format": FORMAT, "format_version": FORMAT_VERSION,
                   "files": dict(sorted(files.items()))}, f, indent=1)
        f.write("\n")
        f.flush()
        os.fsync(f.fileno())
    import signal

    blocked = {signal.SIGINT, signal.SIGTERM}
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, blocked)  # the swap is not interrupted
    try:
        _swap_in(tmp, out_abs)
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


@contextlib.contextmanager
def _removed_on_failure(tmp: str, out: str, flag: str):
    try:
        yield
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise ResultsError(f"{flag} {out}: cannot write the results ({exc.strerror or exc}); "
                           "the previous results are unchanged") from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _swap_in(tmp: str, out_abs: str) -> None:
    """Put complete set `tmp` at `out_abs` in one step; a concurrent writer's set is replaced
    whole (the last writer wins), never merged."""
    for _ in range(5):
        if not os.path.lexists(out_abs):
            try:
                os.rename(tmp, out_abs)
                return
            except OSError as exc:
                if exc.errno not in (errno.ENOTEMPTY, errno.EEXIST):
                    raise
                continue  # another writer got there first: swap with its set instead
        try:
            if _exchange(tmp, out_abs):
                shutil.rmtree(tmp, ignore_errors=True)  # now holds the previous set
                return
        except OSError as exc:
            if exc.errno != errno.ENOENT:
                raise
            continue  # the set moved meanwhile: try again
        # no atomic exchange here: move the previous set aside, then rename the new one in
        old = tempfile.mkdtemp(prefix=f".{os.path.basename(out_abs)}.old-{os.getpid()}-",
                               dir=os.path.dirname(out_abs))
        try:
            os.rename(out_abs, os.path.join(old, "set"))
            os.rename(tmp, out_abs)
        except OSError as exc:
            if exc.errno not in (errno.ENOENT, errno.ENOTEMPTY, errno.EEXIST):
                raise
            continue
        finally:
            shutil.rmtree(old, ignore_errors=True)
        return
    raise OSError(errno.EBUSY, "other writers keep replacing the result set", out_abs)
