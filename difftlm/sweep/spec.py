"""Sweep specs (TOML): a base hardware config, traces, designs, fixed settings and axes.

Setting keys name what they change, as on the command line:
- `hw.<dotted key>`: any hardware-config key (`hw.buffers.global_buffer.capacity_kib`);
- `memory`: the memory model (`--memory`); `memory.<param>`: a parameter (`--memory-param`);
- `design.<key>` (every design that has it) or `design.<design>.<key>`: a `--design-param`.
Axes are crossed (grid) unless they share a `zip` group, whose axes advance together. A design
parameter axis applies only to the designs that have the key. A `[quality]` table (`samples`,
`seed`) also records each point's image quality on the bundled tiny model (`difftlm.quality`).
"""

from __future__ import annotations

import math
import os
from typing import Any

import attrs

from models.config import read_toml
from models.designs import get_design
from models.errors import ConfigError

from .units import convert

MAX_POINTS = 100_000
_TOP_KEYS = ("name", "hw", "traces", "designs", "fixed", "axis", "quality")
_QUALITY_KEYS = {"samples": 16, "seed": 0}
_AXIS_KEYS = ("key", "values", "range", "zip")


@attrs.frozen
class Axis:
    key: str
    values: tuple
    zip: str | None = None


@attrs.frozen
class Spec:
    name: str
    hw: str
    """`common` or an absolute path to a hardware TOML."""
    traces: tuple[str, ...]
    """`bundled` (each design's bundled tiny-model trace) or absolute trace paths."""
    designs: tuple[str, ...]
    fixed: dict[str, Any]
    axes: tuple[Axis, ...]
    quality: dict[str, int] | None = None
    """`samples`, `seed` of the per-point image quality (None: speed only)."""

    def groups(self) -> list[list[Axis]]:
        """Axes by zip group, in spec order; an axis without a group is a group of its own."""
        out: dict[str, list[Axis]] = {}
        for i, a in enumerate(self.axes):
            out.setdefault(a.zip if a.zip is not None else f"#{i}", []).append(a)
        return list(out.values())


def load_spec(path: str | os.PathLike) -> Spec:
    """Read and check a spec file (relative paths in it are relative to the file)."""
    path = os.fspath(path)
    data = read_toml(path, f"sweep spec {path}")
    data.setdefault("name", os.path.splitext(os.path.basename(path))[0])
    return spec_from_dict(data, os.path.dirname(os.path.abspath(path)), where=path)


def spec_from_dict(data: dict[str, Any], base_dir: str = ".", where: str = "sweep spec") -> Spec:
    """A spec from its parsed TOML form; one-line ConfigErrors name the key and the fix."""
    unknown = sorted(set(data) - set(_TOP_KEYS))
    if unknown:
        raise ConfigError(f"{where}: unknown key {unknown[0]!r}; known keys: {', '.join(_TOP_KEYS)}")
    designs = _strings(data.get("designs"), f"{where}: designs", required=True)
    for d in designs:
        get_design(d)
    traces = _strings(data.get("traces", ["bundled"]), f"{where}: traces", required=True)
    hw = data.get("hw", "common")
    if not isinstance(hw, str) or not (hw == "common" or hw.endswith(".toml")):
        raise ConfigError(f"{where}: hw: give 'common' or a hardware .toml file, got {hw!r}")
    fixed = data.get("fixed", {})
    if not isinstance(fixed, dict):
        raise ConfigError(f"{where}: fixed: expected a table of KEY = VALUE")
    fixed = {k: convert(k, v) for k, v in fixed.items()}
    for k in fixed:
        _check_key(k, designs, f"{where}: fixed.{k}")
    raw_axes = data.get("axis", [])
    if not isinstance(raw_axes, list) or not all(isinstance(a, dict) for a in raw_axes):
        raise ConfigError(f"{where}: axis: expected [[axis]] tables")
    axes = tuple(_axis(a, designs, f"{where}: axis[{i}]") for i, a in enumerate(raw_axes))
    keys = [a.key for a in axes] + list(fixed)
    dup = next((k for k in keys if keys.count(k) > 1), None)
    if dup is not None:
        raise ConfigError(f"{where}: {dup!r} is set more than once (axes and fixed); set it once")
    spec = Spec(name=str(data.get("name", "sweep")), hw=hw if hw == "common" else _abs(hw, base_dir),
                traces=tuple(t if t == "bundled" else _abs(t, base_dir) for t in traces),
                designs=tuple(designs), fixed=fixed, axes=axes,
                quality=_quality(data.get("quality"), traces, where))
    for group in spec.groups():
        lengths = {len(a.values) for a in group}
        if len(lengths) > 1:
            raise ConfigError(f"{where}: zip group {group[0].zip!r}: its axes have "
                              f"{'/'.join(str(len(a.values)) for a in group)} values; give each the same count")
    n = len(spec.traces) * len(spec.designs) * math.prod(len(g[0].values) for g in spec.groups())
    if n > MAX_POINTS:
        raise ConfigError(f"{where}: {n:,} points, over the limit of {MAX_POINTS:,}; split the sweep")
    return spec


