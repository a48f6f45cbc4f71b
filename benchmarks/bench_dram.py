"""Wall-clock speed of the DRAM model: 64-byte requests serviced per second, per pattern.

Two ways of calling it: one big call per `--batch` requests (`service` for seq, which is one
contiguous transaction; `service_addresses` for the other patterns) and one 64-byte
transaction per `service` call. A second table gives µs per `service` call for contiguous
transactions of 1-64 KiB (half streaming, half random addresses; 30 % writes), with the scalar
fast path and with the general numpy path (`_fast = False`). A third gives µs per call for
back-to-back contiguous transactions of 16 KiB / 256 KiB / 4 MiB (a third of them writes) with
the stream fast-forward (`stream_sample_bytes`, default) and exact (`set_exact()`), and the
relative difference of the last completion.
Run: python benchmarks/bench_dram.py [--requests N]
"""

import argparse
import time

import numpy as np

from difftlm.commands.dram import make_requests
from models.memory import create_memory_model
from tlm import Command, Transaction

PATTERNS = ("seq", "stride:4096", "random", "mixed")


def big_calls(name, pattern, n, batch):
    m = create_memory_model(name)
    addr, writes = make_requests(pattern, n, 64, m.capacity_bytes(), 0)
    t0, now = time.perf_counter(), 0
    for s in range(0, n, batch):
        if pattern == "seq":
            r = m.service(Transaction(Command.READ, int(addr[s]), 64 * min(batch, n - s)), now)
        else:
            r = m.service_addresses(addr[s:s + batch], writes[s:s + batch], now)
        now = r.accept_ps
    return n / (time.perf_counter() - t0)


def small_calls(name, pattern, n):
    m = create_memory_model(name)
    addr, writes = make_requests(pattern, n, 64, m.capacity_bytes(), 0)
    t0, now = time.perf_counter(), 0
    for a, w in zip(addr.tolist(), writes.tolist()):
        now = m.service(Transaction(Command.WRITE if w else Command.READ, a, 64), now).accept_ps
    return n / (time.perf_counter() - t0)


def per_call_us(name, nbytes, n, fast=True):
    m = create_memory_model(name)
    m._fast = fast
    rng = np.random.default_rng(0)
    txns, addr = [], 0
    for _ in range(n):
        addr = int(rng.integers(0, 1 << 28)) if rng.random() < 0.5 else addr + nbytes
        txns.append(Transaction(Command.WRITE if rng.random() < 0.3 else Command.READ, addr,
                                nbytes))
    t0, now = time.perf_counter(), 0
    for t in txns:
        now = m.service(t, now).accept_ps + 2000
    return (time.perf_counter() - t0) / n * 1e6


def stream_us(name, nbytes, total, exact):
    """(µs per call, last done_ps) of back-to-back contiguous calls covering `total` bytes."""
    m = create_memory_model(name)
    if exact:
        m.set_exact()
    n = max(4, total // nbytes)
    t0, now = time.perf_counter(), 0
    for k in range(n):
        r = m.service(Transaction(Command.WRITE if k % 3 == 2 else Command.READ, k * nbytes,
                                  nbytes), now)
        now = r.accept_ps
    return (time.perf_counter() - t0) / n * 1e6, r.done_ps


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--requests", type=int, default=200_000)
    ap.add_argument("--batch", type=int, default=16384, help="requests per big call (1 MiB)")
    args = ap.parse_args()
    print(f"{'memory':16s} {'pattern':12s} {'big calls req/s':>16s} {'64 B calls req/s':>17s}")
    for name in ("lpddr4-3200-4ch", "ddr4-3200"):
        for pattern in PATTERNS:
            big = big_calls(name, pattern, args.requests, args.batch)
            small = small_calls(name, pattern, min(args.requests, 20_000))
            print(f"{name:16s} {pattern:12s} {big:16,.0f} {small:17,.0f}")
    print(f"\n{'memory':16s} {'bytes/call':>10s} {'fast us/call':>13s} {'general us/call':>16s}")
    for name in ("lpddr4-3200-4ch", "ddr4-3200"):
        for nbytes in (1024, 4096, 16384, 65536):
            fast = per_call_us(name, nbytes, 4000)
            slow = per_call_us(name, nbytes, 1000, fast=False)
            print(f"{name:16s} {nbytes:10d} {fast:13.1f} {slow:16.1f}")
    print(f"\n{'memory':16s} {'bytes/call':>10s} {'exact us/call':>14s} {'stream-ff us/call':>18s} "
          f"{'speed-up':>9s} {'done diff':>10s}")
    for name in ("lpddr4-3200-4ch", "ddr4-3200", "hbm2-2000-8ch"):
        for nbytes in (16 << 10, 256 << 10, 4 << 20):
            total = max(16 * nbytes, 16 << 20)
            ex, d_ex = stream_us(name, nbytes, total, True)
            ff, d_ff = stream_us(name, nbytes, total, False)
            print(f"{name:16s} {nbytes:10d} {ex:14.1f} {ff:18.1f} {ex / ff:8.1f}x "
                  f"{(d_ff - d_ex) / d_ex:+10.3%}")


if __name__ == "__main__":
    main()
