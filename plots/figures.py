"""Figures from comparison results (matplotlib, Agg backend; no simulation logic here).

Every function takes `results`: a mapping design name → result, where a result is a `Result`
object or its saved dict (`summary`, `per_step`, `config`, ...), as in `results.json`. Figures are
saved atomically and reproducibly (no dates, software tags or random SVG ids in the files).
"""

from __future__ import annotations

import math
import os
import tempfile
from typing import Any, Mapping

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

KINDS = ("breakdown", "speedup", "traffic", "energy", "timeline", "quality")

_BREAKDOWN = (("compute_only", "compute only", "#4c72b0"), ("overlap", "overlap", "#8172b2"),
              ("memory_only", "memory only", "#dd8452"), ("idle", "idle", "#bbbbbb"))
_ENERGY = (("pe", "PE array"), ("sram", "SRAM"), ("vector", "vector unit"), ("ndp", "near-data"),
           ("dram", "DRAM"))
_MIB = 1024 * 1024


def _get(r: Any, key: str):
    return r[key] if isinstance(r, Mapping) else getattr(r, key)


def _summary(r: Any) -> Mapping[str, Any]:
    return _get(r, "summary")


def _ms(cycles: float, clock_mhz: float) -> float:
    return cycles / (clock_mhz * 1e3)


def _new(n_bars: int, height: float = 4.0):
    fig, ax = plt.subplots(figsize=(max(5.0, 1.0 + 0.7 * n_bars), height), dpi=100)
    ax.grid(axis="y", alpha=0.3)
    ax.set_axisbelow(True)
    return fig, ax


def _xticks(ax, names):
    ax.set_xticks(range(len(names)))
    ax.set_xticklabels(names, rotation=30, ha="right", fontsize=8)


def breakdown(results: Mapping[str, Any]):
    """Stacked runtime breakdown per design: compute only, overlap, memory only, idle (ms)."""
    names = list(results)
    fig, ax = _new(len(names))
    bottom = [0.0] * len(names)
    for key, label, color in _BREAKDOWN:
        vals = [_ms(_summary(results[n])[f"{key}_cycles"], _summary(results[n])["clock_mhz"]) for n in names]
        ax.bar(range(len(names)), vals, bottom=bottom, label=label, color=color)
        bottom = [b + v for b, v in zip(bottom, vals)]
    _xticks(ax, names)
    ax.set_ylabel("run time (ms)")
    ax.set_title("Runtime breakdown (compute units busy vs DRAM bus busy)")
    ax.legend(fontsize=8)
    return fig


def speedups(results: Mapping[str, Any], baseline: str = "dense") -> dict[str, float]:
    """Run-time speedup of each design over `baseline` (time, not cycles, so clocks may differ)."""
    if baseline not in results:
        raise KeyError(f"no {baseline!r} result to compute speedups against")
    base = _summary(results[baseline])["total_ns"]
    return {n: (base / _summary(r)["total_ns"] if _summary(r)["total_ns"] else float("nan"))
            for n, r in results.items()}


def speedup(results: Mapping[str, Any], baseline: str = "dense"):
    """Speedup over the dense baseline (×)."""
    sp = speedups(results, baseline)
    names = list(sp)
    fig, ax = _new(len(names))
    bars = ax.bar(range(len(names)), [sp[n] for n in names], color="#55a868")
    ax.bar_label(bars, fmt="%.2f×", fontsize=8)
    ax.axhline(1.0, color="black", lw=0.8)
    _xticks(ax, names)
    ax.set_ylabel(f"speedup vs {baseline} (×, ratio of run times)")
    ax.set_title("Speedup over the dense int8 baseline")
    return fig


def traffic(results: Mapping[str, Any]):
    """DRAM traffic per design by tensor kind and direction (MiB), stacked."""
    names = list(results)
    series = []
    for direction in ("read", "write"):
        kinds = sorted({k for n in names for k in _summary(results[n])[f"dram_{direction}_bytes_by_kind"]})
        series += [(direction, k) for k in kinds]
    fig, ax = _new(len(names))
    cmap = plt.get_cmap("tab20")
    bottom = [0.0] * len(names)
    for i, (direction, kind) in enumerate(series):
        vals = [_summary(results[n])[f"dram_{direction}_bytes_by_kind"].get(kind, 0) / _MIB for n in names]
        ax.bar(range(len(names)), vals, bottom=bottom, label=f"{direction} {kind}", color=cmap(i % 20),
               hatch="//" if direction == "write" else None, edgecolor="white", lw=0.3)
        bottom = [b + v for b, v in zip(bottom, vals)]
    _xticks(ax, names)
    ax.set_ylabel("DRAM traffic (MiB)")
    ax.set_title("DRAM traffic by tensor kind (hatched: writes)")
    ax.legend(fontsize=7, ncol=2)
    return fig


def energy(results: Mapping[str, Any]):
    """Energy per design by component (µJ), stacked."""
    names = list(results)
    fig, ax = _new(len(names))
    cmap = plt.get_cmap("Set2")
    bottom = [0.0] * len(names)
    comps = list(_ENERGY)
    known = {k for k, _ in _ENERGY}
    extra = sorted({k for n in names for k in _summary(results[n]).get("energy_pj", {}) if k not in known})
    comps += [(k, k) for k in extra]
    for i, (key, label) in enumerate(comps):
        vals = [_summary(results[n]).get("energy_pj", {}).get(key, 0.0) / 1e6 for n in names]
        if not any(vals):
            continue
        ax.bar(range(len(names)), vals, bottom=bottom, label=label, color=cmap(i % 8))
        bottom = [b + v for b, v in zip(bottom, vals)]
    _xticks(ax, names)
    ax.set_ylabel("energy (µJ)")
    node = _summary(results[names[0]]).get("energy_model", {}).get("node_nm", "?")
    ax.set_title(f"Energy by component ({node} nm tables; DRAM from the memory model)")
    ax.legend(fontsize=8)
    return fig


