"""``sfm train RECIPE [--key value ...]``: fine-tune from a recipe, exactly as ``python -m sfm.train``.

sfm train recipes/quickstart.yaml --training.max_steps 50
accelerate launch -m sfm.train ...   # several processes: launch the module, not the command
"""

from __future__ import annotations

import argparse

from sfm.train import add_arguments


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train",
        help="fine-tune a model from a recipe (same as python -m sfm.train)",
        description="Train a token model, a continuous model or a neural operator from a recipe into its run "
        "folder (resuming it if it exists), then evaluate it on the recipe's evaluation.tasks. Recipe keys "
        "are overridden with --key value (e.g. --training.max_steps 50, or --max_steps 50 when unique).",
    )
    add_arguments(p)
    p.set_defaults(func=run, accepts_overrides=True)


def run(args: argparse.Namespace) -> int:
    from sfm.train import train_and_evaluate

    return train_and_evaluate(args, args.overrides)
