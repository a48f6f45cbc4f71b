"""Arguments and output shared by the subcommands."""

from __future__ import annotations

import argparse
import json
import math
import sys
import tomllib
from typing import Any

from models.errors import ConfigError


def add_memory_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--memory", metavar="NAME", help="memory model name (default: the hardware config's)")
    p.add_argument("--memory-param", metavar="KEY=VALUE", action="append", default=[],
                   help="memory model parameter override (repeatable), e.g. bandwidth_gbps=25.6")


def add_design_args(p: argparse.ArgumentParser, per_design: bool = False) -> None:
    what = "[DESIGN:]KEY=VALUE" if per_design else "KEY=VALUE"
    p.add_argument("--design-param", metavar=what, action="append", default=[],
                   help="design parameter override (repeatable; `difftlm designs` lists them)"
                        + ("; without DESIGN: it applies to every design that has KEY" if per_design else ""))
    p.add_argument("--residency", choices=("auto", "never"),
                   help="activation residency rule (default: the hardware config's, auto): keep "
                        "tensors on chip while the live set fits, or send every tensor through DRAM")


def design_params_for(items: list[str], designs: list[str]) -> dict[str, dict[str, Any]]:
    """`[DESIGN:]KEY=VALUE` overrides → per-design parameter dicts; a KEY no selected design has
    is an error listing the valid keys."""
    import attrs

    from models.designs import get_design

    fields = {d: {f.name for f in attrs.fields(get_design(d).Params)} for d in designs}
    out: dict[str, dict[str, Any]] = {d: {} for d in designs}
    for item in items:
        target, sep, rest = item.partition(":")
        if not sep or "=" in target:
            target, rest = None, item
        (key, value), = parse_params([rest], "--design-param").items()
        if target is not None and target not in fields:
            raise ConfigError(f"--design-param {item!r}: design {target!r} is not among those run "
                              f"({', '.join(designs)})")
        names = [target] if target is not None else [d for d in designs if key in fields[d]]
        if not names or any(key not in fields[d] for d in names):
            valid = sorted(set().union(*(fields[d] for d in ([target] if target else designs))))
            raise ConfigError(f"--design-param {item!r}: unknown key {key!r}; valid keys: {', '.join(valid)}")
        for d in names:
            out[d][key] = value
    return out


def check_out_file(path: str | None, flag: str) -> None:
    """Before any simulation: `path` can become a file (not a directory, parent a directory)."""
    import os

    if not path:
        return
    if os.path.isdir(path):
        raise ConfigError(f"{flag} {path}: is a directory; give a file name")
    parent = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(parent):
        what = "is not a directory" if os.path.exists(parent) else "does not exist"
        raise ConfigError(f"{flag} {path}: the parent directory {parent} {what}")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ConfigError(f"{flag} {path}: the parent directory {parent} is not writable")


def hw_with_residency(hw, residency: str | None):
    return hw if residency is None or hw == "paper" else hw.evolve(residency=residency)


def parse_params(items: list[str], flag: str = "--memory-param") -> dict[str, Any]:
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"{flag} {item!r}: expected KEY=VALUE")
        try:
            out[key] = tomllib.loads(f"v = {value}")["v"]
        except tomllib.TOMLDecodeError:
            out[key] = value
    return out


def strict_json(obj: Any, path: str = "", undefined: list[str] | None = None) -> Any:
    """`obj` with every NaN or infinite float replaced by None (strict JSON has neither); the
    dotted paths of the replaced values are appended to `undefined`."""
    if isinstance(obj, float) and not math.isfinite(obj):
        if undefined is not None:
            undefined.append(f"{path or 'value'} ({obj})")
        return None
    if isinstance(obj, dict):
        return {k: strict_json(v, f"{path}.{k}" if path else str(k), undefined) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [strict_json(v, f"{path}[{i}]", undefined) for i, v in enumerate(obj)]
    return obj


def print_json(obj: Any, indent: int | None = 1) -> None:
    """Print `obj` as strict JSON: undefined values (NaN, infinity) become null, and a top-level
    `json_notes` list says which ones and why."""
    undefined: list[str] = []
    clean = strict_json(obj, "", undefined)
    if undefined and isinstance(clean, dict):
        clean["json_notes"] = [f"null: {p} is undefined or unbounded (NaN/infinity has no JSON form)"
                               for p in undefined]
    json.dump(clean, sys.stdout, indent=indent, sort_keys=False, allow_nan=False)
    sys.stdout.write("\n")


def fmt_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.2f} {unit}"
        n /= 1024
    return str(n)


