"""Type, finiteness and range checks of configuration values (hardware TOML, memory-model and
design parameters), with errors that name the dotted key path and the accepted values.

A value is checked against the attrs field's declared type before the class is built:
- `int`: a Python int, not a bool and not a float (`rows = 32.5` and `rows = true` are errors);
- `float`: an int or a float, not a bool, finite unless the field's metadata allows `inf`;
- `bool` / `str`: exactly that type; `X | None`: None or an X; `dict[str, T]`: each value a T.
Ranges come from the field's validators (`attrs.validators.gt/ge/lt/le/in_`) and from the
field metadata `range(...)` (a lower and/or upper bound; `allow_inf=True` admits infinity).
"""

from __future__ import annotations

import math
import types
import typing
from typing import Any

import attrs

from .errors import ConfigError


def bounds(*, gt: float | None = None, ge: float | None = None, le: float | None = None,
           lt: float | None = None, allow_inf: bool = False) -> dict[str, Any]:
    """Field metadata: the accepted range of a numeric field (`metadata=bounds(gt=0, le=4096)`)."""
    return {"difftlm_bounds": {"gt": gt, "ge": ge, "le": le, "lt": lt}, "difftlm_allow_inf": allow_inf}


_OPS = {">": "gt", ">=": "ge", "<": "lt", "<=": "le"}


def _validators(v) -> list:
    if v is None:
        return []
    inner = getattr(v, "_validators", None)  # attrs.validators.and_
    if inner is not None:
        return [x for sub in inner for x in _validators(sub)]
    if isinstance(v, (list, tuple)):
        return [x for sub in v for x in _validators(sub)]
    return [v]


def field_bounds(field: attrs.Attribute) -> tuple[dict[str, float | None], tuple | None, bool]:
    """(numeric bounds, allowed options or None, allow_inf) of an attrs field."""
    b = dict(field.metadata.get("difftlm_bounds") or {})
    options = None
    for v in _validators(field.validator):
        op = getattr(v, "compare_op", None)
        if op in _OPS and b.get(_OPS[op]) is None:
            b[_OPS[op]] = v.bound
        opts = getattr(v, "options", None)
        if opts is not None and not isinstance(opts, (str, bytes)):
            options = tuple(opts)
    return b, options, bool(field.metadata.get("difftlm_allow_inf", False))


def _range_text(b: dict[str, float | None]) -> str:
    b = dict(b)
    for strict, loose, tighter in (("gt", "ge", max), ("lt", "le", min)):
        if b.get(strict) is not None and b.get(loose) is not None:  # show only the tighter bound
            if tighter(b[strict], b[loose]) == b[loose] and b[loose] != b[strict]:
                b[strict] = None
            else:
                b[loose] = None
    parts = []
    for key, sym in (("gt", ">"), ("ge", ">="), ("lt", "<"), ("le", "<=")):
        if b.get(key) is not None:
            v = b[key]
            whole = isinstance(v, int) or (float(v).is_integer() and abs(v) < 1e15)
            parts.append(f"{sym} {int(v)}" if whole else f"{sym} {v:g}")
    return " and ".join(parts)


def _type_name(typ) -> str:
    return {int: "an integer", float: "a number", bool: "true or false", str: "a string"}.get(
        typ, getattr(typ, "__name__", str(typ)))


def _in_range(value: float, b: dict[str, float | None]) -> bool:
    return ((b.get("gt") is None or value > b["gt"]) and (b.get("ge") is None or value >= b["ge"])
            and (b.get("lt") is None or value < b["lt"]) and (b.get("le") is None or value <= b["le"]))


def check_value(where: str, value: Any, typ: Any, b: dict | None = None, options: tuple | None = None,
                allow_inf: bool = False) -> None:
    """Raise ConfigError naming `where` unless `value` is a valid `typ` within range."""
    b = b or {}
    origin = typing.get_origin(typ)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(typ)
        if value is None and type(None) in args:
            return
        rest = [a for a in args if a is not type(None)]
        if len(rest) == 1:
            return check_value(where, value, rest[0], b, options, allow_inf)
        return
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a table, got {_show(value)}")
        ktyp, vtyp = (typing.get_args(typ) + (Any, Any))[:2]
        for k, v in value.items():
            if ktyp is str and not isinstance(k, str):
                raise ConfigError(f"{where}: keys must be strings, got {k!r}")
            check_value(f"{where}.{k}", v, vtyp, b, None, allow_inf)
        return
    if typ is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: must be true or false, got {_show(value)}")
        return
    if typ is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: must be a string{_opts(options)}, got {_show(value)}")
        if options is not None and value not in options:
            raise ConfigError(f"{where}: is {value!r}; accepted values: {', '.join(map(str, options))}")
        return
    if typ in (int, float):
        rng = _range_text(b)
        want = ("an integer" if typ is int else "a finite number" if not allow_inf else "a number") + (
            f" {rng}" if rng else "")
        ok_type = isinstance(value, int) if typ is int else isinstance(value, (int, float))
        if isinstance(value, bool) or not ok_type:
            raise ConfigError(f"{where}: must be {want}, got {_show(value)}")
        if typ is float and math.isnan(value):
            raise ConfigError(f"{where}: must be {want}, got nan")
        if typ is float and math.isinf(value) and not (allow_inf and value > 0):
            raise ConfigError(f"{where}: must be {want}, got {value}")
        if not _in_range(value, b):
            raise ConfigError(f"{where}: must be {want}, got {value!r}")
        if options is not None and value not in options:
            raise ConfigError(f"{where}: is {value!r}; accepted values: {', '.join(map(str, options))}")


def _opts(options) -> str:
    return f" (one of {', '.join(map(str, options))})" if options else ""


def _show(value: Any) -> str:
    if isinstance(value, bool):
        return f"{str(value).lower()} (a boolean)"
    if isinstance(value, (int, float, str)):
        return f"{value!r} ({type(value).__name__})"
    return f"a {type(value).__name__}"


def check_fields(cls: type, data: dict[str, Any], where: str) -> None:
    """Check every given value of attrs class `cls` against its field's type and range."""
    hints = typing.get_type_hints(cls)
    for f in attrs.fields(cls):
        if f.name not in data:
            continue
        typ = hints.get(f.name, Any)
        if typ is Any or attrs.has(typ):
            continue
        b, options, allow_inf = field_bounds(f)
        check_value(f"{where}.{f.name}" if where else f.name, data[f.name], typ, b, options, allow_inf)


__all__ = ["bounds", "check_fields", "check_value", "field_bounds"]
