"""The model card's plots: error against rollout time and robustness to noise, as PNG files beside the card."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sfm.harness.results import TaskResult
from sfm.publish import plots
from sfm.utils.io import atomic_write_bytes


def _task_figures(t: TaskResult, slug: str) -> list[tuple[str, str, Any]]:
    """``(file name, caption, figure)`` of one task."""
    m = t.primary_metric
    curves = {"model": t.model.curves.get(m, []), **{b: s.curves.get(m, []) for b, s in t.baselines.items()}}
    curves = {k: v for k, v in curves.items() if len(v) > 1}
    drawn = []
    if curves:
        fig = plots.plot_error_curves(curves, metric=m, title=t.task, dashed=list(t.baselines))
        drawn.append((f"{slug}_rollout.png", f"{t.task}: {m} on each predicted frame", fig))
    nc = t.extra.get("noise_curve") if isinstance(t.extra, dict) else None
    if isinstance(nc, dict) and isinstance(nc.get("levels"), list):
        lines = {
            k: (nc["levels"], v)
            for k, v in nc.items()
            if k not in ("levels", "metric") and isinstance(v, list) and len(v) == len(nc["levels"])
        }
        metric = nc.get("metric", m)
        fig = plots.plot_noise_curves(lines, metric=metric, title=t.task, dashed=list(t.baselines))
        drawn.append((f"{slug}_noise.png", f"{t.task}: {metric} against input noise", fig))
    return drawn


def draw_figures(tasks: Sequence[TaskResult], folder: Path, link: str) -> list[tuple[str, str]]:
    """Draw each task's error-vs-rollout-time and noise curves into ``folder`` as PNG.

    Returns:
        ``(caption, link/<file>)`` per figure, for the card's image links.
    """
    figs = []
    for t in tasks:
        for name, caption, fig in _task_figures(t, t.task.replace("/", "__") + f"_v{t.version}"):
            atomic_write_bytes(Path(folder) / name, plots.png_bytes(fig))
            figs.append((caption, f"{link}/{name}"))
    return figs
