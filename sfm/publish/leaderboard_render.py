"""Outputs of :mod:`sfm.publish.leaderboard`: Markdown, CSV, JSON, and one self-contained HTML page with plots.

The tables are built once, as header + rows of text, and every format renders the same cells, so the
Markdown and HTML cannot disagree. The HTML page embeds its plots as base64 PNG and its style inline: it
opens from a laptop, a CI artifact or an e-mail with no other file and no network.
"""

from __future__ import annotations

import csv
import io
import math
import zipfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import jinja2
import numpy as np

import sfm
from sfm.errors import DataError
from sfm.harness.report import fmt_value
from sfm.publish import plots
from sfm.publish.leaderboard import Leaderboard, Row, TaskTable
from sfm.utils.io import atomic_write_json, atomic_write_text, read_json
from sfm.utils.provenance import now_iso

FILES = {
    "md": "leaderboard.md",
    "csv": "leaderboard.csv",
    "json": "leaderboard.json",
    "html": "leaderboard.html",
}
TEMPLATE = Path(__file__).with_name("templates") / "leaderboard.html"
MAX_EXAMPLES_PER_TASK = 6  # example-field figures per task: a few models side by side, page stays a few MB
CSV_COLUMNS = [
    "rank",
    "name",
    "kind",
    "score",
    "n_scored",
    "task",
    "version",
    "current",
    "metric",
    "higher_is_better",
    "value",
    "ci_low",
    "ci_high",
    "n",
    "validity",
    "reference",
    "ratio",
    "source",
]


@dataclass
class ScalingReport:
    """What the page shows of one ``sfm scaling fit`` folder: a table of fitted exponents and its PNGs."""

    folder: str
    header: list[str] = field(default_factory=list)
    rows: list[list[str]] = field(default_factory=list)
    pngs: list[tuple[str, bytes]] = field(default_factory=list)


# -- tables -------------------------------------------------------------------------------------------


def _num(x: float | None) -> str:
    if x is None:
        return "n/a"
    return "inf" if math.isinf(x) else f"{x:.4g}"


def _arrow(t: TaskTable) -> str:
    return "↑" if t.higher_is_better else "↓"


def _validity(row: Row, tasks: list[TaskTable]) -> str:
    if row.kind != "model":
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
        cells = [str(r.rank or "-"), r.name, r.kind, _num(r.score), f"{r.n_scored}/{len(current)}"]
        cells += [fmt_value(r.entries[t.key].value) if t.key in r.entries else "-" for t in current]
        rows.append([*cells, _validity(r, current)])
    return header, rows


def task_table(lb: Leaderboard, t: TaskTable) -> tuple[list[str], list[list[str]]]:
    """One task version, best first: value with CI, ratio to the reference, validity, n, source."""
    header = [
        "#",
        "name",
        "kind",
        f"{t.metric} {_arrow(t)} [95% CI]",
        f"ratio to {lb.baseline}",
        "validity",
        "n",
        "source",
    ]
    rows = []
    for i, name in enumerate(t.order, start=1):
        r = lb.row(name)
        e = r.entries[t.key]
        validity = f"{e.validity:.0%}" if r.kind == "model" else "-"
        rows.append(
            [str(i), name, r.kind, fmt_value(e.value), _num(e.ratio), validity, str(e.value.n), e.source]
        )
    return header, rows


def _md_table(header: list[str], rows: list[list[str]]) -> str:
    def esc(c: str) -> str:
        return c.replace("|", "\\|")

    lines = ["| " + " | ".join(map(esc, header)) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(map(esc, r)) + " |" for r in rows])


# -- scaling reports ----------------------------------------------------------------------------------


def _param(p: Any) -> str:
    if not isinstance(p, dict) or not isinstance(p.get("value"), int | float):
        return "n/a"
    iv = p.get("interval")
    ok = isinstance(iv, list | tuple) and len(iv) == 2 and all(isinstance(v, int | float) for v in iv)
    return f"{p['value']:.3g} [{iv[0]:.3g}, {iv[1]:.3g}]" if ok else f"{p['value']:.3g}"


