"""Where Cambricon-D's image-quality loss comes from on the bundled tiny ReLU model.

Samples (DDIM, the trace's 50 steps) with the Cambricon-D emulation and with one or more of its
approximations made exact: the sign-mask ReLU, the PE's int3 input deltas (with the outlier
budget), and the int3/fp16 compression of output deltas. Prints mean PSNR to the fp32 samples.
Usage: python scripts/camd_quality_ablation.py [SAMPLES] [SEED]   (docs/quality.md quotes it)
"""

from __future__ import annotations

import sys

import torch

from difftlm.api import load_trace
from difftlm.quality import psnr_db
from models.config import COMMON
from models.designs import create_design
from workloads.numerics import arithmetic, sample
from workloads.numerics.cambricon_d import CambriconD
from workloads.tiny.model import load_tiny


def variant(exact: set[str]) -> type[CambriconD]:
    """The emulation with the named approximations replaced by exact arithmetic."""
    class Ablated(CambriconD):
        def patch(self, model):
            return [] if "sign_mask" in exact else super().patch(model)

        def _grouped(self, rows, scale):
            return rows if "input" in exact else super()._grouped(rows, scale)

        @staticmethod
        def _int3_or_fp16(d, scale):
            return d.half().double() if "output" in exact else CambriconD._int3_or_fp16(d, scale)
    return Ablated


def main(samples: int = 8, seed: int = 0) -> None:
    torch.set_num_threads(1)
    trace, net = load_trace(activation="relu"), load_tiny("tiny-relu")
    steps = len(trace.manifest["steps"])
    params = create_design("cambricon_d", COMMON).params
    ref = sample(net, arithmetic("fp32", trace), samples, steps, seed)
    base = arithmetic(params, trace)
    for exact in ((), ("sign_mask",), ("output",), ("input",), ("input", "output"),
                  ("sign_mask", "input", "output")):
        arith = variant(set(exact))(trace.ops, base.q, params)
        x = sample(net, arith, samples, steps, seed)
        label = "as modelled" if not exact else "exact " + " + ".join(exact)
        print(f"{label:<36} {float(psnr_db(x, ref).mean()):6.2f} dB")


if __name__ == "__main__":
    main(*(int(a) for a in sys.argv[1:3]))
