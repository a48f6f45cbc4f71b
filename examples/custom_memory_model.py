"""A user-written memory model: fixed latency, a page-miss penalty and a bandwidth-limited bus."""
import attrs

from models.memory import MemoryModel, MemoryResponse, create_memory_model, memory_model
from tlm import Command, Transaction


@attrs.frozen
class PagedParams:
    latency_ns: float = 50.0
    page_miss_ns: float = 20.0
    bandwidth_gbps: float = 12.8
    page_bytes: int = 4096


@memory_model("paged-example", "fixed latency + page-miss penalty + bandwidth")
class PagedMemory(MemoryModel):
    Params = PagedParams
    open_page, free_ps = -1, 0  # state; each instance overwrites its own copy

    def service(self, txn, arrival_ps):
        p = self.params
        hit = txn.address // p.page_bytes == self.open_page
        self.open_page = (txn.address + txn.nbytes - 1) // p.page_bytes
        start = max(arrival_ps, self.free_ps)
        first = start + round(1000 * (p.latency_ns + (0 if hit else p.page_miss_ns)))
        self.free_ps = done = first + round(txn.nbytes * 1000 / p.bandwidth_gbps)
        return MemoryResponse(start, first, done, txn.nbytes, int(hit), int(not hit))

    def peak_bandwidth_gbps(self):
        return self.params.bandwidth_gbps


if __name__ == "__main__":
    mem = create_memory_model("paged-example", {"latency_ns": 40.0})
    for addr in (0, 64, 8192):
        r = mem.service(Transaction(Command.READ, addr, 64), 0)
        print(f"read @{addr}: accept {r.accept_ps} ps, done {r.done_ps} ps, hits {r.row_hits}")
