"""Seeded training of the small DDPM on natural-image crops (32×32 RGB, epsilon-prediction MSE).

    python -m workloads.small.train --act silu --out workloads/data/small-silu.pt [--seed 0]

The tiny model's recipe (`workloads.tiny.train.fit`) on one CPU thread: a fixed ``--iters``
reproduces the weights. Weights are stored in fp16 (the bundle's size budget); the JSON sidecar
records the recipe, the wall time and the loss.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from ..tiny.train import fit
from .data import random_crops
from .model import CHANNELS, SmallUNet

DEFAULTS = dict(iters=1800, batch=32, lr=1e-3)


def train(act: str, seed: int = 0, iters: int = DEFAULTS["iters"], batch: int = DEFAULTS["batch"],
          lr: float = DEFAULTS["lr"], minutes: float | None = None,
          verbose: bool = True) -> tuple[SmallUNet, dict]:
    """Train from scratch; returns (EMA model in eval mode, info dict)."""
    torch.set_num_threads(1)
    model, info = fit(lambda: SmallUNet(act=act), random_crops, seed=seed, iters=iters,
                      batch=batch, lr=lr, minutes=minutes, log_every=100,
                      label=f"small-{act}" if verbose else None)
    info.update(act=act, channels=list(CHANNELS),
                data="32x32 crops of 10 photographs bundled with scikit-image and scikit-learn "
                     "(workloads.small.data), left 75 % of each image, random flips")
    return model, info


def save(model: SmallUNet, info: dict, out: Path) -> None:
    """fp16 state_dict + act + channels in ``out`` (.pt) and ``info`` in the sibling .json."""
    out.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.half() for k, v in model.state_dict().items()}
    torch.save({"act": model.act_name, "channels": list(model.channels), "state_dict": state}, out)
    info = dict(info, checkpoint_bytes=out.stat().st_size, weights_dtype="float16")
    out.with_suffix(".json").write_text(json.dumps(info, indent=2) + "\n")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--act", choices=["silu", "relu"], required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--iters", type=int, default=DEFAULTS["iters"])
    ap.add_argument("--batch", type=int, default=DEFAULTS["batch"])
    ap.add_argument("--lr", type=float, default=DEFAULTS["lr"])
    a = ap.parse_args(argv)
    model, info = train(a.act, a.seed, a.iters, a.batch, a.lr)
    info["command"] = (f"python -m workloads.small.train --act {a.act} --out {a.out.as_posix()} "
                       f"--seed {a.seed} --iters {a.iters} --batch {a.batch} --lr {a.lr}")
    save(model, info, a.out)
    print(json.dumps(info, indent=2))


if __name__ == "__main__":
    main()
