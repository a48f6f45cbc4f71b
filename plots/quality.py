"""Grid figure of the same seeds across arithmetics (matplotlib, Agg; saved atomically)."""

from __future__ import annotations

import os
from typing import Mapping

import numpy as np

from .figures import plt, save_figure


def quality_grid(images: Mapping[str, np.ndarray], rows: list[dict], path: str | os.PathLike,
                 max_cols: int = 16) -> str:
    """One row per arithmetic (label: name, PSNR, SSIM), one column per seed-sharing sample."""
    names = list(images)
    cols = min(max_cols, min(len(v) for v in images.values()))
    fig, axes = plt.subplots(len(names), cols, figsize=(0.6 * cols + 2.6, 0.62 * len(names) + 0.3),
                             squeeze=False)
    by_name = {r["name"]: r for r in rows}
    for i, name in enumerate(names):
        x = np.clip((np.asarray(images[name])[:cols] + 1) / 2, 0, 1)
        for j in range(cols):
            ax = axes[i][j]
            if x.shape[1] == 1:
                ax.imshow(x[j, 0], cmap="gray", vmin=0, vmax=1, interpolation="nearest")
            else:
                ax.imshow(x[j].transpose(1, 2, 0), interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
        r = by_name[name]
        label = name if not np.isfinite(r["psnr_db_mean"]) else \
            f"{name}\n{r['psnr_db_mean']:.1f} dB, SSIM {r['ssim_mean']:.3f}"
        axes[i][0].set_ylabel(label, rotation=0, ha="right", va="center", fontsize=7)
    fig.subplots_adjust(wspace=0.05, hspace=0.05)
    return save_figure(fig, path)
