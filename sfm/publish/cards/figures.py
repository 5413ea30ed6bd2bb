"""The model card's plots: error against rollout time and robustness to noise, as PNG files beside the card."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sfm.harness.results import TaskResult
from sfm.publish import plots


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _current_umask()  # read once at import: os.umask can only be read by setting it


def _write_bytes(path: Path, data: bytes) -> None:
    """Write through a temporary file and a rename: a reader never sees half a PNG."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp creates 0600; a published figure is readable like any file
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


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
            _write_bytes(Path(folder) / name, plots.png_bytes(fig))
            figs.append((caption, f"{link}/{name}"))
    return figs
