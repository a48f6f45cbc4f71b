"""Figures from a sweep store (rows of `points.parquet` and the axes of `sweep.json`): the
energy/time Pareto front per design, sensitivity to each axis, and a two-axis heatmap."""

from __future__ import annotations

import math
from typing import Any, Sequence

from .figures import plt

SWEEP_KINDS = ("pareto", "sensitivity", "heatmap")
_MIB = 1024 * 1024
METRICS = {  # summary column → (label with unit, scale to that unit)
    "total_ns": ("run time (us)", 1e-3),
    "energy_total_pj": ("energy (uJ)", 1e-6),
    "dram_bytes": ("DRAM traffic (MiB)", 1 / _MIB),
}


PSNR = "quality.psnr_db_mean"  # the per-point image quality column (`[quality]` sweeps)


def _metric(row: dict[str, Any], name: str) -> float:
    if name == "dram_bytes":
        return (row["dram_read_bytes"] + row["dram_write_bytes"]) / _MIB
    return row[name] * METRICS.get(name, (name, 1.0))[1]


def metric_label(name: str) -> str:
    return METRICS.get(name, (name, 1.0))[0]


def _ok(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in rows if r["status"] == "ok"]


def _designs(rows) -> list[str]:
    return list(dict.fromkeys(r["design"] for r in rows))


