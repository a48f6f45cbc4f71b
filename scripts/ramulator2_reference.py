"""Hold DRAM presets against Ramulator 2 on the same configurations and request streams.

Streams (64 B requests, as `difftlm dram` builds them with seed 0; the same addresses as
`scripts/dramsim3_reference.py`): `seq` (i*64), `stride:256`, `stride:8192`, `random` (uniform
over the capacity: request slot drawn with numpy `default_rng(0).integers(0, capacity // 64)`,
times 64), 100k reads each with at most 32 host requests pending, 5k random reads with one
outstanding (latency), and two 2:1 read/write mixes of 100k requests (every third request a
write): `seq` addresses and `random` addresses (`mixed` pattern). The loaded streams are also
run with no host limit (only Ramulator 2's queues throttle: 32-entry read and write buffers,
plus one active-buffer slot per bank for requests whose ACT has issued), and with the
`FRFCFS-RowHit` scheduler instead of `FRFCFS`. Bandwidth = bytes / (last completion - first
arrival); latency = mean completion - arrival over the reads; row-hit rate = Ramulator 2's
controller counters, hits / (hits + misses + conflicts), per transaction.

Ramulator 2 side: `scripts/ramulator2_driver.cc`, our closed-loop host over Ramulator 2's C++
library (External frontend; one transaction per memory clock at most, in order; a host request
larger than one device burst is sent as consecutive burst-sized transactions and completes with
its last one; see the driver's header). Its file-trace frontends (ReadWriteTrace,
LoadStoreTrace) are not used: they send one request per cycle with no completion callback, so
neither the host limit nor latency can be measured (LatencyThroughputTrace makes its own
addresses). Configurations are built with Ramulator 2's own Python config package
(`<dir>/python`, no compiled extension needed) from its presets, see `CONFIGS`; the fully
resolved config is written as JSON and loaded by the driver.

Build (Ramulator 2 needs C++20; yaml-cpp and fmt are fetched by its CMake, give local copies):
  cmake -S DIR -B DIR/build -DCMAKE_BUILD_TYPE=Release -DRAMULATOR_PYTHON_BINDINGS=OFF \
    -DFETCHCONTENT_FULLY_DISCONNECTED=ON -DFETCHCONTENT_SOURCE_DIR_YAML-CPP=/path/yaml-cpp \
    -DFETCHCONTENT_SOURCE_DIR_FMT=/path/fmt
  make -C DIR/build ramulator          (libramulator.so lands in DIR)
Run: python scripts/ramulator2_reference.py --ramulator2 DIR [--commit SHA] [--out JSON]
  (builds the driver with g++ -std=c++20 against DIR/libramulator.so unless --driver is given;
  fmt headers are found through DIR/build/CMakeCache.txt or --fmt-include)
Without --ramulator2 only our model runs and the Ramulator 2 numbers are kept from --out.
Command traces (as read in docs/data/ramulator2_notes.md):
  python scripts/ramulator2_reference.py --ramulator2 DIR --cmd-trace OUTDIR
  (Ramulator 2's CmdTraceRecorder plugin; the first 5k requests of each loaded stream)
"""

from __future__ import annotations

import argparse
import heapq
import json
import pathlib
import re
import subprocess
import sys
import tempfile

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from difftlm.commands.dram import make_requests  # noqa: E402
from models.memory import create_memory_model  # noqa: E402
from tlm import Command, Transaction  # noqa: E402

REQ = 64
LOADED = 32  # host requests pending at most: Ramulator 2's read_buffer_size (and DRAMsim3's)
N = 100_000
# label, address pattern, requests, host limit, writes ("" = none, "2:1" = every third)
STREAMS = (("seq", "seq", N, LOADED, ""), ("stride 256 B", "stride:256", N, LOADED, ""),
           ("stride 8 KiB", "stride:8192", N, LOADED, ""), ("random", "random", N, LOADED, ""),
           ("random, 1 outstanding", "random", 5_000, 1, ""),
           ("seq 2:1 read/write", "seq", N, LOADED, "2:1"),
           ("random 2:1 read/write", "random", N, LOADED, "2:1"))
