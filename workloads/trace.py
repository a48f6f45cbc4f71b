"""The trace container: manifest + op table + per-step statistics, in one zip archive.

Layout of a `.trace.zip` file (schema `difftlm-trace`, version `SCHEMA_VERSION`):
    manifest.json        model, sampler, step list, batch, seed, quantization, provenance,
                         synthetic_stats, ...
    ops.json             the op table (list of `OpRecord` rows, execution order)
    steps/00000.npz      statistics of step 0, ... one file per executed sampler step

A step file holds scalar statistics as `s/<stat>/ops` (op ids) + `s/<stat>/values`, and array
statistics as `a/<stat>/<op_id>`. Steps are read lazily, one at a time, so an SD-scale trace
replays without loading every array. Statistic names and value checks live in `stats.STATS`.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tempfile
import zipfile
from collections import OrderedDict
from typing import Any, Iterable, Iterator

import attrs
import numpy as np

from . import limits
from .errors import TraceError
from .schema import OpRecord, op_from_dict
from .stats import validate_scalars, validate_stat

SCHEMA = "difftlm-trace"
SCHEMA_VERSION = 1
_VALIDATED_FILES: set = set()
"""Archives whose every step this process has already checked (by path, inode, size, mtime)."""
WEIGHTS = ("trained", "random", "local")
"""`manifest.weights`: bundled trained checkpoints, random initialisation (statistics mean
nothing), or weights a user loaded from a local directory."""
REQUIRED_MANIFEST = ("schema", "version", "model", "steps", "batch", "synthetic_stats")


@attrs.define
class StepStats:
    """Statistics of one sampler step: scalar stats per op, and per-op arrays."""

    scalars: dict[str, dict[int, float]] = attrs.field(factory=dict)
    arrays: dict[str, dict[int, np.ndarray]] = attrs.field(factory=dict)

    def scalar(self, stat: str, op_id: int, default: float | None = None) -> float:
        try:
            return self.scalars[stat][op_id]
        except KeyError:
            if default is not None:
                return default
            raise TraceError(f"statistic {stat!r} is missing for op {op_id}") from None

    def array(self, stat: str, op_id: int) -> np.ndarray:
        try:
            return self.arrays[stat][op_id]
        except KeyError:
            raise TraceError(f"array statistic {stat!r} is missing for op {op_id}") from None


def _step_name(i: int) -> str:
    return f"steps/{i:05d}.npz"


def encode_step(stats: StepStats) -> bytes:
    payload: dict[str, np.ndarray] = {}
    for stat, per_op in stats.scalars.items():
        ids = sorted(per_op)
        payload[f"s/{stat}/ops"] = np.asarray(ids, dtype=np.int32)
        payload[f"s/{stat}/values"] = np.asarray([per_op[i] for i in ids], dtype=np.float64)
    for stat, per_op in stats.arrays.items():
        for op_id, arr in per_op.items():
            payload[f"a/{stat}/{op_id}"] = np.asarray(arr)
    # an .npz (as np.savez_compressed writes it) with fixed member timestamps: reproducible bytes
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for key, arr in payload.items():
            info = zipfile.ZipInfo(key + ".npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            with zf.open(info, "w", force_zip64=True) as f:
                np.lib.format.write_array(f, np.asanyarray(arr), allow_pickle=False)
    return buf.getvalue()


def decode_step(data: bytes, where: str) -> StepStats:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as inner:
            for info in inner.infolist():
                if info.file_size > limits.MAX_MEMBER_BYTES:
                    raise TraceError(
                        f"{where}: member {info.filename} decompresses to {info.file_size:,} bytes, over "
                        f"the {limits.MAX_MEMBER_BYTES:,}-byte limit ({limits.ENV_PREFIX}MAX_MEMBER_BYTES)")
        npz = np.load(io.BytesIO(data), allow_pickle=False)
        files = {k: npz[k] for k in npz.files}
    except TraceError:
        raise
    except Exception as exc:  # corrupted member
        msg = str(exc).splitlines()[0] if str(exc) else ""
        raise TraceError(f"{where}: unreadable step file ({exc.__class__.__name__}: {msg})") from None
    stats = StepStats()
    for key, arr in files.items():
        parts = key.split("/")
        if parts[0] == "s" and len(parts) == 3 and parts[2] == "ops":
            values = files.get(f"s/{parts[1]}/values")
            if values is None or values.shape != arr.shape or arr.ndim != 1:
                raise TraceError(f"{where}: s/{parts[1]}/values must match s/{parts[1]}/ops in length")
            if arr.dtype.kind not in "iu":
                raise TraceError(f"{where}: s/{parts[1]}/ops has dtype {arr.dtype}, expected integer op ids")
            if values.dtype.kind != "f":
                raise TraceError(f"{where}: {parts[1]} values have dtype {values.dtype}, expected "
                                 "floating point; re-capture the trace")
            stats.scalars[parts[1]] = dict(zip(arr.tolist(), values.tolist()))
        elif parts[0] == "a" and len(parts) == 3:
            if not parts[2].isdigit():
                raise TraceError(f"{where}: unexpected member {key!r} (expected a/<stat>/<op id>)")
            stats.arrays.setdefault(parts[1], {})[int(parts[2])] = arr
        elif not (parts[0] == "s" and len(parts) == 3 and parts[2] == "values"):
            raise TraceError(f"{where}: unexpected member {key!r}")
    return stats


def validate_step(stats: StepStats, ops: list[OpRecord], where: str) -> None:
    n = len(ops)
    for stat, per_op in stats.scalars.items():
        validate_scalars(stat, np.fromiter(per_op.keys(), dtype=np.int64, count=len(per_op)),
                         list(per_op.values()), n, where)
    for stat, per_op in stats.arrays.items():
        for op_id, arr in per_op.items():
            if not 0 <= op_id < n:
                raise TraceError(f"{where}: {stat} names op {op_id}, the op table has {n} ops")
            validate_stat(stat, arr, ops[op_id], f"{where}: {stat}[op {op_id}]")


def _writestr(zf: zipfile.ZipFile, name: str, data) -> None:
    """Write a member with a fixed timestamp, so equal content gives an equal archive."""
    info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
    info.compress_type = zipfile.ZIP_STORED
    info.external_attr = 0o644 << 16
    zf.writestr(info, data)


class TraceWriter:
    """A trace written step by step (streamed, so capture holds one step's statistics at a time),
    atomically: a temporary archive beside `path`, renamed on `finish`, removed on `abort`.

        with TraceWriter(path, ops) as w:
            for st in steps:
                w.add(st)
            w.finish(manifest)
    """

    def __init__(self, path: str | os.PathLike, ops: list[OpRecord]):
        for i, op in enumerate(ops):
            op_from_dict(i, op.to_dict())
        limits.check_forward(ops)
        path = os.fspath(path)
        if os.path.isdir(path):
            raise TraceError(f"--out {path}: is a directory; give a .trace.zip file name")
        parent = os.path.dirname(os.path.abspath(path))
        if not os.path.isdir(parent):
            raise TraceError(f"--out {path}: the directory {parent} does not exist")
        self.path, self.ops, self.count = path, ops, 0
        fd, self._tmp = tempfile.mkstemp(dir=parent, prefix=".tmp-", suffix=".zip")
        os.close(fd)
        self._zf: zipfile.ZipFile | None = zipfile.ZipFile(self._tmp, "w", compression=zipfile.ZIP_STORED)
        _writestr(self._zf, "ops.json", json.dumps([op.to_dict() for op in ops]))

    def add(self, stats: StepStats) -> None:
        """Validate and append the next step's statistics."""
        name = _step_name(self.count)
        validate_step(stats, self.ops, name)
        _writestr(self._zf, name, encode_step(stats))
        self.count += 1

    def finish(self, manifest: dict[str, Any]) -> None:
        """Write the manifest (its `steps` must list as many steps as were added) and rename."""
        manifest = {"schema": SCHEMA, "version": SCHEMA_VERSION, **manifest}
        _validate_manifest(manifest)
        if self.count != len(manifest["steps"]):
            raise TraceError(
                f"manifest.steps lists {len(manifest['steps'])} steps but {self.count} step tables were given"
            )
        _writestr(self._zf, "manifest.json", json.dumps(manifest, indent=1, sort_keys=True))
        self._zf.close()
        self._zf = None
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(self._tmp, 0o666 & ~umask)
        os.replace(self._tmp, self.path)

    def abort(self) -> None:
        if self._zf is not None:
            self._zf.close()
            self._zf = None
        if os.path.exists(self._tmp):
            os.unlink(self._tmp)

    def __enter__(self) -> "TraceWriter":
        return self

    def __exit__(self, exc_type, *exc) -> None:
        if exc_type is not None or self._zf is not None:
            self.abort()


def write_trace(
    path: str | os.PathLike, manifest: dict[str, Any], ops: list[OpRecord], steps: Iterable[StepStats]
) -> None:
    """Write a trace atomically (temporary file + rename); validates as it writes."""
    check_manifest(manifest)
    with TraceWriter(path, ops) as w:
        for st in steps:
            w.add(st)
        w.finish(manifest)


def _looks_truncated(path: str) -> bool:
    """A zip archive that starts like one but has no end-of-central-directory record."""
    try:
        with open(path, "rb") as f:
            head = f.read(4)
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - 65558))
            tail = f.read()
    except OSError:
        return False
    return head == b"PK\x03\x04" and b"PK\x05\x06" not in tail


