"""Ditto's arithmetic (dataflows.md §6): int8 temporal differences accumulated onto the previous
output, driven by `models.designs.ditto.DittoParams`.

Step 0 (and every step with `act_only`) runs ACT mode: `acc = W × Q(x_t)`. Later steps run DIFF
mode: `acc_t = acc_{t-1} + W × (Q(x_t) − Q(x_{t-1}))`; attention matmuls the two-sub-op form
`acc_t = acc_{t-1} + A_t × dB + dA × B_{t-1}`. A difference outside [-128, 127] takes
`beyond8_slots` nibble slots and saturates to what they hold (8·16^(n-1) − 1); at the default 3
slots nothing saturates, so the result equals the int8 baseline exactly. Defo's ACT/DIFF choice
does not change the result (both modes are exact), so it is not emulated. Assumption A-62: the
stored outputs (`b_acc_bits`, A-31) keep the accumulator exactly; A-31 sets bytes only.
"""

from __future__ import annotations

import torch

from models.designs.ditto import DittoParams

from .engine import Int8, finish, operands, product


def slot_range(slots: int) -> tuple[int, int]:
    """Signed range of a difference held in `slots` nibbles (top nibble signed)."""
    top = 8 * 16 ** (slots - 1)
    return -top, top - 1


class Ditto(Int8):
    name = "ditto"

    def __init__(self, ops, per_op, params: DittoParams):
        super().__init__(ops, per_op)
        self.params = params
        self.state: dict[int, tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = {}
        self.saturated = 0
        """Differences saturated by too few `beyond8_slots` (0 at the default)."""

    def reset(self) -> None:
        super().reset()
        self.state.clear()
        self.saturated = 0

    def _diff(self, cur: torch.Tensor, prev: torch.Tensor) -> torch.Tensor:
        d = cur - prev
        lo, hi = slot_range(self.params.beyond8_slots)
        wide = (d < -128) | (d > 127)
        clipped = torch.where(wide, d.clamp(lo, hi), d)
        self.saturated += int((clipped != d).sum())
        return clipped

    def mac(self, op, mod, orig, *inputs):
        a, b = operands(mod, inputs)
        qa, qb, s_a, s_b = self.codes(op, mod, a, b)
        prev = self.state.get(op.op_id)
        if self.params.act_only or prev is None:  # ACT mode
            acc = product(op, mod, qa, qb)
        else:  # DIFF mode
            pa, pb, pacc = prev
            acc = pacc + product(op, mod, self._diff(qa, pa), qb)
            if op.kind.startswith("matmul"):
                acc = acc + product(op, mod, pa, self._diff(qb, pb))
        if not self.params.act_only:
            self.state[op.op_id] = (qa, qb, acc)
        return finish(op, mod, acc, s_a, s_b, a)
