"""SQ-DM's arithmetic (dataflows.md §5), driven by `models.designs.sqdm.SqdmParams` and the timing
model's own precision classes (`precision_classes`: MXINT8 edge blocks, INT4 elsewhere).

INT4 ops: weights int4 with one FP8 (e4m3) scale per `weight_scale_group` input channels per
(output channel, tap); activations with one FP8 scale per `act_scale_group` elements along the
reduction axis, UINT4 [0, 15] where the op's input is a ReLU output, INT4 [-8, 7] elsewhere
(attention matmuls 4-bit on both operands, A-28). `act_scale_group = 0`: the trace's static clip
rule (`rint(q8 / 2**k)` at the op's calibrated shift; a matmul's second operand at its int8 scale
and the first operand's shift, assumption A-64). MXINT8 ops: both operands in blocks of
`mx_block` along the reduction axis sharing a power-of-two scale, int8 elements (assumption A-65:
OCP MX, element scale 2^(e-6) for a block whose max |x| lies in [2^e, 2^(e+1))). Assumption
A-66: FP8 scales are e4m3 relative to one fp32 scale per tensor (VSQ two-level scaling), so the
largest group scale maps to 448. `precision = int8 | fp16` runs the int8 / fp16 baselines. The
sparse pool skips zeros only, so labels, `sparsity_threshold` and pools do not change results.
"""

from __future__ import annotations

import torch

from models.designs.sqdm import SqdmParams, precision_classes

from .engine import Fp16, Int8, codes8, operands, product, qk_factor

E4M3_MAX = 448.0


def fp8_scales(scale: torch.Tensor) -> torch.Tensor:
    """Scales rounded to e4m3 relative to one fp32 tensor scale (A-66)."""
    top = scale.max()
    if top <= 0:
        return scale
    t = top / E4M3_MAX
    return (scale / t).to(torch.float8_e4m3fn).double() * t


def _grouped(x: torch.Tensor, axis: int, group: int):
    """`x` (float64) with `axis` last, padded and split into groups: (view, restore function)."""
    moved = x.double().movedim(axis, -1)
    length = moved.shape[-1]
    pad = (-length) % group
    g = torch.nn.functional.pad(moved, (0, pad)).reshape(*moved.shape[:-1], -1, group)

    def restore(v: torch.Tensor) -> torch.Tensor:
        return v.reshape(*moved.shape[:-1], -1)[..., :length].movedim(-1, axis)
    return g, restore


def int_groups(x: torch.Tensor, axis: int, group: int, lo: int, hi: int) -> torch.Tensor:
    """Dequantized `x`: integer codes in [lo, hi], one FP8 scale per `group` along `axis`."""
    g, restore = _grouped(x, axis, group)
    scale = fp8_scales(g.abs().amax(dim=-1, keepdim=True) / hi)
    codes = torch.where(scale > 0, torch.round(g / torch.where(scale > 0, scale, 1.0)), 0.0).clamp(lo, hi)
    return restore(codes * scale)


def mxint8(x: torch.Tensor, axis: int, block: int) -> torch.Tensor:
    """Dequantized MXINT8 `x`: blocks of `block` along `axis`, shared scale 2^(e-6) (A-65)."""
    g, restore = _grouped(x, axis, block)
    amax = g.abs().amax(dim=-1, keepdim=True)
    scale = torch.where(amax > 0, torch.exp2(torch.floor(torch.log2(torch.where(amax > 0, amax, 1.0))) - 6), 1.0)
    return restore(torch.round(g / scale).clamp(-128, 127) * scale)


def axes(op) -> tuple[int, int]:
    """Reduction axes of (input, weight / second operand)."""
    return {"conv2d": (1, 1), "linear": (-1, 1), "matmul_qk": (-1, -1), "matmul_pv": (-1, -2)}[op.kind]


class Sqdm(Int8):
    name = "sqdm"

    def __init__(self, ops, per_op, params: SqdmParams):
        super().__init__(ops, per_op)
        self.params = params
        self.classes = dict(zip((op.op_id for op in ops), precision_classes(params, ops)))

    def mac(self, op, mod, orig, *inputs):
        cls = self.classes[op.op_id]
        if cls == "int8":
            return super().mac(op, mod, orig, *inputs)
        if cls == "fp16":
            return Fp16.mac(self, op, mod, orig, *inputs)
        a, b = operands(mod, inputs)
        ax_a, ax_b = axes(op)
        p = self.params
        if cls == "mx":
            qa, qb = mxint8(a, ax_a, p.mx_block), mxint8(b, ax_b, p.mx_block)
        else:
            qa = self._act4(op, a, ax_a, op.input_from_relu, self.q[op.op_id].s_in)
            qb = (int_groups(b, ax_b, p.weight_scale_group, -8, 7) if op.kind in ("conv2d", "linear")
                  else self._act4(op, b, ax_b, False, self.q[op.op_id].s_b))
        y = product(op, mod, qa, qb)
        if op.kind in ("conv2d", "linear") and mod.bias is not None:
            y = y + mod.bias.double().reshape((1, -1) + (1,) * (y.dim() - 2) if op.kind == "conv2d" else (-1,))
        elif op.kind == "matmul_qk":
            y = y * qk_factor(mod, a)
        return y.float()

    def _act4(self, op, x, axis, relu: bool, s8: float) -> torch.Tensor:
        lo, hi = (0, 15) if relu else (-8, 7)
        if self.params.act_scale_group:
            return int_groups(x, axis, self.params.act_scale_group, lo, hi)
        q = self.q[op.op_id]
        shift = 2.0 ** (q.ku if relu else q.k4)
        return torch.round(codes8(x, s8) / shift).clamp(lo, hi) * shift * s8
