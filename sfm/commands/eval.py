"""``sfm eval``: score a trained run (or a baseline) on versioned eval tasks."""

from __future__ import annotations

import argparse


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "eval",
        help="evaluate a model on eval tasks (eval/tasks)",
        description="Evaluate a run folder (or baseline:NAME) on eval tasks; writes results.json.",
    )
    p.add_argument("--model", help="run folder written by sfm.train, or baseline:persistence etc.")
    p.add_argument("--tasks", help="comma-separated task names (sfm eval --list) or YAML paths")
    p.add_argument("--out", help="results folder")
    p.add_argument("--limit", type=int, help="examples per task at most")
    p.add_argument("--batch-size", type=int, default=8, help="generation batch size (default 8)")
    p.add_argument("--seed", type=int, default=0, help="seed of noise, bootstrap and generation")
    p.add_argument("--list", action="store_true", help="list the eval tasks and exit")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from sfm.errors import ConfigError
    from sfm.registry import EVAL_TASKS

    if args.list:
        from sfm.harness.tasks import load_task

        for name in EVAL_TASKS.names():
            t = load_task(name)
            print(f"{name:<32} v{t.version}  {t.family:<20} {t.description}")
        return 0
    missing = [f"--{k}" for k in ("model", "tasks", "out") if not getattr(args, k)]
    if missing:
        raise ConfigError(f"sfm eval needs {', '.join(missing)} (or --list)")
    from sfm.harness.report import print_summary
    from sfm.harness.runner import evaluate

    tasks = [t.strip() for t in args.tasks.split(",") if t.strip()]
    results = evaluate(
        args.model, tasks, args.out, limit=args.limit, batch_size=args.batch_size, seed=args.seed
    )
    print_summary(results)
    print(f"results: {args.out}/results.json")
    return 0
