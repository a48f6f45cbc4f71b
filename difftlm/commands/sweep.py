"""`difftlm sweep`: run a design-space sweep spec into a results store (docs/sweeps.md)."""

from __future__ import annotations

import os

from .common import print_json


def register(sub) -> None:
    p = sub.add_parser("sweep", help="run a design-space sweep (TOML spec) into a Parquet store")
    p.add_argument("spec", metavar="SPEC.toml", help="sweep spec (examples/sweeps/)")
    p.add_argument("--out", metavar="DIR", help="sweep directory (default: <spec name>.sweep)")
    p.add_argument("--jobs", type=int, metavar="N", help="local worker processes (default: all cores)")
    p.add_argument("--scheduler", metavar="ADDRESS",
                   help="run on a Dask distributed cluster, e.g. tcp://host:8786 (workers from `dask worker`)")
    p.add_argument("--resume", action="store_true",
                   help="continue the sweep in --out: skip stored points, rerun failed ones")
    p.add_argument("--dry-run", action="store_true", help="print the points and their estimated cost")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run)


def run(args) -> int:
    from difftlm.sweep import estimate, load_spec, run_sweep
    from models.errors import ConfigError

    if args.jobs is not None and args.jobs < 1:
        raise ConfigError(f"--jobs {args.jobs}: must be at least 1")
    if args.jobs is not None and args.scheduler:
        raise ConfigError("--jobs and --scheduler: give one (the cluster's workers set the parallelism)")
    spec = load_spec(args.spec)
    out = args.out or f"{os.path.splitext(os.path.basename(args.spec))[0]}.sweep"
    if args.dry_run:
        est = estimate(spec, out, args.jobs)
        if args.json:
            print_json(est)
        else:
            print(_dry_text(est))
        return 0
    report = run_sweep(spec, out, args.jobs, args.scheduler, args.resume, progress=True)
    if args.json:
        print_json(report.to_dict())
    else:
        print(f"{report.points} points: {report.ok} ran ok, {report.failed} failed, {report.skipped} "
              f"already stored; {report.wall_s:.1f} s; store {report.table}")
    return 1 if report.failed else 0


def _dry_text(est: dict) -> str:
    lines = []
    for p in est["points"]:
        values = "  ".join(f"{k}={v}" for k, v in p["values"].items())
        lines.append(f"{p['point']:>5}  {p['config_hash']}  {p['design']:<18} {p['trace']:<10} {values}"
                     + (f"  INVALID: {p['error']}" if p["error"] else ""))
    lines.append(f"{len(est['points'])} points, {est['to_run']} to run ({est['skipped']} already stored, "
                 f"{est['invalid']} invalid): {est['op_steps']:,} op-steps, ~{est['cpu_s']:,.0f} CPU s, "
                 f"~{est['wall_s']:,.0f} s on {est['jobs']} jobs ({est['rate_source']})")
    return "\n".join(lines)
