"""Image quality of each design's arithmetic on a bundled model, against its fp32 samples.

Every row samples DDIM (the trace's step count) from the same seed, hence the same noise, with one
arithmetic (`workloads.numerics`), on the model variant its design needs (`trace_activation`:
SQ-DM runs on the ReLU twin) and with that variant's trace for scales. Per-sample figures are
against the fp32 samples of the same variant: PSNR in dB and SSIM, images mapped to [0, 1]
(data range 1). SSIM (assumption A-67): 7×7 uniform window, valid positions only, C1 = (0.01)²,
C2 = (0.03)², population variances, averaged over colour channels. Distribution figures
(`DISTRIBUTION`): on the tiny model the digit classifier's confident fraction
(`workloads.tiny.quality`, top probability >= 0.9) and the fraction of samples whose predicted
digit equals the fp32 sample's; on the small model the patch SWD to held-out crops
(`workloads.small.quality`, ×1000, lower is better).

`quality_columns(...)` gives the per-design columns for a comparison table (for `compare`).
"""

from __future__ import annotations

from typing import Any, Iterable

import numpy as np

from models.config import COMMON, HardwareConfig
from models.designs import create_design, get_design
from models.errors import ConfigError

MODELS = ("tiny", "small")
BASELINES = ("fp32", "fp16", "int8")
DEFAULT_DESIGNS = ("ditto", "mhdiff", "sqdm", "cambricon_d")
SSIM_WIN = 7
DISTRIBUTION = {"tiny": (("classifier_confident_frac", "confident"), ("classifier_agree_frac", "agree")),
                "small": (("patch_swd", "SWD"),)}
"""Per bundled model, its distribution-level figures (row key, column label)."""


def _unit(x) -> np.ndarray:
    return (np.asarray(x, dtype=np.float64) + 1.0) / 2.0


def psnr_db(x, ref) -> np.ndarray:
    """Per-sample PSNR (dB) of images (N, C, H, W) in [-1, 1] on the [0, 1] scale (inf where identical)."""
    mse = ((_unit(x) - _unit(ref)) ** 2).mean(axis=(1, 2, 3))
    with np.errstate(divide="ignore"):
        return np.where(mse > 0, -10.0 * np.log10(mse), np.inf)


def ssim(x, ref, win: int = SSIM_WIN) -> np.ndarray:
    """Per-sample SSIM (A-67) of images (N, C, H, W) in [-1, 1], averaged over channels."""
    a, b = _unit(x), _unit(ref)
    view = lambda t: np.lib.stride_tricks.sliding_window_view(t, (win, win), axis=(2, 3))  # noqa: E731
    wa, wb = view(a), view(b)
    ma, mb = wa.mean(axis=(-1, -2)), wb.mean(axis=(-1, -2))
    va, vb = wa.var(axis=(-1, -2)), wb.var(axis=(-1, -2))
    cov = (wa * wb).mean(axis=(-1, -2)) - ma * mb
    c1, c2 = 0.01 ** 2, 0.03 ** 2
    s = ((2 * ma * mb + c1) * (2 * cov + c2)) / ((ma ** 2 + mb ** 2 + c1) * (va + vb + c2))
    return s.mean(axis=(1, 2, 3))


def figures(x, ref, model: str = "tiny", seed: int = 0) -> dict[str, Any]:
    """Quality figures of samples `x` against reference samples `ref` of the bundled `model`."""
    p = psnr_db(x, ref)
    out = {"psnr_db_mean": float(p.mean()), "psnr_db_min": float(p.min()), "ssim_mean": float(ssim(x, ref).mean())}
    if model == "small":
        from workloads.small.quality import heldout, swd

        out["patch_swd"] = swd(x, heldout(len(x), seed), seed)
        return out
    from workloads.tiny.quality import confidence, digit_classifier

    clf, _ = digit_classifier()
    agree = clf.predict(np.asarray(x).reshape(len(x), -1)) == clf.predict(np.asarray(ref).reshape(len(ref), -1))
    return {**out, "classifier_confident_frac": confidence(x)["confident_fraction"],
            "classifier_agree_frac": float(agree.mean())}