# our preset -> Ramulator 2 DRAM standard, org preset, timing preset, org overrides, controller
CONFIGS = {
    "ddr4-3200": ("DDR4", "DDR4_8Gb_x8", "DDR4_3200AA", {"rank": 1}, "GenericDDR"),
    "lpddr5-6400": ("LPDDR5", "LPDDR5_8Gb_x16", "LPDDR5_6400", {"rank": 1}, "LPDDR5"),
}
# lpddr4-2400-x32 has no counterpart: Ramulator 2 ships no LPDDR4 standard (recorded in the JSON)
ABSENT = {"lpddr4-2400-x32": "Ramulator 2 (2.1) ships no LPDDR4 standard: its DRAM models are "
                             "DDR3, DDR4(+VRR), DDR5(+RFM/VRR), GDDR6, GDDR7, LPDDR5, LPDDR6, "
                             "HBM1-4 (src/ramulator/dram/impl)"}
MAPPER = "RoBaRaCoCh"   # Ramulator 2's example/gem5 default; = our row:bank:rank:column:channel
SCHEDULERS = {"": "FRFCFS", "rowhit": "FRFCFSRowHit"}
QUEUE = 32
DEFAULT_OUT = ROOT / "docs" / "data" / "ramulator2_reference.json"


def ram_config(ram, preset: str, scheduler: str = "FRFCFS",
               cmd_trace: pathlib.Path | None = None) -> tuple[dict, dict]:
    """(config for the driver, provenance) built with Ramulator 2's Python config package;
    `cmd_trace`: attach its command trace recorder, writing that path (+ '.ch<channel>')."""
    std, org, timing, over, ctrl = CONFIGS[preset]
    dram = getattr(ram.dram, std)(org_preset=org, timing_preset=timing, **over)
    plugins = [ram.controller_plugin.CmdTraceRecorder(path=str(cmd_trace))] if cmd_trace else []
    c = getattr(ram.controller, ctrl)(
        dram=dram, scheduler=getattr(ram.scheduler, scheduler)(),
        refresh_manager=ram.refresh_manager.AllBank(), row_policy=ram.row_policy.Open(),
        addr_mapper=getattr(ram.addr_mapper, MAPPER)(),
        read_buffer_size=QUEUE, write_buffer_size=QUEUE, controller_plugins=plugins)
    ms = ram.memory_system.GenericDRAM(clock_ratio=1, controllers=[c],
                                       channel_mapper=ram.channel_mapper.CacheLineInterleave())
    cfg = {"frontend": ram.frontend.External(clock_ratio=1).to_config(),
           "memory_system": ms.to_config()}
    org_d, tim_d = dram.resolve()
    cls = type(dram)
    ccfg = cfg["memory_system"]["controllers"][0]
    width = org_d["channel_width"]
    tx = width * cls.internal_prefetch_size // 8
    levels = list(cls.levels)[1:]
    cap = tx * int(np.prod([org_d[k.lower()] for k in levels[:-1]])) \
        * (org_d["column"] // cls.internal_prefetch_size)
    prov = {"standard": std, "org_preset": org, "timing_preset": timing, "org_overrides": over,
            "controller": ctrl, "scheduler": scheduler, "refresh_manager": "AllBank",
            "row_policy": "Open", "addr_mapper": MAPPER,
            "channel_mapper": "CacheLineInterleave (1 channel)",
            "read_buffer_size": ccfg["read_buffer_size"],
            "write_buffer_size": ccfg["write_buffer_size"],
            "wr_watermarks": [ccfg["wr_low_watermark"], ccfg["wr_high_watermark"]],
            "organization": {k: org_d[k] for k in org_d},
            "timing_ck": tim_d, "read_latency_ck": ccfg["dram"]["read_latency"],
            "tx_bytes": tx, "capacity_bytes": cap, "levels": levels}
    if "wck_sync_mode" in ccfg:
        prov["wck_sync_mode"] = ccfg["wck_sync_mode"]
    return cfg, prov


def fmt_include(ram: pathlib.Path) -> pathlib.Path:
    cache = ram / "build" / "CMakeCache.txt"
    if cache.exists():
        m = re.search(r"^FMT_SOURCE_DIR:STATIC=(.*)$", cache.read_text(), re.M)
        if m:
            return pathlib.Path(m.group(1)) / "include"
    return ram / "ext" / "fmt" / "include"


def build_driver(ram: pathlib.Path, fmt_inc: pathlib.Path, dst: pathlib.Path) -> pathlib.Path:
    src = ROOT / "scripts" / "ramulator2_driver.cc"
    cmd = ["g++", "-O2", "-std=c++20", f"-I{ram / 'src'}", f"-I{fmt_inc}", "-DFMT_HEADER_ONLY=1",
           str(src), f"-L{ram}", "-lramulator", f"-Wl,-rpath,{ram}", "-o", str(dst)]
    subprocess.run(cmd, check=True)
    return dst


def parse_stats(text: str) -> dict:
    keys = ("cycles", "row_hits", "row_misses", "row_conflicts", "num_read_reqs_forwarded",
            "num_write_reqs_coalesced", "avg_read_latency")
    out = {}
    for k in keys:
        m = re.search(rf"^\s*{k}:\s*([-0-9.eE+]+)\s*$", text, re.M)
        if m:
            out[k] = float(m.group(1)) if "." in m.group(1) else int(m.group(1))
    return out


def run_ramulator(driver, cfg_path, addr, writes, limit: int, tck_ns: float, tmp) -> dict:
    trace = tmp / "trace.txt"
    trace.write_text("".join(f"{'W' if w else 'R'} {int(a):x}\n" for a, w in zip(addr, writes)))
    stats = tmp / "stats.yaml"
    r = subprocess.run([str(driver), str(cfg_path), str(trace), str(REQ), str(limit), str(stats)],
                       check=True, capture_output=True, text=True)
    d = json.loads(r.stdout.strip().splitlines()[-1])
    st = parse_stats(stats.read_text())
    span_ns = (d["last_done_ck"] - d["first_issue_ck"]) * tck_ns
    acc = st.get("row_hits", 0) + st.get("row_misses", 0) + st.get("row_conflicts", 0)
    out = {"bandwidth_gbps": d["requests"] * REQ / span_ns,
           "avg_read_latency_ns": d["avg_read_latency_ck"] * tck_ns,
           "row_hit_rate": st.get("row_hits", 0) / acc if acc else None,
           "row_hits": st.get("row_hits"), "row_misses": st.get("row_misses"),
           "row_conflicts": st.get("row_conflicts"), "cycles": d["ticks"],
           "request_bytes": REQ, "tx_bytes": d["tx_bytes"], "requests": d["requests"],
           "reads": d["reads"]}
    for k in ("num_read_reqs_forwarded", "num_write_reqs_coalesced"):
        if st.get(k):
            out[k] = st[k]
    return out


def drive(model, addr, writes, limit: int) -> dict:
    """Our host: at most `limit` requests pending (request j enters, in order, as soon as fewer
    than `limit` earlier ones are pending), as the Ramulator 2 driver does."""
    pending, now, lat, nrd, last, hits, misses = [], 0, 0, 0, 0, 0, 0
    for a, w in zip(addr, writes):
        if len(pending) >= limit:
            now = max(now, heapq.heappop(pending))
        r = model.service(Transaction(Command.WRITE if w else Command.READ, int(a), REQ), now)
        heapq.heappush(pending, r.done_ps)
        if not w:
            lat += r.done_ps - now
            nrd += 1
        last = max(last, r.done_ps)
        hits, misses = hits + r.row_hits, misses + r.row_misses
    return {"bandwidth_gbps": len(addr) * REQ / (last / 1000.0),
            "avg_read_latency_ns": lat / max(nrd, 1) / 1000.0,
            "row_hit_rate": hits / max(hits + misses, 1)}


def stream(preset: str, pat: str, n: int, wr: str):
    m = create_memory_model(preset, {"write_batching": True})  # the reference's write queue
    addr, _ = make_requests(pat, n, REQ, m.capacity_bytes(), 0)
    writes = (np.arange(n) % 3 == 2) if wr == "2:1" else np.zeros(n, bool)
    return m, addr, writes


def cmake_version(ram: pathlib.Path) -> str:
    m = re.search(r"project\(\s*Ramulator\s+VERSION\s+([0-9.]+)",
                  (ram / "CMakeLists.txt").read_text())
    return m.group(1) if m else "unknown"


def compiler() -> str:
    try:
        return subprocess.run(["g++", "--version"], check=True, capture_output=True,
                              text=True).stdout.splitlines()[0]
    except (subprocess.CalledProcessError, FileNotFoundError, IndexError):
        return "g++ unknown"


def git_commit(ram: pathlib.Path) -> str:
    try:
        return subprocess.run(["git", "-C", str(ram), "rev-parse", "HEAD"], check=True,
                              capture_output=True, text=True).stdout.strip()
    except (subprocess.CalledProcessError, FileNotFoundError):
        return "unknown"


def cmd_traces(ram_dir: pathlib.Path, driver, out_dir: pathlib.Path, n: int) -> None:
    """Ramulator 2's command traces (cycle, command, address vector per line) of the first `n`
    requests of every loaded stream, to `out_dir`/<preset>_<stream>.csv.ch0, with bandwidth."""
    sys.path.insert(0, str(ram_dir / "python"))
    import ramulator as ram  # noqa: PLC0415
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as t:
        tmp = pathlib.Path(t)
        for preset in CONFIGS:
            for label, pat, _n, limit, wr in STREAMS:
                if limit <= 1:
                    continue
                name = f"{preset}_{re.sub(r'[^A-Za-z0-9]+', '_', label).strip('_')}"
                cfg, prov = ram_config(ram, preset, cmd_trace=out_dir / f"{name}.csv")
                p = tmp / "cfg.json"
                p.write_text(json.dumps(cfg))
                _m, addr, writes = stream(preset, pat, n, wr)
                r = run_ramulator(driver, p, addr, writes, limit, prov["timing_ck"]["tCK_ps"] / 1000, tmp)
                print(f"{name}: {r['bandwidth_gbps']:.3f} GB/s over {n} requests", flush=True)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ramulator2", type=pathlib.Path, help="Ramulator 2 source tree, built")
    ap.add_argument("--driver", type=pathlib.Path, help="prebuilt ramulator2_driver")
    ap.add_argument("--fmt-include", type=pathlib.Path, help="fmt include dir (default: found "
                    "via DIR/build/CMakeCache.txt)")
    ap.add_argument("--commit", help="Ramulator 2 commit id to record (default: git rev-parse)")
    ap.add_argument("--version", help="Ramulator 2 version to record (default: from its "
                    "CMakeLists.txt project VERSION)")
    ap.add_argument("--no-ours", action="store_true", help="skip our model (keep old 'ours')")
    ap.add_argument("--out", type=pathlib.Path, default=DEFAULT_OUT)
    ap.add_argument("--cmd-trace", type=pathlib.Path, metavar="DIR",
                    help="only write Ramulator 2's command traces of the loaded streams' first "
                         "--cmd-trace-requests requests to DIR (needs --ramulator2)")
    ap.add_argument("--cmd-trace-requests", type=int, default=5000)
    args = ap.parse_args(argv)
    if args.cmd_trace:
        if not args.ramulator2:
            ap.error("--cmd-trace needs --ramulator2")
        with tempfile.TemporaryDirectory() as t:
            driver = args.driver or build_driver(
                args.ramulator2, args.fmt_include or fmt_include(args.ramulator2),
                pathlib.Path(t) / "driver")
            cmd_traces(args.ramulator2, driver, args.cmd_trace, args.cmd_trace_requests)
        return 0
    old = json.loads(args.out.read_text()) if args.out.exists() else {}
    res = {"ramulator2": old.get("ramulator2", {}),
           "ours": old.get("ours", {}) if args.no_ours else {}}
    with tempfile.TemporaryDirectory() as t:
        tmp = pathlib.Path(t)
        driver, ram = None, None
        if args.ramulator2:
            sys.path.insert(0, str(args.ramulator2 / "python"))
            import ramulator as ram  # noqa: PLC0415  (Ramulator 2's config package)
            driver = args.driver or build_driver(
                args.ramulator2, args.fmt_include or fmt_include(args.ramulator2), tmp / "driver")
            res["ramulator2"] = {
                "commit": args.commit or git_commit(args.ramulator2),
                "version": args.version or cmake_version(args.ramulator2),
                "configs": {}, "absent": ABSENT, "driver": "scripts/ramulator2_driver.cc",
                "build": "cmake -S DIR -B DIR/build -DCMAKE_BUILD_TYPE=Release "
                         "-DRAMULATOR_PYTHON_BINDINGS=OFF -DFETCHCONTENT_FULLY_DISCONNECTED=ON "
                         "-DFETCHCONTENT_SOURCE_DIR_YAML-CPP=<yaml-cpp-0.9.0> "
                         "-DFETCHCONTENT_SOURCE_DIR_FMT=<fmt 10.2.1> && make -C DIR/build "
                         "ramulator (libramulator.so in DIR); driver: g++ -O2 -std=c++20 "
                         "-IDIR/src -I<fmt>/include -DFMT_HEADER_ONLY=1 "
                         "scripts/ramulator2_driver.cc -LDIR -lramulator",
                "deps": "yaml-cpp 0.9.0 and fmt 10.2.1 (the tags Ramulator 2's CMakeLists.txt "
                        "pins); nanobind not needed (RAMULATOR_PYTHON_BINDINGS=OFF); "
                        + compiler(),
                "command": "python scripts/ramulator2_reference.py --ramulator2 DIR"
                           + (f" --commit {args.commit}" if args.commit else ""),
                "host": f"closed loop, at most {LOADED} host requests of {REQ} B pending (1 for "
                        "the latency stream), one transaction per memory clock; '|unlimited': "
                        "no host limit; '|rowhit': scheduler FRFCFS-RowHit instead of FRFCFS",
                "results": {}}
        for preset in CONFIGS:
            cfgs = {}
            if ram is not None:
                for suffix, sched in SCHEDULERS.items():
                    cfg, prov = ram_config(ram, preset, sched)
                    p = tmp / f"{preset}{suffix}.json"
                    p.write_text(json.dumps(cfg))
                    cfgs[suffix] = (p, prov)
                prov = dict(cfgs[""][1], scheduler="FRFCFS")
                res["ramulator2"]["configs"][preset] = prov
                tck_ns = prov["timing_ck"]["tCK_ps"] / 1000.0
            for label, pat, n, limit, wr in STREAMS:
                key = f"{preset}|{label}"
                m, addr, writes = stream(preset, pat, n, wr)
                if ram is not None:
                    assert m.capacity_bytes() == cfgs[""][1]["capacity_bytes"], preset
                if not args.no_ours:
                    res["ours"][f"{key}|preset"] = drive(m, addr, writes, limit)
                if ram is None:
                    continue
                rr = res["ramulator2"]["results"]
                rr[key] = run_ramulator(driver, cfgs[""][0], addr, writes, limit, tck_ns, tmp)
                if limit > 1:
                    rr[key + "|unlimited"] = run_ramulator(driver, cfgs[""][0], addr, writes, 0,
                                                           tck_ns, tmp)
                    rr[key + "|rowhit"] = run_ramulator(driver, cfgs["rowhit"][0], addr, writes,
                                                        limit, tck_ns, tmp)
                print(key, res["ours"].get(f"{key}|preset"), rr[key], flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(res, indent=1, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
