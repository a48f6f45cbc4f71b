"""`difftlm layer`: one conv or GEMM (or a SCALE-Sim topology) on the dense design."""

from __future__ import annotations

import attrs

from difftlm.layer import conv_op, gemm_op, run_layers, topology_ops
from models.config import load_hw
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
