"""`difftlm designs`: the registered designs and variants with their parameters."""

from __future__ import annotations

from models.designs import available_designs, describe_design

from .common import print_json


def register(sub) -> None:
    p = sub.add_parser("designs", help="list designs, variants and their parameters")
    p.add_argument("names", nargs="*", metavar="NAME", help="only these designs (default: all)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run)


def run(args) -> int:
    infos = [describe_design(n) for n in (args.names or available_designs())]
    if args.json:
        print_json({"designs": infos})
        return 0
    for info in infos:
        base = f" (variant of {info['variant_of']}: {info['overrides']})" if info["variant_of"] else ""
        print(f"{info['name']}{base}: {info['doc']}")
        for p in info["params"]:
            print(f"    {p['name']} = {p['default']!r}  {p['doc']}")
    return 0
