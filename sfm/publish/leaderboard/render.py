"""Outputs of the leaderboard: Markdown, CSV, JSON, and one self-contained HTML page with plots.

The tables are built once, as header + rows of text, and both pages render the same cells from the same
context, so the Markdown and HTML cannot disagree; their prose is in ``templates/leaderboard.{md,html}`` and
the macros both share (``templates/leaderboard_prose.j2``). The HTML page embeds its plots as base64 PNG and
its style inline: it opens from a laptop, a CI artifact or an e-mail with no other file and no network.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import sfm
from sfm.harness.report import fmt_value
from sfm.publish import plots
from sfm.publish.kinds import BUDGET_KEYS, KIND_ORDER, ORACLE, budget_cell
from sfm.publish.leaderboard.build import fmt_num
from sfm.publish.leaderboard.figures import task_figures
from sfm.publish.leaderboard.model import Entry, Leaderboard, Row, TaskTable
from sfm.publish.leaderboard.scaling import ScalingReport, load_scaling
from sfm.publish.templating import render
from sfm.utils.io import atomic_write_json, atomic_write_text
from sfm.utils.provenance import now_iso

FILES = {
    "md": "leaderboard.md",
    "csv": "leaderboard.csv",
    "json": "leaderboard.json",
    "html": "leaderboard.html",
}
ROW_COLUMNS = ["rank", "name", "kind", "score", "n_scored"]
TASK_COLUMNS = ["task", "version", "current", "metric", "higher_is_better"]
ENTRY_COLUMNS = ["value", "ci_low", "ci_high", "n", "validity", "reference", "ratio", "source"]
CONTAMINATION_COLUMNS = ["contaminated", "contamination_of"]  # eval trajectories trained on, of those scored
CSV_COLUMNS = ROW_COLUMNS + TASK_COLUMNS + ENTRY_COLUMNS + list(BUDGET_KEYS) + CONTAMINATION_COLUMNS
BUDGET_HEADER = ["name", "kind", "steps", "examples seen", "CPU-seconds"]


# -- tables -------------------------------------------------------------------------------------------


def _arrow(t: TaskTable) -> str:
    return "↑" if t.higher_is_better else "↓"


def contamination_mark(e: Entry) -> str:
    """`` ⚠ contaminated (k/n)`` when ``k`` of the ``n`` eval trajectories were trained on, else ``""``."""
    c = e.contamination
    return f" ⚠ contaminated ({c.overlapping}/{c.of})" if c is not None and c.contaminated else ""


def _validity(row: Row, tasks: list[TaskTable]) -> str:
    if not row.trained:
        return "-"  # a baseline always produces a valid field
    vals = [row.entries[t.key].validity for t in tasks if t.key in row.entries]
    return f"{min(vals):.0%}" if vals else "-"


def overall_table(lb: Leaderboard) -> tuple[list[str], list[list[str]]]:
    """The ranking: rank, name, kind, score, tasks scored, each current task's primary metric, validity."""
    current = [t for t in lb.tasks if t.current]
    header = ["rank", "name", "kind", f"score (geo-mean ratio to {lb.baseline}) ↓", "tasks"]
    header += [f"{t.task} v{t.version}: {t.metric} {_arrow(t)}" for t in current] + ["validity (min)"]
    rows = []
    for r in lb.rows:
        cells = [str(r.rank or "-"), r.name, r.kind, fmt_num(r.score), f"{r.n_scored}/{len(current)}"]
        cells += [
            fmt_value(r.entries[t.key].value) + contamination_mark(r.entries[t.key])
            if t.key in r.entries
            else "-"
            for t in current
        ]
        rows.append([*cells, _validity(r, current)])
    return header, rows


def task_table(lb: Leaderboard, t: TaskTable) -> tuple[list[str], list[list[str]]]:
    """One task version, best first: value with CI, ratio to the reference, validity, n, source."""
    header = ["#", "name", "kind", f"{t.metric} {_arrow(t)} [95% CI]", f"ratio to {lb.baseline}"]
    header += ["validity", "n", "source"]
    rows = []
    for i, name in enumerate(t.order, start=1):
        r = lb.row(name)
        e = r.entries[t.key]
        validity = f"{e.validity:.0%}" if r.trained else "-"
        label = name + contamination_mark(e)
        rows.append(
            [str(i), label, r.kind, fmt_value(e.value), fmt_num(e.ratio), validity, str(e.value.n), e.source]
        )
    return header, rows


def budget_table(lb: Leaderboard) -> tuple[list[str], list[list[str]]]:
    """Each trained row's budget: steps, examples seen, CPU-seconds ("–" where not recorded)."""
    rows = [
        [r.name, r.kind, *(budget_cell(r.budget.get(k)) for k in BUDGET_KEYS)] for r in lb.rows if r.trained
    ]
    return list(BUDGET_HEADER), rows


def equal_budgets(lb: Leaderboard) -> list[dict[str, Any]]:
    """Groups of two or more trained rows whose recorded budgets are identical (all three numbers known)."""
    groups: dict[tuple[Any, ...], list[str]] = {}
    for r in lb.rows:
        values = tuple(r.budget.get(k) for k in BUDGET_KEYS)
        if r.trained and None not in values:
            groups.setdefault(values, []).append(r.name)
    return [
        {"names": names, "budget": dict(zip(BUDGET_KEYS, map(budget_cell, values)))}
        for values, names in groups.items()
        if len(names) > 1
    ]


