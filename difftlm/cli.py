"""The `difftlm` command line. Each subcommand lives in `difftlm.commands.<name>` and exposes
`register(subparsers)`, which adds its parser and sets `func(args) -> int`."""

from __future__ import annotations

import argparse
import os
import importlib
import sys

from models.errors import ConfigError
from tlm import ElaborationError
from workloads.errors import TraceError

COMMANDS = ("replay", "layer", "compare", "sweep", "reproduce", "quality", "designs", "plot", "trace", "dram")
USER_ERRORS = (ConfigError, TraceError, ElaborationError, FileNotFoundError)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="difftlm", description="Transaction-level simulator for diffusion-model accelerators."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"difftlm.commands.{name}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except USER_ERRORS as exc:
        msg = str(exc).splitlines()[0] if str(exc) else exc.__class__.__name__
        print(f"difftlm {args.command}: error: {msg}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # the reader went away (`difftlm designs | head`): stop quietly
        try:
            sys.stdout = open(os.devnull, "w")
        except OSError:
            pass
        return 141
    except OSError as exc:  # permissions, a directory where a file was expected, a full disk...
        print(f"difftlm {args.command}: error: {os_error_text(exc)}", file=sys.stderr)
        return 2
    except UnicodeDecodeError as exc:
        print(f"difftlm {args.command}: error: an input file is not UTF-8 text ({exc.reason} at byte "
              f"{exc.start}); check the file given", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"difftlm {args.command}: interrupted; nothing half-written was left", file=sys.stderr)
        return 130


def os_error_text(exc: OSError) -> str:
    """One line naming the file and the operating system's reason."""
    what = exc.strerror or exc.__class__.__name__
    names = [n for n in (exc.filename, exc.filename2) if n]
    return f"{' -> '.join(map(str, names))}: {what}" if names else what


if __name__ == "__main__":
    sys.exit(main())
