"""Hold DRAM presets against DRAMsim3 on the same configuration and request streams.

Streams (64 B reads, as `difftlm dram` builds them with seed 0): `seq` (i*64), `stride:256`,
`stride:8192`, `random` (uniform over the capacity), 100k requests each with 32 in flight
(DRAMsim3's transaction-queue size; both sides count pending requests, see `drive`), and 5k
random reads with one outstanding (latency). DRAMsim3 is also run with no host limit (its own
queues throttle: 32 transactions + 8 commands per bank). Bandwidth = bytes / (last completion -
first arrival); latency = mean of completion - arrival over the reads.

DRAMsim3 side: a closed-loop driver (`scripts/dramsim3_driver.cc`, our code over DRAMsim3's
public `MemorySystem` API: one new request per cycle at most, in order, as its trace front end
does; a request enters when `WillAcceptTransaction` allows and, if an outstanding limit is set,
when fewer than `limit` are pending). Configurations are DRAMsim3's own ini files
with only the organisation edited to match our presets (see `CONFIGS`): one rank instead of two
(`channel_size`) and, for LPDDR4, a 32-bit bus (two x16 devices, 64 B bursts).

Run: python scripts/dramsim3_reference.py --dramsim3 /path/to/DRAMsim3 [--out JSON]
  (builds the driver against <dramsim3>/libdramsim3.so with g++ unless --driver is given)
Without --dramsim3 only our model runs and the DRAMsim3 numbers are read from --out if present.
"""

from __future__ import annotations

import argparse
import heapq
import json
import pathlib
import subprocess
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from difftlm.commands.dram import make_requests  # noqa: E402
from models.memory import create_memory_model  # noqa: E402
from tlm import Command, Transaction  # noqa: E402

REQ = 64
LOADED = 32  # in flight for the loaded streams: DRAMsim3's trans_queue_size in both configs
STREAMS = (("seq", "seq", 100_000, LOADED), ("stride 256 B", "stride:256", 100_000, LOADED),
           ("stride 8 KiB", "stride:8192", 100_000, LOADED),
           ("random", "random", 100_000, LOADED), ("random, 1 outstanding", "random", 5_000, 1))
# preset -> (DRAMsim3 ini, edits to its [system] section so the organisation matches)
CONFIGS = {
    "ddr4-3200": ("configs/DDR4_8Gb_x8_3200.ini", {"channel_size": "8192"}),
    "lpddr4-2400-x32": ("configs/LPDDR4_8Gb_x16_2400.ini",
                        {"channel_size": "2048", "bus_width": "32"}),
}
# our model variants compared: the preset as shipped (the presets' default mapping
# row:bank:rank:column:channel already decodes as DRAMsim3's rochrababgco: bank group = bank %
# bank_groups, i.e. the bank-group bits lowest above the column), and the same with the two
# reference-controller semantics off (arrival-order booking: bank_group_gaps, stall_slot_align)
VARIANTS = (("preset", {}), ("arrival_order", {"bank_group_gaps": False,
                                               "stall_slot_align": False}))
DEFAULT_OUT = ROOT / "docs" / "data" / "dramsim3_reference.json"


def edit_ini(src: pathlib.Path, edits: dict, dst: pathlib.Path) -> None:
    out, section = [], ""
    for line in src.read_text().splitlines():
        s = line.strip()
        if s.startswith("["):
            section = s
        key = s.split("=", 1)[0].strip()
        if section == "[system]" and "=" in s and key in edits:
            line = f"{key} = {edits[key]}"
        out.append(line)
    dst.write_text("\n".join(out) + "\n")


def build_driver(ds3: pathlib.Path, dst: pathlib.Path) -> pathlib.Path:
    src = ROOT / "scripts" / "dramsim3_driver.cc"
    cmd = ["g++", "-O2", "-std=c++11", f"-I{ds3 / 'src'}", f"-I{ds3 / 'ext' / 'headers'}",
           f"-I{ds3 / 'ext' / 'fmt' / 'include'}", "-DFMT_HEADER_ONLY=1", str(src),
           f"-L{ds3}", "-ldramsim3", f"-Wl,-rpath,{ds3}", "-o", str(dst)]
    subprocess.run(cmd, check=True)
    return dst


