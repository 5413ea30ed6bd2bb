"""``sfm validate FILE...``: check recipes (and eval task files) without running them."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "validate",
        help="check recipes or eval task files without running them",
        description="Load each file strictly (unknown keys, wrong types, unknown names) and report "
        "one line per file. Files under an eval/tasks folder are read as eval tasks, files under a scaling folder as sweep specs.",
    )
    p.add_argument("files", nargs="+", help="recipe YAML files (or eval task YAML files)")
    p.set_defaults(func=run)


def validate_file(path: str) -> str:
    """Load ``path`` as a recipe (or an eval task); returns a one-line description. Raises SfmError."""
    p = Path(path)
    if "scaling" in p.parts:
        from sfm.scaling.spec import load_spec

        spec = load_spec(p)
        return f"scaling spec {getattr(spec, 'name', p.stem)}"
    if "eval" in p.parts and "tasks" in p.parts:
        from sfm.harness.tasks import load_task

        t = load_task(str(p))
        return f"eval task {t.task} v{t.version} ({t.family})"
    from sfm.training.recipe import load_recipe

    r = load_recipe(p)
    return f"recipe: {r.model.name_or_path}, {r.peft.method}, task {r.data.task}, encoding {r.data.encoding}"


def run(args: argparse.Namespace) -> int:
    from sfm.errors import SfmError

    failed = 0
    for path in args.files:
        try:
            print(f"ok    {path}: {validate_file(path)}")
        except SfmError as exc:
            failed += 1
            print(f"error {exc}", file=sys.stderr)
    return 2 if failed else 0