def _quality(q: Any, traces: list[str], where: str) -> dict[str, int] | None:
    """The `[quality]` table with its defaults; only the bundled traces have a sampler."""
    if q is None or q is False:
        return None
    q = {} if q is True else q
    if not isinstance(q, dict):
        raise ConfigError(f"{where}: quality: expected a table (samples = N, seed = S) or true")
    unknown = sorted(set(q) - set(_QUALITY_KEYS))
    if unknown:
        raise ConfigError(f"{where}: quality.{unknown[0]}: unknown key; known: {', '.join(_QUALITY_KEYS)}")
    out = {**_QUALITY_KEYS, **q}
    for k, v in out.items():
        if not isinstance(v, int) or isinstance(v, bool) or v < (1 if k == "samples" else 0):
            raise ConfigError(f"{where}: quality.{k} = {v!r}: give a whole number"
                              + (" >= 1" if k == "samples" else " >= 0"))
    if any(t != "bundled" for t in traces):
        raise ConfigError(f"{where}: quality: the numerics sample the bundled tiny models only; use "
                          "traces = [\"bundled\"] or drop [quality]")
    return out


def _abs(path: str, base_dir: str) -> str:
    return os.path.normpath(os.path.join(base_dir, os.path.expanduser(path)))


def _strings(value: Any, where: str, required: bool = False) -> list[str]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value) or (required and not value):
        raise ConfigError(f"{where}: expected a non-empty list of names, got {value!r}")
    return value


def design_fields(design: str) -> set[str]:
    return {f.name for f in attrs.fields(get_design(design).Params)}


def split_design_key(key: str) -> tuple[str | None, str]:
    """`design.KEY` → (None, KEY); `design.NAME.KEY` → (NAME, KEY) (NAME may hold dots)."""
    rest = key[len("design."):]
    name, _, param = rest.rpartition(".")
    return (name or None), param


def applies(key: str, design: str) -> bool:
    """Whether setting `key` changes runs of `design`."""
    if not key.startswith("design."):
        return True
    target, param = split_design_key(key)
    return (target is None or target == design) and param in design_fields(design)


def _check_key(key: str, designs: list[str], where: str) -> None:
    if key == "memory" or (key.startswith(("hw.", "memory.")) and not key.endswith(".")):
        return
    if not key.startswith("design.") or key.endswith("."):
        raise ConfigError(f"{where}: unknown setting; use hw.<config key>, memory, memory.<param>, "
                          "design.<param> or design.<design>.<param>")
    target, param = split_design_key(key)
    if target is not None and target not in designs:
        raise ConfigError(f"{where}: design {target!r} is not among the spec's designs ({', '.join(designs)})")
    names = [target] if target else designs
    if not any(param in design_fields(d) for d in names):
        valid = sorted(set().union(*(design_fields(d) for d in names)))
        raise ConfigError(f"{where}: unknown design parameter {param!r}; valid: {', '.join(valid)}")


