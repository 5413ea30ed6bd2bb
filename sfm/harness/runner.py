"""``sfm eval``: run eval tasks for one model (or one baseline) and write the typed results.

Under ``accelerate launch`` the model's examples are split across processes and gathered on the main one,
which alone scores and writes.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

import sfm
from sfm.errors import ConfigError
from sfm.harness import forecast as fc
from sfm.harness.results import EvalResults, ModelInfo, TaskResult
from sfm.harness.tasks import EvalData, EvalTask, load_task
from sfm.registry import METRICS
from sfm.utils.io import atomic_write_text
from sfm.utils.provenance import fingerprint_dir, git_hash, model_fingerprint, now_iso

BASELINE_PREFIX = "baseline:"
N_EXAMPLE_FIELDS = 4  # example predictions kept per task for plots


def evaluate(
    model: str,
    tasks: list[str],
    out: str | Path | None = None,
    *,
    limit: int | None = None,
    batch_size: int = 8,
    seed: int = 0,
    progress: bool = True,
) -> EvalResults:
    """Evaluate a run folder (or ``baseline:NAME``) on eval tasks; write results if ``out`` is given.

    Args:
        model: A run folder written by ``sfm.train``, or ``baseline:persistence`` etc.
        tasks: Eval task names or YAML paths.
        out: Results folder (``results.json``, ``samples_*.jsonl``, ``examples_*.npz``).
        limit: Examples per task at most (overrides the task's own limit when smaller).
        batch_size: Generation batch size.
        seed: Seeds noise, bootstrap and generation.
    """
    from accelerate import PartialState

    state = PartialState()
    loaded, info = _load(model)
    results = EvalResults(
        model=info,
        seed=seed,
        sfm_version=sfm.__version__,
        git=git_hash(),
        date=now_iso(),
        config={"tasks": tasks, "limit": limit, "batch_size": batch_size, "seed": seed},
    )
    samples: dict[str, list[dict[str, Any]]] = {}
    examples: dict[str, dict[str, np.ndarray]] = {}
    for name in tasks:
        task = load_task(name)
        if state.is_main_process and progress:
            print(f"==> eval {task.task} (v{task.version}, {task.family})", flush=True)
        result, rows, ex = run_task(task, loaded, limit=limit, batch_size=batch_size, seed=seed, state=state)
        results.tasks[task.task] = result
        samples[task.task] = rows
        examples[task.task] = ex
    if out is not None and state.is_main_process:
        write(results, samples, examples, out)
    return results


def _load(model: str) -> tuple[Any, ModelInfo]:
    if model.startswith(BASELINE_PREFIX):
        name = model[len(BASELINE_PREFIX) :]
        from sfm.registry import BASELINES

        BASELINES.get(name)
        return None, ModelInfo(name=name, kind="baseline")
    from sfm.harness.generate import load_model

    loaded = load_model(model)
    rec = loaded.record
    folder = Path(model).resolve()
    # A run folder named "model" (the quickstart's layout) is named after its parent too: "quickstart/model".
    name = f"{folder.parent.name}/{folder.name}" if folder.name == "model" else folder.name
    info = ModelInfo(
        name=name,
        kind="model",
        path=str(model),
        base_model=rec.get("base_model"),
        fingerprint=model_fingerprint(model),
        encoding=rec.get("encoding", {}),
    )
    return loaded, info


def load_eval_data(d: EvalData) -> Any:
    """The field data set an :class:`EvalData` names, generated (and cached) first if needed."""
    from sfm.data import load_field_dataset
    from sfm.data.cache import ensure_dataset, resolve_data_path

    path = resolve_data_path(d.path, d.simulator, d.params, d.num_samples, d.seed)
    ensure_dataset(path, d.simulator, d.params, d.num_samples, d.seed, progress=False)
    return load_field_dataset(path)


def _data(task: EvalTask) -> Any:
    return load_eval_data(task.data)


def run_task(
    task: EvalTask, loaded: Any, *, limit: int | None, batch_size: int, seed: int, state: Any
) -> tuple[TaskResult, list[dict[str, Any]], dict[str, np.ndarray]]:
    """Run one task; returns its result, per-sample rows and a few example fields."""
    if task.family in ("forecast", "robustness", "consistency"):
        return _run_forecast(task, loaded, limit=limit, batch_size=batch_size, seed=seed, state=state)
    if task.family == "pde_identification":
        from sfm.harness.identification import run_identification

        return run_identification(
            task, loaded, limit=limit, batch_size=batch_size, seed=seed, state=state, fieldset=_data(task)
        )
    if task.family == "symbolic_regression":
        from sfm.harness.symbolic import run_symbolic

        return run_symbolic(task, loaded, limit=limit, batch_size=batch_size, seed=seed, state=state)
    raise ConfigError(f"{task.task}: unknown family {task.family!r}")


def _limit(task: EvalTask, limit: int | None) -> int | None:
    vals = [v for v in (task.limit, limit) if v is not None]
    return min(vals) if vals else None


def _sharded_rollout(
    loaded: Any,
    fmt: Any,
    fs: fc.ForecastSet,
    contexts: np.ndarray,
    steps: int,
    batch_size: int,
    constrained: bool,
    state: Any,
) -> fc.Rollout:
    """Model rollout with examples split across processes (accelerate) and gathered everywhere."""
    n = contexts.shape[0]
    if state.num_processes == 1:
        return fc.model_rollout(
            loaded, fmt, fs, contexts, steps, batch_size=batch_size, constrained=constrained
        )
    from accelerate.utils import gather_object

    with state.split_between_processes(list(range(n))) as mine:
        part = (
            fc.model_rollout(
                loaded, fmt, fs, contexts[mine], steps, batch_size=batch_size, constrained=constrained
            )
            if mine
            else None
        )
        pieces = gather_object([(mine, part)])
    frames = np.zeros((n, steps * fmt.horizon, *contexts.shape[2:]))
    valid = np.zeros((n, steps * fmt.horizon, contexts.shape[2]), dtype=bool)
    for idx, r in pieces:
        if r is not None:
            frames[idx], valid[idx] = r.frames, r.valid
    return fc.Rollout(frames, valid)


def _run_forecast(
    task: EvalTask, loaded: Any, *, limit: int | None, batch_size: int, seed: int, state: Any
) -> tuple[TaskResult, list[dict[str, Any]], dict[str, np.ndarray]]:
    from sfm.tasks import get_task_format

    fieldset = _data(task)
    fmt = get_task_format(task.task_format, **task.format)
    fs = fc.build_forecast_set(
        fieldset,
        task.data.split,
        fmt,
        task.rollout_steps,
        windows_per_trajectory=task.windows_per_trajectory,
        limit=_limit(task, limit),
    )
    n_frames = task.rollout_steps * fmt.horizon
    levels = task.noise_levels if task.family == "robustness" else [0.0]
    predictors = ([] if loaded is None else ["model"]) + list(task.baselines)
    # One pass per noise level; examples of all levels are pooled for the headline numbers.
    contexts_all, targets_all = [], []
    by_pred: dict[str, list[fc.Rollout]] = {p: [] for p in predictors}
    for j, level in enumerate(levels):
        ctx = fc.add_noise(fs.contexts, level, seed + j)
        contexts_all.append(ctx)
        targets_all.append(fs.targets)
        for p in predictors:
            if p == "model":
                r = _sharded_rollout(
                    loaded, fmt, fs, ctx, task.rollout_steps, batch_size, task.constrained, state
                )
            else:
                r = fc.baseline_rollout(p, fs, ctx, n_frames)
            by_pred[p].append(r)
    targets = np.concatenate(targets_all)
    rollouts = {
        p: fc.Rollout(np.concatenate([r.frames for r in rs]), np.concatenate([r.valid for r in rs]))
        for p, rs in by_pred.items()
    }
    keep = fc.keep_valid(rollouts, "model") if task.invalid == "drop" else np.ones(targets.shape[0], bool)
    primary_hib = bool(METRICS.meta(task.primary_metric).get("higher_is_better", False))
    result = TaskResult(
        task=task.task,
        version=task.version,
        family=task.family,
        primary_metric=task.primary_metric,
        higher_is_better=primary_hib,
        n_examples=int(keep.sum()),
        config=_task_config(task),
        data_fingerprint=fingerprint_dir(fieldset.path, ("*.json",)),
    )
    if not keep.any():
        raise ConfigError(f"{task.task}: no example decoded validly; nothing to score (invalid: drop)")
    for p, r in rollouts.items():
        s = fc.score(
            r.frames[keep],
            targets[keep],
            task.metrics,
            task.windows,
            n_boot=task.bootstrap,
            seed=seed,
            curve_metric=task.primary_metric,
        )
        if p == "model":
            result.model = s
            result.validity = r.validity
        else:
            result.baselines[p] = s
    if task.family == "robustness":
        result.extra["noise_curve"] = _noise_curve(task, by_pred, fs.targets, levels)
    if task.family == "consistency":
        from sfm.harness.consistency import consistency_scores

        result.extra["consistency"] = consistency_scores(fs, rollouts, targets, fieldset.meta, fmt)
    rows = _sample_rows(task, fs, rollouts, targets, levels)
    ex = {"target": fs.targets[:N_EXAMPLE_FIELDS], "context": fs.contexts[:N_EXAMPLE_FIELDS]}
    for p, r in rollouts.items():
        ex[p] = r.frames[:N_EXAMPLE_FIELDS]
    return result, rows, ex


def _noise_curve(
    task: EvalTask, by_pred: dict[str, list[fc.Rollout]], targets: np.ndarray, levels: list[float]
) -> dict[str, Any]:
    m = task.primary_metric
    curve: dict[str, Any] = {"levels": list(levels), "metric": m}
    for p, rs in by_pred.items():
        curve[p] = [fc._finite(fc.aggregate(m, fc.metric_values(m, r.frames, targets))) for r in rs]
    return curve


def _sample_rows(
    task: EvalTask,
    fs: fc.ForecastSet,
    rollouts: dict[str, fc.Rollout],
    targets: np.ndarray,
    levels: list[float],
) -> list[dict[str, Any]]:
    m = task.primary_metric
    per = {p: fc.metric_values(m, r.frames, targets) for p, r in rollouts.items()}
    n = len(fs)
    rows = []
    for i in range(targets.shape[0]):
        row: dict[str, Any] = {
            "example": i % n,
            "trajectory": int(fs.trajectory[i % n]),
            "start": int(fs.start[i % n]),
            "noise": levels[i // n],
        }
        for p, vals in per.items():
            v = np.asarray(vals[i], dtype=float)
            row[f"{p}_{m}"] = float(v.mean()) if np.isfinite(v).all() else None
        if "model" in rollouts:
            row["model_valid"] = float(rollouts["model"].valid[i].mean())
        rows.append(row)
    return rows


def _task_config(task: EvalTask) -> dict[str, Any]:
    from sfm.config import to_dict

    return to_dict(task)


def write(
    results: EvalResults,
    samples: dict[str, list[dict[str, Any]]],
    examples: dict[str, dict[str, np.ndarray]],
    out: str | Path,
) -> Path:
    """Write ``results.json``, ``samples_<task>.jsonl`` and ``examples_<task>.npz`` into ``out``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    for task, rows in samples.items():
        safe = task.replace("/", "__")
        atomic_write_text(out / f"samples_{safe}.jsonl", "".join(json.dumps(r) + "\n" for r in rows))
        if examples.get(task):
            tmp = out / f".examples_{safe}.npz.tmp"
            with open(tmp, "wb") as fh:
                np.savez_compressed(fh, **examples[task])
            tmp.replace(out / f"examples_{safe}.npz")
    return results.save(out)