def _kinds(lb: Leaderboard) -> list[str]:
    present = {r.kind for r in lb.rows}
    return [k for k in KIND_ORDER if k in present] + sorted(present - set(KIND_ORDER))


def _oracles(lb: Leaderboard) -> list[str]:
    return list(dict.fromkeys(r.name.split(" [", 1)[0] for r in lb.rows if r.kind == ORACLE))


# -- formats ------------------------------------------------------------------------------------------


def _context(lb: Leaderboard, notes: list[str]) -> dict[str, Any]:
    """What both pages show, as text cells and names (the prose is in the templates)."""
    return {
        "baseline": lb.baseline,
        "overall": overall_table(lb),
        "kinds": _kinds(lb),
        "oracles": _oracles(lb),
        "budgets": budget_table(lb),
        "equal_budgets": equal_budgets(lb),
        "notes": notes,
        "version": sfm.__version__,
    }


def to_markdown(lb: Leaderboard, scaling: Sequence[ScalingReport], notes: list[str]) -> str:
    """The Markdown page: overall ranking, kinds and budgets, notes, one table per task version, scaling."""
    tasks = [{"task": t, "table": task_table(lb, t)} for t in lb.tasks]
    return render("leaderboard.md", **_context(lb, notes), tasks=tasks, scaling=scaling)


def to_html(lb: Leaderboard, scaling: Sequence[ScalingReport], notes: list[str]) -> str:
    """The self-contained page (tables, plots as base64 PNG, inline style); plotting may add to ``notes``."""
    tasks = [{"task": t, "table": task_table(lb, t), "figures": task_figures(lb, t, notes)} for t in lb.tasks]
    scal = [
        {
            "folder": s.folder,
            "header": s.header,
            "rows": s.rows,
            "figures": [(n, plots.data_uri(b)) for n, b in s.pngs],
        }
        for s in scaling
    ]
    return render("leaderboard.html", **_context(lb, notes), tasks=tasks, scaling=scal, date=now_iso())


def _cell(x: Any) -> Any:
    if x is None:
        return ""
    return repr(x) if isinstance(x, float) else x  # repr: the exact float, so the CSV round-trips


def to_csv(lb: Leaderboard) -> str:
    """One line per (row, task version): tidy, for spreadsheets and pandas."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(CSV_COLUMNS)
    for r in lb.rows:
        for t in lb.tasks:
            e = r.entries.get(t.key)
            if e is None:
                continue
            v = e.value
            cells = [r.rank, r.name, r.kind, r.score, r.n_scored]
            cells += [t.task, t.version, t.current, t.metric, t.higher_is_better]
            cells += [v.value, v.ci_low, v.ci_high, v.n, e.validity, e.reference, e.ratio, e.source]
            cells += [r.budget.get(k) for k in BUDGET_KEYS]
            c = e.contamination
            cells += [c.overlapping, c.of] if c is not None else [None, None]
            w.writerow([_cell(x) for x in cells])
    return buf.getvalue()


def to_json(lb: Leaderboard, scaling: Sequence[ScalingReport], notes: list[str]) -> dict[str, Any]:
    """Everything, as plain data (a non-finite score is null with ``"score_infinite": true``)."""
    rows = []
    for r in lb.rows:
        d = asdict(r)
        d["score_infinite"] = r.score is not None and math.isinf(r.score)
        rows.append(d)
    return {
        "baseline": lb.baseline,
        "rows": rows,
        "tasks": [asdict(t) for t in lb.tasks],
        "notes": notes,
        "scaling": [
            {"folder": s.folder, "header": s.header, "rows": s.rows, "plots": [n for n, _ in s.pngs]}
            for s in scaling
        ],
        "sfm_version": sfm.__version__,
        "date": now_iso(),
    }


def write_leaderboard(
    lb: Leaderboard, out: str | Path, *, scaling: Sequence[str | Path] | None = None
) -> dict[str, Path]:
    """Write ``leaderboard.md``, ``.csv``, ``.json`` and the self-contained ``.html`` into ``out``.

    Everything (plots included) is rendered in memory first, then each file is written through a temporary
    file and a rename: an error leaves the previous outputs untouched, a reader never sees half a file, and
    other files in ``out`` are kept.

    Args:
        lb: The leaderboard.
        out: Output folder (created).
        scaling: ``sfm scaling fit`` report folders whose ``fit.json`` exponents and PNGs are included.

    Returns:
        ``{"md": path, "csv": path, "json": path, "html": path}``.
    """
    reports, notes = load_scaling(list(scaling or []))
    notes = list(lb.notes) + notes
    html = to_html(lb, reports, notes)  # first: plotting may add notes (unreadable example files)
    texts = {"md": to_markdown(lb, reports, notes), "csv": to_csv(lb), "html": html}
    data = to_json(lb, reports, notes)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = {k: out / name for k, name in FILES.items()}
    for k, text in texts.items():
        atomic_write_text(paths[k], text)
    atomic_write_json(paths["json"], data)
    return paths
