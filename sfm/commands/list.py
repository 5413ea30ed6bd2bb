"""``sfm list [KIND]``: print the registries (the only list of built-in names)."""

from __future__ import annotations

import argparse

from sfm.registry import ALL


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("list", help="list simulators, encodings, tasks, metrics, baselines, backbones")
    p.add_argument("kind", nargs="?", choices=sorted(ALL), help="only this registry")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    kinds = [args.kind] if args.kind else sorted(ALL)
    for kind in kinds:
        registry = ALL[kind]
        print(f"{kind}:")
        for name in registry.names():
            meta = registry.meta(name)
            info = meta.get("description") or ", ".join(f"{k}={v}" for k, v in meta.items())
            print(f"  {name:<28} {info}".rstrip())
            if kind == "simulators" and (initial := registry.get(name).describe_initial()):
                # Generated from the parameter declarations (``*`` marks the default kind).
                print(f"  {'':<28} initial conditions: {initial}")
    return 0
