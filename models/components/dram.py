"""`DramFront`: the DRAM target on the memory socket, wrapping any registered memory model.

The front asks the memory model for the timing of each transaction (one call per coarse
transaction), stamps the transaction, records the data-transfer interval as memory activity
and accounts bytes per (label, tensor kind, direction), row hits/misses and energy.
"""

from __future__ import annotations

from collections import defaultdict

import simpy

from tlm import ActivityRecorder, Module, Status, TargetSocket, Transaction

from ..memory import MemoryModel


class DramFront(Module):
    def __init__(self, name: str, parent: Module, env: simpy.Environment, model: MemoryModel,
                 recorder: ActivityRecorder, n_ops: int):
        super().__init__(name, parent)
        self.env = env
        self.model = model
        self.recorder = recorder
        self.n_ops = n_ops
        self.comp = recorder.register(self.name, "memory")
        self.target = TargetSocket(self, "target", self.transport)
        self.bytes = defaultdict(int)  # (label, kind, is_write) -> bytes
        self.row_hits = 0
        self.row_misses = 0
        self.energy_pj = 0.0
        self.issued = 0
        self.last_done_ps = 0
        self._act_read = recorder.activity_id("dram_read")
        self._act_write = recorder.activity_id("dram_write")

    def transport(self, txn: Transaction, delay_ps: int) -> int:
        """Time `txn` (arriving `delay_ps` after now); return the delay until it is done. A
        scatter-gather the model cannot batch is timed run by run, each run its own transaction."""
        now = self.env.now
        txn.issued_ps = now + delay_ps
        if txn.segments is not None:
            r = self.model.service_segments(txn, txn.issued_ps)
            if r is None:
                parts = [Transaction(txn.command, a, n, txn.kind, txn.op_id, txn.step)
                         for a, n in zip(txn.segments[0].tolist(), txn.segments[1].tolist())]
                wait = max(self.transport(part, delay_ps) for part in parts)
                txn.accepted_ps = min(part.accepted_ps for part in parts)
                txn.first_data_ps = min(part.first_data_ps for part in parts)
                txn.done_ps, txn.status = now + wait, Status.OK
                return wait
        else:
            r = self.model.service(txn, txn.issued_ps)
        txn.accepted_ps, txn.first_data_ps, txn.done_ps = r.accept_ps, r.first_data_ps, r.done_ps
        txn.status = Status.OK
        label = txn.step * self.n_ops + txn.op_id
        write = txn.is_write
        self.recorder.record(self.comp, r.first_data_ps, r.done_ps, label,
                             self._act_write if write else self._act_read)
        self.bytes[(label, txn.kind, write)] += r.nbytes
        self.row_hits += r.row_hits
        self.row_misses += r.row_misses
        self.energy_pj += r.energy_pj
        self.issued += 1 if txn.segments is None else len(txn.segments[0])  # DRAM requests
        if r.done_ps > self.last_done_ps:
            self.last_done_ps = r.done_ps
        return r.done_ps - now

    def report(self) -> dict:
        """Transaction, row-buffer and energy counters (DRAM energy comes from the memory model)."""
        return {"component": "dram", "dram_transactions": self.issued, "dram_row_hits": self.row_hits,
                "dram_row_misses": self.row_misses, "dram_energy_pj": self.energy_pj}
