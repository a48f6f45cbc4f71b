"""Sample the tiny DDPM with deterministic DDIM and write a PNG grid.

    python -m workloads.tiny.sample --model tiny-silu --n 64 --steps 50 --seed 0 --out samples.png
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np
import torch

from .model import MODEL_NAMES, ddim_sample, load_tiny


def image_grid(images: torch.Tensor, pad: int = 1) -> np.ndarray:
    """(N,1,H,W) in [-1,1] -> 2-D array in [0,1] tiled near-square, ``pad`` px of -1 between."""
    n, _, h, w = images.shape
    cols = math.ceil(math.sqrt(n))
    rows = math.ceil(n / cols)
    grid = np.zeros((rows * (h + pad) + pad, cols * (w + pad) + pad), dtype=np.float32)
    imgs = ((images[:, 0].clamp(-1, 1) + 1) / 2).cpu().numpy()
    for i in range(n):
        r, c = divmod(i, cols)
        y, x = pad + r * (h + pad), pad + c * (w + pad)
        grid[y:y + h, x:x + w] = imgs[i]
    return grid


def save_grid(images: torch.Tensor, out: Path, title: str | None = None) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    grid = image_grid(images)
    fig, ax = plt.subplots(figsize=(6, 6 * grid.shape[0] / grid.shape[1] + (0.4 if title else 0)))
    ax.imshow(grid, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    ax.axis("off")
    if title:
        ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", choices=MODEL_NAMES, default="tiny-silu")
    ap.add_argument("--n", type=int, default=64)
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=Path("samples.png"))
    a = ap.parse_args(argv)
    torch.set_num_threads(1)
    x = ddim_sample(load_tiny(a.model), a.n, a.steps, a.seed)
    save_grid(x, a.out, f"{a.model}: {a.n} samples, DDIM {a.steps} steps, seed {a.seed}")
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
