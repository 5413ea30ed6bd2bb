"""Rank models and baselines from sfm results files; write leaderboard.{md,csv,json,html}.

    python eval/leaderboard.py results/ --out leaderboard/
    python eval/leaderboard.py results/a/results.json results/b --out leaderboard/ --baseline persistence
    python eval/leaderboard.py results/ --out leaderboard/ --scaling sweeps/burgers/fit

The logic lives in :mod:`sfm.publish.leaderboard`; this file is the thin script the docs and CI call.
"""

import sys

from sfm.publish.leaderboard import main

if __name__ == "__main__":
    sys.exit(main())
