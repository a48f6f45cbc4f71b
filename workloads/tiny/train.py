"""Seeded training of the tiny DDPM on scikit-learn digits (16x16, epsilon-prediction MSE).

    python -m workloads.tiny.train --act silu --out workloads/data/tiny-silu.pt [--seed 0]

Runs on one CPU thread. A fixed ``--iters`` makes the run reproducible; ``--minutes`` only
caps wall time (the JSON sidecar records the iterations actually done).
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from .model import ALPHA_BAR, IMAGE_SIZE, T_STEPS, TinyUNet, param_count

DEFAULTS = dict(iters=2200, batch=128, lr=2e-3, warmup=100, ema=0.995, grad_clip=1.0)


def load_digit_images(size: int = IMAGE_SIZE) -> torch.Tensor:
    """sklearn digits (1797, 8x8, 0..16) bilinearly upscaled to (N,1,size,size) in [-1,1]."""
    from sklearn.datasets import load_digits

    x = torch.tensor(load_digits().images, dtype=torch.float32)[:, None] / 16.0
    x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
    return (x * 2 - 1).clamp(-1, 1)


def train(act: str, seed: int = 0, iters: int = DEFAULTS["iters"], minutes: float | None = None,
          batch: int = DEFAULTS["batch"], lr: float = DEFAULTS["lr"], log_every: int = 250,
          verbose: bool = True) -> tuple[TinyUNet, dict]:
    """Train from scratch; returns (EMA model in eval mode, info dict)."""
    torch.set_num_threads(1)
    data = load_digit_images()
    model, info = fit(lambda: TinyUNet(act=act), lambda gen, n: data[torch.randint(
        0, data.shape[0], (n,), generator=gen)], seed=seed, iters=iters, minutes=minutes,
        batch=batch, lr=lr, log_every=log_every, label=act if verbose else None)
    info.update(act=act, data="sklearn load_digits, bilinear 8x8->16x16, [-1,1]")
    return model, info


def fit(make_model, sample_batch, *, seed: int, iters: int, batch: int, lr: float,
        minutes: float | None = None, warmup: int = DEFAULTS["warmup"], ema: float = DEFAULTS["ema"],
        grad_clip: float = DEFAULTS["grad_clip"], log_every: int = 250,
        label: str | None = None) -> tuple[torch.nn.Module, dict]:
    """Seeded epsilon-MSE training of ``make_model()`` on ``sample_batch(generator, n)`` images.

    Adam with linear warmup and cosine decay, gradient clipping and an EMA copy (returned in eval
    mode); one torch generator drives data, timesteps and noise, so a fixed ``iters`` on one
    thread reproduces the weights. ``label`` (None: quiet) prefixes the progress lines.
    """
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    model = make_model()
    ema_model = make_model()
    ema_model.load_state_dict(model.state_dict())
    ema_model.requires_grad_(False)
    opt = torch.optim.Adam(model.parameters(), lr=lr)

    def lr_factor(i: int) -> float:
        return min(1.0, (i + 1) / warmup) * 0.5 * (1 + math.cos(math.pi * min(i, iters) / iters))

    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_factor)
    ab = ALPHA_BAR.float()
    t0 = time.time()
    running, done = None, 0
    for it in range(iters):
        if minutes is not None and time.time() - t0 > minutes * 60:
            break
        x0 = sample_batch(gen, batch)
        t = torch.randint(0, T_STEPS, (batch,), generator=gen)
        noise = torch.randn(x0.shape, generator=gen)
        a = ab[t][:, None, None, None]
        xt = a.sqrt() * x0 + (1 - a).sqrt() * noise
        loss = F.mse_loss(model(xt, t), noise)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
        opt.step()
        sched.step()
        with torch.no_grad():
            for pe, pm in zip(ema_model.parameters(), model.parameters()):
                pe.lerp_(pm, 1 - ema)
        running = loss.item() if running is None else 0.98 * running + 0.02 * loss.item()
        done = it + 1
        if label is not None and (done % log_every == 0 or done == 1):
            print(f"[{label}] iter {done}/{iters} loss {running:.4f} {time.time() - t0:.0f}s",
                  flush=True)
    wall = time.time() - t0
    info = dict(seed=seed, iters_planned=iters, iters_done=done, batch=batch, lr=lr,
                warmup=warmup, ema=ema, grad_clip=grad_clip,
                optimizer="Adam", lr_schedule="linear warmup + cosine decay",
                noise_schedule=f"cosine, T={T_STEPS}", objective="epsilon MSE",
                final_loss_ema=round(running, 5), wall_time_s=round(wall, 1),
                torch_threads=torch.get_num_threads(), torch_version=torch.__version__,
                params=param_count(model))
    return ema_model.eval(), info


def save(model: TinyUNet, info: dict, out: Path) -> None:
    """fp32 state_dict + act in ``out`` (.pt) and ``info`` in the sibling .json."""
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"act": model.act_name, "state_dict": model.state_dict()}, out)
    info = dict(info, checkpoint_bytes=out.stat().st_size)
    out.with_suffix(".json").write_text(json.dumps(info, indent=2) + "\n")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--act", choices=["silu", "relu"], required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--iters", type=int, default=DEFAULTS["iters"])
    ap.add_argument("--minutes", type=float, default=None, help="wall-time cap")
    ap.add_argument("--batch", type=int, default=DEFAULTS["batch"])
    ap.add_argument("--lr", type=float, default=DEFAULTS["lr"])
    a = ap.parse_args(argv)
    model, info = train(a.act, a.seed, a.iters, a.minutes, a.batch, a.lr)
    info["command"] = ("python -m workloads.tiny.train --act {} --out {} --seed {} --iters {}"
                       .format(a.act, a.out.as_posix(), a.seed, a.iters)
                       + (f" --minutes {a.minutes}" if a.minutes else ""))
    save(model, info, a.out)
    print(json.dumps(info, indent=2))


if __name__ == "__main__":
    main()
