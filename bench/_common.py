"""What the field-model benchmarks share: field data and eval-task windows, the harness's rollout and nRMSE.

``bench/fields.py``, ``bench/continuous.py`` and ``bench/eval.py`` build the same Burgers windows the harness
scores; one copy of that set-up lives here so the three cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np


def field_data(d: Any) -> Any:
    """The field data set of a recipe's or task's ``data`` section, generated into the ``$SFM_HOME`` cache
    on first use."""
    from sfm.data import cache, load_field_dataset

    path = cache.resolve_data_path(d.path, d.simulator, d.params, d.num_samples, d.seed)
    cache.ensure_dataset(path, d.simulator, d.params, d.num_samples, d.seed, progress=False)
    return load_field_dataset(path)


def task_windows(name: str, fs: Any = None, fmt: Any = None) -> tuple[Any, Any]:
    """``(task, windows)`` of an eval task (``eval/tasks``): its split, windows per trajectory and rollout
    steps, on its own data and format (or on ``fs`` and ``fmt``, already loaded)."""
    from sfm.harness.tasks import load_task
    from sfm.tasks import get_task_format
    from sfm.tasks.windows import FieldWindows

    task = load_task(name)
    fs = field_data(task.data) if fs is None else fs
    win = FieldWindows.from_split(
        fs.split(task.data.split),
        fs.meta,
        get_task_format("forecast", **task.format) if fmt is None else fmt,
        rollout_steps=task.rollout_steps,
        even=True,
        windows_per_trajectory=task.windows_per_trajectory,
    )
    return task, win


def field_spec(train: Any, fmt: Any) -> Any:
    """The :class:`FieldSpec` of the training windows (training statistics)."""
    from sfm.models.field_io import FieldSpec
    from sfm.tasks.windows import coefficient_stats, field_stats

    mean, std = field_stats(train)
    cmean, cstd = coefficient_stats(train)
    return FieldSpec(
        n_fields=train.n_fields,
        space=list(train.space),
        context_frames=fmt.context_frames,
        horizon=fmt.horizon,
        coefficient_names=list(train.coefficient_names),
        mean=mean.tolist(),
        std=std.tolist(),
        field_names=list(train.meta.fields),
        family=train.meta.family,
        coefficient_mean=cmean.tolist(),
        coefficient_std=cstd.tolist(),
    )


@dataclass
class FunctionPredictor:
    """A plain ``fn(contexts, coefficients) -> frames`` (a baseline) as a harness field predictor."""

    fn: Callable[[np.ndarray, np.ndarray], np.ndarray]
    context_frames: int
    horizon: int = 1
    kind: str = "baseline"

    def predict_frames(self, contexts: np.ndarray, coefficients: np.ndarray, batch_size: int) -> np.ndarray:
        return self.fn(contexts, coefficients)


def rollout(predictor: Any, batch: dict[str, np.ndarray], steps: int, batch_size: int = 256) -> np.ndarray:
    """The harness's autoregressive rollout (:func:`sfm.harness.rollout.array_rollout`) of a window batch."""
    from sfm.harness.rollout import array_rollout

    return array_rollout(
        predictor, batch["context"], batch["coefficients"], steps, batch_size=batch_size
    ).frames


def nrmse(pred: np.ndarray, target: np.ndarray) -> float:
    """The harness's nRMSE of field 0 (Burgers has one): per sample and frame, averaged."""
    from sfm.metrics import aggregate, get_metric

    pred, target = np.asarray(pred, dtype=np.float64), np.asarray(target, dtype=np.float64)
    return aggregate("nrmse", get_metric("nrmse")(pred[:, :, 0], target[:, :, 0]))
