"""Arguments and output shared by the subcommands."""

from __future__ import annotations

import argparse
import json
import sys
import tomllib
from typing import Any

from models.errors import ConfigError


def add_memory_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--memory", metavar="NAME", help="memory model name (default: the hardware config's)")
    p.add_argument("--memory-param", metavar="KEY=VALUE", action="append", default=[],
                   help="memory model parameter override (repeatable), e.g. bandwidth_gbps=25.6")


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


def print_json(obj: Any) -> None:
    json.dump(obj, sys.stdout, indent=1, sort_keys=False)
    sys.stdout.write("\n")


def fmt_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.2f} {unit}"
        n /= 1024
    return str(n)


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