def _front(xy: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """Points no other point beats in both coordinates (lower is better), by x."""
    out, best = [], math.inf
    for x, y in sorted(xy):
        if y < best:
            out.append((x, y))
            best = y
    return out


def pareto(rows: Sequence[dict[str, Any]]):
    """Energy vs run time of every point, with each design's Pareto front."""
    rows = _ok(rows)
    fig, ax = plt.subplots(figsize=(6, 4.5), dpi=100)
    for d in _designs(rows):
        xy = [(_metric(r, "total_ns"), _metric(r, "energy_total_pj")) for r in rows if r["design"] == d]
        dots = ax.scatter(*zip(*xy), s=18, alpha=0.6, label=d)
        fx, fy = zip(*_front(xy))
        ax.plot(fx, fy, color=dots.get_facecolor()[0], linewidth=1.2, drawstyle="steps-post",
                marker="o", markerfacecolor="none", markersize=9)
    ax.set_xlabel(metric_label("total_ns"))
    ax.set_ylabel(metric_label("energy_total_pj"))
    ax.set_title("energy vs run time; rings and lines: Pareto front per design", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return fig


def _axis_label(key: str) -> str:
    from difftlm.sweep.units import label

    return label(key)


def _at_base(rows, axes, keep: set[str]):
    """Rows whose axes outside `keep` sit at their first value (or do not apply)."""
    fixed = {a["key"]: a["values"][0] for a in axes if a["key"] not in keep}
    return [r for r in rows if all(r.get(k) is None or r.get(k) == v for k, v in fixed.items())]


def _group(axes, key: str) -> set[str]:
    zip_group = next(a["zip"] for a in axes if a["key"] == key)
    return {a["key"] for a in axes if a["key"] == key or (zip_group is not None and a["zip"] == zip_group)}


def _xs(values: list) -> tuple[list[float], list[str] | None]:
    """Numeric positions of axis values; categorical values get 0, 1, ... and tick labels."""
    if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        return [float(v) for v in values], None
    return list(range(len(values))), [str(v) for v in values]


def sensitivity(rows: Sequence[dict[str, Any]], axes: Sequence[dict[str, Any]]):
    """One row of panels per axis: speedup over the axis's first value, energy and DRAM traffic
    vs the swept value, a line per design (the other axes at their first value); with the
    sweep's `[quality]`, a fourth panel of PSNR to the fp32 samples."""
    rows = _ok(rows)
    if not axes:
        raise ValueError("the sweep has no axes")
    quality = any(r.get(PSNR) is not None for r in rows)
    fig, grid = plt.subplots(len(axes), 3 + quality, figsize=(12 + 4 * quality, 3.2 * len(axes)), dpi=100,
                             squeeze=False)
    for axis, panels in zip(axes, grid):
        key, values = axis["key"], list(axis["values"])
        xs, ticks = _xs(values)
        sub = _at_base(rows, axes, _group(axes, key))
        for d in _designs(rows):
            by_value = {repr(r[key]): r for r in sub if r["design"] == d and r.get(key) is not None}
            line = [(x, by_value[repr(v)]) for x, v in zip(xs, values) if repr(v) in by_value]
            if not line:
                continue
            base = line[0][1]["total_ns"]
            px = [x for x, _ in line]
            panels[0].plot(px, [base / r["total_ns"] for _, r in line], marker="o", label=d)
            panels[1].plot(px, [_metric(r, "energy_total_pj") for _, r in line], marker="o", label=d)
            panels[2].plot(px, [_metric(r, "dram_bytes") for _, r in line], marker="o", label=d)
            q = [(x, r[PSNR]) for x, r in line if r.get(PSNR) is not None]
            if quality and q:
                panels[3].plot(*zip(*q), marker="o", label=d)
        for p, ylabel in zip(panels, (f"speedup over {values[0]} (x)", metric_label("energy_total_pj"),
                                      metric_label("dram_bytes"), "PSNR to fp32 samples (dB)")):
            p.set_xlabel(_axis_label(key))
            p.set_ylabel(ylabel)
            p.grid(alpha=0.3)
            if ticks:
                p.set_xticks(xs)
                p.set_xticklabels(ticks, rotation=20, fontsize=8)
        panels[0].legend(fontsize=8)
    fig.tight_layout()
    return fig


def heatmap(rows: Sequence[dict[str, Any]], axes: Sequence[dict[str, Any]], x: str | None = None,
            y: str | None = None, metric: str = "total_ns"):
    """`metric` over two axes (default: the first two), a panel per design, the other axes at
    their first value."""
    rows = _ok(rows)
    keys = [a["key"] for a in axes]
    x, y = x or (keys[0] if keys else None), y or (keys[1] if len(keys) > 1 else None)
    if x is None or y is None or x == y or x not in keys or y not in keys:
        raise ValueError(f"a heatmap needs two different axes of the sweep ({', '.join(keys) or 'none'})")
    xv = next(a["values"] for a in axes if a["key"] == x)
    yv = next(a["values"] for a in axes if a["key"] == y)
    sub = _at_base(rows, axes, _group(axes, x) | _group(axes, y))
    designs = [d for d in _designs(rows) if any(r["design"] == d and r.get(x) is not None
                                                and r.get(y) is not None for r in sub)]
    if not designs:
        raise ValueError(f"no design has points over both {x} and {y}")
    fig, grid = plt.subplots(1, len(designs), figsize=(4.5 * len(designs), 3.8), dpi=100, squeeze=False)
    for ax, d in zip(grid[0], designs):
        cells = {(repr(r[x]), repr(r[y])): _metric(r, metric) for r in sub if r["design"] == d}
        data = [[cells.get((repr(a), repr(b)), math.nan) for a in xv] for b in yv]
        im = ax.imshow(data, origin="lower", aspect="auto", cmap="viridis")
        for j, line in enumerate(data):
            for i, v in enumerate(line):
                if not math.isnan(v):
                    ax.text(i, j, f"{v:,.0f}" if abs(v) >= 100 else f"{v:.3g}", ha="center", va="center", fontsize=7, color="w")
        ax.set_xticks(range(len(xv)))
        ax.set_xticklabels([str(v) for v in xv], rotation=20, fontsize=8)
        ax.set_yticks(range(len(yv)))
        ax.set_yticklabels([str(v) for v in yv], fontsize=8)
        ax.set_xlabel(_axis_label(x))
        ax.set_ylabel(_axis_label(y))
        ax.set_title(d, fontsize=9)
        fig.colorbar(im, ax=ax, label=metric_label(metric))
    fig.tight_layout()
    return fig


def make_sweep(kind: str, rows: Sequence[dict[str, Any]], axes: Sequence[dict[str, Any]]):
    if kind == "pareto":
        return pareto(rows)
    if kind == "sensitivity":
        return sensitivity(rows, axes)
    if kind == "heatmap":
        return heatmap(rows, axes)
    raise ValueError(f"unknown sweep figure kind {kind!r}; known: {', '.join(SWEEP_KINDS)}")
