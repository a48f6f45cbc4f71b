"""`difftlm layer`: one conv or GEMM (or a SCALE-Sim topology) on the dense design."""

from __future__ import annotations

import attrs

from difftlm.layer import (SCALESIM_SRAM_KIB, closed_form_cycles, conv_op, gemm_op, run_layers,
                           run_scalesim, scalesim_python, tiled_cycles, topology_ops)
from models.config import BufferConfig, BuffersConfig, load_hw
from models.errors import ConfigError

from .common import add_memory_args, parse_params, print_json, summary_text


def register(sub) -> None:
    p = sub.add_parser("layer", help="replay one conv/GEMM layer on the dense design")
    shape = p.add_mutually_exclusive_group(required=True)
    shape.add_argument("--gemm", nargs=3, type=int, metavar=("M", "N", "K"),
                       help="GEMM of M×K by K×N (M=1 is a GEMV)")
    shape.add_argument("--conv", nargs=6, type=int, metavar=("H", "W", "C", "K", "R", "S"),
                       help="conv of an H×W×C input with K filters of R×S")
    shape.add_argument("--topology", metavar="FILE", help="SCALE-Sim topology CSV")
    p.add_argument("--stride", type=int, default=1)
    p.add_argument("--pad", type=int, default=0)
    p.add_argument("--array", default=None, metavar="RxC", help="PE array rows x cols (default: hw's)")
    p.add_argument("--dataflow", choices=("os", "ws", "is"), default="os")
    p.add_argument("--pe-model", choices=("systolic", "broadcast"), default="systolic",
                   help="PE array cycle model (default: systolic, as SCALE-Sim)")
    p.add_argument("--hw", metavar="FILE.toml", help="hardware config (default: common)")
    p.add_argument("--scalesim", action="store_true",
                   help=f"SCALE-Sim's configuration (ifmap/filter/ofmap SRAM {SCALESIM_SRAM_KIB} KiB each, "
                        "double buffered, 1-byte words, valid convolutions): our cycles, SRAM and DRAM "
                        "counts beside SCALE-Sim's closed form and, where a venv with scalesim is found "
                        "($DIFFTLM_SCALESIM_PYTHON or .venv-scalesim/), SCALE-Sim's own run")
    add_memory_args(p)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run)


def _array(spec: str) -> tuple[int, int]:
    try:
        r, c = (int(x) for x in spec.lower().split("x"))
    except ValueError:
        raise ConfigError(f"--array {spec!r}: expected ROWSxCOLS, e.g. 32x32") from None
    if r < 1 or c < 1:
        raise ConfigError(f"--array {spec!r}: rows and cols must be >= 1")
    return r, c


def run(args) -> int:
    if args.gemm:
        if min(args.gemm) < 1:
            raise ConfigError("--gemm: M, N and K must be >= 1")
        ops = gemm_op(*args.gemm)
    elif args.conv:
        h, w, c, k, r, s = args.conv
        if min(args.conv) < 1 or args.stride < 1 or args.pad < 0 or r > h + 2 * args.pad or s > w + 2 * args.pad:
            raise ConfigError("--conv: impossible shape (sizes >= 1, kernel within the padded input)")
        ops = conv_op(h, w, c, k, r, s, args.stride, args.pad)
    else:
        ops = topology_ops(args.topology)
    hw = load_hw(args.hw)
    pe = attrs.evolve(hw.pe_array, model=args.pe_model, dataflow=args.dataflow)
    if args.array:
        rows, cols = _array(args.array)
        pe = attrs.evolve(pe, rows=rows, cols=cols)
    hw = hw.evolve(pe_array=pe)
    if args.scalesim:
        return _scalesim(args, ops, hw)
    res = run_layers(ops, hw, args.memory, parse_params(args.memory_param))
    layers = [{k: row[k] for k in ("op_id", "name", "window_cycles", "pe_busy_cycles", "macs")}
              | {k: v for k, v in row.items() if k.startswith("dram_")} for row in res.per_op]
    if args.json:
        print_json({**res.summary, "pe_model": pe.model, "dataflow": pe.dataflow,
                    "array": f"{pe.rows}x{pe.cols}", "layers": layers})
    else:
        print(f"PE array {pe.rows}x{pe.cols} {pe.model}" + (f" ({pe.dataflow})" if pe.model == "systolic" else ""))
        print(summary_text(res))
    return 0


