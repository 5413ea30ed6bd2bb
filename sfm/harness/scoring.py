"""Scoring shared by every eval family: per-sample metric values, reported numbers with bootstrap intervals,
time windows and per-frame curves, the example limit, the result header, and the sharded run under
``accelerate launch`` (each process computes its share of the examples, every process gets them all).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

from sfm.harness.results import MetricValue, Scores, TaskResult
from sfm.metrics import aggregate, bootstrap_ci, get_metric
from sfm.registry import METRICS

if TYPE_CHECKING:
    from sfm.harness.tasks import EvalTask

T = TypeVar("T")


def finite(x: float | None) -> float | None:
    """``x`` as a float, or None where it is missing or not finite (JSON has no NaN)."""
    return float(x) if x is not None and np.isfinite(x) else None


def metric_values(metric: str, pred: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Per-sample values of field metric ``metric`` on ``[N, F, C, *space]`` for every field, stacked on a
    trailing axis (fields are averaged last, after the sample axis is reduced: PDEBench's channel order)."""
    fn = get_metric(metric)
    return np.stack([np.asarray(fn(pred[:, :, c], target[:, :, c])) for c in range(pred.shape[2])], axis=-1)


def metric_value(metric: str, vals: np.ndarray, n_boot: int, seed: int) -> MetricValue:
    """The reported number of per-sample values ``vals`` of ``metric``, with its bootstrap interval."""
    v = aggregate(metric, vals)
    lo, hi = bootstrap_ci(metric, vals, n_resamples=n_boot, seed=seed) if n_boot else (None, None)
    return MetricValue(finite(v), finite(lo), finite(hi), int(vals.shape[0]))


def scores_of(per_sample: dict[str, np.ndarray], n_boot: int, seed: int) -> Scores:
    """Scores of per-sample values by metric (an empty array has no value: ``None``, ``n = 0``)."""
    return Scores(
        metrics={
            m: metric_value(m, v, n_boot, seed) if v.size else MetricValue(None, n=0)
            for m, v in per_sample.items()
        }
    )


def score_fields(
    pred: np.ndarray,
    target: np.ndarray,
    metrics: list[str],
    windows: dict[str, list[int]],
    *,
    n_boot: int = 1000,
    seed: int = 0,
    curve_metric: str | None = None,
) -> Scores:
    """Scores of predicted frames ``[N, F, C, *space]`` against the true ones: every metric over all frames
    and over each window ``[start, stop)`` (clipped to ``F``; empty ones skipped), and the per-frame curve
    of ``curve_metric``."""
    out = Scores()
    n_frames = pred.shape[1]
    for metric in metrics:
        out.metrics[metric] = metric_value(metric, metric_values(metric, pred, target), n_boot, seed)
    for name, (a, b) in windows.items():
        b = min(b, n_frames)
        if a < b:
            out.windows[name] = {
                m: metric_value(m, metric_values(m, pred[:, a:b], target[:, a:b]), n_boot, seed)
                for m in metrics
            }
    if curve_metric:
        out.curves[curve_metric] = [
            finite(
                aggregate(curve_metric, metric_values(curve_metric, pred[:, t : t + 1], target[:, t : t + 1]))
            )
            for t in range(n_frames)
        ]
    return out


def min_limit(*limits: int | None) -> int | None:
    """The smallest of the limits that are set (the task's own and ``sfm eval --limit``), or None."""
    vals = [v for v in limits if v is not None]
    return min(vals) if vals else None


def new_result(task: EvalTask, *, n_examples: int, data_fingerprint: str | None) -> TaskResult:
    """The header of a task's result (name, version, family, primary metric and its direction, config)."""
    from sfm.config import to_dict

    return TaskResult(
        task=task.task,
        version=task.version,
        family=task.family,
        primary_metric=task.primary_metric,
        higher_is_better=bool(METRICS.meta(task.primary_metric).get("higher_is_better", False)),
        n_examples=n_examples,
        config=to_dict(task),
        data_fingerprint=data_fingerprint,
    )


def sharded(fn: Callable[[np.ndarray], Sequence[T]], n: int, state: Any = None) -> list[T]:
    """``fn(indices)`` (one output per index) over ``range(n)``, split across processes and gathered.

    With one process (``state`` None, or ``state.num_processes == 1``) this is ``fn(arange(n))``. Under
    ``accelerate launch`` each process computes its contiguous share and every process receives all
    ``n`` outputs in index order, so every rank scores the same examples (only the main one writes).

    Args:
        fn: Computes the outputs of the examples at the given indices, in that order.
        n: Number of examples.
        state: An ``accelerate.PartialState`` or None.
    """
    if state is None or getattr(state, "num_processes", 1) == 1:
        return list(fn(np.arange(n)))
    from accelerate.utils import gather_object

    with state.split_between_processes(list(range(n))) as mine:
        part = list(fn(np.asarray(mine, dtype=np.int64))) if mine else []
        pieces = gather_object([(list(mine), part)])
    out: list[Any] = [None] * n
    for idx, outs in pieces:
        for i, o in zip(idx, outs):
            out[i] = o
    return out