def run_dramsim3(driver, ini, addr, limit: int, tmp: pathlib.Path) -> dict:
    trace = tmp / "addr.txt"
    trace.write_text("\n".join(f"{int(a):x}" for a in addr) + "\n")
    r = subprocess.run([str(driver), str(ini), str(trace), str(limit), str(tmp)], check=True,
                       capture_output=True, text=True)
    d = json.loads(r.stdout.strip().splitlines()[-1])
    span_ns = (d["last_done_ck"] - d["first_issue_ck"]) * d["tck_ns"]
    return {"bandwidth_gbps": d["requests"] * d["request_bytes"] / span_ns,
            "avg_read_latency_ns": d["avg_read_latency_ck"] * d["tck_ns"],
            "request_bytes": d["request_bytes"]}


def drive(model, addr, limit: int) -> dict:
    """Our host: at most `limit` requests in flight, counted (request j arrives, in order, as
    soon as fewer than `limit` earlier ones are pending), as the DRAMsim3 driver does.
    (`difftlm dram --outstanding K` instead waits for request j-K itself.)"""
    pending, now, lat, last, hits, misses = [], 0, 0, 0, 0, 0
    for a in addr:
        if len(pending) >= limit:
            now = max(now, heapq.heappop(pending))
        r = model.service(Transaction(Command.READ, int(a), REQ), now)
        heapq.heappush(pending, r.done_ps)
        lat += r.done_ps - now
        last = max(last, r.done_ps)
        hits, misses = hits + r.row_hits, misses + r.row_misses
    return {"bandwidth_gbps": len(addr) * REQ / (last / 1000.0),
            "avg_read_latency_ns": lat / len(addr) / 1000.0,
            "row_hit_rate": hits / max(hits + misses, 1)}


def run_ours(preset: str, params: dict, pat: str, n: int, limit: int):
    m = create_memory_model(preset, params)
    addr, _ = make_requests(pat, n, REQ, m.capacity_bytes(), 0)
    return drive(m, addr, limit), addr


def git_commit(ds3: pathlib.Path) -> str:
    try:
        return subprocess.run(["git", "-C", str(ds3), "rev-parse", "HEAD"], check=True,
                              capture_output=True, text=True).stdout.strip()
    except (subprocess.CalledProcessError, FileNotFoundError):
        return "unknown"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dramsim3", type=pathlib.Path, help="DRAMsim3 source tree, built")
    ap.add_argument("--driver", type=pathlib.Path, help="prebuilt dramsim3_driver")
    ap.add_argument("--commit", help="DRAMsim3 commit id to record (default: git rev-parse)")
    ap.add_argument("--out", type=pathlib.Path, default=DEFAULT_OUT)
    args = ap.parse_args(argv)
    old = json.loads(args.out.read_text()) if args.out.exists() else {}
    res = {"dramsim3": old.get("dramsim3", {}), "ours": {}}
    with tempfile.TemporaryDirectory() as t:
        tmp = pathlib.Path(t)
        driver = None
        if args.dramsim3:
            driver = args.driver or build_driver(args.dramsim3, tmp / "driver")
            res["dramsim3"] = {"commit": args.commit or git_commit(args.dramsim3),
                               "configs": {k: {"ini": v[0], "system_edits": v[1]}
                                           for k, v in CONFIGS.items()},
                               "driver": "scripts/dramsim3_driver.cc",
                               "build": "cmake -S DIR -B DIR/build -DCMAKE_BUILD_TYPE=Release"
                                        " && make -C DIR/build dramsim3main (libdramsim3.so in DIR)",
                               "command": "python scripts/dramsim3_reference.py --dramsim3 DIR"
                                          + (f" --commit {args.commit}" if args.commit else ""),
                               "host": f"closed loop, at most {LOADED} pending (1 for the "
                                       "latency stream); '|unlimited': no host limit",
                               "results": {}}
        for preset, (ini, edits) in CONFIGS.items():
            if driver:
                cfg = tmp / pathlib.Path(ini).name
                edit_ini(args.dramsim3 / ini, edits, cfg)
            for label, pat, n, limit in STREAMS:
                key = f"{preset}|{label}"
                for vname, params in VARIANTS:
                    s, addr = run_ours(preset, params, pat, n, limit)
                    res["ours"][f"{key}|{vname}"] = s
                if driver:
                    res["dramsim3"]["results"][key] = run_dramsim3(driver, cfg, addr, limit, tmp)
                    if limit > 1:  # also with no host limit: only DRAMsim3's own queues
                        res["dramsim3"]["results"][key + "|unlimited"] = run_dramsim3(
                            driver, cfg, addr, 0, tmp)
                print(key, res["ours"][f"{key}|preset"], res["dramsim3"].get("results", {}).get(key))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(res, indent=1, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
