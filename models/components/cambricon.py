"""Cambricon-D's special units (dataflows.md §3): the outlier-aware PE array, the SFU (sign-mask
ReLU + compression unit on the write path), and the near-memory (NDP) update engine.

- `OutlierPeArray`: rows × cols PEs; each PE is a dot product over `group` int3×fp16 inlier
  multipliers plus `outlier_lanes` fp16×fp16 multipliers. In delta mode a tile takes
  ⌈m/rows⌉·⌈n/cols⌉·⌈k/group⌉ cycles (outliers up to the budget run in lock-step with the
  inliers; extras are clipped, which costs quality, not cycles). In fp16 mode (attention, and the
  raw first step under A-4) only the fp16×fp16 multipliers work: ⌈k/outlier_lanes⌉ per pass.
  `clipping(hist, n_groups)` counts the groups (and a lower bound on the outliers) that exceed the
  outlier budget from a measured per-group outlier histogram.
- `SignMaskSfu`: ReLU as an AND of the delta with the previous step's signs, and compression of
  outgoing deltas into an inlier list + fp16 outlier list + bitmap; `lanes` elements per cycle.
- `compressed_bytes`: the compression unit's output size (the W_delta byte formula of §3.3).
- `NdpEngine`: sits on the write path in front of the DRAM front. Compressed deltas cross the
  channel as ordinary writes; the engine's in-bank read-add-write of the raw tensor and the sign
  refresh are kept off the channel (A-7): recorded as its own busy interval (class "other"), not
  as memory time, and counted in bytes for the energy model.
"""

from __future__ import annotations

import math

import attrs
import simpy

from tlm import ActivityRecorder, InitiatorSocket, Module, TargetSocket, Transaction

from ..config import ceil_div

HIST_GROUP = 60
"""Group size the trace's `camd.group_outlier_hist` is measured on (docs/trace-format.md)."""


@attrs.frozen
class CamdTile:
    """One GEMM-shaped tile for the outlier-aware array: m rows (pixels), n columns (filters),
    k reduction length; `mode` is "int3" (delta path) or "fp16" (fp16×fp16 multipliers only)."""

    m: int
    n: int
    k: int
    mode: str = "int3"

    @property
    def macs(self) -> int:
        return self.m * self.n * self.k


def compressed_bytes(elements: int, rho: float, inlier_bits: int, outlier_bits: int = 16) -> int:
    """Bytes of a compressed delta tensor: inlier list (`inlier_bits` each) + outlier list
    (`outlier_bits` each, a fraction `rho` of the elements) + a 1-bit outlier bitmap."""
    bits = elements * ((1.0 - rho) * inlier_bits + rho * outlier_bits + 1.0)
    return math.ceil(bits / 8 - 1e-9)


class OutlierPeArray(Module):
    """The PE array; `cycles(tile)` is its cycle model, `macs_per_cycle` its int3 peak."""

    def __init__(self, name: str, parent: Module, rows: int, cols: int, group: int,
                 outlier_lanes: int):
        super().__init__(name, parent)
        self.rows, self.cols, self.group, self.outlier_lanes = rows, cols, group, outlier_lanes

    @property
    def macs_per_cycle(self) -> int:
        return self.rows * self.cols * self.group

    def cycles(self, t: CamdTile) -> int:
        lanes = self.group if t.mode == "int3" else self.outlier_lanes
        return ceil_div(t.m, self.rows) * ceil_div(t.n, self.cols) * ceil_div(t.k, lanes)

    def clipping(self, hist, n_groups: int) -> tuple[float, float]:
        """(groups with more outliers than the budget, lower bound on the outliers clipped).

        `hist` holds the fractions of groups with 0, 1, 2, 3, 4 and more than 4 outliers."""
        b = self.outlier_lanes
        over = float(sum(hist[b + 1:]))
        clipped = float(sum((k - b) * hist[k] for k in range(b + 1, 5))) + (5 - b) * float(hist[5])
        return over * n_groups, clipped * n_groups


@attrs.frozen
class SfuWork:
    kind: str
    """"relu_mask", "relu", "compress"."""
    elements: int


class SignMaskSfu(Module):
    """ReLU sign-mask AND and the compression unit; `lanes` elements per cycle (A-6)."""

    def __init__(self, name: str, parent: Module, lanes: int):
        super().__init__(name, parent)
        self.lanes = lanes

    def cycles(self, work: SfuWork) -> int:
        return ceil_div(work.elements, self.lanes)


class NdpEngine(Module):
    """Near-memory update engine on the write path (A-7).

    Writes whose kind is in `ndp_kinds` carry compressed deltas the engine applies in the banks;
    `ratio[(step, op_id)]` gives the in-bank bytes per compressed byte for that op-step (set by
    the design when it emits the op's jobs). With `internal_gbps` None the engine keeps up with
    the channel (its in-bank work overlaps the transfer); otherwise it takes in-bank bytes /
    `internal_gbps` and the write completes only when the engine has absorbed it."""

    def __init__(self, name: str, parent: Module, env: simpy.Environment,
                 recorder: ActivityRecorder, n_ops: int, ndp_kinds: tuple[str, ...],
                 internal_gbps: float | None):
        super().__init__(name, parent)
        self.env = env
        self.recorder = recorder
        self.n_ops = n_ops
        self.ndp_kinds = ndp_kinds
        self.internal_gbps = internal_gbps
        self.comp = recorder.register(self.name, "other")
        self.target = TargetSocket(self, "target", self.transport)
        self.to_dram = InitiatorSocket(self, "to_dram")
        self.ratio: dict[tuple[int, int], float] = {}
        self.busy_ps = 0
        self.internal_bytes = 0.0
        self._free_ps = 0

    def transport(self, txn: Transaction, delay_ps: int) -> int:
        wait = self.to_dram.b_transport(txn, delay_ps)
        if not txn.is_write or txn.kind not in self.ndp_kinds:
            return wait
        internal = txn.nbytes * self.ratio.get((txn.step, txn.op_id), 0.0)
        self.internal_bytes += internal
        if self.internal_gbps is None:
            start, end = txn.first_data_ps, txn.done_ps
        else:
            start = max(txn.first_data_ps, self._free_ps)
            end = start + math.ceil(internal * 1000 / self.internal_gbps)
            self._free_ps = end
        self.busy_ps += max(0, end - start)
        self.recorder.record(self.comp, start, end, txn.step * self.n_ops + txn.op_id)
        return max(wait, end - self.env.now)