def _check(model: str, samples: int, designs: Iterable[str]) -> list[str]:
    if model not in MODELS:
        raise ConfigError(f"--model {model!r}: not a bundled model; use one of {', '.join(MODELS)}")
    if samples < 1:
        raise ConfigError(f"--samples {samples}: give at least 1 sample")
    from workloads.numerics import has_numerics

    out = []
    for d in designs:
        if d in BASELINES:
            raise ConfigError(f"--designs {d!r}: the fp32/fp16/int8 baselines are always reported; drop it")
        get_design(d)  # unknown names: ConfigError listing the known ones
        if not has_numerics(create_design(d, COMMON).params):
            raise ConfigError(f"--designs {d!r}: no numerics emulation for this design yet; choose from "
                              f"dense, ditto, mhdiff, sqdm, cambricon_d and their variants (not cambricon_d's "
                              f"Diffy-like, int8 or per-layer ones)")
        out.append(d)
    return out


def evaluate(designs: Iterable[str] = DEFAULT_DESIGNS, *, model: str = "tiny", samples: int = 16,
             seed: int = 0, design_params: dict[str, dict[str, Any]] | None = None,
             hw: HardwareConfig = COMMON, keep_images: bool = False) -> dict[str, Any]:
    """Rows (baselines per model variant, then designs) of quality figures; with `keep_images`
    also name → samples tensor for the grid figure."""
    from workloads.numerics import arithmetic, sample

    from .api import load_trace

    names = _check(model, samples, designs)
    design_params = design_params or {}
    objs = {d: create_design(d, hw, design_params.get(d)) for d in names}
    acts = sorted({type(o).trace_activation for o in objs.values()}, key=("silu", "relu").index)
    rows, images = [], {}
    for act in acts:
        trace, net = load_trace(activation=act, model=model), load_net(f"{model}-{act}")
        steps = len(trace.manifest["steps"])
        runs = [(b, b) for b in BASELINES] + [(d, o.params) for d, o in objs.items()
                                               if type(o).trace_activation == act]
        ref = None
        for name, params in runs:
            x = sample(net, arithmetic(params, trace), samples, steps, seed)
            ref = x if ref is None else ref
            label = f"{name} ({trace.manifest['model']})" if name in BASELINES else name
            rows.append({"name": label, "design": None if name in BASELINES else name,
                         "model": trace.manifest["model"], "steps": steps, **figures(x, ref, model, seed)})
            if keep_images:
                images[label] = x.clone()
    out = {"model": model, "samples": samples, "seed": seed, "reference": "fp32 samples of the same model "
           "variant, same seed", "rows": rows}
    if keep_images:
        out["images"] = images
    return out


def load_net(name: str):
    """The trained bundled model `name` ("tiny-silu", "small-relu", ...), in eval mode."""
    if name.startswith("small-"):
        from workloads.small.model import load_small

        return load_small(name)
    from workloads.tiny.model import load_tiny

    return load_tiny(name)


def quality_columns(designs: Iterable[str], design_params: dict[str, dict[str, Any]] | None = None,
                    samples: int = 16, seed: int = 0, hw: HardwareConfig = COMMON,
                    model: str = "tiny") -> dict[str, dict[str, Any]]:
    """Design → its quality figures (for `compare --quality`; designs without numerics are left
    out). The parameters are the ones the timing run of the same name gets."""
    from workloads.numerics import has_numerics

    design_params = design_params or {}
    ok = [d for d in designs if has_numerics(create_design(d, hw, design_params.get(d)).params)]
    res = evaluate(ok, model=model, samples=samples, seed=seed, design_params=design_params, hw=hw)
    return {r["design"]: {k: v for k, v in r.items() if k not in ("name", "design")}
            for r in res["rows"] if r["design"] is not None}
