"""Sample quality of the small DDPM: sliced Wasserstein distance of local patches to held-out crops.

The figure (after Karras et al.'s SWD for GANs, simplified): 7×7×3 patches drawn at random
positions of two image sets, at two pyramid levels (32×32 and 2×2-average-pooled 16×16); each
set's patches standardised per colour channel; the Wasserstein-1 distance of their projections
on 128 random unit directions, averaged over directions, 4 repetitions and the two levels, ×1000.
Lower is better. References: the training crops against the held-out crops (the floor: same
photographs, other regions), seeded Gaussian noise, and DDIM samples of the untrained model.

    python -m workloads.small.quality --n 64 --steps 50 --seed 0
"""

from __future__ import annotations

import argparse
import json

import numpy as np
import torch
import torch.nn.functional as F

from .data import random_crops
from .model import MODEL_NAMES, SmallUNet, load_small

PATCH = 7
DIRECTIONS = 128
REPEATS = 4
PATCHES_PER_IMAGE = 64


def _patches(images: torch.Tensor, rng: np.random.Generator) -> list[np.ndarray]:
    """Per pyramid level, (N·PATCHES_PER_IMAGE, 3·7·7) standardised patch descriptors."""
    out = []
    x = images.double().clamp(-1, 1)
    for _ in range(2):
        n, c, h, w = x.shape
        ys = rng.integers(0, h - PATCH + 1, (n, PATCHES_PER_IMAGE))
        xs = rng.integers(0, w - PATCH + 1, (n, PATCHES_PER_IMAGE))
        a = x.numpy()
        d = np.stack([a[i, :, y:y + PATCH, xx:xx + PATCH] for i in range(n)
                      for y, xx in zip(ys[i], xs[i])])
        mean = d.mean(axis=(0, 2, 3), keepdims=True)
        std = d.std(axis=(0, 2, 3), keepdims=True) + 1e-8
        out.append(((d - mean) / std).reshape(len(d), -1))
        x = F.avg_pool2d(x, 2)
    return out


def swd(a: torch.Tensor, b: torch.Tensor, seed: int = 0) -> float:
    """Sliced Wasserstein distance ×1000 between the patch distributions of image sets a and b
    ((N, 3, 32, 32) in [-1, 1]; equal N)."""
    if a.shape != b.shape:
        raise ValueError(f"swd: image sets must have equal shapes, got {tuple(a.shape)} and {tuple(b.shape)}")
    rng = np.random.default_rng(seed)
    pa, pb = _patches(a, rng), _patches(b, rng)
    total = []
    for da, db in zip(pa, pb):
        for _ in range(REPEATS):
            dirs = rng.standard_normal((da.shape[1], DIRECTIONS))
            dirs /= np.linalg.norm(dirs, axis=0, keepdims=True)
            qa, qb = np.sort(da @ dirs, axis=0), np.sort(db @ dirs, axis=0)
            total.append(np.abs(qa - qb).mean())
    return float(np.mean(total) * 1000)


def heldout(n: int, seed: int = 0) -> torch.Tensor:
    return random_crops(torch.Generator().manual_seed(seed + 1), n, "heldout")


def evaluate(n: int = 64, steps: int = 50, seed: int = 0) -> dict:
    """SWD to held-out crops of both trained twins, the untrained model, noise and training crops."""
    from ..tiny.model import ddim_sample

    torch.set_num_threads(1)
    ref = heldout(n, seed)
    out: dict = {"figure": "patch SWD x1000 to held-out crops (lower is better)", "n": n, "steps": steps,
                 "seed": seed}
    for name in MODEL_NAMES:
        out[name] = swd(ddim_sample(load_small(name), n, steps, seed), ref, seed)
    torch.manual_seed(seed)
    out["untrained-silu"] = swd(ddim_sample(SmallUNet("silu").eval(), n, steps, seed), ref, seed)
    out["noise"] = swd(torch.randn(n, 3, 32, 32, generator=torch.Generator().manual_seed(seed)).clamp(-1, 1),
                       ref, seed)
    out["training-crops"] = swd(random_crops(torch.Generator().manual_seed(seed), n, "train"), ref, seed)
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=64)
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args(argv)
    print(json.dumps(evaluate(a.n, a.steps, a.seed), indent=1))


if __name__ == "__main__":
    main()
