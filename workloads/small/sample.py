"""A figure of the small DDPM's samples next to data crops (both twins; PNG).

    python -m workloads.small.sample --n 32 --steps 50 --seed 0 --out docs/img/small-samples.png
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np
import torch

from .data import random_crops
from .model import MODEL_NAMES, load_small


def rgb_grid(images: torch.Tensor, pad: int = 1) -> np.ndarray:
    """(N, 3, H, W) in [-1, 1] -> (rows, cols, 3) array in [0, 1], near-square, white gaps."""
    n, _, h, w = images.shape
    cols = math.ceil(math.sqrt(n))
    rows = math.ceil(n / cols)
    grid = np.ones((rows * (h + pad) + pad, cols * (w + pad) + pad, 3), dtype=np.float32)
    imgs = ((images.clamp(-1, 1) + 1) / 2).permute(0, 2, 3, 1).cpu().numpy()
    for i in range(n):
        r, c = divmod(i, cols)
        y, x = pad + r * (h + pad), pad + c * (w + pad)
        grid[y:y + h, x:x + w] = imgs[i]
    return grid


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=32)
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=Path("small-samples.png"))
    a = ap.parse_args(argv)
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..tiny.model import ddim_sample

    torch.set_num_threads(1)
    panels = [(f"{name}: DDIM {a.steps} steps, seed {a.seed}", ddim_sample(load_small(name), a.n, a.steps, a.seed))
              for name in MODEL_NAMES]
    panels += [("training crops", random_crops(torch.Generator().manual_seed(a.seed), a.n, "train")),
               ("held-out crops", random_crops(torch.Generator().manual_seed(a.seed + 1), a.n, "heldout"))]
    fig, axes = plt.subplots(1, len(panels), figsize=(3.2 * len(panels), 3.6))
    for ax, (title, x) in zip(axes, panels):
        ax.imshow(rgb_grid(x), interpolation="nearest")
        ax.set_title(title, fontsize=8)
        ax.axis("off")
    fig.tight_layout()
    a.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(a.out, dpi=110)
    plt.close(fig)
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
