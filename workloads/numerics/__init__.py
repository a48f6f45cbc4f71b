"""Emulation of each design's arithmetic inside the bundled models' sampler (torch; capture side).

`arithmetic(params, trace)` builds the `Arith` of a design from the very parameter object its
timing model reads (`Design.params`), or a baseline from "fp32" / "fp16" / "int8"; `sample`
runs DDIM with it. Scales, shifts and the op table come from the trace the timing model replays.
"""

from __future__ import annotations

import torch

from models.designs.base import BaseParams
from models.designs.cambricon_d import CambriconDParams
from models.designs.ditto import DittoParams
from models.designs.mhdiff import MhdiffParams
from models.designs.sqdm import SqdmParams

from ..trace import Trace
from .cambricon_d import CambriconD
from .ditto import Ditto
from .engine import Arith, Fp16, Int8, emulating, trace_quant
from .mhdiff import Mhdiff
from .sqdm import Sqdm

BASELINES = {"fp32": Arith, "fp16": Fp16, "int8": Int8}
BY_PARAMS = ((DittoParams, Ditto), (MhdiffParams, Mhdiff), (SqdmParams, Sqdm), (CambriconDParams, CambriconD))


def arithmetic(params, trace: Trace) -> Arith:
    """The arithmetic of a baseline name or of a design's Params object, on `trace`'s op table."""
    ops, per_op = trace.ops, trace_quant(trace.manifest)
    if isinstance(params, str):
        if params not in BASELINES:
            raise ValueError(f"numerics: unknown baseline {params!r}; known: {', '.join(BASELINES)}")
        return BASELINES[params](ops, per_op)
    for cls, arith in BY_PARAMS:
        if isinstance(params, cls) and arith.supports(params):
            return arith(ops, per_op, params)
    if type(params) is BaseParams:  # dense
        return Int8(ops, per_op)
    raise ValueError(f"numerics: no emulation for {type(params).__name__}")


def has_numerics(params) -> bool:
    return type(params) is BaseParams or any(isinstance(params, c) and a.supports(params) for c, a in BY_PARAMS)


@torch.no_grad()
def sample(model: torch.nn.Module, arith: Arith, n: int, steps: int, seed: int) -> torch.Tensor:
    """DDIM samples (n, C, H, W) of a bundled `model` with `arith` (one torch thread)."""
    from ..tiny.model import ddim_sample

    torch.set_num_threads(1)
    with emulating(model, arith):
        return ddim_sample(model, n, steps, seed)
