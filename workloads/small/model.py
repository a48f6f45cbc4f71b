"""Small DDPM U-Net for 32×32 RGB natural-image crops (the tiny model's blocks, scaled up).

Levels 32×32 / 16×16 / 8×8 with ``CHANNELS`` channels, 4-head self-attention at 16×16 and 8×8
(encoder, middle and decoder), a time embedding, GroupNorm, strided-conv downsampling,
nearest-upsample + conv upsampling and skip concatenations. The cosine schedule and DDIM sampler
are the tiny model's (`workloads.tiny.model.ddim_sample` reads the shape from the model).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from ..tiny.model import (DATA_DIR, GROUPS, AttnBlock, Concat, ResBlock, TimeEmbedding, Upsample,
                          batch_timesteps, make_act)

IMAGE_SIZE = 32
CHANNELS = (32, 64, 128)
TIME_DIM = 128
MODEL_NAMES = ("small-silu", "small-relu")


class SmallUNet(nn.Module):
    """Epsilon-prediction U-Net for (B,3,32,32) inputs in [-1,1] (about 2 M parameters)."""

    in_channels = 3
    image_size = IMAGE_SIZE

    def __init__(self, act: str = "silu", channels: tuple[int, int, int] = CHANNELS):
        super().__init__()
        c0, c1, c2 = channels
        self.act_name = act
        self.channels = tuple(channels)
        td = TIME_DIM
        self.temb = TimeEmbedding(td, act)
        self.conv_in = nn.Conv2d(3, c0, 3, padding=1)
        self.enc0 = ResBlock(c0, c0, td, act)                        # 32x32
        self.down0 = nn.Conv2d(c0, c0, 3, stride=2, padding=1)       # -> 16x16
        self.enc1 = ResBlock(c0, c1, td, act)
        self.attn1 = AttnBlock(c1)
        self.down1 = nn.Conv2d(c1, c1, 3, stride=2, padding=1)       # -> 8x8
        self.enc2 = ResBlock(c1, c2, td, act)
        self.attn2 = AttnBlock(c2)
        self.mid0 = ResBlock(c2, c2, td, act)
        self.mid_attn = AttnBlock(c2)
        self.mid1 = ResBlock(c2, c2, td, act)
        self.cat2 = Concat()
        self.dec2 = ResBlock(2 * c2, c2, td, act)
        self.dec_attn2 = AttnBlock(c2)
        self.up1 = Upsample(c2, c1)                                  # -> 16x16
        self.cat1 = Concat()
        self.dec1 = ResBlock(2 * c1, c1, td, act)
        self.dec_attn1 = AttnBlock(c1)
        self.up0 = Upsample(c1, c0)                                  # -> 32x32
        self.cat0 = Concat()
        self.dec0 = ResBlock(2 * c0, c0, td, act)
        self.norm_out = nn.GroupNorm(GROUPS, c0)
        self.act_out = make_act(act)
        self.conv_out = nn.Conv2d(c0, 3, 3, padding=1)

    def forward(self, x: torch.Tensor, t: torch.Tensor | int) -> torch.Tensor:
        temb = self.temb(batch_timesteps(x, t))
        h0 = self.enc0(self.conv_in(x), temb)
        h1 = self.attn1(self.enc1(self.down0(h0), temb))
        h2 = self.attn2(self.enc2(self.down1(h1), temb))
        m = self.mid1(self.mid_attn(self.mid0(h2, temb)), temb)
        d2 = self.dec_attn2(self.dec2(self.cat2(m, h2), temb))
        d1 = self.dec_attn1(self.dec1(self.cat1(self.up1(d2), h1), temb))
        d0 = self.dec0(self.cat0(self.up0(d1), h0), temb)
        return self.conv_out(self.act_out(self.norm_out(d0)))


def checkpoint_path(name: str) -> Path:
    if name not in MODEL_NAMES:
        raise ValueError(f"unknown small model {name!r}; expected one of {MODEL_NAMES}")
    return DATA_DIR / f"{name}.pt"


def load_small(name: str = "small-silu") -> SmallUNet:
    """Trained model ``name`` ("small-silu" | "small-relu") in eval mode, from workloads/data."""
    torch.set_num_threads(1)
    path = checkpoint_path(name)
    if not path.exists():
        raise FileNotFoundError(f"checkpoint {path} missing; run python -m workloads.small.train")
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    model = SmallUNet(act=ckpt["act"], channels=tuple(ckpt["channels"]))
    model.load_state_dict({k: v.float() for k, v in ckpt["state_dict"].items()})
    return model.eval()
