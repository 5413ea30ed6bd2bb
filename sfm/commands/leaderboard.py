"""``sfm leaderboard``: rank models and baselines from results files; write leaderboard.{md,csv,json,html}.

sfm leaderboard results/ --out leaderboard/
sfm leaderboard results/a/results.json results/b --out leaderboard/ --baseline persistence
sfm leaderboard results/ --out leaderboard/ --scaling sweeps/burgers/fit

``python eval/leaderboard.py`` (the documented script) is the same command: it calls :func:`main`.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from sfm.errors import ConfigError, DataError, SfmError

DESCRIPTION = "Rank models and baselines from sfm results files; write leaderboard.{md,csv,json,html}."


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The options, shared by ``sfm leaderboard`` and ``python eval/leaderboard.py``."""
    p.add_argument("results", nargs="+", help="results.json files, or folders searched recursively for them")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--baseline", default="persistence", help="reference baseline of the overall score")
    p.add_argument(
        "--scaling",
        nargs="+",
        default=[],
        metavar="DIR",
        help="`sfm scaling fit` report folders (fit.json + PNGs) to include",
    )


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "leaderboard", help="rank results files and write the leaderboard", description=DESCRIPTION
    )
    add_arguments(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Load, rank, write; malformed results files are warnings, and only "nothing valid" is an error.

    Raises:
        SfmError: a bad ``--out``, no valid results file, an unknown ``--baseline``, or an unwritable folder.
    """
    from sfm.publish.leaderboard import build_leaderboard, fmt_num, load_results, write_leaderboard

    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out}: exists and is not a folder")
    loaded, warnings = load_results(args.results)
    for w in warnings:
        print(f"warning: {w}", file=sys.stderr)
    if not loaded:
        raise DataError(f"no valid results file among {', '.join(args.results)}")
    lb = build_leaderboard(loaded, baseline=args.baseline)
    try:
        paths = write_leaderboard(lb, out, scaling=args.scaling)
    except OSError as exc:  # the output folder cannot be written
        raise DataError(f"cannot write the leaderboard into {out}: {exc}") from None
    for note in lb.notes:
        print(f"note: {note}", file=sys.stderr)
    for r in lb.rows[:10]:
        print(f"{r.rank or '-':>3}  {r.name:<36} {r.kind:<10} {fmt_num(r.score):>8}  ({r.n_scored} task(s))")
    print("wrote " + ", ".join(str(p) for p in paths.values()))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """``python eval/leaderboard.py RESULTS... --out DIR``: the same command outside ``sfm``.

    Returns:
        0, or 2 with one ``leaderboard: error: ...`` line when nothing valid remains or an argument is wrong.
    """
    parser = argparse.ArgumentParser(prog="python eval/leaderboard.py", description=DESCRIPTION)
    add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        return run(args)
    except SfmError as exc:
        print(f"leaderboard: error: {exc}", file=sys.stderr)
        return 2
