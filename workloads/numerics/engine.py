"""Run a bundled model's sampler with a design's MAC arithmetic in place of fp32 (torch).

A design's arithmetic is an `Arith`: `mac(op, mod, *inputs)` replaces the forward of every MAC
module (conv2d, linear, matmul_qk, matmul_pv) named in the trace's op table, and `begin_step(x)`
sees the network input before each forward (one forward = one sampler step). Everything else
(GroupNorm, activations, softmax, adds, resampling) stays fp32 (assumption A-60: the designs'
vector units run at a precision whose error is below the MAC arithmetic's; SQ-DM's and MHDiff's
A-21/A-28, Ditto's VPU). Activation scales and shifts are the trace's calibrated ones
(`manifest.quantization.per_op`, dataflows.md A-9), so the numerics quantize exactly as the
statistics the timing models read were measured.

Integer products are computed on integer-valued float64 tensors: exact while |acc| < 2**53.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .. import quant as Q
from ..schema import OpRecord
from ..statistics import OpQuant
from ..tiny.model import MatmulQK as TinyMatmulQK

MAC_KINDS = ("conv2d", "linear", "matmul_qk", "matmul_pv")


def codes8(x: torch.Tensor, scale: float) -> torch.Tensor:
    """int8 codes of `x` at `scale` (float64, round half to even as quant.quantize_int8)."""
    return torch.round(x.double() / scale).clamp(*Q.INT8_RANGE)


def weight_codes(w: torch.Tensor, bits: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-output-channel symmetric `bits`-bit weights: (codes float64, scales (K,) float64);
    at 8 bits exactly `quant.weight_int8`."""
    if bits == 8:
        c, s = Q.weight_int8(w.detach().numpy())
        return torch.from_numpy(c.astype(np.float64)), torch.from_numpy(s)
    qmax = 2 ** (bits - 1) - 1
    flat = w.detach().double().reshape(w.shape[0], -1).abs().amax(dim=1)
    s = torch.where(flat > 0, flat / qmax, torch.ones_like(flat))
    c = torch.round(w.detach().double() / s.reshape((-1,) + (1,) * (w.dim() - 1))).clamp(-qmax - 1, qmax)
    return c, s


def qk_factor(mod: nn.Module, q: torch.Tensor) -> float:
    """Output factor of an attention-score module: the tiny model's MatmulQK scales by 1/sqrt(d)."""
    return q.shape[-1] ** -0.5 if isinstance(mod, TinyMatmulQK) else 1.0


