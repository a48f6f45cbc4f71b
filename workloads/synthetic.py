"""Synthetic traces for tests and benchmarks: a parametric U-Net op table + seeded random stats.

Every trace made here has `synthetic_stats = true`: its statistics are random draws, not
measurements, and must never be reported as workload statistics.
"""

from __future__ import annotations

import attrs
import numpy as np

from .optable import OpTableBuilder
from .schema import OpRecord
from .trace import StepStats, write_trace


@attrs.frozen
class UNetShape:
    """Shape of a U-Net: channels per level, resolution, where self-attention sits."""

    in_channels: int = 1
    image: int = 16
    base: int = 16
    mults: tuple[int, ...] = (1, 2, 4)
    res_blocks: int = 1
    attn_resolutions: tuple[int, ...] = (8,)
    heads: int = 4
    groups_norm: int = 8
    batch: int = 1
    activation: str = "silu"


SD_LIKE = UNetShape(in_channels=4, image=64, base=320, mults=(1, 2, 4, 4), res_blocks=2,
                    attn_resolutions=(64, 32, 16), heads=8, groups_norm=32, batch=2)
"""Stable-Diffusion-sized shape (self-attention only, no text cross-attention) for benchmarks."""


def unet_ops(shape: UNetShape = UNetShape()) -> list[OpRecord]:
    """Op table of a U-Net forward: resblocks, self-attention, down/up-sampling, skip concats."""
    b = OpTableBuilder()
    act = shape.activation
    x = b.conv("stem", None, shape.base, shape=(shape.batch, shape.in_channels, shape.image, shape.image))

    def resblock(prefix, src, ch):
        h = b.elementwise("groupnorm", f"{prefix}.norm1", [src])
        h = b.elementwise(act, f"{prefix}.act1", [h])
        h = b.conv(f"{prefix}.conv1", h, ch, relu_in=act == "relu")
        h = b.elementwise("groupnorm", f"{prefix}.norm2", [h])
        h = b.elementwise(act, f"{prefix}.act2", [h])
        h = b.conv(f"{prefix}.conv2", h, ch, relu_in=act == "relu")
        skip = src if b.shape(src)[1] == ch else b.conv(f"{prefix}.skip", src, ch, r=1)
        return b.elementwise("add", f"{prefix}.add", [h, skip])

    def attention(prefix, src):
        n, c, hh, ww = b.shape(src)
        tokens, d = hh * ww, c // shape.heads
        h = b.elementwise("groupnorm", f"{prefix}.norm", [src])
        q = b.linear(f"{prefix}.q", h, c)
        k = b.linear(f"{prefix}.k", h, c)
        v = b.linear(f"{prefix}.v", h, c)
        s = b.matmul("matmul_qk", f"{prefix}.qk", q, k, shape.heads, d, tokens, tokens)
        p = b.elementwise("softmax", f"{prefix}.softmax", [s])
        o = b.matmul("matmul_pv", f"{prefix}.pv", p, v, shape.heads, d, tokens, tokens)
        b._shape[o] = (n, c, hh, ww)
        o = b.linear(f"{prefix}.out", o, c)
        return b.elementwise("add", f"{prefix}.add", [o, src])

    skips = [x]
    res = shape.image
    for lvl, mult in enumerate(shape.mults):
        b.block = lvl + 1
        for i in range(shape.res_blocks):
            x = resblock(f"down{lvl}.res{i}", x, shape.base * mult)
            if res in shape.attn_resolutions:
                x = attention(f"down{lvl}.attn{i}", x)
            skips.append(x)
        if lvl < len(shape.mults) - 1:
            x = b.conv(f"down{lvl}.downsample", x, b.shape(x)[1], stride=2)
            res //= 2
            skips.append(x)
    b.block = len(shape.mults) + 1
    x = resblock("mid.res0", x, b.shape(x)[1])
    x = attention("mid.attn", x)
    x = resblock("mid.res1", x, b.shape(x)[1])
    for lvl, mult in reversed(list(enumerate(shape.mults))):
        b.block += 1
        for i in range(shape.res_blocks + 1):
            x = b.elementwise("concat", f"up{lvl}.cat{i}", [x, skips.pop()])
            x = resblock(f"up{lvl}.res{i}", x, shape.base * mult)
            if res in shape.attn_resolutions:
                x = attention(f"up{lvl}.attn{i}", x)
        if lvl > 0:
            n, c, hh, ww = b.shape(x)
            x = b.elementwise("upsample", f"up{lvl}.upsample", [x], out_shape=(n, c, 2 * hh, 2 * ww))
            x = b.conv(f"up{lvl}.upconv", x, c)
            res *= 2
    b.block += 1
    x = b.elementwise("groupnorm", "out.norm", [x])
    x = b.elementwise(act, "out.act", [x])
    b.conv("out.conv", x, shape.in_channels, relu_in=act == "relu")
    return b.ops


def random_step_stats(ops: list[OpRecord], rng: np.random.Generator) -> StepStats:
    """Random but well-formed statistics for every MAC op (fractions that sum to 1)."""
    st = StepStats()
    for op in ops:
        if not op.is_mac:
            continue
        z, f4, f8, f9 = rng.dirichlet([6.0, 3.0, 1.0, 0.05])
        for name, v in (("delta.zero_frac", z), ("delta.int4_frac", f4),
                        ("delta.int8_frac", f8), ("delta.beyond8_frac", f9)):
            st.scalars.setdefault(name, {})[op.op_id] = float(v)
        st.scalars.setdefault("raw.zero_frac", {})[op.op_id] = float(rng.uniform(0, 0.5))
    return st


def write_synthetic_trace(path, shape: UNetShape = UNetShape(), steps: int = 4, seed: int = 0) -> None:
    """Write a synthetic-statistics trace of `shape` with `steps` sampler steps."""
    ops = unet_ops(shape)
    rng = np.random.default_rng(seed)
    manifest = {
        "model": "synthetic-unet",
        "model_config": attrs.asdict(shape),
        "image_size": [shape.image, shape.image],
        "sampler": "none",
        "steps": list(range(steps, 0, -1)),
        "batch": shape.batch,
        "seed": seed,
        "synthetic_stats": True,
        "provenance": {"generator": "workloads.synthetic.write_synthetic_trace"},
    }
    write_trace(path, manifest, ops, (random_step_stats(ops, rng) for _ in range(steps)))