def _fit_row(kind: str, fit: dict[str, Any]) -> list[str]:
    params = fit.get("params") if isinstance(fit.get("params"), dict) else {}
    others = "; ".join(f"{k} = {_param(v)}" for k, v in params.items() if k not in ("alpha", "beta"))
    r2 = fit.get("r2_log")
    return [
        f"{kind} {fit.get('id', '?')}",
        str(fit.get("law", "-")),
        str(fit.get("n_points", "-")),
        _param(params["alpha"]) if "alpha" in params else "-",
        _param(params["beta"]) if "beta" in params else "-",
        others or "-",
        f"{r2:.3f}" if isinstance(r2, int | float) else "-",
    ]


def load_scaling(folders: list[str | Path]) -> tuple[list[ScalingReport], list[str]]:
    """Read ``sfm scaling fit`` folders defensively: a missing or odd ``fit.json`` is a warning, not an error.

    Returns:
        One report per folder (its exponent table and PNGs) and the warnings.
    """
    reports, warnings = [], []
    for folder in map(Path, folders):
        if not folder.is_dir():
            warnings.append(f"--scaling {folder}: no such folder")
            continue
        rep = ScalingReport(
            str(folder), ["fit", "law", "points", "alpha", "beta", "other parameters", "R² (log)"]
        )
        try:
            fit = read_json(folder / "fit.json")
        except (OSError, ValueError) as exc:
            warnings.append(f"--scaling {folder}: no readable fit.json ({exc}); showing its plots only")
            fit = {}
        for kind, key in (("curve", "curves"), ("joint", "joint")):
            items = fit.get(key, []) if isinstance(fit, dict) else []
            rep.rows += (
                [_fit_row(kind, c) for c in items if isinstance(c, dict)] if isinstance(items, list) else []
            )
        rep.pngs = [(p.name, p.read_bytes()) for p in sorted(folder.glob("*.png"))]
        if fit and not rep.rows:
            warnings.append(f"--scaling {folder}: fit.json has no 'curves' or 'joint' fits")
        reports.append(rep)
    return reports, warnings


# -- figures ------------------------------------------------------------------------------------------


def _styles(lb: Leaderboard) -> dict[str, Any]:
    """One colour per row (in ranking order) across every figure; baselines dashed."""
    colors = {r.name: f"C{i % 10}" for i, r in enumerate(lb.rows)}
    return {"colors": colors, "dashed": [r.name for r in lb.rows if r.kind == "baseline"] + [lb.baseline]}


def task_figures(lb: Leaderboard, t: TaskTable, notes: list[str]) -> list[tuple[str, str]]:
    """``(caption, data URI)`` of a task's plots: error against rollout time, noise curve, example fields."""
    figs = []
    style = _styles(lb)
    curves = {n: lb.row(n).entries[t.key].curve for n in t.order if len(lb.row(n).entries[t.key].curve) > 1}
    if curves:
        fig = plots.plot_error_curves(
            curves, metric=t.metric, title=f"{t.key}: error against rollout time", **style
        )
        figs.append((f"{t.metric} on each predicted frame", plots.data_uri(plots.png_bytes(fig))))
    if t.noise.get("curves"):
        metric = t.noise.get("metric", t.metric)
        noise = {
            n: tuple(t.noise["curves"][n]) for n in [*t.order, *t.noise["curves"]] if n in t.noise["curves"]
        }
        fig = plots.plot_noise_curves(
            noise, metric=metric, title=f"{t.key}: robustness to input noise", **style
        )
        figs.append((f"{metric} against input noise", plots.data_uri(plots.png_bytes(fig))))
    examples = [(row, path, name) for key, row, path, name in lb.examples if key == t.key]
    for row, path, name in examples[:MAX_EXAMPLES_PER_TASK]:
        try:
            with np.load(path) as z:
                arrays = {k: z[k] for k in z.files}
            fig = plots.plot_example(
                arrays, predictors=("model", lb.baseline), field=name, title=f"{row} on {t.key}"
            )
        except (OSError, ValueError, zipfile.BadZipFile, DataError) as exc:
            notes.append(f"{path}: example fields not plotted ({exc})")
            continue
        figs.append((f"{row}: predicted vs. true fields (example 0)", plots.data_uri(plots.png_bytes(fig))))
    if len(examples) > MAX_EXAMPLES_PER_TASK:
        notes.append(
            f"{t.key}: example fields of {len(examples) - MAX_EXAMPLES_PER_TASK} more model(s) not drawn"
        )
    return figs


