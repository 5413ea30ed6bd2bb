"""``sfm quickstart``: build data, fine-tune, evaluate, rank and card a tiny model on a CPU in minutes."""

from __future__ import annotations

import argparse


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "quickstart",
        help="run the whole pipeline on a tiny backbone (CPU, no download)",
        description="Build Burgers data; train a token model (LoRA on a tiny Llama), a continuous model "
        "(the same backbone through a field encoder) and an FNO on it; evaluate them against baselines; write "
        "one leaderboard and a model card per model.",
    )
    p.add_argument("--out", default="runs/quickstart", help="output folder (default runs/quickstart)")
    p.add_argument("--max-steps", type=int, help="training steps (default: the recipe's)")
    p.add_argument("--num-samples", type=int, help="trajectories to generate (default: the recipe's)")
    p.add_argument("--limit", type=int, help="examples per eval task at most")
    p.add_argument(
        "--models",
        nargs="+",
        choices=["tokens", "continuous", "fno"],
        help="which quickstart models to train (default: all three)",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from sfm.harness.report import summary_rows
    from sfm.quickstart import run_quickstart

    r = run_quickstart(
        args.out,
        max_steps=args.max_steps,
        num_samples=args.num_samples,
        limit=args.limit,
        progress=not args.no_progress,
        models=args.models,
    )
    print()
    print("sfm quickstart: done")
    for name, results in r.results.items():
        losses = r.train_loss[name]
        trend = f"training loss {losses[0]:.3g} -> {losses[-1]:.3g}" if losses else "no loss logged"
        print(f"  quickstart/{name} ({trend}; primary metric, model [95% CI] vs baselines):")
        for row in summary_rows(results):
            print("    " + "  ".join(row))
    print("  time: " + ", ".join(f"{k} {v:.0f}s" for k, v in r.seconds.items()))
    print("  outputs:")
    for name, folder in r.model_dirs.items():
        print(f"    {name:<14} {folder}  (README.md is its model card; results in {r.results_paths[name]})")
    for path in r.leaderboard.values():
        print(f"    leaderboard    {path}")
    return 0
