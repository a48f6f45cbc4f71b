"""One residency rule for every design (parity rule 2 of ../shared/design/common-config.md).

Within a step, an activation tensor stays on chip from its producer to its last consumer while
the live set fits the residency store, every live tensor's space charged; otherwise it is
written to DRAM and read back by each consumer. The rule is applied once per run, greedily in
production order: a tensor is kept when, over its whole lifetime, the space already charged plus
its own fits `capacity_bytes`. A `concat` only lays out its inputs side by side, so it and its
inputs form one group that is kept or spilled together. The network input arrives from DRAM and
the network output leaves to DRAM (nothing on chip outlives a step).

Assumption A-38: the residency store is the global buffer, less the space of resident weights;
a design's tensor sizes are its own storage format (so designs with the same format spill the
same tensors). `policy = "never"` sends every tensor through DRAM (the ablation).
"""

from __future__ import annotations

from typing import Callable, Sequence

import attrs

from workloads.schema import OpRecord

RESIDENCY_POLICIES = ("auto", "never")


@attrs.frozen
class ResidencyPlan:
    resident: frozenset[int]
    """Op ids whose output tensor stays on chip."""
    spilled: tuple[int, ...]
    """Op ids whose output goes through DRAM although a later op reads it."""
    capacity_bytes: int
    peak_bytes: int
    policy: str

    def on_chip(self, tensor: int) -> bool:
        return tensor in self.resident

    def source(self, tensor: int) -> str:
        """Where a tensor is read from / written to: "global" (on chip) or "dram"."""
        return "global" if tensor in self.resident else "dram"

    def describe(self, ops: Sequence[OpRecord]) -> dict:
        return {"policy": self.policy, "store": "global_buffer",
                "capacity_bytes": self.capacity_bytes, "peak_bytes": self.peak_bytes,
                "resident_tensors": len(self.resident),
                "spilled_tensors": [ops[t].name for t in self.spilled]}


def _groups(ops: Sequence[OpRecord]) -> list[list[int]]:
    """Tensors (op ids) grouped so that a concat travels with its inputs."""
    parent = list(range(len(ops)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for op in ops:
        if op.kind == "concat":
            for q in op.preds:
                parent[find(q)] = find(op.op_id)
    groups: dict[int, list[int]] = {}
    for op in ops:
        groups.setdefault(find(op.op_id), []).append(op.op_id)
    return sorted(groups.values(), key=min)


def plan_residency(ops: Sequence[OpRecord], tensor_bytes: Callable[[int], int],
                   capacity_bytes: int, policy: str = "auto") -> ResidencyPlan:
    """Decide per tensor: on chip or through DRAM (the rule in the module docstring)."""
    n = len(ops)
    last_use = [-1] * n
    for op in ops:
        for q in op.preds:
            last_use[q] = max(last_use[q], op.op_id)
    live = [0] * n
    resident: set[int] = set()
    spilled: list[int] = []
    for group in _groups(ops):
        used = [t for t in group if last_use[t] >= 0]
        if not used:
            continue
        first = min(group)
        last = max(last_use[t] for t in group)
        size = sum(tensor_bytes(t) for t in group if ops[t].kind != "concat")
        if (policy == "auto" and last > first
                and max(live[first:last + 1]) + size <= capacity_bytes):
            for i in range(first, last + 1):
                live[i] += size
            resident.update(group)
        else:
            spilled.extend(t for t in group if last_use[t] >= 0 and ops[t].kind != "concat")
    return ResidencyPlan(frozenset(resident), tuple(sorted(spilled)), int(capacity_bytes),
                         max(live) if live else 0, policy)