def timeline(results: Mapping[str, Any], design: str | None = None):
    """Per-step breakdown of one design: compute only / overlap / memory only / idle (k cycles)."""
    if design is None:
        design = next(iter(results))
    if design not in results:
        raise KeyError(f"no result for design {design!r}; have: {', '.join(results)}")
    rows = _get(results[design], "per_step")
    steps = [r["step"] for r in rows]
    parts = {
        "compute_only": [(r["compute_cycles"] - r["overlap_cycles"]) / 1e3 for r in rows],
        "overlap": [r["overlap_cycles"] / 1e3 for r in rows],
        "memory_only": [(r["memory_cycles"] - r["overlap_cycles"]) / 1e3 for r in rows],
        "idle": [r["idle_cycles"] / 1e3 for r in rows],
    }
    fig, ax = plt.subplots(figsize=(8, 4), dpi=100)
    ax.grid(axis="y", alpha=0.3)
    ax.set_axisbelow(True)
    bottom = [0.0] * len(rows)
    for key, label, color in _BREAKDOWN:
        ax.bar(steps, parts[key], bottom=bottom, width=0.9, label=label, color=color)
        bottom = [b + v for b, v in zip(bottom, parts[key])]
    ax.set_xlabel("denoising step (index in the trace)")
    ax.set_ylabel("time per step (thousand cycles)")
    ax.set_title(f"Per-step breakdown: {design}")
    ax.legend(fontsize=8)
    return fig


def has_quality(results: Mapping[str, Any]) -> bool:
    """Whether any result carries image-quality figures (`compare --quality`)."""
    return any(_summary(r).get("quality") for r in results.values())


def quality(results: Mapping[str, Any]):
    """Speed and energy against image quality: run time (ms) and energy (uJ) per design over its
    mean PSNR to the fp32 samples; designs without a numerics emulation (or identical to fp32:
    PSNR unbounded) are left out."""
    names = [n for n, r in results.items() if _summary(r).get("quality")
             and math.isfinite(_summary(r)["quality"]["psnr_db_mean"] or math.inf)]
    fig, axes = plt.subplots(1, 2, figsize=(10.0, 4.2), dpi=100)
    for ax, (key, label) in zip(axes, (("time", "run time (ms)"), ("energy", "energy (uJ)"))):
        for n in names:
            s = _summary(results[n])
            x = s["quality"]["psnr_db_mean"]
            y = s["total_ns"] / 1e6 if key == "time" else s.get("energy_total_pj", 0.0) / 1e6
            ax.scatter([x], [y], color="#4c72b0", s=18)
            ax.annotate(n, (x, y), fontsize=7, xytext=(3, 3), textcoords="offset points")
        ax.set_xlabel("PSNR to fp32 samples (dB, higher is better)")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        ax.set_axisbelow(True)
    model = next(_summary(results[n])["quality"]["model"] for n in names) if names else "bundled model"
    axes[0].set_title(f"Speed vs image quality ({model.rsplit('-', 1)[0]} model)", fontsize=9)
    axes[1].set_title("Energy vs image quality", fontsize=9)
    fig.tight_layout()
    return fig


def make(kind: str, results: Mapping[str, Any], design: str | None = None):
    if kind == "breakdown":
        return breakdown(results)
    if kind == "speedup":
        return speedup(results)
    if kind == "traffic":
        return traffic(results)
    if kind == "energy":
        return energy(results)
    if kind == "timeline":
        return timeline(results, design)
    if kind == "quality":
        return quality(results)
    raise ValueError(f"unknown figure kind {kind!r}; known: {', '.join(KINDS)}")


def save_figure(fig, path: str | os.PathLike) -> str:
    """Save `fig` atomically (temp file + rename) and reproducibly; format from the extension."""
    path = os.fspath(path)
    ext = os.path.splitext(path)[1].lower().lstrip(".") or "png"
    meta = {"png": {"Software": None}, "svg": {"Date": None, "Creator": None},
            "pdf": {"CreationDate": None, "ModDate": None, "Creator": None, "Producer": None}}.get(ext)
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-", suffix=f".{ext}")
    os.close(fd)
    try:
        with matplotlib.rc_context({"svg.hashsalt": "difftlm", "pdf.compression": 6}):
            fig.savefig(tmp, format=ext, metadata=meta, bbox_inches="tight")
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600; give the umask's mode
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    finally:
        plt.close(fig)
    return path


def write_all(results: Mapping[str, Any], out_dir: str | os.PathLike, formats=("png", "svg"),
              timeline_design: str | None = None) -> list[str]:
    """Write every figure kind to `out_dir` as `<kind>.<fmt>`; returns the paths written.
    The speedup figure is skipped when there is no dense result, the quality figure when no
    result has quality figures."""
    written = []
    for kind in KINDS:
        if (kind == "speedup" and "dense" not in results) or (kind == "quality" and not has_quality(results)):
            continue
        for fmt in formats:
            fig = make(kind, results, timeline_design)
            written.append(save_figure(fig, os.path.join(os.fspath(out_dir), f"{kind}.{fmt}")))
    return written
