"""`difftlm dram`: drive a memory model with a synthetic request stream and report bandwidth,
read latency (average / p50 / p99, ns and memory clocks) and row-hit rate.

The host keeps at most `--outstanding` requests in flight: request j arrives when request j-K has
completed (and never before request j-1). Patterns: `seq` (consecutive addresses), `stride:BYTES`,
`random` (uniform, request-aligned), `mixed` (random addresses, every third request a write).
"""

from __future__ import annotations

import math

import numpy as np

from models.errors import ConfigError
from models.memory import available_memory_models, create_memory_model
from tlm import Command, Transaction
from workloads import limits

from .common import print_json


def register(subparsers) -> None:
    p = subparsers.add_parser("dram", help="measure a memory model with a synthetic stream",
                              description=__doc__)
    p.add_argument("--memory", default="lpddr4-3200-4ch", help="model or preset name (see --list)")
    p.add_argument("--list", action="store_true", help="list the available memory models")
    p.add_argument("--param", action="append", default=[], metavar="KEY=VALUE",
                   help="override one model parameter (repeatable)")
    p.add_argument("--pattern", default="seq", help="seq | stride:BYTES | random | mixed")
    p.add_argument("--requests", type=int, default=10000)
    p.add_argument("--request-bytes", type=int, default=64)
    p.add_argument("--outstanding", type=int, default=16)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run)


def _value(text: str):
    for conv in (int, float):
        try:
            return conv(text)
        except ValueError:
            pass
    return {"true": True, "false": False}.get(text.lower(), text)


def parse_params(items: list[str]) -> dict:
    out = {}
    for item in items:
        key, sep, val = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"--param {item!r}: expected KEY=VALUE")
        out[key.strip()] = _value(val.strip())
    return out


def make_requests(pattern: str, n: int, nbytes: int, capacity: int, seed: int):
    """Addresses and write flags of `n` requests of `nbytes` for one pattern."""
    rng = np.random.default_rng(seed)
    slots = max(capacity // nbytes, 1)
    writes = np.zeros(n, bool)
    if pattern == "seq":
        addr = np.arange(n, dtype=np.int64) * nbytes
    elif pattern.startswith("stride:"):
        try:
            stride = int(pattern.split(":", 1)[1])
        except ValueError:
            raise ConfigError(f"--pattern {pattern!r}: stride must be an integer") from None
        addr = np.arange(n, dtype=np.int64) * stride
    elif pattern in ("random", "mixed"):
        addr = rng.integers(0, slots, n, dtype=np.int64) * nbytes
        if pattern == "mixed":
            writes = np.arange(n) % 3 == 2
    else:
        raise ConfigError(f"--pattern {pattern!r}: choose seq, stride:BYTES, random or mixed")
    return addr % (slots * nbytes), writes


def measure(model, addr, writes, nbytes: int, outstanding: int) -> dict:
    """Drive `model` with the requests; the statistics `difftlm dram` prints."""
    n = len(addr)
    done = np.zeros(n, np.int64)
    arrival = np.zeros(n, np.int64)
    hits = misses = 0
    energy = 0.0
    now = 0
    for j in range(n):
        if j >= outstanding:
            now = max(now, int(done[j - outstanding]))
        cmd = Command.WRITE if writes[j] else Command.READ
        r = model.service(Transaction(cmd, int(addr[j]), nbytes), now)
        arrival[j], done[j] = now, r.done_ps
        hits += r.row_hits
        misses += r.row_misses
        energy += r.energy_pj
    span_ps = int(done.max() - arrival[0]) if n else 0
    lat_ns = (done - arrival)[~writes] / 1000.0
    tck_ns = getattr(model.params, "tck_ps", math.nan) / 1000.0
    stat = (lambda f: float(f(lat_ns)) if len(lat_ns) else math.nan)
    out = {
        "requests": n,
        "bytes": n * nbytes,
        "bandwidth_gbps": n * nbytes / (span_ps / 1000.0) if span_ps else math.nan,
        "peak_bandwidth_gbps": model.peak_bandwidth_gbps(),
        "avg_read_latency_ns": stat(np.mean),
        "p50_read_latency_ns": stat(lambda x: np.percentile(x, 50)),
        "p99_read_latency_ns": stat(lambda x: np.percentile(x, 99)),
        "row_hit_rate": hits / (hits + misses) if hits + misses else math.nan,
        "energy_pj_per_bit": energy / (n * nbytes * 8) if n else math.nan,
    }
    for key in ("avg", "p50", "p99"):
        out[f"{key}_read_latency_ck"] = out[f"{key}_read_latency_ns"] / tck_ns
    return out


def run(args) -> int:
    if args.list:
        for name, desc in available_memory_models().items():
            print(f"{name:18s} {desc}")
        return 0
    if args.requests <= 0 or args.request_bytes <= 0 or args.outstanding <= 0:
        raise ConfigError("--requests, --request-bytes and --outstanding must be positive")
    if args.request_bytes > limits.MAX_REQUEST_BYTES:
        raise ConfigError(f"--request-bytes {args.request_bytes}: over the limit of "
                          f"{limits.MAX_REQUEST_BYTES:,} bytes ({limits.ENV_PREFIX}MAX_REQUEST_BYTES)")
    if args.requests > limits.MAX_REQUESTS:
        raise ConfigError(f"--requests {args.requests}: over the limit of {limits.MAX_REQUESTS:,} "
                          f"({limits.ENV_PREFIX}MAX_REQUESTS)")
    model = create_memory_model(args.memory, parse_params(args.param))
    capacity = model.capacity_bytes() if hasattr(model, "capacity_bytes") else 1 << 32
    addr, writes = make_requests(args.pattern, args.requests, args.request_bytes, capacity,
                                 args.seed)
    res = {"memory": args.memory, "pattern": args.pattern,
           **measure(model, addr, writes, args.request_bytes, args.outstanding)}
    if args.json:
        print_json(res, indent=None)
        return 0
    print(f"{args.memory}: {args.requests} x {args.request_bytes} B {args.pattern}, "
          f"{args.outstanding} outstanding")
    print(f"  bandwidth     {res['bandwidth_gbps']:.2f} GB/s of {res['peak_bandwidth_gbps']:.2f} peak")
    for key in ("avg", "p50", "p99"):
        print(f"  {key} read lat  {res[f'{key}_read_latency_ns']:.1f} ns "
              f"({res[f'{key}_read_latency_ck']:.1f} ck)")
    print(f"  row-hit rate  {res['row_hit_rate']:.3f}")
    print(f"  energy        {res['energy_pj_per_bit']:.2f} pJ/bit")
    return 0