def product(op: OpRecord, mod: nn.Module, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """The op's bare product of input `a` and weight / second operand `b` (no bias, no scale)."""
    if op.kind == "conv2d":
        return F.conv2d(a, b, None, mod.stride, mod.padding, mod.dilation, mod.groups)
    if op.kind == "linear":
        return F.linear(a, b)
    if op.kind == "matmul_qk":
        return torch.matmul(a, b.transpose(-1, -2))
    return torch.matmul(a, b)


def finish(op: OpRecord, mod: nn.Module, acc: torch.Tensor, s_a, s_b, first: torch.Tensor) -> torch.Tensor:
    """fp32 output from an accumulator `acc` in units of s_a·s_b (s_b per output channel for
    conv/linear weights), plus the module's bias or the attention scale."""
    if op.kind == "conv2d":
        y = acc * (s_a * s_b).reshape(1, -1, 1, 1)
        return (y + mod.bias.double().reshape(1, -1, 1, 1) if mod.bias is not None else y).float()
    if op.kind == "linear":
        y = acc * (s_a * s_b)
        return (y + mod.bias.double() if mod.bias is not None else y).float()
    factor = qk_factor(mod, first) if op.kind == "matmul_qk" else 1.0
    return (acc * (s_a * s_b * factor)).float()


def operands(mod: nn.Module, inputs: tuple) -> tuple[torch.Tensor, torch.Tensor]:
    """(activation input, weight or second operand) of a MAC module call."""
    return (inputs[0], mod.weight) if len(inputs) == 1 else (inputs[0], inputs[1])


class Arith:
    """fp32 arithmetic (the reference); subclasses replace `mac`."""

    name = "fp32"

    def __init__(self, ops: list[OpRecord], per_op: dict[int, OpQuant]):
        self.ops, self.q = ops, per_op
        self.by_id = {op.op_id: op for op in ops}
        self.step = -1
        self._w: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}

    def reset(self) -> None:
        """Start a new sampling run (drops cross-step state)."""
        self.step = -1

    def begin_step(self, x: torch.Tensor) -> None:
        self.step += 1

    def weights(self, op: OpRecord, mod: nn.Module, bits: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
        if op.op_id not in self._w:
            self._w[op.op_id] = weight_codes(mod.weight, bits)
        return self._w[op.op_id]

    def mac(self, op: OpRecord, mod: nn.Module, orig, *inputs):
        return orig(*inputs)

    @staticmethod
    def supports(params) -> bool:
        """Whether this arithmetic emulates a design with `params` (some variants have none)."""
        return True

    def patch(self, model: nn.Module) -> list[nn.Module]:
        """Replace the forward of non-MAC modules the design changes (none by default); returns
        the modules patched, restored with the MAC modules."""
        return []

    def codes(self, op: OpRecord, mod: nn.Module, a: torch.Tensor, b: torch.Tensor):
        """(int8 codes of a, int8 codes of b, s_a, s_b): b per output channel for weights."""
        q = self.q[op.op_id]
        if op.kind in ("conv2d", "linear"):
            qb, s_b = self.weights(op, mod)
        else:
            qb, s_b = codes8(b, q.s_b), q.s_b
        return codes8(a, q.s_in), qb, q.s_in, s_b


class Fp16(Arith):
    """fp16 operands and outputs, fp32 accumulation (assumption A-61)."""

    name = "fp16"

    def mac(self, op, mod, orig, *inputs):
        a, b = (t.half().float() for t in operands(mod, inputs))
        acc = product(op, mod, a, b)
        if op.kind in ("conv2d", "linear"):
            y = acc + (mod.bias.half().float().reshape((1, -1) + (1,) * (acc.dim() - 2))
                       if mod.bias is not None else 0)
        else:
            y = acc * (qk_factor(mod, a) if op.kind == "matmul_qk" else 1.0)
        return y.half().float()


class Int8(Arith):
    """The dense int8 baseline: W8 per output channel, A8 static per tensor (dataflows.md §8.1)."""

    name = "int8"

    def mac(self, op, mod, orig, *inputs):
        a, b = operands(mod, inputs)
        qa, qb, s_a, s_b = self.codes(op, mod, a, b)
        return finish(op, mod, product(op, mod, qa, qb), s_a, s_b, a)


def trace_quant(manifest: dict) -> dict[int, OpQuant]:
    """Per-op calibrated quantization of a trace manifest."""
    per_op = manifest.get("quantization", {}).get("per_op", {})
    return {int(k): OpQuant(**v) for k, v in per_op.items()}


@contextmanager
def emulating(model: nn.Module, arith: Arith) -> Iterator[Arith]:
    """`model` runs with `arith` for every MAC op of the op table (names must match modules)."""
    mods = dict(model.named_modules())
    patched = []
    for op in arith.ops:
        if op.kind not in MAC_KINDS:
            continue
        mod = mods.get(op.name)
        if mod is None:
            raise ValueError(f"numerics: op {op.op_id} ({op.name}) is not a module of the model")
        orig = mod.forward
        mod.forward = lambda *inp, _op=op, _m=mod, _o=orig: arith.mac(_op, _m, _o, *inp)
        patched.append(mod)
    patched += arith.patch(model)
    hook = model.register_forward_pre_hook(lambda m, args: arith.begin_step(args[0]))
    arith.reset()
    try:
        yield arith
    finally:
        hook.remove()
        for mod in patched:
            del mod.forward
