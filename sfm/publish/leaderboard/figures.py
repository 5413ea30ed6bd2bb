"""The leaderboard page's plots: error against rollout time, robustness to noise, example fields.

One colour per row in ranking order across every figure, untrained rows (baselines, the oracle) dashed, so a
reader can follow one row from plot to plot.
"""

from __future__ import annotations

import zipfile
from typing import Any

import numpy as np

from sfm.errors import DataError
from sfm.publish import plots
from sfm.publish.leaderboard.model import Leaderboard, TaskTable

MAX_EXAMPLES_PER_TASK = 6  # example-field figures per task: a few models side by side, page stays a few MB


def _styles(lb: Leaderboard) -> dict[str, Any]:
    colors = {r.name: f"C{i % 10}" for i, r in enumerate(lb.rows)}
    return {"colors": colors, "dashed": [r.name for r in lb.rows if not r.trained] + [lb.baseline]}


def _uri(fig: Any) -> str:
    return plots.data_uri(plots.png_bytes(fig))


def _example_figures(lb: Leaderboard, t: TaskTable, notes: list[str]) -> list[tuple[str, str]]:
    figs = []
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
        figs.append((f"{row}: predicted vs. true fields (example 0)", _uri(fig)))
    if len(examples) > MAX_EXAMPLES_PER_TASK:
        notes.append(
            f"{t.key}: example fields of {len(examples) - MAX_EXAMPLES_PER_TASK} more model(s) not drawn"
        )
    return figs


def task_figures(lb: Leaderboard, t: TaskTable, notes: list[str]) -> list[tuple[str, str]]:
    """``(caption, data URI)`` of a task's plots; an unreadable example file becomes a note in ``notes``."""
    figs = []
    style = _styles(lb)
    curves = {n: lb.row(n).entries[t.key].curve for n in t.order if len(lb.row(n).entries[t.key].curve) > 1}
    if curves:
        fig = plots.plot_error_curves(
            curves, metric=t.metric, title=f"{t.key}: error against rollout time", **style
        )
        figs.append((f"{t.metric} on each predicted frame", _uri(fig)))
    if t.noise.get("curves"):
        metric = t.noise.get("metric", t.metric)
        noise = {
            n: tuple(t.noise["curves"][n]) for n in [*t.order, *t.noise["curves"]] if n in t.noise["curves"]
        }
        fig = plots.plot_noise_curves(
            noise, metric=metric, title=f"{t.key}: robustness to input noise", **style
        )
        figs.append((f"{metric} against input noise", _uri(fig)))
    return figs + _example_figures(lb, t, notes)
