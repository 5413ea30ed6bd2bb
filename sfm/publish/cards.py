"""Model cards: the ``README.md`` of a trained run, in Hugging Face conventions, built offline.

The card is :class:`huggingface_hub.ModelCard` rendered from the one template ``templates/model_card.md``.
Every fact in it comes from records the code itself wrote: ``sfm_run.json`` (recipe, base model, data,
encoding, parameters, losses), the data set's ``field_meta.json`` when it can be found, and the typed results
(:class:`~sfm.harness.results.EvalResults`). :func:`card_variables` supplies every template variable and
nothing else (a test checks both directions).

Metadata choices:

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

import fnmatch
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from huggingface_hub import EvalResult, ModelCard, ModelCardData

import sfm
from sfm.errors import DataError, SfmError
from sfm.harness.results import EvalResults, TaskResult
from sfm.physics.metadata import FieldMeta
from sfm.publish.cards_body import (
    base_model_line,
    data_section,
    draw_figures,
    encoding_section,
    find_field_meta,
    hyperparameters,
    intended_use,
    license_line,
    limitations,
    reproduce,
    results_section,
    summary,
    usage,
)
from sfm.utils.io import atomic_write_text, read_json
from sfm.utils.provenance import model_fingerprint

TEMPLATE = Path(__file__).with_name("templates") / "model_card.md"
DEFAULT_LICENSE = "apache-2.0"
RUN_FILE = "sfm_run.json"
FIGURES_DIR = "figures"
# The files sfm.harness.runner fingerprints a run by; results carry that fingerprint, so a card only takes
# results of exactly these weights.
TASK_TYPES = {
    "forecast": "time-series-forecasting",
    "robustness": "time-series-forecasting",
    "consistency": "time-series-forecasting",
}
PEFT_METHODS = {"lora", "dora", "rslora", "qlora"}
# Top-level entries of a run folder not published: optimizer state and logs are large and private,
# training_args.bin is a pickle, dot-files are temporaries; README.md and figures/ come from the card.
PUSH_IGNORE = ("checkpoint-*", "logs", "training_args.bin", ".*", "README.md", FIGURES_DIR)


# -- the run and its results --------------------------------------------------------------------------


def read_run(run_dir: str | Path) -> dict[str, Any]:
    """``sfm_run.json`` of a run folder.

    Raises:
        DataError: the folder has no readable ``sfm_run.json``.
    """
    path = Path(run_dir) / RUN_FILE
    try:
        record = read_json(path)
    except (OSError, ValueError) as exc:
        raise DataError(
            f"{path}: no readable run record ({exc}); is {run_dir} a run folder of sfm.train?"
        ) from None
    if not isinstance(record, dict) or "recipe" not in record:
        raise DataError(f"{path}: not an sfm run record (no 'recipe')")
    return record


def run_name(run_dir: str | Path) -> str:
    """The run's name as ``sfm eval`` records it: the folder name, or ``parent/model`` for a ``model`` folder."""
    p = Path(run_dir).resolve()
    return f"{p.parent.name}/model" if p.name == "model" else p.name


def matches(run_dir: str | Path, results: EvalResults, fingerprint: str | None = None) -> bool:
    """True if ``results`` scored exactly the weights now in ``run_dir`` (by fingerprint, else by path).

    Args:
        run_dir: The run folder.
        results: An evaluation.
        fingerprint: The run's fingerprint if already computed (it hashes the weights).
    """
    info = results.model
    if info.kind != "model":
        return False
    if info.fingerprint:
        return info.fingerprint == (fingerprint or model_fingerprint(run_dir))
    return info.path is not None and Path(info.path).resolve() == Path(run_dir).resolve()


def select_results(
    run_dir: str | Path, loaded: Sequence[tuple[Path, EvalResults]]
) -> tuple[list[EvalResults], list[str]]:
    """The results of this run among ``loaded``, and a note for each one left out."""
    mine, skipped = [], []
    fp = model_fingerprint(run_dir)
    for path, res in loaded:
        if matches(run_dir, res, fp):
            mine.append(res)
        else:
            skipped.append(f"{path}: results of {res.model.kind} {res.model.name!r}, not of {run_dir}")
    return mine, skipped


def check_results(run_dir: str | Path, results: Sequence[EvalResults]) -> None:
    """Raise a DataError naming the first result that did not score the weights now in ``run_dir``."""
    fp = model_fingerprint(run_dir)
    for res in results:
        if not matches(run_dir, res, fp):
            raise DataError(
                f"results of {res.model.kind} {res.model.name!r} (fingerprint {res.model.fingerprint}) "
                f"are not of the weights now in {run_dir}: re-run sfm eval on it"
            )


