"""Finding and reading results files for the leaderboard (and for ``sfm card``).

Only the typed schema is read: every ``results.json`` goes through :meth:`EvalResults.load`, and one that is
unreadable or malformed is skipped with a warning naming it, so one bad file never hides the others.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from sfm.errors import DataError
from sfm.harness.results import RESULTS_FILE, EvalResults


def find_results(paths: Iterable[str | Path]) -> tuple[list[Path], list[str]]:
    """Results files named by ``paths`` (files, or folders searched recursively), and warnings."""
    files: list[Path] = []
    warnings: list[str] = []
    for p in map(Path, paths):
        if p.is_dir():
            found = sorted(p.rglob(RESULTS_FILE))
            if not found:
                warnings.append(f"{p}: no {RESULTS_FILE} under this folder")
            files += found
        elif p.is_file():
            files.append(p)
        else:
            warnings.append(f"{p}: no such file or folder")
    unique = list(dict.fromkeys(f.resolve() for f in files))
    return unique, warnings


def load_results(paths: Iterable[str | Path]) -> tuple[list[tuple[Path, EvalResults]], list[str]]:
    """Load every results file under ``paths``; malformed ones are skipped with a warning naming them.

    Returns:
        ``([(path, results), ...], warnings)``.
    """
    files, warnings = find_results(paths)
    loaded = []
    for f in files:
        try:
            loaded.append((f, EvalResults.load(f)))
        except DataError as exc:
            warnings.append(f"skipped {exc}")
    return loaded, warnings
