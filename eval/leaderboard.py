"""Rank models and baselines from sfm results files; write leaderboard.{md,csv,json,html}.

    python eval/leaderboard.py results/ --out leaderboard/
    python eval/leaderboard.py results/a/results.json results/b --out leaderboard/ --baseline persistence
    python eval/leaderboard.py results/ --out leaderboard/ --scaling sweeps/burgers/fit

The same command as ``sfm leaderboard``: this thin script calls :func:`sfm.commands.leaderboard.main`, and
the ranking itself lives in :mod:`sfm.publish.leaderboard`.
"""

import sys

from sfm.commands.leaderboard import main

if __name__ == "__main__":
    sys.exit(main())
