"""The figure of `difftlm reproduce`: one panel per row group, grouped bars of the simulated
values with the paper's values as markers (absent where the design notes give none)."""

from __future__ import annotations

import os
from typing import Any, Mapping

from .figures import plt, save_figure

_GROUPS = {"speedup": "speedup (×)", "traffic": "DRAM bytes ratio", "share": "share of power",
           "fraction": "fraction", "power": "power"}


def reproduce_figure(doc: Mapping[str, Any]):
    groups = [g for g in _GROUPS if any(r["group"] == g for r in doc["rows"])]
    widths = [max(1, sum(r["group"] == g for r in doc["rows"])) for g in groups]
    fig, axes = plt.subplots(1, len(groups), figsize=(1.6 + 0.75 * sum(widths), 4.2), dpi=100,
                             gridspec_kw={"width_ratios": widths}, squeeze=False)
    for ax, g in zip(axes[0], groups):
        rows = [r for r in doc["rows"] if r["group"] == g]
        xs = range(len(rows))
        ax.bar(xs, [r["ours"] for r in rows], color="#4c72b0", label="simulated")
        given = [(i, r["paper"]) for i, r in enumerate(rows) if r["paper"] is not None]
        if given:
            ax.scatter([i for i, _ in given], [v for _, v in given], marker="D", color="#c44e52",
                       zorder=3, label="paper")
        ax.set_title(_GROUPS[g], fontsize=9)
        ax.set_xticks(list(xs))
        ax.set_xticklabels([r["id"].split(".", 1)[-1] for r in rows], rotation=40, ha="right", fontsize=7)
        ax.grid(axis="y", alpha=0.3)
        ax.set_axisbelow(True)
    handles = {lbl: h for ax in axes[0] for h, lbl in zip(*ax.get_legend_handles_labels())}
    fig.legend(list(handles.values()), list(handles), loc="lower center", ncol=2, fontsize=8,
               bbox_to_anchor=(0.5, -0.08))
    fig.suptitle(f"{doc['title']} (hw {doc['hw']})", fontsize=10)
    return fig


def write_reproduce_figure(doc: Mapping[str, Any], path_stem: str | os.PathLike,
                           formats=("png", "svg")) -> list[str]:
    return [save_figure(reproduce_figure(doc), f"{os.fspath(path_stem)}.{ext}") for ext in formats]