def check_manifest(manifest: dict[str, Any]) -> None:
    """Check a manifest before anything is written (schema and version are added by the writer)."""
    _validate_manifest({"schema": SCHEMA, "version": SCHEMA_VERSION, **manifest})


def _validate_manifest(m: dict[str, Any]) -> None:
    for key in REQUIRED_MANIFEST:
        if key not in m:
            raise TraceError(f"manifest.{key}: missing required field")
    if m["schema"] != SCHEMA:
        raise TraceError(f"manifest.schema: is {m['schema']!r}, expected {SCHEMA!r}; not a DiffTLM trace")
    if m["version"] != SCHEMA_VERSION:
        raise TraceError(
            f"manifest.version: trace schema version {m['version']!r} is not supported "
            f"(this DiffTLM reads version {SCHEMA_VERSION}); re-capture or convert the trace"
        )
    if not isinstance(m["steps"], list) or not m["steps"]:
        raise TraceError("manifest.steps: must be a non-empty list of sampler timesteps")
    if not isinstance(m["batch"], int) or isinstance(m["batch"], bool) or m["batch"] < 1:
        raise TraceError(f"manifest.batch: must be a positive integer, got {m['batch']!r}")
    if not isinstance(m["synthetic_stats"], bool):
        raise TraceError("manifest.synthetic_stats: must be true or false")
    if m.get("weights", "trained") not in WEIGHTS:
        raise TraceError(f"manifest.weights: is {m['weights']!r}; expected one of {', '.join(WEIGHTS)}")


