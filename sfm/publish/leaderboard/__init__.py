"""The leaderboard: rank models and baselines from typed results files, write md/csv/json/html.

    sfm leaderboard results/ --out leaderboard/ [--baseline persistence] [--scaling fits/]
    python eval/leaderboard.py results/ --out leaderboard/      # the same command

* :mod:`.model`: the typed rows, entries and task tables;
* :mod:`.load`: finding and reading ``results.json`` files (malformed ones become warnings);
* :mod:`.build`: ranking (the rules are in its docstring);
* :mod:`.render`: Markdown, CSV, JSON and the self-contained HTML page (prose in ``templates/``);
* :mod:`.figures`, :mod:`.scaling`: the page's plots and its scaling section.
"""

from sfm.publish.leaderboard.build import build_leaderboard, fmt_num
from sfm.publish.leaderboard.load import find_results, load_results
from sfm.publish.leaderboard.model import Entry, Leaderboard, Row, TaskTable, task_key
from sfm.publish.leaderboard.render import write_leaderboard

__all__ = [
    "Entry",
    "Leaderboard",
    "Row",
    "TaskTable",
    "build_leaderboard",
    "find_results",
    "fmt_num",
    "load_results",
    "task_key",
    "write_leaderboard",
]
