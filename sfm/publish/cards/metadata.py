"""The card's YAML header: base model, library, licence, data set, tags and the ``model-index``.

* ``base_model`` is set only when the run started from a Hub id. A tiny backbone built from a config, or a
  local folder, is not a Hub id (the Hub would link it to an unrelated or missing repository), so the field is
  omitted and the body says what the base was.
* ``model-index`` holds every finite number of the model: each metric over all predicted frames, each metric
  per rollout window (``config`` = the window), each noise level of a robustness curve (``config`` =
  ``noise=<level>``) and the validity (fraction of outputs that decoded). A dataset entry is the eval task:
  ``type`` = the task name, ``config`` = ``v<version>``, ``split`` = the data split, ``revision`` = the data's
  fingerprint; the intervals and counts go in the metric's ``args``. Non-finite values (JSON null) cannot be
  published as numbers: they are listed in the limitations instead.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from huggingface_hub import EvalResult, ModelCardData

from sfm.harness.results import EvalResults, TaskResult
from sfm.publish.cards.records import base_model_id, latest_tasks, run_name, training_dataset

DEFAULT_LICENSE = "apache-2.0"
TASK_TYPES = {
    "forecast": "time-series-forecasting",
    "robustness": "time-series-forecasting",
    "consistency": "time-series-forecasting",
}
PEFT_METHODS = {"lora", "dora", "rslora", "qlora"}


def _dataset_name(t: TaskResult) -> str:
    data = t.config.get("data", {}) if isinstance(t.config, dict) else {}
    if data.get("simulator"):
        params = ", ".join(f"{k}={v}" for k, v in data.get("params", {}).items())
        what = f"{data['simulator']} simulator ({params})" if params else f"{data['simulator']} simulator"
    else:
        what = Path(str(data.get("path") or "data")).name
    return f"{t.task} v{t.version}: {what}, {data.get('split', 'test')} split"


def _metric_args(v: Any, higher_is_better: bool | None) -> dict[str, Any]:
    return {"ci_low": v.ci_low, "ci_high": v.ci_high, "n": v.n, "higher_is_better": higher_is_better}


def _hib(metric: str, t: TaskResult) -> bool | None:
    if metric == t.primary_metric:
        return t.higher_is_better
    from sfm.registry import METRICS

    return bool(METRICS.meta(metric).get("higher_is_better")) if metric in METRICS else None


def _numbers(t: TaskResult) -> list[tuple[str, Any, str, str | None, dict | None]]:
    """``(metric, value, name, config, args)`` of every number the task holds for the model."""
    out = [
        (m, v.value, f"{m} (all predicted frames)", None, _metric_args(v, _hib(m, t)))
        for m, v in t.model.metrics.items()
    ]
    for w, ms in t.model.windows.items():
        out += [(m, v.value, f"{m} (frames {w})", w, _metric_args(v, _hib(m, t))) for m, v in ms.items()]
    nc = t.extra.get("noise_curve") if isinstance(t.extra, dict) else None
    if isinstance(nc, dict) and isinstance(nc.get("model"), list):
        m = nc.get("metric", t.primary_metric)
        for level, v in zip(nc.get("levels", []), nc["model"]):
            out.append((m, v, f"{m} at {100 * level:g}% input noise", f"noise={level:g}", None))
    out.append(("validity", t.validity, "fraction of outputs that decoded", None, None))
    return out


def task_eval_results(t: TaskResult) -> list[EvalResult]:
    """The model-index entries of one task: metrics, windows, noise levels and validity (finite ones)."""
    split = (t.config.get("data") or {}).get("split") if isinstance(t.config, dict) else None
    common = {
        "task_type": TASK_TYPES.get(t.family, "other"),
        "task_name": t.family.replace("_", " "),
        "dataset_type": t.task,
        "dataset_name": _dataset_name(t),
        "dataset_config": f"v{t.version}",
        "dataset_split": split,
        "dataset_revision": t.data_fingerprint,
        "dataset_args": {"task_version": t.version},
    }
    return [
        EvalResult(
            **common,
            metric_type=metric,
            metric_value=float(value),
            metric_name=name,
            metric_config=config,
            metric_args=args,
        )
        for metric, value, name, config, args in _numbers(t)
        if isinstance(value, int | float) and math.isfinite(value)
    ]


def card_data(
    run_dir: str | Path,
    record: dict[str, Any],
    results: Sequence[EvalResults],
    *,
    license: str = DEFAULT_LICENSE,
    dataset: str | None = None,
) -> ModelCardData:
    """The YAML header: base model, library, licence, data set, tags, and the model-index."""
    recipe = record["recipe"]
    method = recipe.get("peft", {}).get("method", "lora")
    family = record.get("data", {}).get("family")
    data = recipe.get("data", {})
    kind = str(record.get("kind") or "token")
    if kind == "operator":
        method = "neural-operator"
    tags = [
        "sfm",
        "scientific-machine-learning",
        "pde",
        "physics",
        family,
        method,
        data.get("task"),
        f"encoding-{data.get('encoding')}" if kind == "token" else f"{kind}-field-model",
    ]
    evals = [e for _, t in latest_tasks(results) for e in task_eval_results(t)]
    return ModelCardData(
        model_name=run_name(run_dir),
        base_model=base_model_id(record),
        library_name=("peft" if method in PEFT_METHODS else "transformers") if kind == "token" else "pytorch",
        license=license,
        datasets=[dataset or training_dataset(record)],
        tags=[t for t in dict.fromkeys(tags) if t],
        eval_results=evals or None,
    )
