"""Sample quality of the tiny DDPM: share of samples a digit classifier labels with confidence.

A seeded logistic regression is fit on the real digits (16x16, [-1,1]); the measure is the
fraction of images whose top class probability is >= ``threshold``. Reference points: seeded
Gaussian noise (clipped to [-1,1]), DDIM samples of random-init models, the SiLU model with its
activations swapped to ReLU without retraining, and real digits.

    python -m workloads.tiny.quality --n 64 --steps 50 --seed 0
"""

from __future__ import annotations

import argparse
import json
from functools import lru_cache

import numpy as np
import torch

from .model import MODEL_NAMES, TinyUNet, ddim_sample, load_tiny

THRESHOLD = 0.9


@lru_cache(maxsize=1)
def digit_classifier(seed: int = 0):
    """(fitted LogisticRegression, held-out accuracy) on 16x16 digits; 25% held out."""
    from sklearn.datasets import load_digits
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split

    from .train import load_digit_images

    x = load_digit_images().reshape(-1, 256).numpy()
    y = load_digits().target
    xtr, xte, ytr, yte = train_test_split(x, y, test_size=0.25, random_state=seed, stratify=y)
    clf = LogisticRegression(C=0.1, max_iter=2000, random_state=seed).fit(xtr, ytr)
    return clf, float(clf.score(xte, yte))


def confidence(images: torch.Tensor, threshold: float = THRESHOLD) -> dict:
    """Confident fraction, mean top probability and predicted-class counts for (N,1,16,16)."""
    clf, _ = digit_classifier()
    p = clf.predict_proba(images.reshape(images.shape[0], -1).double().numpy())
    top = p.max(axis=1)
    conf = top >= threshold
    counts = np.bincount(p.argmax(axis=1)[conf], minlength=10)
    return dict(confident_fraction=float(conf.mean()), mean_top_prob=float(top.mean()),
                confident_class_counts=counts.tolist())


def noise_images(n: int, seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(n, 1, 16, 16, generator=gen).clamp(-1, 1)


def random_init_model(act: str = "silu", seed: int = 0) -> TinyUNet:
    torch.manual_seed(seed)
    return TinyUNet(act=act).eval()


def swapped_relu(name: str = "tiny-silu") -> TinyUNet:
    """Trained SiLU model with every SiLU replaced by ReLU, not retrained (a negative control)."""
    model = load_tiny(name)
    for mod in list(model.modules()):
        for child_name, child in list(mod.named_children()):
            if isinstance(child, torch.nn.SiLU):
                setattr(mod, child_name, torch.nn.ReLU())
    return model


def evaluate(n: int = 64, steps: int = 50, seed: int = 0, threshold: float = THRESHOLD) -> dict:
    """Confidence measures for both trained models, a random-init model, noise and real digits."""
    torch.set_num_threads(1)
    from .train import load_digit_images

    clf_acc = digit_classifier()[1]
    out = {"classifier_heldout_accuracy": clf_acc, "threshold": threshold, "n": n,
           "steps": steps, "seed": seed}
    for name in MODEL_NAMES:
        out[name] = confidence(ddim_sample(load_tiny(name), n, steps, seed), threshold)
    for act in ("silu", "relu"):
        out[f"random-init-{act}"] = confidence(
            ddim_sample(random_init_model(act), n, steps, seed), threshold)
    out["tiny-silu-swapped-to-relu"] = confidence(
        ddim_sample(swapped_relu(), n, steps, seed), threshold)
    out["noise"] = confidence(noise_images(n, seed), threshold)
    real = load_digit_images()
    idx = torch.randperm(real.shape[0], generator=torch.Generator().manual_seed(seed))[:n]
    out["real-digits"] = confidence(real[idx], threshold)
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=64)
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threshold", type=float, default=THRESHOLD)
    a = ap.parse_args(argv)
    print(json.dumps(evaluate(a.n, a.steps, a.seed, a.threshold), indent=1))


if __name__ == "__main__":
    main()