class Trace:
    """A trace opened for reading: manifest and op table eagerly, steps lazily."""

    def __init__(self, path: str | os.PathLike, cache_steps: int = 64):
        self.path = os.fspath(path)
        self._cache: OrderedDict[int, StepStats] = OrderedDict()
        self._cache_steps = cache_steps
        self._all_validated = False
        self._fingerprints: dict[int, str] = {}
        if not os.path.exists(self.path):
            raise TraceError(f"trace {self.path}: no such file")
        if os.path.isdir(self.path):
            raise TraceError(f"trace {self.path}: is a directory; give a .trace.zip file")
        try:
            self._zip = zipfile.ZipFile(self.path)
        except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
            if _looks_truncated(self.path):
                raise TraceError(f"trace {self.path}: truncated (the archive ends before its "
                                 "directory); copy or capture it again") from None
            if isinstance(exc, OSError) and exc.strerror:
                raise TraceError(f"trace {self.path}: cannot read ({exc.strerror})") from None
            msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise TraceError(f"trace {self.path}: not a DiffTLM trace archive ({msg})") from None
        names = set(self._zip.namelist())
        for member in ("manifest.json", "ops.json"):
            if member not in names:
                if _looks_truncated(self.path):
                    raise TraceError(f"trace {self.path}: truncated (missing {member}); copy or "
                                     "capture it again")
                raise TraceError(f"trace {self.path}: missing table {member}")
        self.manifest = self._json("manifest.json")
        if not isinstance(self.manifest, dict):
            raise TraceError("manifest.json: expected a JSON object")
        _validate_manifest(self.manifest)
        rows = self._json("ops.json")
        if not isinstance(rows, list) or not rows:
            raise TraceError("ops.json: expected a non-empty list of ops")
        self.ops: list[OpRecord] = [op_from_dict(i, row) for i, row in enumerate(rows)]
        limits.check_forward(self.ops)
        for i in range(self.n_steps):
            if _step_name(i) not in names:
                raise TraceError(f"trace {self.path}: missing table {_step_name(i)} (manifest lists {self.n_steps} steps)")

    def _read_member(self, member: str) -> bytes:
        """One archive member, refused before reading when it decompresses past the limit."""
        info = self._zip.getinfo(member)
        if info.file_size > limits.MAX_MEMBER_BYTES:
            raise TraceError(
                f"trace {self.path}: member {member} decompresses to {info.file_size:,} bytes, over the "
                f"{limits.MAX_MEMBER_BYTES:,}-byte limit ({limits.ENV_PREFIX}MAX_MEMBER_BYTES)")
        try:
            return self._zip.read(member)
        except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
            hint = " (the archive looks truncated)" if _looks_truncated(self.path) else ""
            msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise TraceError(f"trace {self.path}: member {member} unreadable{hint} ({msg})") from None

    def _json(self, member: str):
        data = self._read_member(member)
        try:
            return json.loads(data)
        except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
            msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise TraceError(f"{member}: not valid JSON ({msg})") from None

    @property
    def n_steps(self) -> int:
        return len(self.manifest["steps"])

    @property
    def synthetic_stats(self) -> bool:
        return bool(self.manifest["synthetic_stats"])

    @property
    def weights(self) -> str:
        """`manifest.weights` ("trained" for traces written before the field existed)."""
        return self.manifest.get("weights", "trained")

    @property
    def trace_id(self) -> str:
        """Content hash of the archive (first 16 hex digits of SHA-256)."""
        h = hashlib.sha256()
        with open(self.path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        return h.hexdigest()[:16]

    def step(self, i: int) -> StepStats:
        """Statistics of step `i`, read and validated on demand. The last `cache_steps` steps
        read stay decoded, so designs replaying the same `Trace` object decode each step once.
        Callers must not modify the returned statistics."""
        if not 0 <= i < self.n_steps:
            raise TraceError(f"step {i} is out of range: the trace has {self.n_steps} steps")
        cached = self._cache.get(i)
        if cached is not None:
            self._cache.move_to_end(i)
            return cached
        stats = self._read_step(i)
        if self._cache_steps:
            self._cache[i] = stats
            if len(self._cache) > self._cache_steps:
                self._cache.popitem(last=False)
        return stats

    def step_fingerprint(self, i: int) -> str:
        """Content hash of step `i`'s statistics: steps with equal statistics have equal ones."""
        got = self._fingerprints.get(i)
        if got is None:
            if not 0 <= i < self.n_steps:
                raise TraceError(f"step {i} is out of range: the trace has {self.n_steps} steps")
            got = self._fingerprint(i, self._read_member(_step_name(i)))
        return got

    def _fingerprint(self, i: int, data: bytes) -> str:
        got = self._fingerprints[i] = hashlib.sha256(data).hexdigest()[:16]
        return got

    def _read_step(self, i: int) -> StepStats:
        where = _step_name(i)
        data = self._read_member(where)
        self._fingerprint(i, data)  # the member is read once for both
        stats = decode_step(data, where)
        validate_step(stats, self.ops, where)
        return stats

    def validate_steps(self) -> None:
        """Read and check every step once (a design that reads no statistic still gets a
        checked trace); later calls on the same object are free."""
        if self._all_validated:
            return
        key = self._file_key()
        if key is not None and key in _VALIDATED_FILES:
            self._all_validated = True
            return
        for i in range(self.n_steps):
            self.step(i)  # decoded steps stay in the cache for the replay that follows
        self._all_validated = True
        if key is not None:
            _VALIDATED_FILES.add(key)

    def _file_key(self):
        """Identity of the archive's bytes on disk (path, inode, size, mtime) or None."""
        try:
            st = os.stat(self._zip.fp.fileno()) if self._zip.fp else os.stat(self.path)
        except (OSError, AttributeError, ValueError):
            return None
        return (os.path.realpath(self.path), st.st_ino, st.st_size, st.st_mtime_ns)

    def iter_steps(self) -> Iterator[StepStats]:
        for i in range(self.n_steps):
            yield self.step(i)

    def close(self) -> None:
        self._zip.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