def _latest_tasks(results: Sequence[EvalResults]) -> list[tuple[EvalResults, TaskResult]]:
    """Every (results, task) pair; a task version scored twice keeps the newer evaluation."""
    best: dict[tuple[str, int], tuple[EvalResults, TaskResult]] = {}
    for res in sorted(results, key=lambda r: r.date):
        for t in res.tasks.values():
            if t.model is not None:
                best[(t.task, t.version)] = (res, t)
    return [best[k] for k in sorted(best)]


# -- metadata -----------------------------------------------------------------------------------------


def base_model_id(record: dict[str, Any]) -> str | None:
    """The base model as a Hub id, or None for a tiny backbone or a local folder (not Hub ids)."""
    base = record.get("base_model")
    if not base or record.get("tiny_base"):
        return None
    from sfm.models.backbones import is_tiny

    if is_tiny(base) or Path(base).expanduser().exists() or base.startswith((".", "/", "~")):
        return None
    return base


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
    out = []

    def add(metric: str, value: Any, name: str, config: str | None = None, args: dict | None = None) -> None:
        if isinstance(value, int | float) and math.isfinite(value):
            out.append(
                EvalResult(
                    **common,
                    metric_type=metric,
                    metric_value=float(value),
                    metric_name=name,
                    metric_config=config,
                    metric_args=args,
                )
            )

    for m, v in t.model.metrics.items():
        add(m, v.value, f"{m} (all predicted frames)", None, _metric_args(v, _hib(m, t)))
    for w, ms in t.model.windows.items():
        for m, v in ms.items():
            add(m, v.value, f"{m} (frames {w})", w, _metric_args(v, _hib(m, t)))
    nc = t.extra.get("noise_curve") if isinstance(t.extra, dict) else None
    if isinstance(nc, dict) and isinstance(nc.get("model"), list):
        m = nc.get("metric", t.primary_metric)
        for level, v in zip(nc.get("levels", []), nc["model"]):
            add(m, v, f"{m} at {100 * level:g}% input noise", f"noise={level:g}")
    add("validity", t.validity, "fraction of outputs that decoded")
    return out


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
    tags = [
        "sfm",
        "scientific-machine-learning",
        "pde",
        "physics",
        family,
        method,
        data.get("task"),
        f"encoding-{data.get('encoding')}",
    ]
    evals = [e for _, t in _latest_tasks(results) for e in task_eval_results(t)]
    return ModelCardData(
        model_name=run_name(run_dir),
        base_model=base_model_id(record),
        library_name="peft" if method in PEFT_METHODS else "transformers",
        license=license,
        datasets=[dataset or training_dataset(record)],
        tags=[t for t in dict.fromkeys(tags) if t],
        eval_results=evals or None,
    )


def training_dataset(record: dict[str, Any]) -> str:
    """The training data set's name: its folder name (pass ``dataset=`` for a Hub id)."""
    return Path(str(record.get("data", {}).get("path") or "unknown")).name


# -- the card -----------------------------------------------------------------------------------


def card_variables(
    run_dir: str | Path,
    record: dict[str, Any],
    results: Sequence[EvalResults],
    *,
    license: str = DEFAULT_LICENSE,
    figures: Sequence[tuple[str, str]] = (),
) -> dict[str, str]:
    """Every variable of the card template (besides ``card_data``), as text."""
    meta_path = find_field_meta(run_dir, record)
    meta = FieldMeta.load(meta_path.parent) if meta_path else None
    tasks = _latest_tasks(results)
    hub_id = base_model_id(record)
    rec = record["recipe"]
    method = rec.get("peft", {}).get("method", "lora")
    return {
        "model_name": run_name(run_dir),
        "summary": summary(record, meta, [t for _, t in tasks]),
        "base_model_line": base_model_line(record, hub_id),
        "method_line": f"{method} ({'adapter weights only' if method in PEFT_METHODS else 'full weights'})",
        "license_line": license_line(record, hub_id, license),
        "sfm_version": str(record.get("sfm_version", sfm.__version__)),
        "provenance": f"commit `{record.get('git') or 'unknown'}`, trained {record.get('date') or 'at an unknown date'}",
        "training_data": data_section(record, meta, meta_path),
        "encoding": encoding_section(record),
        "hyperparameters": hyperparameters(record),
        "results": results_section(tasks),
        "figures": "".join(f"\n![{c}]({link})\n" for c, link in figures),
        "intended_use": intended_use(record, meta),
        "limitations": limitations(record, tasks),
        "usage": usage(record),
        "reproduce": reproduce(record, results),
    }


