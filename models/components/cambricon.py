"""Cambricon-D's special units (dataflows.md §3): the outlier-aware PE array, the SFU (sign-mask
ReLU + compression unit on the write path), and the near-memory (NDP) update engine. Every unit
prices its own work (`energy_events`).

- `OutlierPeArray`: `n_pes` PEs, each a dot product over `group` int3×fp16 inlier multipliers
  plus `outlier_lanes` fp16×fp16 multipliers, mapped on the common grid (`models.mapping`,
  A-37): the PEs' multipliers are spread over the grid's positions, so a position consumes
  `lanes_int3 = n_pes·group/positions` reduction elements per cycle on the delta path and
  `lanes_fp16 = n_pes·outlier_lanes/positions` on the fp16 path (attention, and the raw first
  step under A-4); a tile takes `grid.cycles(m, n, k, lanes)`. Outliers up to the budget run in
  lock-step with the inliers; extras are clipped (quality, not cycles):
  `clipping(hist, n_groups)` counts the groups (and a lower bound on the outliers) that exceed
  the budget from a measured per-group outlier histogram. Energy: one `mac.<inlier_event>`
  (delta path, default int3xfp16) or `mac.<raw_event>` (fp16 path) per MAC it runs. Unit
  options for the ablations: `inlier_event` (e.g. `int5xfp16` for a Diffy-like PE) and
  `raw_passes` (no fp16 lanes: raw work runs on the inlier lanes, `raw_passes` passes each).
- `AsyncOutlierArray` (the AsyncPE ablation): the outlier multipliers as a separate array that
  computes a tile's outlier products (MACs · ρ_in) apart from the inlier array, at
  `multipliers` products per cycle; nothing is clipped.
- `SignMaskSfu`: ReLU as an AND of the delta with the previous step's signs, and compression of
  outgoing deltas into an inlier list + fp16 outlier list + bitmap; `lanes` elements per cycle;
  one `sfu.elements` per element.
- `compressed_bytes`: the compression unit's output size (the W_delta byte formula of §3.3).
- `NdpEngine`: sits on the write path in front of the DRAM front. Compressed deltas cross the
  channel as ordinary writes; the engine's in-bank read-add-write of the raw tensor and the sign
  refresh are kept off the channel (A-7): recorded as its own busy interval (class "other"), not
  as memory time. Its in-bank bytes are priced at its own `pj_per_bit` (`ndp.bits`, component
  `ndp`). The bank time of that in-bank traffic (bank conflicts with channel requests) is not
  modelled.
"""

from __future__ import annotations

import math

import attrs
import simpy

from tlm import ActivityRecorder, InitiatorSocket, Module, TargetSocket, Transaction

from ..config import ceil_div
from ..mapping import Mapping

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
    """The PE array on the common grid; `cycles(tile)` is its cycle model, `macs_per_cycle` its
    int3 peak (n_pes · group)."""

    def __init__(self, name: str, parent: Module, grid: Mapping, n_pes: int, group: int,
                 outlier_lanes: int, inlier_event: str = "int3xfp16", raw_event: str = "fp16",
                 raw_passes: int | None = None):
        super().__init__(name, parent)
        self.grid, self.n_pes, self.group, self.outlier_lanes = grid, n_pes, group, outlier_lanes
        self.inlier_event, self.raw_event = f"mac.{inlier_event}", f"mac.{raw_event}"
        self.lanes_int3 = grid.lanes_for(n_pes * group, name)
        if raw_passes is None:
            self.lanes_fp16 = grid.lanes_for(n_pes * max(1, outlier_lanes), name)
        else:
            self.lanes_fp16 = self.lanes_int3 / raw_passes

    @property
    def macs_per_cycle(self) -> int:
        return self.n_pes * self.group

    def cycles(self, t: CamdTile) -> int:
        lanes = self.lanes_int3 if t.mode == "int3" else self.lanes_fp16
        return self.grid.cycles(t.m, t.n, t.k, lanes)

    def energy_events(self, t: CamdTile) -> dict[str, float]:
        return {self.inlier_event if t.mode == "int3" else self.raw_event: t.macs}

    def clipping(self, hist, n_groups: int) -> tuple[float, float]:
        """(groups with more outliers than the budget, lower bound on the outliers clipped).

        `hist` holds the fractions of groups with 0, 1, 2, 3, 4 and more than 4 outliers."""
        b = self.outlier_lanes
        over = float(sum(hist[b + 1:]))
        clipped = float(sum((k - b) * hist[k] for k in range(b + 1, 5))) + (5 - b) * float(hist[5])
        return over * n_groups, clipped * n_groups


@attrs.frozen
class OutlierWork:
    products: int
    """Outlier products of one tile (its MACs · ρ_in, rounded up)."""


class AsyncOutlierArray(Module):
    """AsyncPE's separate outlier array: `multipliers` fp16×fp16 products per cycle."""

    def __init__(self, name: str, parent: Module, multipliers: int):
        super().__init__(name, parent)
        self.multipliers = multipliers

    def cycles(self, work: OutlierWork) -> int:
        return ceil_div(work.products, self.multipliers)

    def energy_events(self, work: OutlierWork) -> dict[str, float]:
        return {"mac.fp16": work.products}


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

    def energy_events(self, work: SfuWork) -> dict[str, float]:
        return {"sfu.elements": work.elements}


class NdpEngine(Module):
    """Near-memory update engine on the write path (A-7).

    Writes whose kind is in `ndp_kinds` carry compressed deltas the engine applies in the banks;
    `ratio[(step, op_id)]` gives the in-bank bytes per compressed byte for that op-step (set by
    the design when it emits the op's jobs). With `internal_gbps` None the engine keeps up with
    the channel (its in-bank work overlaps the transfer); otherwise it takes in-bank bytes /
    `internal_gbps` and the write completes only when the engine has absorbed it. Energy: its
    in-bank bits at `pj_per_bit` (its own price)."""

    def __init__(self, name: str, parent: Module, env: simpy.Environment,
                 recorder: ActivityRecorder, n_ops: int, ndp_kinds: tuple[str, ...],
                 internal_gbps: float | None, pj_per_bit: float = 1.0):
        super().__init__(name, parent)
        self.env = env
        self.recorder = recorder
        self.n_ops = n_ops
        self.ndp_kinds = ndp_kinds
        self.internal_gbps = internal_gbps
        self.pj_per_bit = pj_per_bit
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

    def report(self) -> dict:
        return {"component": "ndp", "events": {"ndp.bits": self.internal_bytes * 8},
                "prices_pj": {"ndp.bits": self.pj_per_bit},
                "ndp_internal_bytes": self.internal_bytes, "ndp_busy_ns": self.busy_ps / 1000}