def _axis(a: dict[str, Any], designs: list[str], where: str) -> Axis:
    unknown = sorted(set(a) - set(_AXIS_KEYS))
    if unknown:
        raise ConfigError(f"{where}: unknown key {unknown[0]!r}; known keys: {', '.join(_AXIS_KEYS)}")
    key = a.get("key")
    if not isinstance(key, str) or not key:
        raise ConfigError(f"{where}: key: expected a setting name such as hw.freq_mhz")
    where = f"{where} ({key})"
    _check_key(key, designs, where)
    if ("values" in a) == ("range" in a):
        raise ConfigError(f"{where}: give exactly one of values = [...] or range = {{start, stop, step|num|factor}}")
    if "values" in a:
        if not isinstance(a["values"], list) or not a["values"]:
            raise ConfigError(f"{where}: values: expected a non-empty list")
        values = [convert(key, v) for v in a["values"]]
    else:
        values = _range(key, a["range"], where)
    if len({repr(v) for v in values}) != len(values):
        raise ConfigError(f"{where}: values repeat; give each value once")
    zip_group = a.get("zip")
    if zip_group is not None and not isinstance(zip_group, str):
        raise ConfigError(f"{where}: zip: expected a group name (a string)")
    return Axis(key, tuple(values), zip_group)


def _number(key: str, value: Any, where: str) -> float:
    v = convert(key, value)
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise ConfigError(f"{where}: expected a finite number (optionally with a unit), got {value!r}")
    return v


def _range(key: str, r: Any, where: str) -> list:
    """start..stop inclusive by `step`, in `num` even steps, or by a `factor` (geometric)."""
    where = f"{where}: range"
    if not isinstance(r, dict) or "start" not in r or "stop" not in r:
        raise ConfigError(f"{where}: expected {{start = .., stop = .., step|num|factor = ..}}")
    how = [k for k in ("step", "num", "factor") if k in r]
    unknown = sorted(set(r) - {"start", "stop", "step", "num", "factor"})
    if unknown or len(how) != 1:
        raise ConfigError(f"{where}: give start, stop and exactly one of step, num, factor")
    start, stop = _number(key, r["start"], where), _number(key, r["stop"], where)
    by = how[0]
    given = [start, stop]
    if by == "num":
        n = r["num"]
        if not isinstance(n, int) or isinstance(n, bool) or n < 1:
            raise ConfigError(f"{where}: num: expected an integer >= 1, got {n!r}")
        values = [start + (stop - start) * i / (n - 1) for i in range(n)] if n > 1 else [start]
    elif by == "step":
        step = _number(key, r["step"], where)
        given.append(step)
        if step <= 0 or stop < start:
            raise ConfigError(f"{where}: need step > 0 and stop >= start")
        n = int(math.floor((stop - start) / step + 1e-9)) + 1
        if n > MAX_POINTS:
            raise ConfigError(f"{where}: {n:,} values, over the limit of {MAX_POINTS:,}")
        values = [start + i * step for i in range(n)]
    else:
        factor = r["factor"]
        given.append(factor)
        if isinstance(factor, bool) or not isinstance(factor, (int, float)) or factor <= 1 or start <= 0 or stop < start:
            raise ConfigError(f"{where}: need factor > 1 and 0 < start <= stop")
        values, v = [], start
        while v <= stop * (1 + 1e-9):
            values.append(v)
            v *= factor
    whole = by != "num" and all(isinstance(x, int) and not isinstance(x, bool) for x in given)
    return [int(round(v)) if whole else _tidy(v) for v in values]


def _tidy(v: float) -> float | int:
    """Round away float noise (0.30000000000000004 → 0.3)."""
    return float(f"{v:.12g}")
