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


def load_unet(model: str, seed: int = 0):
    """(unet in eval mode, label, weights, spec) for a zoo name or a local diffusers directory.

    A zoo name (`workloads.zoo.ZOO`, e.g. ``sd15``) builds the U-Net from its config with seeded
    random weights (``weights = "random"``: its statistics mean nothing). A directory is a saved
    pipeline (with a ``unet/`` subfolder) or a saved U-Net, loaded with ``from_pretrained`` on the
    path, offline (``weights = "local"``)."""
    import json
    import os

    import diffusers

    from .errors import TraceError
    from .zoo import ZOO

    if model in ZOO:
        spec = ZOO[model]
        torch.manual_seed(seed)
        return getattr(diffusers, spec["class"])(**spec["config"]).eval(), model, "random", spec
    if not os.path.isdir(model):
        raise TraceError(f"--model {model!r}: not a bundled model, a zoo name ({', '.join(ZOO)}) or a "
                         "diffusers pipeline/U-Net directory")
    sub = "unet" if os.path.isfile(os.path.join(model, "unet", "config.json")) else None
    cfg_path = os.path.join(model, sub or "", "config.json")
    if not os.path.isfile(cfg_path):
        raise TraceError(f"--model {model}: no config.json there or in {model}/unet; save the pipeline with "
                         "save_pretrained")
    with open(cfg_path) as f:
        cls_name = json.load(f).get("_class_name", "UNet2DConditionModel")
    if cls_name not in ("UNet2DConditionModel", "UNet2DModel"):
        raise TraceError(f"--model {model}: {cfg_path} is a {cls_name}; capture reads UNet2DConditionModel or "
                         "UNet2DModel")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    unet = getattr(diffusers, cls_name).from_pretrained(model, subfolder=sub)
    spec = {"class": cls_name, "cfg": getattr(unet.config, "cross_attention_dim", None) is not None}
    return unet.eval(), os.path.basename(os.path.normpath(model)), "local", spec


def capture_diffusers(model: str, *, steps: int, batch: int, seed: int, calib_seed: int | None, out,
                      int8_need: bool = True, cfg=None, command: str | None = None) -> dict:
    """Capture a DDIM run of a diffusers U-Net (`load_unet`), streamed to ``out`` step by step.

    Conditional U-Nets run classifier-free guidance (a forward batch of 2·``batch``) on seeded
    N(0, 1) text states (77 tokens; no text encoder is run), the same states in every step."""
    from .capture import calibration_seed, capture_trace

    torch.set_num_threads(1)
    calib_seed = calibration_seed(seed, calib_seed)
    unet, label, weights, spec = load_unet(model, seed)
    prepare(unet)
    conf = unet.config
    dim = getattr(conf, "cross_attention_dim", None)
    guided = dim is not None and spec.get("cfg", True)
    context = None
    if dim is not None:
        rows = 2 * batch if guided else batch
        context = torch.randn(rows, 77, dim, generator=torch.Generator().manual_seed(seed + 7))
    from diffusers import DDIMScheduler

    sched = DDIMScheduler()
    sched.set_timesteps(steps)
    size = conf.sample_size if isinstance(conf.sample_size, int) else conf.sample_size[0]
    manifest = {
        "model": label,
        "model_config": {"class": type(unet).__name__, **{k: (list(v) if isinstance(v, tuple) else v)
                                                          for k, v in dict(conf).items()
                                                          if not k.startswith("_") and _jsonable(v)}},
        "image_size": [size, size],
        "sampler": "ddim(eta=0), diffusers DDIMScheduler default config",
        "steps": [int(t) for t in sched.timesteps],
        "batch": 2 * batch if guided else batch,
        "cfg": guided,
        "seed": seed,
        "calibration_seed": calib_seed,
        "weights": weights,
        "context": None if context is None else f"seeded N(0,1) text states ({context.shape[0]}x77x{dim}), "
                                                "no text encoder",
        "provenance": {"generator": "workloads.diffusers_capture.capture_diffusers", "command": command,
                       "torch": torch.__version__},
    }
    kw = {} if cfg is None else {"cfg": cfg}
    return capture_trace(unet, lambda m: ddim_run(m, steps, batch, seed, context, guided),
                         lambda m: ddim_run(m, steps, batch, calib_seed, context, guided), out, manifest,
                         int8_need=int8_need, **kw)


def _jsonable(v) -> bool:
    return v is None or isinstance(v, (bool, int, float, str)) or (
        isinstance(v, (list, tuple)) and all(isinstance(x, (bool, int, float, str)) or x is None for x in v))
