"""A sweep's cells as a Markdown table: one row per arm and metric, one column per data size.

Each entry is the mean over seeds with their range ``[min, max]`` beside it, so a README table can be checked
against the committed ``cells.csv`` by regenerating it (``tests/scaling/test_laptop.py``); the baselines
(persistence, linear extrapolation) score the same test windows at every size and close the table.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from sfm.scaling.table import load_table

TABLE_START = "<!-- scaling-table:start -->"
TABLE_END = "<!-- scaling-table:end -->"
BASELINES = ("persistence", "linear")


def cells_markdown(
    table: Any,
    metrics: Sequence[tuple[str, str]] = (
        ("nrmse", "one-step nRMSE"),
        ("rollout.nrmse", "10-step rollout nRMSE"),
    ),
    *,
    arms: Sequence[str] | None = None,
) -> str:
    """The Markdown table of a sweep's ``cells.csv`` (or any table :func:`~sfm.scaling.table.load_table` reads).

    Args:
        table: The results table.
        metrics: ``(column, label)`` pairs; a row per arm and metric.
        arms: Arms in row order (default: order of first appearance).

    Returns:
        The table, with a header line; entries read ``mean [min, max]`` over seeds, to 3 significant digits.
    """
    t = load_table(table)
    sizes = sorted({int(v) for v in t.numeric("data_size")})
    arm_col = t.column("arm")
    arms = list(arms) if arms is not None else list(dict.fromkeys(arm_col))
    n = t.numeric("data_size")
    lines = [
        "| arm | metric | " + " | ".join(f"n={s}" for s in sizes) + " |",
        "|---|---|" + "---|" * len(sizes),
    ]
    for column, label in metrics:
        values = t.numeric(column)
        for arm in arms:
            cells = [_entry(values[(arm_col == arm) & (n == s)]) for s in sizes]
            lines.append(f"| {arm} | {label} | " + " | ".join(cells) + " |")
    for b in BASELINES:
        col = f"{b}_nrmse"
        if col in t.columns:
            v = t.numeric(col)
            cells = [_fmt(float(np.nanmean(v[n == s]))) for s in sizes]
            lines.append(f"| {b} (baseline) | one-step nRMSE | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def between_markers(text: str, key: str = "") -> str | None:
    """The text between :data:`TABLE_START` and :data:`TABLE_END` (stripped), or None without them.

    ``key`` names a second table of the same page: ``<!-- scaling-table:KEY:start -->`` ... ``:end -->``.
    """
    start, end = (
        (TABLE_START, TABLE_END)
        if not key
        else (f"<!-- scaling-table:{key}:start -->", f"<!-- scaling-table:{key}:end -->")
    )
    if start not in text or end not in text:
        return None
    return text.split(start, 1)[1].split(end, 1)[0].strip()


def _entry(v: np.ndarray) -> str:
    v = v[np.isfinite(v)]
    if v.size == 0:
        return "—"
    if v.size == 1:
        return _fmt(float(v[0]))
    return f"{_fmt(float(v.mean()))} [{_fmt(float(v.min()))}, {_fmt(float(v.max()))}]"


def _fmt(x: float) -> str:
    return f"{x:.3g}"
