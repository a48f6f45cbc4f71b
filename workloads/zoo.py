"""Shape-only model zoo: op tables of real diffusion U-Nets, statistics transferred from a tiny trace.

Op tables come from diffusers' own model classes built from their configs on the ``meta`` device
(no weights, no download) and walked by one forward through capture.Recorder, so shapes, the DAG,
GEGLU, cross-attention (77 text tokens) etc. are diffusers' own. Statistics are **not measured** on
these models: they are copied from a measured tiny-model trace (``synthetic_stats = true``):

- MAC op j of the target at relative depth j/(n-1) among its MAC ops takes the statistics of the
  source MAC op of the same family (conv2d and linear ← the source's conv2d/linear ops with more than
  one token; matmul_qk ← matmul_qk; matmul_pv ← matmul_pv) at the nearest relative depth;
- target step i of T takes source step round(i·(S-1)/(T-1));
- cross-attention K/V projections read the constant text states: their temporal deltas are exactly
  zero (``delta.zero_frac = 1``, ``camd.rho_in = 0``), as are the K/V operand deltas of
  cross-attention matmuls (``kv_delta.zero_frac = 1``);
- arrays: ``camd.group_outlier_hist`` is copied; with ``arrays=True`` also
  ``sqdm.zero_frac_per_in_channel`` (resampled to C by nearest index) and ``mhd.l1_map`` (nearest
  spatial resize; images cycled over the batch). ``mhd.int8_need`` bits are never transferred.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from .errors import TraceError
from .schema import OpRecord
from .trace import StepStats, Trace, write_trace

ZOO = {
    "sd15": {
        "title": "Stable Diffusion v1.5 U-Net (512x512 image, 64x64x4 latent), CFG batch 2",
        "class": "UNet2DConditionModel",
        "config": dict(sample_size=64, in_channels=4, out_channels=4, cross_attention_dim=768,
                       block_out_channels=(320, 640, 1280, 1280), layers_per_block=2,
                       attention_head_dim=8, norm_num_groups=32, act_fn="silu"),
        "batch": 2, "cfg": True, "context_tokens": 77, "act": "silu",
    },
    "cifar10": {
        "title": "DDPM CIFAR-10 U-Net (32x32x3, attention at 16x16, 1 head)",
        "class": "UNet2DModel",
        "config": dict(sample_size=32, in_channels=3, out_channels=3, block_out_channels=(128, 256, 256, 256),
                       layers_per_block=2, attention_head_dim=None, norm_num_groups=32, norm_eps=1e-6,
                       downsample_padding=0, flip_sin_to_cos=False, freq_shift=1,
                       down_block_types=("DownBlock2D", "AttnDownBlock2D", "DownBlock2D", "DownBlock2D"),
                       up_block_types=("UpBlock2D", "UpBlock2D", "AttnUpBlock2D", "UpBlock2D")),
        "batch": 1, "cfg": False, "act": "silu",
    },
    "ldm256": {
        "title": "LDM-256 (CelebA-HQ-style, VQ-f4 64x64x3 latent) U-Net; config as recalled, not checked against a hub copy",
        "class": "UNet2DModel",
        "config": dict(sample_size=64, in_channels=3, out_channels=3, block_out_channels=(224, 448, 672, 896),
                       layers_per_block=2, attention_head_dim=32, norm_num_groups=32,
                       down_block_types=("DownBlock2D", "AttnDownBlock2D", "AttnDownBlock2D", "AttnDownBlock2D"),
                       up_block_types=("AttnUpBlock2D", "AttnUpBlock2D", "AttnUpBlock2D", "UpBlock2D")),
        "batch": 1, "cfg": False, "act": "silu",
    },
}


def zoo_ops(name: str, batch: int | None = None) -> list[OpRecord]:
    """Op table of zoo model ``name`` for one forward (``batch`` defaults to the model's, CFG included)."""
    if name not in ZOO:
        raise TraceError(f"zoo: unknown model {name!r}; known: {', '.join(ZOO)}")
    import torch
    import diffusers

    from .capture import op_table
    from .diffusers_capture import prepare

    torch.set_num_threads(1)
    spec = ZOO[name]
    batch = spec["batch"] if batch is None else batch
    with torch.device("meta"):
        unet = getattr(diffusers, spec["class"])(**spec["config"])
    prepare(unet)
    size = spec["config"]["sample_size"]
    x = torch.empty(batch, spec["config"]["in_channels"], size, size, device="meta")
    t = torch.tensor(500, device="meta")
    kw = {}
    if "context_tokens" in spec:
        kw["encoder_hidden_states"] = torch.empty(batch, spec["context_tokens"],
                                                  spec["config"]["cross_attention_dim"], device="meta")
    ops, unhooked = op_table(unet, lambda m: m(x, t, **kw))
    if unhooked:
        raise TraceError(f"zoo: {name}: {unhooked} MAC calls escaped the hooks")
    return ops


def _family(op: OpRecord) -> str:
    return "spatial" if op.kind in ("conv2d", "linear") else op.kind


def _source_map(src_ops: list[OpRecord], dst_ops: list[OpRecord]) -> dict[int, int]:
    """Target MAC op id -> source MAC op id by family and relative depth."""
    src_mac = [o for o in src_ops if o.is_mac]
    fam: dict[str, list[tuple[float, int]]] = {}
    for j, o in enumerate(src_mac):
        if o.kind == "linear" and o.h * o.w <= 1:
            continue  # time-embedding projections are not a model of spatial layers
        fam.setdefault(_family(o), []).append((j / max(1, len(src_mac) - 1), o.op_id))
    dst_mac = [o for o in dst_ops if o.is_mac]
    out = {}
    for j, o in enumerate(dst_mac):
        cands = fam.get(_family(o)) or fam.get("spatial") or [(0.0, src_mac[0].op_id)]
        r = j / max(1, len(dst_mac) - 1)
        out[o.op_id] = min(cands, key=lambda c: abs(c[0] - r))[1]
    return out


def _nearest(n: int, m: int) -> np.ndarray:
    return np.minimum((np.arange(n) * m) // max(n, 1), m - 1)


def transfer_step(src: StepStats, src_ops, dst_ops, mapping, arrays: bool) -> StepStats:
    st = StepStats()
    temporal = any(k.startswith("delta.") for k in src.scalars)
    for dst_id, src_id in mapping.items():
        op = dst_ops[dst_id]
        for name, per_op in src.scalars.items():
            if src_id in per_op:
                st.scalars.setdefault(name, {})[dst_id] = float(per_op[src_id])
        if "camd.group_outlier_hist" in src.arrays and src_id in src.arrays["camd.group_outlier_hist"]:
            st.arrays.setdefault("camd.group_outlier_hist", {})[dst_id] = np.asarray(
                src.arrays["camd.group_outlier_hist"][src_id], dtype=np.float64)
        if arrays:
            v = src.arrays.get("sqdm.zero_frac_per_in_channel", {}).get(src_id)
            if v is not None:
                st.arrays.setdefault("sqdm.zero_frac_per_in_channel", {})[dst_id] = np.asarray(
                    v, dtype=np.float32)[_nearest(op.c, len(v))]
            m = src.arrays.get("mhd.l1_map", {}).get(src_id)
            if m is not None and op.kind in ("conv2d", "linear"):
                m = np.asarray(m, dtype=np.float32)
                st.arrays.setdefault("mhd.l1_map", {})[dst_id] = m[np.ix_(
                    np.arange(op.n) % m.shape[0], _nearest(op.h, m.shape[1]), _nearest(op.w, m.shape[2]))]
        if op.cross_attn_kv and temporal:
            prefix = "kv_delta" if op.kind.startswith("matmul") else "delta"
            for name, v in ((f"{prefix}.zero_frac", 1.0), (f"{prefix}.int4_frac", 0.0),
                            (f"{prefix}.int8_frac", 0.0), (f"{prefix}.beyond8_frac", 0.0)):
                st.scalars.setdefault(name, {})[dst_id] = v
            if op.kind == "linear":
                st.scalars.setdefault("camd.rho_in", {})[dst_id] = 0.0
                hist = np.zeros(6)
                hist[0] = 1.0
                st.arrays.setdefault("camd.group_outlier_hist", {})[dst_id] = hist
                if arrays and "mhd.l1_map" in st.arrays:
                    st.arrays["mhd.l1_map"][dst_id] = np.zeros((op.n, op.h, op.w), dtype=np.float32)
    return st


def write_zoo_trace(name: str, out: str | os.PathLike, steps: int = 50, source: str | None = None,
                    arrays: bool = False, command: str | None = None) -> dict[str, Any]:
    """Write a zoo trace (op table of ``name``, statistics transferred from ``source``)."""
    from .bundled import bundled_trace

    if steps < 1:
        raise TraceError("--steps: must be at least 1")
    ops = zoo_ops(name)
    spec = ZOO[name]
    src_path = source or bundled_trace("tiny-relu" if spec["act"] == "relu" else "tiny-silu")
    src = Trace(src_path)
    mapping = _source_map(src.ops, ops)
    S = src.n_steps
    idx = [round(i * (S - 1) / max(1, steps - 1)) for i in range(steps)]
    T = 1000
    manifest = {
        "model": name,
        "model_config": {"class": spec["class"], **{k: list(v) if isinstance(v, tuple) else v
                                                    for k, v in spec["config"].items()}},
        "title": spec["title"],
        "image_size": [spec["config"]["sample_size"]] * 2,
        "sampler": "ddim(eta=0)",
        "steps": [int(round(T - 1 - i * (T - 1) / max(1, steps - 1))) for i in range(steps)],
        "batch": spec["batch"],
        "cfg": spec["cfg"],
        "synthetic_stats": True,
        "stats_source": {"trace": os.path.basename(str(src_path)), "trace_id": src.trace_id,
                         "model": src.manifest.get("model"), "rule": "relative depth within MAC family, nearest step",
                         "source_step_of_step": idx},
        "provenance": {"generator": "workloads.zoo.write_zoo_trace", "command": command},
    }
    cache: dict[int, StepStats] = {}

    def gen():
        for i in idx:
            if i not in cache:
                cache.clear()
                cache[i] = src.step(i)
            yield transfer_step(cache[i], src.ops, ops, mapping, arrays)

    try:
        write_trace(out, manifest, ops, gen())
    finally:
        src.close()
    return manifest
