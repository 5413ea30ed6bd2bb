"""``sfm card``: write (and optionally publish) the model card of a trained run.

sfm card --model runs/quickstart/model --results results/
sfm card --model runs/llama8b-burgers --results results/ --license llama3.1 --push-to-hub ORG/NAME
"""

from __future__ import annotations

import argparse
import sys


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "card",
        help="write a run's Hugging Face model card from its records and eval results",
        description="Write README.md (Hugging Face model card with model-index) for a run folder of sfm.train.",
    )
    p.add_argument("--model", required=True, help="run folder written by sfm.train")
    p.add_argument(
        "--results",
        nargs="+",
        required=True,
        help="results.json files or folders searched for them; those of other models are skipped",
    )
    p.add_argument("--out", help="card file (default: MODEL/README.md; plots go in figures/ beside it)")
    p.add_argument(
        "--license",
        default="apache-2.0",
        help="licence of the card and trained weights (default apache-2.0; the base model's governs)",
    )
    p.add_argument("--dataset", help="training data set as a Hub id (default: its folder name)")
    p.add_argument("--no-figures", action="store_true", help="no plots")
    p.add_argument("--push-to-hub", metavar="REPO", help="upload the run and its card to this Hub repository")
    p.add_argument("--private", action="store_true", help="create the Hub repository private")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from sfm.errors import DataError
    from sfm.publish.cards import push_to_hub, read_run, select_results, write_model_card
    from sfm.publish.leaderboard import load_results

    read_run(args.model)  # a wrong --model fails before anything is read or drawn
    loaded, warnings = load_results(args.results)
    mine, skipped = select_results(args.model, loaded)
    for w in [*warnings, *skipped]:
        print(f"sfm card: skipped {w.removeprefix('skipped ')}", file=sys.stderr)
    if not mine:
        raise DataError(
            f"none of {', '.join(args.results)} holds results of {args.model} (run sfm eval on it)"
        )
    path = write_model_card(
        args.model, mine, args.out, license=args.license, dataset=args.dataset, figures=not args.no_figures
    )
    print(f"card: {path} ({sum(len(r.tasks) for r in mine)} task result(s))")
    if args.push_to_hub:
        url = push_to_hub(args.model, path, args.push_to_hub, private=args.private or None)
        print(f"pushed: {url}")
    return 0
