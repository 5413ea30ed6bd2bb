"""The ``sfm`` command. Thin: each subcommand lives in :mod:`sfm.commands` and calls library functions.

A subcommand module defines ``add_parser(subparsers)`` that registers an ``argparse`` parser whose
``func`` default takes the parsed namespace and returns an exit status. Modules are discovered from the
package, so adding a file adds a command.
"""

from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import sys
from collections.abc import Sequence

import sfm
from sfm.errors import SfmError


def build_parser() -> argparse.ArgumentParser:
    """The full ``sfm`` argument parser."""
    parser = argparse.ArgumentParser(
        prog="sfm",
        description="Fine-tune foundation models on science: build data, fine-tune, evaluate, publish.",
    )
    parser.add_argument("--version", action="version", version=f"sfm {sfm.__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    import sfm.commands as commands

    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"sfm.commands.{info.name}")
        module.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``sfm`` with ``argv``; user errors print one line and return 2."""
    parser = build_parser()
    # Commands that take recipe overrides (sfm train RECIPE --key value) get the arguments argparse does not
    # know; every other command refuses them as parse_args would.
    args, extra = parser.parse_known_args(argv)
    if extra and not getattr(args, "accepts_overrides", False):
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    args.overrides = extra
    if not getattr(args, "func", None):
        parser.print_help()
        return 1
    try:
        return int(args.func(args) or 0)
    except SfmError as exc:
        print(f"sfm: error: {exc}", file=sys.stderr)
        return 2
    except FileExistsError as exc:
        print(f"sfm: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("sfm: interrupted", file=sys.stderr)
        return 130
    finally:
        sys.stdout.flush()


def run() -> None:  # pragma: no cover - console entry point wrapper
    """Entry point that exits with :func:`main`'s status."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    sys.exit(main())


if __name__ == "__main__":  # pragma: no cover
    run()
