"""Natural-image crops for the small model, from images that ship inside installed packages.

Ten colour photographs: eight from scikit-image's bundled data directory and scikit-learn's two
sample images (nothing is downloaded). Each is resized so its short side is one of ``SCALES``
pixels; the left ``1 - HELD_OUT`` of its width is the training region and the right ``HELD_OUT``
is held out, so held-out crops never overlap a training crop. Crops are 32×32, in [-1, 1].
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources

import numpy as np
import torch

SKIMAGE_FILES = ("astronaut.png", "chelsea.png", "coffee.png", "hubble_deep_field.jpg", "ihc.png",
                 "motorcycle_left.png", "retina.jpg", "rocket.jpg")
SKLEARN_FILES = ("china.jpg", "flower.jpg")
SCALES = (128, 192)         # short side in pixels after resizing
HELD_OUT = 0.25             # right-hand share of each image's width kept for evaluation
CROP = 32


def _open(package: str, subdir: str, name: str):
    from PIL import Image

    with resources.as_file(resources.files(package) / subdir / name) as path:
        return Image.open(path).convert("RGB")


@lru_cache(maxsize=1)
def source_images() -> tuple:
    """The ten photographs as PIL RGB images (scikit-image, then scikit-learn)."""
    imgs = [_open("skimage", "data", f) for f in SKIMAGE_FILES]
    imgs += [_open("sklearn", "datasets/images", f) for f in SKLEARN_FILES]
    return tuple(imgs)


@lru_cache(maxsize=2)
def regions(split: str) -> tuple[torch.Tensor, ...]:
    """(3, H, W) tensors in [-1, 1], one per image and scale, of the ``split`` region."""
    from PIL import Image

    if split not in ("train", "heldout"):
        raise ValueError(f"split must be 'train' or 'heldout', got {split!r}")
    out = []
    for img in source_images():
        for short in SCALES:
            w, h = img.size
            f = short / min(w, h)
            im = img.resize((max(CROP, round(w * f)), max(CROP, round(h * f))), Image.BILINEAR)
            a = torch.from_numpy(np.asarray(im, dtype=np.float32) / 127.5 - 1).permute(2, 0, 1)
            cut = int(round(a.shape[2] * (1 - HELD_OUT)))
            out.append(a[:, :, :cut] if split == "train" else a[:, :, cut:])
    return tuple(r.contiguous() for r in out)


def random_crops(gen: torch.Generator, n: int, split: str = "train") -> torch.Tensor:
    """(n, 3, 32, 32) crops at uniform random regions and offsets, flipped left-right at random."""
    regs = regions(split)
    which = torch.randint(0, len(regs), (n,), generator=gen).tolist()
    out = torch.empty(n, 3, CROP, CROP)
    for i, r in enumerate(which):
        reg = regs[r]
        y = int(torch.randint(0, reg.shape[1] - CROP + 1, (1,), generator=gen))
        x = int(torch.randint(0, reg.shape[2] - CROP + 1, (1,), generator=gen))
        out[i] = reg[:, y:y + CROP, x:x + CROP]
    flip = torch.rand(n, generator=gen) < 0.5
    out[flip] = out[flip].flip(-1)
    return out
