"""The ``robustness`` eval family: forecasts from context frames with Gaussian noise added.

Each of the task's ``noise_levels`` is one pass of the forecast family (noise of standard deviation
``level`` x each example's per-field standard deviation, level ``j`` seeded ``seed + j``). The headline
numbers pool the examples of every level; ``extra["noise_curve"]`` holds the primary metric per level and
predictor, the degradation curve the leaderboard plots.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from sfm.harness.context import EvalContext
from sfm.harness.forecast import Forecasts, predict, score_forecasts
from sfm.harness.results import TaskResult
from sfm.harness.scoring import finite, metric_values
from sfm.metrics import aggregate
from sfm.registry import FAMILIES

if TYPE_CHECKING:
    from sfm.harness.tasks import EvalTask


def noise_curve(task: EvalTask, f: Forecasts) -> dict[str, Any]:
    """``{"levels", "metric", <predictor>: [primary metric at each level]}``."""
    m = task.primary_metric
    curve: dict[str, Any] = {"levels": list(f.levels), "metric": m}
    for p, rs in f.by_level.items():
        curve[p] = [finite(aggregate(m, metric_values(m, r.frames, f.fs.targets))) for r in rs]
    return curve


@FAMILIES.register(
    "robustness",
    answers="forecast",
    needs_data=True,
    requires=("noise_levels",),
    description="forecasts from noisy context frames: the error at each noise level",
)
def run(
    task: EvalTask, loaded: Any, ctx: EvalContext
) -> tuple[TaskResult, list[dict[str, Any]], dict[str, np.ndarray]]:
    """Run a robustness task: the pooled scores, the noise curve, per-sample rows and example fields."""
    f = predict(task, loaded, ctx, task.noise_levels)
    result, rows, examples = score_forecasts(task, f, ctx)
    result.extra["noise_curve"] = noise_curve(task, f)
    return result, rows, examples
