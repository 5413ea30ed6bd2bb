"""``sfm eval``: run eval tasks for one model (or one baseline) and write the typed results.

Each task is run by its family's ``run(task, loaded, ctx)`` (:data:`sfm.registry.FAMILIES`, ``sfm list
eval-families``). Under ``accelerate launch`` the model's examples are split across processes and gathered
(:func:`sfm.harness.scoring.sharded`); the main process alone writes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

import sfm
from sfm.harness import contamination
from sfm.harness.compat import model_kind, record_section
from sfm.harness.context import EvalContext, load_eval_data
from sfm.harness.results import EvalResults, ModelInfo, TaskResult
from sfm.harness.results_folder import write_results
from sfm.harness.tasks import EvalTask, load_task
from sfm.registry import FAMILIES
from sfm.utils.provenance import git_hash, model_fingerprint, now_iso

BASELINE_PREFIX = "baseline:"

__all__ = ["BASELINE_PREFIX", "eval_state", "evaluate", "load_eval_data", "run_task", "write"]


def evaluate(
    model: str,
    tasks: list[str],
    out: str | Path | None = None,
    *,
    limit: int | None = None,
    batch_size: int = 8,
    seed: int = 0,
    progress: bool = True,
    name: str | None = None,
) -> EvalResults:
    """Evaluate a run folder (or ``baseline:NAME``) on eval tasks; write results if ``out`` is given.

    Args:
        model: A run folder written by ``sfm.train``, or ``baseline:persistence`` etc.
        tasks: Eval task names or YAML paths.
        out: Results folder (``results.json``, ``samples_*.jsonl``, ``examples_*.npz``).
        limit: Examples per task at most (overrides the task's own limit when smaller).
        batch_size: Generation batch size.
        seed: Seeds noise, bootstrap and generation.
        progress: Print one line per task.
        name: The model's row name on leaderboards (default: from the run folder's name).
    """
    state = eval_state()
    loaded_tasks = [load_task(name) for name in tasks]  # every task file checked before any model work
    loaded, info = _load(model)
    if name:
        info.name = name
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
    for task in loaded_tasks:
        if state.is_main_process and progress:
            print(f"==> eval {task.task} (v{task.version}, {task.family})", flush=True)
        result, rows, ex = run_task(task, loaded, limit=limit, batch_size=batch_size, seed=seed, state=state)
        if state.is_main_process:  # the scored rows are gathered there
            result.contamination = contamination.check(task, model, rows)
            if progress and result.contamination and result.contamination.contaminated:
                print(f"    warning: {contamination.describe(result.contamination)}", flush=True)
        results.tasks[task.task] = result
        samples[task.task] = rows
        examples[task.task] = ex
    if out is not None and state.is_main_process:
        write(results, samples, examples, out)
    return results


def eval_state() -> Any:
    """The ``accelerate.PartialState`` the examples are sharded over.

    ``cpu=True`` without CUDA: under ``accelerate launch`` with a multi-process CPU config, a plain
    ``PartialState()`` finds no GPU and leaves every process alone as "rank 0 of 1", so each would evaluate
    everything; on CPU it must join the gloo process group itself.
    """
    import torch
    from accelerate import PartialState

    return PartialState(cpu=not torch.cuda.is_available())


def _load(model: str) -> tuple[Any, ModelInfo]:
    if model.startswith(BASELINE_PREFIX):
        name = model[len(BASELINE_PREFIX) :]
        from sfm.registry import BASELINES

        BASELINES.get(name)
        return None, ModelInfo(name=name, kind="baseline")
    from sfm.models.run import load_model

    loaded = load_model(model)
    rec = getattr(loaded, "record", None)
    folder = Path(model).resolve()
    # A run folder named "model" (the quickstart's layout) is named after its parent too: "quickstart/model".
    name = f"{folder.parent.name}/{folder.name}" if folder.name == "model" else folder.name
    info = ModelInfo(
        name=name,
        kind=model_kind(loaded),
        path=str(model),
        base_model=record_section(rec, "base_model"),
        fingerprint=model_fingerprint(model),
        encoding=record_section(rec, "encoding") or {},
        budget=record_section(rec, "budget") or {},
    )
    return loaded, info


def run_task(
    task: EvalTask, loaded: Any, *, limit: int | None, batch_size: int, seed: int, state: Any
) -> tuple[TaskResult, list[dict[str, Any]], dict[str, np.ndarray]]:
    """Run one task with its family; returns its result, per-sample rows and a few example fields."""
    ctx = EvalContext(limit=limit, batch_size=batch_size, seed=seed, state=state)
    return FAMILIES.get(task.family)(task, loaded, ctx)


def write(
    results: EvalResults,
    samples: dict[str, list[dict[str, Any]]],
    examples: dict[str, dict[str, np.ndarray]],
    out: str | Path,
) -> Path:
    """Write ``results.json``, ``samples_<task>.jsonl`` and ``examples_<task>.npz`` into ``out``, keeping
    the results other evaluations wrote there (:func:`sfm.harness.results_folder.write_results`)."""
    return write_results(results, samples, examples, out)
