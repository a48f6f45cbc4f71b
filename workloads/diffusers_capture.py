"""diffusers U-Nets (UNet2DModel / UNet2DConditionModel) through the generic capture.

``prepare(unet)`` gives every ``Attention`` module two hookable matmul modules
(``difftlm_qk``/``difftlm_pv``, capture.MatmulQK/MatmulPV) and installs ``HookableAttnProcessor``,
which computes attention with them (instead of ``scaled_dot_product_attention``, which hooks
cannot split into QKᵀ and PV). Everything else (convs, linears, GroupNorm, SiLU modules,
functional adds / GEGLU gating / gelu / softmax / concats) is seen by capture.Recorder.

With local weights (no download is done here), e.g. Stable Diffusion v1.5::

    unet = UNet2DConditionModel.from_pretrained("/path/to/sd15", subfolder="unet")
    prepare(unet)
    run = lambda m: ddim_run(m, steps=50, batch=1, seed=0, context=text_embeddings, cfg=True)
    calib = lambda m: ddim_run(m, steps=50, batch=1, seed=1, context=text_embeddings, cfg=True)
    capture_trace(unet, run, calib, "sd15.trace.zip", {"model": "sd15", "steps": ..., "batch": 2})

(``text_embeddings``: (2, 77, 768), the unconditional and the prompt's CLIP states.)
"""

from __future__ import annotations

import torch

from .capture import MatmulPV, MatmulQK


class HookableAttnProcessor:
    """diffusers attention with the two matmuls as modules (B, heads, L, d) layout."""

    def __call__(self, attn, hidden_states, encoder_hidden_states=None, attention_mask=None, temb=None,
                 *args, **kwargs):
        residual = hidden_states
        if getattr(attn, "spatial_norm", None) is not None:
            hidden_states = attn.spatial_norm(hidden_states, temb)
        ndim = hidden_states.ndim
        if ndim == 4:
            b, c, h, w = hidden_states.shape
            hidden_states = hidden_states.view(b, c, h * w).transpose(1, 2)
        if attn.group_norm is not None:
            hidden_states = attn.group_norm(hidden_states.transpose(1, 2)).transpose(1, 2)
        q = attn.to_q(hidden_states)
        ctx = hidden_states if encoder_hidden_states is None else encoder_hidden_states
        if encoder_hidden_states is not None and attn.norm_cross:
            ctx = attn.norm_encoder_hidden_states(ctx)
        k = attn.to_k(ctx)
        v = attn.to_v(ctx)
        B, heads = q.shape[0], attn.heads
        d = k.shape[-1] // heads
        q = q.view(B, -1, heads, d).transpose(1, 2)
        k = k.view(B, -1, heads, d).transpose(1, 2)
        v = v.view(B, -1, heads, d).transpose(1, 2)
        scores = attn.difftlm_qk(q, k) * attn.scale
        if attention_mask is not None:
            mask = attn.prepare_attention_mask(attention_mask, k.shape[2], B)
            scores = scores + mask.view(B, heads, -1, k.shape[2])
        p = scores.softmax(dim=-1)
        o = attn.difftlm_pv(p, v).transpose(1, 2).reshape(B, -1, heads * d)
        o = attn.to_out[0](o)
        o = attn.to_out[1](o)
        if ndim == 4:
            o = o.transpose(-1, -2).reshape(b, c, h, w)
        if attn.residual_connection:
            o = o + residual
        return o / attn.rescale_output_factor


def prepare(unet: torch.nn.Module) -> torch.nn.Module:
    """Make a diffusers U-Net's attention hookable (in place); returns the U-Net."""
    from diffusers.models.attention_processor import Attention

    for m in unet.modules():
        if isinstance(m, Attention):
            if not hasattr(m, "difftlm_qk"):
                m.add_module("difftlm_qk", MatmulQK())
                m.add_module("difftlm_pv", MatmulPV())
            m.set_processor(HookableAttnProcessor())
    return unet


def example_inputs(unet, batch: int, seed: int = 0, context=None, device="cpu"):
    """(sample, encoder_hidden_states or None) of the U-Net's configured size."""
    cfg = unet.config
    size = cfg.sample_size if isinstance(cfg.sample_size, int) else cfg.sample_size[0]
    gen = torch.Generator().manual_seed(seed)
    shape = (batch, cfg.in_channels, size, size)
    x = torch.randn(shape, generator=gen) if device != "meta" else torch.empty(shape, device="meta")
    if context is None and getattr(cfg, "cross_attention_dim", None) is not None and hasattr(unet, "encoder_hid_proj"):
        cshape = (batch, 77, cfg.cross_attention_dim)
        context = torch.randn(cshape, generator=gen) if device != "meta" else torch.empty(cshape, device="meta")
    return x, context


@torch.no_grad()
def ddim_run(unet, steps: int, batch: int, seed: int, context=None, cfg: bool = False, guidance: float = 7.5):
    """Deterministic DDIM sampling with diffusers' DDIMScheduler (default config, no download).

    With ``cfg`` the model sees a batch of 2·batch (unconditional + conditional), as SD pipelines do.
    Returns the list of timesteps used.
    """
    from diffusers import DDIMScheduler

    torch.set_num_threads(1)
    sched = DDIMScheduler()
    sched.set_timesteps(steps)
    x, context = example_inputs(unet, batch, seed, context)
    for t in sched.timesteps:
        inp = torch.cat([x, x]) if cfg else x
        kw = {"encoder_hidden_states": context} if context is not None else {}
        eps = unet(inp, t, **kw).sample
        if cfg:
            u, c = eps.chunk(2)
            eps = u + guidance * (c - u)
        x = sched.step(eps, t, x).prev_sample
    return [int(t) for t in sched.timesteps]