# -- formats ------------------------------------------------------------------------------------------


def to_markdown(lb: Leaderboard, scaling: list[ScalingReport], notes: list[str]) -> str:
    """The Markdown page: notes, overall ranking, one table per task version, scaling exponents."""
    parts = [
        "# sfm leaderboard",
        "",
        f"Overall score: geometric mean over tasks of each row's primary error divided by {lb.baseline}'s "
        "on the same task (inverted for higher-is-better metrics); lower is better, "
        f"{lb.baseline} scores 1. Plots are in `leaderboard.html`.",
        "",
        _md_table(*overall_table(lb)),
        "",
    ]
    if notes:
        parts += ["## Notes", "", *[f"- {n}" for n in notes], ""]
    for t in lb.tasks:
        old = "" if t.current else " (older version: not in the overall score)"
        parts += [f"## {t.task} (v{t.version}, {t.family}){old}", "", _md_table(*task_table(lb, t)), ""]
    for rep in scaling:
        parts += [f"## Scaling fits: {rep.folder}", ""]
        parts += [_md_table(rep.header, rep.rows), ""] if rep.rows else []
        parts += [f"Plots: {', '.join(f'`{n}`' for n, _ in rep.pngs)}", ""] if rep.pngs else []
    return "\n".join(parts)


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
            w.writerow(
                [
                    _cell(x)
                    for x in (
                        r.rank,
                        r.name,
                        r.kind,
                        r.score,
                        r.n_scored,
                        t.task,
                        t.version,
                        t.current,
                        t.metric,
                        t.higher_is_better,
                        v.value,
                        v.ci_low,
                        v.ci_high,
                        v.n,
                        e.validity,
                        e.reference,
                        e.ratio,
                        e.source,
                    )
                ]
            )
    return buf.getvalue()


def to_json(lb: Leaderboard, scaling: list[ScalingReport], notes: list[str]) -> dict[str, Any]:
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


def to_html(lb: Leaderboard, scaling: list[ScalingReport], notes: list[str]) -> str:
    """The self-contained page (tables, plots as base64 PNG, inline style)."""
    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
    template = env.from_string(TEMPLATE.read_text(encoding="utf-8"))
    tasks = [
        {
            "title": f"{t.task} (v{t.version}, {t.family})",
            "current": t.current,
            "table": task_table(lb, t),
            "figures": task_figures(lb, t, notes),
        }
        for t in lb.tasks
    ]
    scal = [
        {
            "folder": s.folder,
            "header": s.header,
            "rows": s.rows,
            "figures": [(n, plots.data_uri(b)) for n, b in s.pngs],
        }
        for s in scaling
    ]
    return template.render(
        baseline=lb.baseline,
        overall=overall_table(lb),
        tasks=tasks,
        scaling=scal,
        notes=notes,
        version=sfm.__version__,
        date=now_iso(),
    )


def write_all(lb: Leaderboard, out: Path, *, scaling: list[str | Path]) -> dict[str, Path]:
    """Render every format in memory, then write each file atomically (see :func:`write_leaderboard`)."""
    reports, notes = load_scaling(scaling)
    notes = list(lb.notes) + notes
    html = to_html(lb, reports, notes)  # first: plotting may add notes (unreadable example files)
    texts = {"md": to_markdown(lb, reports, notes), "csv": to_csv(lb), "html": html}
    data = to_json(lb, reports, notes)
    out.mkdir(parents=True, exist_ok=True)
    paths = {k: out / name for k, name in FILES.items()}
    for k, text in texts.items():
        atomic_write_text(paths[k], text)
    atomic_write_json(paths["json"], data)
    return paths
