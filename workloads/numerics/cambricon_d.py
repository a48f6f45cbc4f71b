"""Cambricon-D's arithmetic (dataflows.md §3), driven by `models.designs.cambricon_d.CambriconDParams`.

Step 0 (A-4) runs raw fp16: fp16 operands and weights, the output rounded to fp16 (the NDP's raw
Y in DRAM, `raw_bits`). Later steps run every conv/linear on the input delta
`dX_t = X_t − X_{t−1}`: an element is an inlier when `rint(dX / (s_in·2^k3_in))` lies in the int3
range (the trace's static per-layer scale, A-9) and then takes that code, else it is an fp16
outlier. Along each reduction vector (C·R·S window of an output pixel, (c, r, s) order; the last
axis of a linear) every `group_size` elements hold at most `outlier_lanes` outliers, the leftmost
ones (the PE's leftmost-outlier selector); the rest are clipped to the int3 range end and
computed as inliers. With `outlier_array = "async"` nothing is clipped. The product with the
fp16 weights joins `Y_{t−1}`; the output delta `dY_t` leaves through the compression unit
(int3 inliers at `s_out·2^k3_out`, fp16 outliers, no budget) and the NDP adds it to the raw fp16
Y. Attention (A-3) is raw fp16: QKᵀ and PV on raw operands, PV's output returning to the delta
form through the same compression. ReLU is the sign mask (§3.1 item 3):
`ReLU(Y_t) ≈ ReLU(Y)_{t−1} + dY_t·[Y_{t−1} > 0]`, exact at step 0.
Not emulated (A-68): GroupNorm's linearisation with per-step constants (GroupNorm runs exact in
fp32, A-60), and the PE's fp32 partial sums (products accumulate in float64).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from models.designs.cambricon_d import CambriconDParams

from ..quant import INT3_RANGE as INT3
from .engine import Arith, operands, product, qk_factor


class CambriconD(Arith):
    name = "cambricon_d"

    def __init__(self, ops, per_op, params: CambriconDParams):
        super().__init__(ops, per_op)
        self.params = params
        self.reset()

    @staticmethod
    def supports(params) -> bool:
        """The paper's PE and formats (int3 inliers, fp16 outliers and weights); the Diffy-like,
        int8 and per-layer variants have no emulation."""
        return (type(params) is CambriconDParams and params.pe_inlier_bits == 3 and params.inlier_bits == 3
                and params.outlier_bits == 16 and params.weight_bits == 16
                and params.raw_on_inlier_passes is None)

    def reset(self) -> None:
        super().reset()
        self.state: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}
        self.signs: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}
        self.counts = {"delta_elements": 0, "outliers": 0, "clipped": 0}
        """Input-delta elements the PE saw (per reduction window), their outliers, those clipped."""

    def patch(self, model: nn.Module) -> list[nn.Module]:
        relus = [m for m in model.modules() if isinstance(m, nn.ReLU)]
        for i, m in enumerate(relus):
            m.forward = lambda y, _i=i: self._sign_mask(_i, y)
        return relus

    def _sign_mask(self, key: int, y: torch.Tensor) -> torch.Tensor:
        prev = self.signs.get(key)
        out = torch.relu(y) if prev is None or self.step == 0 else prev[1] + (y - prev[0]) * (prev[0] > 0)
        self.signs[key] = (y, out)
        return out

    def mac(self, op, mod, orig, *inputs):
        a, b = (t.double() for t in operands(mod, inputs))
        prev = self.state.get(op.op_id)
        if op.kind.startswith("matmul") or prev is None or self.step == 0:  # raw fp16
            acc = product(op, mod, a.half().double(), b.half().double())
            if op.kind in ("conv2d", "linear") and mod.bias is not None:
                bias = mod.bias.half().double()
                acc = acc + (bias.reshape(1, -1, 1, 1) if op.kind == "conv2d" else bias)
            if op.kind == "matmul_qk":
                acc = acc * qk_factor(mod, a)
        else:
            acc = prev[1] + self._delta_product(op, mod, a - prev[0], b.half().double())
        if prev is not None and self.step > 0 and op.kind != "matmul_qk":  # compressed dY to the NDP
            q = self.q[op.op_id]
            acc = prev[1] + self._int3_or_fp16(acc - prev[1], q.s_out * 2.0 ** q.k3_out)
        y = acc.half().double()
        self.state[op.op_id] = (a, y)
        return y.float()

    @staticmethod
    def _codes(d: torch.Tensor, scale: float) -> tuple[torch.Tensor, torch.Tensor]:
        """(int3 codes of `d` at `scale`, mask of the elements outside the int3 range)."""
        c = torch.round(d / scale)
        return c, (c < INT3[0]) | (c > INT3[1])

    @staticmethod
    def _int3_or_fp16(d: torch.Tensor, scale: float) -> torch.Tensor:
        """The compression unit's format: int3 inliers, fp16 outliers, no budget."""
        c, out = CambriconD._codes(d, scale)
        return torch.where(out, d.half().double(), c * scale)

    def _delta_product(self, op, mod, dx: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        """W × dX on the PE: int3 inliers, up to `outlier_lanes` fp16 outliers per group."""
        q = self.q[op.op_id]
        if op.kind == "conv2d":
            cols = F.unfold(dx, mod.kernel_size, mod.dilation, mod.padding, mod.stride).transpose(1, 2)
            acc = self._grouped(cols, q.s_in * 2.0 ** q.k3_in) @ w.reshape(w.shape[0], -1).T  # (N, L, K)
            return acc.transpose(1, 2).reshape(dx.shape[0], w.shape[0], op.out_h, op.out_w)
        return F.linear(self._grouped(dx, q.s_in * 2.0 ** q.k3_in), w)

    def _grouped(self, rows: torch.Tensor, scale: float) -> torch.Tensor:
        """Reduction vectors (last axis) as the PE computes them: codes × scale for inliers,
        fp16 for the leftmost `outlier_lanes` outliers of each `group_size` group, the other
        outliers clipped to the int3 range (lock-step PE) or kept (async outlier array)."""
        p = self.params
        c, out = self._codes(rows, scale)
        keep = out
        if p.outlier_array == "lockstep":
            length = rows.shape[-1]
            g = math.ceil(length / p.group_size)
            padded = F.pad(out, (0, g * p.group_size - length)).reshape(*out.shape[:-1], g, p.group_size)
            rank = padded.cumsum(-1).reshape(*out.shape[:-1], -1)[..., :length]
            keep = out & (rank <= p.outlier_lanes)
        self.counts["delta_elements"] += rows.numel()
        self.counts["outliers"] += int(out.sum())
        self.counts["clipped"] += int((out & ~keep).sum())
        return torch.where(keep, rows.half().double(), c.clamp(*INT3) * scale)
