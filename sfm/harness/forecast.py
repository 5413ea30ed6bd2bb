"""The ``forecast`` eval family: one-step forecasts and autoregressive rollouts of held-out trajectories.

Examples are windows of held-out trajectories (:mod:`sfm.harness.forecast_set`): ``context_frames`` frames
in, ``rollout_steps * horizon`` frames out. The model rolls out autoregressively (:mod:`sfm.harness.rollout`:
token models decode their frames, field models return arrays); baselines predict from the same contexts;
every predictor is scored on the same examples with the same metrics, over all predicted frames and over
each named time window. :func:`predict` and :func:`score_forecasts` are also the body of the
``robustness`` and ``consistency`` families, which add their own numbers to the result.

A task may mix PDE families: ``options.sources`` lists further data sets beside ``data`` (the convention of
the identification family, read by the contamination check too). Each source is cut into windows, checked
against the model and rolled out on its own (its own coefficients, training mean and coarse solver); the
examples are then pooled for the task's scores, and ``extra["families"]`` scores each source alone. The
sources must share fields and the grid the model sees.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from sfm.errors import ConfigError
from sfm.harness.compat import check_data, check_format
from sfm.harness.context import EvalContext, load_eval_data
from sfm.harness.forecast_set import ForecastSet, build_forecast_set, coefficient_matrix
from sfm.harness.results import TaskResult
from sfm.harness.rollout import (
    Rollout,
    add_noise,
    baseline_rollout,
    is_field_predictor,
    keep_valid,
    model_rollout,
    predictor_rollout,
)
from sfm.harness.scoring import metric_values, new_result, score_fields
from sfm.registry import FAMILIES

if TYPE_CHECKING:
    from sfm.harness.tasks import EvalData, EvalTask

N_EXAMPLE_FIELDS = 4  # example predictions kept per task for plots
VALIDITY_NOTES = {
    "token": "fraction of the model's (frame, field) outputs that decoded",
    "field": "arrays, no decoding",
}


@dataclass
class Forecasts:
    """Every predictor's rollouts on a task's windows, one per noise level (what the families score).

    Attributes:
        fieldset: The task's data. fmt: Its task format. fs: The windows.
        levels: Noise levels of the passes (``[0.0]`` without noise).
        by_level: Predictor (``model``, baseline names) -> one :class:`Rollout` per level.
        field_model: The model predicts arrays (validity is then 1 by construction).
        source: Per example, the index of its data source (all 0 for a task with one source).
        families: Per source, its PDE family (the data set's ``meta.family``).
    """

    fieldset: Any
    fmt: Any
    fs: ForecastSet
    levels: list[float]
    by_level: dict[str, list[Rollout]]
    field_model: bool = False
    source: np.ndarray | None = None
    families: list[str] = field(default_factory=list)

    @property
    def targets(self) -> np.ndarray:
        """True frames of every pass: ``[len(levels) * N, F, C, *space]``."""
        return np.concatenate([self.fs.targets] * len(self.levels))

    def pooled(self) -> dict[str, Rollout]:
        """Each predictor's rollouts of all levels, stacked like :attr:`targets`."""
        return {
            p: Rollout(np.concatenate([r.frames for r in rs]), np.concatenate([r.valid for r in rs]))
            for p, rs in self.by_level.items()
        }


@dataclass
class ForecastOptions:
    """A forecast task's ``options``.

    Attributes:
        sources: Further data sets (:class:`~sfm.harness.tasks.EvalData` mappings) scored beside ``data``,
            each as its own family and all pooled.
    """

    sources: list[dict[str, Any]] = field(default_factory=list)


def eval_sources(task: EvalTask) -> list[EvalData]:
    """The task's data sets: ``data``, then each of ``options.sources`` (unknown keys name the closest)."""
    from sfm.config import from_dict
    from sfm.harness.tasks import EvalData

    opts = from_dict(ForecastOptions, task.options, where=f"{task.task}: options")
    extra = [
        from_dict(EvalData, d, where=f"{task.task}: options.sources[{i}]") for i, d in enumerate(opts.sources)
    ]
    return [task.data, *extra]


def prepare(
    task: EvalTask, loaded: Any, ctx: EvalContext, data: EvalData | None = None
) -> tuple[Any, Any, ForecastSet]:
    """The task's format, data (``data``, default the task's own) and windows, each checked against the
    trained model before it is used."""
    from sfm.tasks import get_task_format

    data = task.data if data is None else data
    fmt = get_task_format(task.task_format, **task.format)
    check_format(task, loaded, fmt)
    fieldset = load_eval_data(data)
    fs = build_forecast_set(
        fieldset,
        data.split,
        fmt,
        task.rollout_steps,
        windows_per_trajectory=task.windows_per_trajectory,
        limit=ctx.limit_for(task),
    )
    check_data(
        task,
        loaded,
        list(fieldset.meta.fields),
        space=tuple(fs.contexts.shape[3:]),
        coefficient_names=coefficient_matrix(fs.coefficients)[0],
    )
    return fieldset, fmt, fs


def predict(task: EvalTask, loaded: Any, ctx: EvalContext, levels: list[float]) -> Forecasts:
    """Roll out the model (if any) and every baseline once per noise level (level ``j`` seeded ``seed + j``),
    on each of the task's data sources (pooled; see the module docstring)."""
    parts = [_predict_source(task, d, loaded, ctx, levels) for d in eval_sources(task)]
    return parts[0] if len(parts) == 1 else _pool(task, parts)


def _predict_source(
    task: EvalTask, data: EvalData, loaded: Any, ctx: EvalContext, levels: list[float]
) -> Forecasts:
    fieldset, fmt, fs = prepare(task, loaded, ctx, data)
    n_frames = task.rollout_steps * fmt.horizon
    predictors = ([] if loaded is None else ["model"]) + list(task.baselines)
    by_level: dict[str, list[Rollout]] = {p: [] for p in predictors}
    for j, level in enumerate(levels):
        contexts = add_noise(fs.contexts, level, ctx.seed + j)
        for p in predictors:
            if p == "model":
                r = predictor_rollout(
                    loaded,
                    fmt,
                    fs,
                    contexts,
                    task.rollout_steps,
                    batch_size=ctx.batch_size,
                    constrained=task.constrained,
                    state=ctx.state,
                )
            else:
                r = baseline_rollout(p, fs, contexts, n_frames)
            by_level[p].append(r)
    source, families = np.zeros(len(fs), dtype=np.int64), [fieldset.meta.family]
    return Forecasts(fieldset, fmt, fs, list(levels), by_level, is_field_predictor(loaded), source, families)


def _pool(task: EvalTask, parts: list[Forecasts]) -> Forecasts:
    """One :class:`Forecasts` of several sources' examples, in source order (scored as one task)."""
    first = parts[0]
    for k, f in enumerate(parts[1:], start=1):
        if list(f.fieldset.meta.fields) != list(first.fieldset.meta.fields):
            raise ConfigError(
                f"{task.task}: options.sources[{k - 1}] ({f.families[0]}) has fields {f.fieldset.meta.fields}, "
                f"the task's data ({first.families[0]}) has {first.fieldset.meta.fields}; pooled sources need the same"
            )
        if f.fs.targets.shape[1:] != first.fs.targets.shape[1:]:
            raise ConfigError(
                f"{task.task}: options.sources[{k - 1}] ({f.families[0]}) gives frames of shape "
                f"{f.fs.targets.shape[3:]}, the task's data {first.fs.targets.shape[3:]}; pooled sources need one grid"
            )
    fs = ForecastSet(
        np.concatenate([f.fs.contexts for f in parts]),
        np.concatenate([f.fs.targets for f in parts]),
        [c for f in parts for c in f.fs.coefficients],
        np.concatenate([f.fs.trajectory for f in parts]),
        np.concatenate([f.fs.start for f in parts]),
        first.fs.info,  # only the baselines read it, and they ran per source
    )
    by_level = {
        p: [
            Rollout(
                np.concatenate([f.by_level[p][j].frames for f in parts]),
                np.concatenate([f.by_level[p][j].valid for f in parts]),
            )
            for j in range(len(first.levels))
        ]
        for p in first.by_level
    }
    source = np.concatenate([np.full(len(f.fs), k, dtype=np.int64) for k, f in enumerate(parts)])
    families = [f.families[0] for f in parts]
    return Forecasts(
        first.fieldset, first.fmt, fs, first.levels, by_level, first.field_model, source, families
    )


def score_forecasts(
    task: EvalTask, f: Forecasts, ctx: EvalContext
) -> tuple[TaskResult, list[dict[str, Any]], dict[str, np.ndarray]]:
    """Scores of every predictor (levels pooled), per-sample rows and a few example fields for plots."""
    from sfm.utils.provenance import fingerprint_dir

    rollouts, targets = f.pooled(), f.targets
    keep = keep_valid(rollouts, "model") if task.invalid == "drop" else np.ones(targets.shape[0], bool)
    if not keep.any():
        raise ConfigError(f"{task.task}: no example decoded validly; nothing to score (invalid: drop)")
    result = new_result(
        task, n_examples=int(keep.sum()), data_fingerprint=fingerprint_dir(f.fieldset.path, ("*.json",))
    )
    for p, r in rollouts.items():
        s = _score(task, r.frames[keep], targets[keep], ctx)
        if p == "model":
            result.model, result.validity = s, r.validity
            result.validity_note = VALIDITY_NOTES["field" if f.field_model else "token"]
        else:
            result.baselines[p] = s
    if len(f.families) > 1:
        result.extra["families"] = _per_family(task, f, rollouts, targets, keep, ctx)
    ex = {"target": f.fs.targets[:N_EXAMPLE_FIELDS], "context": f.fs.contexts[:N_EXAMPLE_FIELDS]}
    ex.update({p: r.frames[:N_EXAMPLE_FIELDS] for p, r in rollouts.items()})
    return result, _sample_rows(task, f, rollouts, targets), ex


def _score(task: EvalTask, pred: np.ndarray, target: np.ndarray, ctx: EvalContext) -> Any:
    return score_fields(
        pred,
        target,
        task.metrics,
        task.windows,
        n_boot=task.bootstrap,
        seed=ctx.seed,
        curve_metric=task.primary_metric,
    )


def _per_family(
    task: EvalTask,
    f: Forecasts,
    rollouts: dict[str, Rollout],
    targets: np.ndarray,
    keep: np.ndarray,
    ctx: EvalContext,
) -> dict[str, Any]:
    """Each source's scores alone, keyed by its family (``family#k`` where two sources share one):
    ``{"n_examples", "model" (if any), "baselines"}`` as plain data."""
    from sfm.config import to_dict

    source = np.tile(f.source, len(f.levels))
    out: dict[str, Any] = {}
    for k, fam in enumerate(f.families):
        m = keep & (source == k)
        if not m.any():
            continue
        scores = {p: to_dict(_score(task, r.frames[m], targets[m], ctx)) for p, r in rollouts.items()}
        entry: dict[str, Any] = {"n_examples": int(m.sum())}
        if "model" in scores:
            entry["model"] = scores.pop("model")
        entry["baselines"] = scores
        out[fam if f.families.count(fam) == 1 else f"{fam}#{k}"] = entry
    return out


def _sample_rows(
    task: EvalTask, f: Forecasts, rollouts: dict[str, Rollout], targets: np.ndarray
) -> list[dict[str, Any]]:
    m = task.primary_metric
    per = {p: metric_values(m, r.frames, targets) for p, r in rollouts.items()}
    n = len(f.fs)
    rows = []
    for i in range(targets.shape[0]):
        row: dict[str, Any] = {
            "example": i % n,
            "trajectory": int(f.fs.trajectory[i % n]),
            "start": int(f.fs.start[i % n]),
            "noise": f.levels[i // n],
        }
        if len(f.families) > 1:
            k = int(f.source[i % n])
            row.update(source=k, family=f.families[k])
        for p, vals in per.items():
            v = np.asarray(vals[i], dtype=float)
            row[f"{p}_{m}"] = float(v.mean()) if np.isfinite(v).all() else None
        if "model" in rollouts:
            row["model_valid"] = float(rollouts["model"].valid[i].mean())
        rows.append(row)
    return rows


@FAMILIES.register(
    "forecast",
    answers="forecast",
    needs_data=True,
    description="one-step forecasts and autoregressive rollouts of held-out trajectories",
)
def run(
    task: EvalTask, loaded: Any, ctx: EvalContext
) -> tuple[TaskResult, list[dict[str, Any]], dict[str, np.ndarray]]:
    """Run a forecast task: its result, per-sample rows and a few example fields."""
    return score_forecasts(task, predict(task, loaded, ctx, [0.0]), ctx)


__all__ = [
    "ForecastSet",
    "Forecasts",
    "Rollout",
    "add_noise",
    "baseline_rollout",
    "build_forecast_set",
    "eval_sources",
    "model_rollout",
    "predict",
    "prepare",
    "run",
    "score_forecasts",
]
