"""MHDiff's arithmetic (dataflows.md §4), driven by `models.designs.mhdiff.MhdiffParams` and the
timing model's own mask rule (`step_masks`) and packer (`greedy_pack`, `window_need`).

Per step: the first layer's L1 map (`statistics.l1_map` of its int8 input codes against the
previous step's) gives the focal bitmask (`bias`, `l1_norm`); `step_masks` fine-tunes it layer by
layer. A conv with a mask computes from pixel-adaptive codes: focal input pixels int8, peripheral
ones int4 (`rint(q8 / 2**k4)`, the trace's shift) except int4 outliers, kept int8. With `packing`,
the peripheral output positions of each image are paired by the greedy packer on their C·R·S
identifier vectors; in a pair, where one position has an int8 value its partner's int4 value at
that window element is dropped (the "int8+0" slot). Ops without a mask (step 0, time embedding,
attention) run plain int8. Weights: per-output-channel, 8·`weight_bytes` bits (A-14).
Assumption A-63: one packing per image (the timing model packs per output-row tile, A-20; for the
tiny model on the common hardware a tile holds every row of an image).
"""

from __future__ import annotations

import attrs
import numpy as np
import torch
import torch.nn.functional as F

from models.components.mhdiff_units import greedy_pack, window_need
from models.designs.mhdiff import MhdiffParams, first_layer, layer_shape, step_masks

from ..statistics import int8_need_bits, l1_map
from .engine import Int8, finish, operands


class Mhdiff(Int8):
    name = "mhdiff"

    def __init__(self, ops, per_op, params: MhdiffParams):
        super().__init__(ops, per_op)
        self.params = params
        first = first_layer(ops)
        self.first_op = first.op_id if first is not None else -1
        self._ops_n: dict[int, list] = {}
        self.reset()

    def reset(self) -> None:
        super().reset()
        self.prev_codes: np.ndarray | None = None
        self.layers: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self.counts = {"positions": 0, "focal_positions": 0, "dropped_int4": 0}
        """Output positions of masked convs, the focal ones, and int4 values dropped by packing."""

    def ops_for(self, n: int) -> list:
        """The op table at batch `n` (masks are per image)."""
        if n not in self._ops_n:
            self._ops_n[n] = [attrs.evolve(op, n=n) for op in self.ops]
        return self._ops_n[n]

    def begin_step(self, x: torch.Tensor) -> None:
        super().begin_step(x)
        self.layers = {}
        if not self.params.bitmask or self.first_op < 0:
            return
        ops = self.ops_for(x.shape[0])
        first = ops[self.first_op]
        q = torch.round(x.double() / self.q[self.first_op].s_in).clamp(-128, 127).numpy().astype(np.int16)
        if self.prev_codes is not None:
            self.layers = step_masks(self.params, ops, self.first_op, l1_map(q, self.prev_codes, first))
        self.prev_codes = q

    def mac(self, op, mod, orig, *inputs):
        layer = self.layers.get(op.op_id)
        if layer is None:
            return super().mac(op, mod, orig, *inputs)
        if op.kind != "conv2d":
            raise ValueError(f"numerics: MHDiff masks on {op.kind} op {op.name} are not emulated")
        a, _ = operands(mod, inputs)
        qa, qw, s_a, s_w = self.codes(op, mod, a, mod.weight)
        k4 = self.q[op.op_id].k4
        focal_in, focal_out = layer
        c4 = torch.round(qa / 2 ** k4)
        int8 = torch.from_numpy(focal_in)[:, None] | (c4 < -8) | (c4 > 7)
        eff = torch.where(int8, qa, c4 * 2 ** k4)
        cols = F.unfold(eff, mod.kernel_size, mod.dilation, mod.padding, mod.stride)  # (N, C·R·S, P')
        n = a.shape[0]
        self.counts["positions"] += focal_out.size
        self.counts["focal_positions"] += int(focal_out.sum())
        if self.params.packing and not focal_out.all():
            self._drop_packed(op, qa, k4, focal_in, focal_out, cols)
        r, s, stride, pad, h, w, oh, ow = layer_shape(op)
        acc = torch.einsum("kc,ncl->nkl", qw.reshape(qw.shape[0], -1), cols).reshape(n, -1, oh, ow)
        return finish(op, mod, acc, s_a, s_w, a)

    def weights(self, op, mod, bits: int = 8):
        return super().weights(op, mod, round(8 * self.params.weight_bytes))

    def _drop_packed(self, op, qa, k4, focal_in, focal_out, cols) -> None:
        """Zero in `cols` each int4 value that shares a packed slot with its partner's int8 value."""
        opn = self.ops_for(qa.shape[0])[op.op_id]
        r, s, stride, pad, h, w, oh, ow = layer_shape(op)
        need = int8_need_bits(qa.numpy().astype(np.int16), k4, opn)
        for i in range(qa.shape[0]):
            periph = np.flatnonzero(~focal_out[i].reshape(-1))
            if len(periph) < 2:
                continue
            vec = window_need(need[i], focal_in[i], h, w, r, s, stride, pad, oh, ow, op.c)[periph]
            pr = greedy_pack(vec)
            if not pr.n_pair:
                continue
            paired = pr.pairs.reshape(-1)            # a0, b0, a1, b1, ...: each pixel pairs once
            bits = np.unpackbits(vec[paired].reshape(len(paired), r * s, -1), axis=-1)[..., :op.c]
            bits = bits.transpose(0, 2, 1).reshape(len(paired), -1).astype(bool)  # unfold order (c, r, s)
            drop = np.empty_like(bits)               # a pixel loses its int4 values where its partner is int8
            drop[0::2], drop[1::2] = bits[1::2], bits[0::2]
            full = np.zeros(cols.shape[1:], dtype=bool)
            full[:, periph[paired]] = drop.T
            dropped = torch.from_numpy(full) & (cols[i] != 0)
            self.counts["dropped_int4"] += int(dropped.sum())
            cols[i].masked_fill_(dropped, 0)
