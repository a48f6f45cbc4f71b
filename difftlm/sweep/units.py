"""Values with units in sweep specs: `"512 KiB"` for a `_kib` key, `"25.6 GB/s"` for a `_gbps` key.

A key's unit is the suffix of its last component (`capacity_kib`, `freq_mhz`, `latency_ns`); a
string value `NUMBER UNIT` is converted into it, and a unit of another quantity is an error."""

from __future__ import annotations

import re

from models.errors import ConfigError

_FAMILIES = {
    "size": {"B": 1, "KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30, "kB": 1e3, "KB": 1e3,
             "MB": 1e6, "GB": 1e9},
    "bandwidth": {"B/s": 1, "KB/s": 1e3, "MB/s": 1e6, "GB/s": 1e9, "TB/s": 1e12,
                  "KiB/s": 1 << 10, "MiB/s": 1 << 20, "GiB/s": 1 << 30},
    "frequency": {"Hz": 1, "kHz": 1e3, "MHz": 1e6, "GHz": 1e9},
    "time": {"ps": 1, "ns": 1e3, "us": 1e6, "ms": 1e9, "s": 1e12},
    "energy": {"fJ": 1e-3, "pJ": 1, "nJ": 1e3, "uJ": 1e6},
}
_SUFFIXES = {"bytes": ("size", "B"), "kib": ("size", "KiB"), "mib": ("size", "MiB"),
             "gbps": ("bandwidth", "GB/s"), "mhz": ("frequency", "MHz"), "ghz": ("frequency", "GHz"),
             "ps": ("time", "ps"), "ns": ("time", "ns"), "us": ("time", "us"), "pj": ("energy", "pJ")}
_QUANTITY = re.compile(r"^\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*([A-Za-z/]+)\s*$")


def key_unit(key: str) -> str | None:
    """The unit a key's values are in (`capacity_kib` → "KiB"), or None."""
    suffix = key.rsplit(".", 1)[-1].rsplit("_", 1)[-1].lower()
    found = _SUFFIXES.get(suffix)
    return found[1] if found else None


def _family(unit: str) -> str | None:
    return next((f for f, units in _FAMILIES.items() if unit in units), None)


def convert(key: str, value):
    """`value` in the unit of `key`: strings `NUMBER UNIT` converted (integral results as int),
    anything else unchanged."""
    if not isinstance(value, str):
        return value
    m = _QUANTITY.match(value)
    if m is None or _family(m.group(2)) is None:
        return value
    number, unit = float(m.group(1)), m.group(2)
    target = key_unit(key)
    if target is None:
        raise ConfigError(f"{key}: value {value!r} has a unit but the key names none; give a plain "
                          "number or string")
    family = _family(target)
    if _family(unit) != family:
        raise ConfigError(f"{key}: value {value!r} is not a {family} (the key is in {target}); use "
                          f"one of {', '.join(_FAMILIES[family])}")
    out = number * _FAMILIES[family][unit] / _FAMILIES[family][target]
    return int(out) if out.is_integer() else out


def label(key: str) -> str:
    """Axis label of a key: its last component without the unit suffix, and the unit."""
    name = key.rsplit(".", 1)[-1]
    unit = key_unit(key)
    if unit is None:
        return key
    stem = name[: -(len(name.rsplit("_", 1)[-1]) + 1)] or name
    prefix = key.rsplit(".", 2)[-2] + " " if "." in key else ""
    return f"{prefix}{stem} ({unit})"