def _scalesim(args, ops, hw) -> int:
    pe = hw.pe_array
    if pe.model != "systolic":
        raise ConfigError("--scalesim compares the systolic fold model; drop --pe-model broadcast")
    if any(op.kind == "conv2d" and op.pad for op in ops):
        raise ConfigError("--scalesim: SCALE-Sim models valid convolutions only; use --pad 0")
    sram = BufferConfig(SCALESIM_SRAM_KIB)
    hw = hw.evolve(buffers=BuffersConfig(hw.buffers.global_buffer, sram, sram, sram),
                   designs={**hw.designs, "dense": {**hw.designs.get("dense", {}), "acc_bytes": 1}})
    python = scalesim_python()
    theirs = run_scalesim(ops, pe.rows, pe.cols, pe.dataflow, python) if python else None
    rows = []
    for i, op in enumerate(ops):
        res = run_layers([op], hw, args.memory, parse_params(args.memory_param))
        s, ev = res.summary, res.summary["events"]
        ours = {"cycles": int(res.per_op[0]["pe_busy_cycles"]), "total_cycles": int(s["total_cycles"]),
                "sram_reads": {"ifmap": int(ev.get("sram.act.read_bytes", 0)),
                               "filter": int(ev.get("sram.weight.read_bytes", 0))},
                "sram_writes": {"ofmap": int(ev.get("sram.out.write_bytes", 0))},
                "dram_reads": {"ifmap": int(s["dram_read_bytes_by_kind"].get("act", 0)),
                               "filter": int(s["dram_read_bytes_by_kind"].get("weight", 0))},
                "dram_writes": {"ofmap": int(s["dram_write_bytes_by_kind"].get("out", 0))}}
        ours["tiled_cycles"] = tiled_cycles(op, hw, acc_bytes=1)
        rows.append({"name": op.name, "closed_form_cycles": closed_form_cycles(op, pe.rows, pe.cols, pe.dataflow),
                     "ours": ours, "scalesim": theirs[i] if theirs else None})
    if args.json:
        print_json({"array": f"{pe.rows}x{pe.cols}", "dataflow": pe.dataflow, "sram_kib": SCALESIM_SRAM_KIB,
                    "scalesim_python": python, "layers": rows})
        return 0
    print(f"PE array {pe.rows}x{pe.cols} systolic ({pe.dataflow}); SCALE-Sim config: SRAM "
          f"{SCALESIM_SRAM_KIB} KiB per operand, double buffered, 1-byte words")
    if not python:
        print("  (scalesim not found: set DIFFTLM_SCALESIM_PYTHON or create .venv-scalesim; closed form only)")
    for r in rows:
        o, t = r["ours"], r["scalesim"]
        print(f"{r['name']}:")
        print(f"  {'':24}{'ours':>14}{'SCALE-Sim':>14}")
        print(f"  {'compute cycles':24}{o['cycles']:>14,}{(t['cycles'] if t else r['closed_form_cycles']):>14,}"
              + ("" if t else "  (closed form)"))
        print(f"  {'tiler + PE model':24}{o['tiled_cycles']:>14,}")
        print(f"  {'closed form':24}{r['closed_form_cycles']:>14,}")
        for grp, label in (("sram_reads", "SRAM reads"), ("sram_writes", "SRAM writes"),
                           ("dram_reads", "DRAM reads"), ("dram_writes", "DRAM writes")):
            for k, v in o[grp].items():
                print(f"  {label + ' ' + k:24}{v:>14,}{(format(t[grp][k], ',') if t else '-'):>14}")
    print("Ours: compute cycles = PE-busy cycles of the replay; 'tiler + PE model' = the tile plan timed "
          "with fold continuation (equal when the design forwards the plan's fold flags); SRAM counts are bytes of tile slices "
          "moved between buffers and array (SCALE-Sim counts words fed to the array edge per cycle), "
          "so SRAM reads are not expected to agree; DRAM counts are bytes (1-byte words).")
    return 0