def model_card(
    run_dir: str | Path,
    results: Sequence[EvalResults],
    *,
    license: str = DEFAULT_LICENSE,
    dataset: str | None = None,
    figures: Sequence[tuple[str, str]] = (),
) -> ModelCard:
    """The model card of a run, from its records and its evaluation results.

    Args:
        run_dir: A run folder written by ``sfm.train`` (holds ``sfm_run.json``).
        results: Evaluations of exactly this run (``sfm eval --model run_dir``).
        license: Licence of the card and the trained weights (the base model's licence still governs).
        dataset: The training data set as a Hub id; default: its folder name.
        figures: ``(caption, relative link)`` of images to show (see :func:`write_model_card`).

    Raises:
        DataError: no run record, or a result that scored other weights (naming it).
    """
    record = read_run(run_dir)
    check_results(run_dir, results)
    data = card_data(run_dir, record, results, license=license, dataset=dataset)
    variables = card_variables(run_dir, record, results, license=license, figures=figures)
    return ModelCard.from_template(data, template_str=TEMPLATE.read_text(encoding="utf-8"), **variables)


def write_model_card(
    run_dir: str | Path,
    results: Sequence[EvalResults],
    out: str | Path | None = None,
    *,
    license: str = DEFAULT_LICENSE,
    dataset: str | None = None,
    figures: bool = True,
) -> Path:
    """Write the card (default ``run_dir/README.md``) and its plots (``figures/`` beside it).

    Returns:
        The card's path.
    """
    out = Path(out) if out is not None else Path(run_dir) / "README.md"
    check_results(run_dir, results)  # before drawing anything
    tasks = [t for _, t in _latest_tasks(results)]
    figs = draw_figures(tasks, out.parent / FIGURES_DIR, FIGURES_DIR) if figures else []
    card = model_card(run_dir, results, license=license, dataset=dataset, figures=figs)
    return atomic_write_text(out, str(card))


def push_to_hub(
    run_dir: str | Path,
    card: str | Path,
    repo_id: str,
    *,
    token: str | None = None,
    private: bool | None = None,
) -> str:
    """Upload the run (adapter, tokenizer, records; not checkpoints or logs) with its card as ``README.md``.

    Raises:
        SfmError: offline mode, or any Hub error, as one line.
    """
    from huggingface_hub import CommitOperationAdd, HfApi, constants
    from huggingface_hub import errors as hub_errors

    flag = os.environ.get("HF_HUB_OFFLINE", "").strip().upper() in {"1", "ON", "YES", "TRUE"}
    if constants.HF_HUB_OFFLINE or flag:
        raise SfmError(
            f"--push-to-hub {repo_id}: HF_HUB_OFFLINE is set, so nothing can be uploaded; "
            "unset it and log in (`hf auth login`) to push"
        )
    run_dir, card = Path(run_dir), Path(card)
    ops = [CommitOperationAdd(path_in_repo="README.md", path_or_fileobj=str(card))]
    ops += [
        CommitOperationAdd(path_in_repo=f"{FIGURES_DIR}/{f.name}", path_or_fileobj=str(f))
        for f in sorted((card.parent / FIGURES_DIR).glob("*.png"))
    ]
    for f in sorted(p for p in run_dir.rglob("*") if p.is_file()):
        rel = f.relative_to(run_dir)
        if not any(fnmatch.fnmatch(rel.parts[0], pat) for pat in PUSH_IGNORE):
            ops.append(CommitOperationAdd(path_in_repo=rel.as_posix(), path_or_fileobj=str(f)))
    transport = getattr(
        hub_errors, "HTTPError", OSError
    )  # the HTTP client's base error (dropped connections)
    try:
        api = HfApi(token=token)
        api.create_repo(repo_id, exist_ok=True, private=private)
        info = api.create_commit(repo_id, ops, commit_message=f"sfm card: {run_name(run_dir)}")
    except (
        hub_errors.HfHubHTTPError,
        hub_errors.OfflineModeIsEnabled,
        transport,
        OSError,
        ValueError,
    ) as exc:
        raise SfmError(f"--push-to-hub {repo_id}: {str(exc).splitlines()[0]}") from None
    return str(getattr(info, "commit_url", info))


def template_variables() -> set[str]:
    """The variables the card template uses (for the test that every one is supplied)."""
    import jinja2
    import jinja2.meta

    return jinja2.meta.find_undeclared_variables(
        jinja2.Environment().parse(TEMPLATE.read_text(encoding="utf-8"))
    )