def add_fast_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--exact", action="store_true",
                   help="turn the fast path off: every tile simulated, no step reused, no DRAM "
                        "extrapolation (models/fastpath.py)")
    p.add_argument("--fast-report", action="store_true",
                   help="print how much of each run was simulated exactly, as macro jobs, or reused")


def fast_report(name: str, summary: dict) -> str:
    """One line: how much of a run was simulated exactly vs extrapolated vs reused."""
    f = summary.get("fast_path", {})
    if f.get("exact"):
        return f"{name}: exact (fast path off): {summary['tile_jobs']:,} tiles simulated"
    tiles = summary["tile_jobs"] or 1
    reused = tiles - f.get("exact_jobs", 0) - f.get("macro_tiles", 0)
    mem = f.get("memory") or {}
    mem_txt = ""
    if mem:
        tot = (mem.get("exact_bytes", 0) + mem.get("extrapolated_bytes", 0)) or 1
        mem_txt = f"; DRAM bytes extrapolated {100 * mem.get('extrapolated_bytes', 0) / tot:.1f} %"
    sampled = f.get("steps_sampled", 0)
    return (f"{name}: {f.get('steps_simulated', 0)} steps simulated, {f.get('steps_reused', 0)} reused"
            + (f" ({sampled} sampled)" if sampled else "") + "; "
            f"of {tiles:,} tiles {100 * f.get('exact_jobs', 0) / tiles:.1f} % exact, "
            f"{100 * f.get('macro_tiles', 0) / tiles:.1f} % in {f.get('macro_jobs', 0):,} macro jobs, "
            f"{100 * reused / tiles:.1f} % reused{mem_txt}")


def summary_text(res) -> str:
    """Human-readable summary of one replay result."""
    s = res.summary
    tot = s["total_cycles"] or 1.0
    lines = [
        f"design {res.design}  trace {res.trace['model']} ({res.trace['steps']} steps, id {res.trace['trace_id']})",
        f"  total        {s['total_cycles']:,.0f} cycles @ {s['clock_mhz']:g} MHz = {s['total_ns'] / 1e3:,.1f} us",
    ]
    for key in ("compute", "memory", "overlap", "idle", "compute_only", "memory_only"):
        v = s[f"{key}_cycles"]
        lines.append(f"  {key:<12} {v:,.0f} cycles ({100 * v / tot:.1f} %)")
    lines.append(f"  PE util      {100 * s['pe_utilization']:.1f} % of peak over the run "
                 f"({100 * s['pe_busy_utilization']:.1f} % while busy); {s['macs']:,} MACs")
    lines.append(f"  DRAM read    {fmt_bytes(s['dram_read_bytes'])} "
                 + " ".join(f"{k}={fmt_bytes(v)}" for k, v in s["dram_read_bytes_by_kind"].items()))
    lines.append(f"  DRAM write   {fmt_bytes(s['dram_write_bytes'])} "
                 + " ".join(f"{k}={fmt_bytes(v)}" for k, v in s["dram_write_bytes_by_kind"].items()))
    mem = res.config["memory"]
    hits, misses = s["dram_row_hits"], s["dram_row_misses"]
    if hits + misses:
        lines.append(f"  DRAM rows    {100 * hits / (hits + misses):.1f} % row hits ({mem['name']})")
    else:
        lines.append(f"  DRAM model   {mem['name']} (no row-buffer model)")
    for note in res.notes:
        lines.append(f"  note: {note}")
    return "\n".join(lines)
