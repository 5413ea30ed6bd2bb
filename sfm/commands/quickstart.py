"""``sfm quickstart``: build data, fine-tune, evaluate, rank and card a tiny model on a CPU in minutes."""

from __future__ import annotations

import argparse


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "quickstart",
        help="run the whole pipeline on a tiny backbone (CPU, no download)",
        description="Build Burgers data, LoRA-fine-tune a tiny Llama, evaluate against "
        "baselines, write a leaderboard and a model card.",
    )
    p.add_argument("--out", default="runs/quickstart", help="output folder (default runs/quickstart)")
    p.add_argument("--max-steps", type=int, help="training steps (default: the recipe's)")
    p.add_argument("--num-samples", type=int, help="trajectories to generate (default: the recipe's)")
    p.add_argument("--limit", type=int, help="examples per eval task at most")
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
    )
    losses = r.train_loss
    print()
    print("sfm quickstart: done")
    if losses:
        print(f"  training loss: {losses[0]:.3f} -> {losses[-1]:.3f} ({len(losses)} logged steps)")
    print("  results (primary metric, model [95% CI] vs baselines):")
    for row in summary_rows(r.results):
        print("    " + "  ".join(row))
    print("  time: " + ", ".join(f"{k} {v:.0f}s" for k, v in r.seconds.items()))
    print("  outputs:")
    print(f"    model + card   {r.model_dir}  (README.md is the model card)")
    print(f"    results        {r.results_path}")
    for path in r.leaderboard.values():
        print(f"    leaderboard    {path}")
    return 0
