"""Tiny DDPM U-Net for 16x16 single-channel digits, cosine schedule and deterministic DDIM.

Every op that capture must see is an ``nn.Module`` (convs, linears, GroupNorm, activation,
softmax, the two attention matmuls, adds, concats, upsample), so forward hooks observe it.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Callable, Optional

import torch
from torch import nn

T_STEPS = 1000          # training timesteps of the discrete cosine schedule
IMAGE_SIZE = 16
CHANNELS = (16, 32, 64)
TIME_DIM = 64
HEADS = 4
GROUPS = 8
DATA_DIR = Path(__file__).resolve().parent.parent / "data"
MODEL_NAMES = ("tiny-silu", "tiny-relu")


def cosine_alpha_bar(T: int = T_STEPS, s: float = 0.008) -> torch.Tensor:
    """Cumulative alpha-bar (float64, length T) of the cosine schedule, betas clipped at 0.999."""
    steps = torch.arange(T + 1, dtype=torch.float64)
    f = torch.cos((steps / T + s) / (1 + s) * math.pi / 2) ** 2
    ab = f / f[0]
    betas = (1 - ab[1:] / ab[:-1]).clamp(max=0.999)
    return torch.cumprod(1 - betas, dim=0)


ALPHA_BAR = cosine_alpha_bar()


def ddim_timesteps(steps: int, T: int = T_STEPS) -> list[int]:
    """Descending integer timesteps (T-1 ... 0) used by a ``steps``-step DDIM run."""
    if steps < 1 or steps > T:
        raise ValueError(f"steps must be in 1..{T}, got {steps}")
    ts = torch.linspace(T - 1, 0, steps).round().long().tolist()
    return [int(t) for t in ts]


def make_act(act: str) -> nn.Module:
    if act == "silu":
        return nn.SiLU()
    if act == "relu":
        return nn.ReLU()
    raise ValueError(f"act must be 'silu' or 'relu', got {act!r}")


class Add(nn.Module):
    """Elementwise add (a module so hooks see it)."""

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return a + b


class Concat(nn.Module):
    """Channel concatenation of a skip connection (a module so hooks see it)."""

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return torch.cat([a, b], dim=1)


class MatmulQK(nn.Module):
    """Scaled attention scores: (B,h,T,d) x (B,h,T,d) -> (B,h,T,T), scaled by 1/sqrt(d)."""

    def forward(self, q: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
        return torch.matmul(q, k.transpose(-1, -2)) * (q.shape[-1] ** -0.5)


class MatmulPV(nn.Module):
    """Attention output: (B,h,T,T) x (B,h,T,d) -> (B,h,T,d)."""

    def forward(self, p: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        return torch.matmul(p, v)


class SinusoidalEmbedding(nn.Module):
    """Sinusoidal timestep embedding of width ``dim`` (no parameters)."""

    def __init__(self, dim: int):
        super().__init__()
        self.dim = dim

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        half = self.dim // 2
        freqs = torch.exp(-math.log(10000.0) * torch.arange(half, dtype=torch.float32) / half)
        args = t.float()[:, None] * freqs[None, :]
        return torch.cat([torch.sin(args), torch.cos(args)], dim=1)


class TimeEmbedding(nn.Module):
    """sinusoidal -> Linear -> act -> Linear."""

    def __init__(self, dim: int, act: str):
        super().__init__()
        self.sin = SinusoidalEmbedding(dim // 4)
        self.lin1 = nn.Linear(dim // 4, dim)
        self.act = make_act(act)
        self.lin2 = nn.Linear(dim, dim)

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        return self.lin2(self.act(self.lin1(self.sin(t))))


class ResBlock(nn.Module):
    """GN-act-conv, + time projection, GN-act-conv, residual (1x1 conv if widths differ)."""

    def __init__(self, cin: int, cout: int, tdim: int, act: str):
        super().__init__()
        self.norm1 = nn.GroupNorm(min(GROUPS, cin), cin)
        self.act1 = make_act(act)
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1)
        self.temb_act = make_act(act)
        self.temb_proj = nn.Linear(tdim, cout)
        self.add_t = Add()
        self.norm2 = nn.GroupNorm(min(GROUPS, cout), cout)
        self.act2 = make_act(act)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1)
        self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else nn.Identity()
        self.add_res = Add()

    def forward(self, x: torch.Tensor, temb: torch.Tensor) -> torch.Tensor:
        h = self.conv1(self.act1(self.norm1(x)))
        h = self.add_t(h, self.temb_proj(self.temb_act(temb))[:, :, None, None])
        h = self.conv2(self.act2(self.norm2(h)))
        return self.add_res(self.skip(x), h)


class AttnBlock(nn.Module):
    """Multi-head self-attention over the H*W tokens of a feature map (pre-GN, residual)."""

    def __init__(self, ch: int, heads: int = HEADS):
        super().__init__()
        if ch % heads:
            raise ValueError("channels must divide by heads")
        self.heads = heads
        self.norm = nn.GroupNorm(min(GROUPS, ch), ch)
        self.qkv = nn.Conv2d(ch, 3 * ch, 1)
        self.matmul_qk = MatmulQK()
        self.softmax = nn.Softmax(dim=-1)
        self.matmul_pv = MatmulPV()
        self.proj = nn.Conv2d(ch, ch, 1)
        self.add_res = Add()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, hh, ww = x.shape
        d = c // self.heads
        qkv = self.qkv(self.norm(x)).reshape(b, 3, self.heads, d, hh * ww).transpose(-1, -2)
        q, k, v = qkv[:, 0], qkv[:, 1], qkv[:, 2]            # (B, heads, tokens, d)
        p = self.softmax(self.matmul_qk(q, k))
        o = self.matmul_pv(p, v).transpose(-1, -2).reshape(b, c, hh, ww)
        return self.add_res(x, self.proj(o))


class Upsample(nn.Module):
    """Nearest 2x upsample then 3x3 conv."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.up = nn.Upsample(scale_factor=2, mode="nearest")
        self.conv = nn.Conv2d(cin, cout, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(self.up(x))


def batch_timesteps(x: torch.Tensor, t: torch.Tensor | int) -> torch.Tensor:
    """``t`` as one long timestep per image of ``x`` (an int or a 0-d tensor is broadcast)."""
    if not torch.is_tensor(t) or t.dim() == 0:
        t = torch.full((x.shape[0],), int(t), dtype=torch.long)
    return t


class TinyUNet(nn.Module):
    """~250k-parameter epsilon-prediction U-Net for (B,1,16,16) inputs in [-1,1].

    Levels 16x16/8x8/4x4 with 16/32/64 channels; one 4-head attention at 8x8 (encoder);
    two ResBlocks at 4x4; strided-conv downsampling; nearest-upsample+conv upsampling;
    skip concatenations.
    """

    in_channels = 1
    image_size = IMAGE_SIZE

    def __init__(self, act: str = "silu"):
        super().__init__()
        c0, c1, c2 = CHANNELS
        self.act_name = act
        self.temb = TimeEmbedding(TIME_DIM, act)
        self.conv_in = nn.Conv2d(1, c0, 3, padding=1)
        self.enc0 = ResBlock(c0, c0, TIME_DIM, act)                  # 16x16
        self.down0 = nn.Conv2d(c0, c0, 3, stride=2, padding=1)       # -> 8x8
        self.enc1 = ResBlock(c0, c1, TIME_DIM, act)                  # 8x8
        self.attn1 = AttnBlock(c1)
        self.down1 = nn.Conv2d(c1, c1, 3, stride=2, padding=1)       # -> 4x4
        self.mid0 = ResBlock(c1, c2, TIME_DIM, act)                  # 4x4
        self.mid1 = ResBlock(c2, c2, TIME_DIM, act)
        self.up1 = Upsample(c2, c1)                                  # -> 8x8
        self.cat1 = Concat()
        self.dec1 = ResBlock(2 * c1, c1, TIME_DIM, act)
        self.up0 = Upsample(c1, c0)                                  # -> 16x16
        self.cat0 = Concat()
        self.dec0 = ResBlock(2 * c0, c0, TIME_DIM, act)
        self.norm_out = nn.GroupNorm(GROUPS, c0)
        self.act_out = make_act(act)
        self.conv_out = nn.Conv2d(c0, 1, 3, padding=1)

    def forward(self, x: torch.Tensor, t: torch.Tensor | int) -> torch.Tensor:
        temb = self.temb(batch_timesteps(x, t))
        h0 = self.enc0(self.conv_in(x), temb)
        h1 = self.attn1(self.enc1(self.down0(h0), temb))
        m = self.mid1(self.mid0(self.down1(h1), temb), temb)
        d1 = self.dec1(self.cat1(self.up1(m), h1), temb)
        d0 = self.dec0(self.cat0(self.up0(d1), h0), temb)
        return self.conv_out(self.act_out(self.norm_out(d0)))


def param_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def checkpoint_path(name: str) -> Path:
    if name not in MODEL_NAMES:
        raise ValueError(f"unknown tiny model {name!r}; expected one of {MODEL_NAMES}")
    return DATA_DIR / f"{name}.pt"


def load_tiny(name: str = "tiny-silu") -> TinyUNet:
    """Trained model ``name`` ("tiny-silu" | "tiny-relu") in eval mode, from workloads/data."""
    torch.set_num_threads(1)
    path = checkpoint_path(name)
    if not path.exists():
        raise FileNotFoundError(f"checkpoint {path} missing; run python -m workloads.tiny.train")
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    model = TinyUNet(act=ckpt["act"])
    model.load_state_dict({k: v.float() for k, v in ckpt["state_dict"].items()})
    return model.eval()


@torch.no_grad()
def ddim_sample(model: nn.Module, n: int, steps: int = 50, seed: int = 0,
                callback: Optional[Callable[[int, int, torch.Tensor], None]] = None,
                clip: bool = True) -> torch.Tensor:
    """Deterministic DDIM (eta=0) from seeded Gaussian noise; returns (n, C, H, W) in [-1,1].

    The sample shape is the model's ``in_channels`` × ``image_size``²; ``callback(step_index, t,
    x_t)`` runs before each model call.
    """
    torch.set_num_threads(1)
    gen = torch.Generator().manual_seed(seed)
    size = model.image_size
    x = torch.randn(n, model.in_channels, size, size, generator=gen)
    ts = ddim_timesteps(steps)
    ab = ALPHA_BAR
    for i, t in enumerate(ts):
        if callback is not None:
            callback(i, t, x)
        eps = model(x, torch.full((n,), t, dtype=torch.long))
        a_t = ab[t].float()
        a_prev = ab[ts[i + 1]].float() if i + 1 < len(ts) else torch.tensor(1.0)
        x0 = (x - (1 - a_t).sqrt() * eps) / a_t.sqrt()
        if clip:
            x0 = x0.clamp(-1, 1)
            eps = (x - a_t.sqrt() * x0) / (1 - a_t).sqrt()
        x = a_prev.sqrt() * x0 + (1 - a_prev).sqrt() * eps
    return x.clamp(-1, 1)
