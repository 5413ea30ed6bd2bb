"""Contamination: which of an eval task's trajectories the evaluated run trained on.

The run folder records its training data (``sfm_run.json`` ``data``: each source's folder and how many of
its train rows were used, ``num_train_trajectories``); the task names its eval data (``data`` and, for PDE
identification, ``options.sources``) and the per-sample rows say which rows of the eval split were scored.
Both sides are fingerprinted by :mod:`sfm.data.overlap` (cached beside each data set) and compared: the result
is a :class:`~sfm.harness.results.Contamination` that ``results.json`` records per task and the leaderboard
and the card mark.

The built-in tasks read the same cached data set the quickstart trains on, but its ``test`` split: that is
clean by construction, since the splits of one data set are disjoint. A task over the ``train`` split of the
run's data is flagged, as is a task whose data was generated or imported again from the same simulator seed
and parameters, or the same file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from sfm.data.cache import resolve_data_path
from sfm.data.overlap import dataset_fingerprints, match
from sfm.harness.context import load_eval_data
from sfm.harness.results import Contamination
from sfm.harness.tasks import EvalData, EvalTask
from sfm.models.run import RunRecord, is_run_folder
from sfm.physics.metadata import FILENAME


def check(task: EvalTask, model: str | Path, rows: list[dict[str, Any]]) -> Contamination | None:
    """The eval trajectories of ``task`` that run folder ``model`` trained on.

    Args:
        task: The eval task (its data, and ``options.sources`` where it has them).
        model: The run folder evaluated (``baseline:...`` and anything that is not a run folder: not checked).
        rows: The task's per-sample rows; their ``trajectory`` (and ``source``) say which eval rows were scored.

    Returns:
        None when there is nothing to compare (a baseline, equation data, a task without field data).
    """
    if str(model).startswith("baseline:") or not is_run_folder(model):
        return None
    record = RunRecord.read(model)
    if record.data.get("kind") == "equations":
        return None  # symbolic regression: formulas, not trajectories
    evals = eval_sets(task)
    if not evals:
        return None
    scored = [(d, _scored_rows(rows, k, len(evals))) for k, d in enumerate(evals)]
    sets = []
    for d, used in scored:
        path = resolve_data_path(d.path, d.simulator, d.params, d.num_samples, d.seed)
        fps = dataset_fingerprints(path if (path / FILENAME).is_file() else load_eval_data(d))
        sets.append(fps[d.split] if used is None else fps[d.split].take(used))
    total = sum(len(s) for s in sets)
    train, missing = training_sets(record)
    if not train and not missing:
        return Contamination(None, total, note="the run record names no training data")
    if missing:
        return Contamination(None, total, note=f"training data not found: {', '.join(missing)}")
    hit = [np.zeros(len(s), bool) for s in sets]
    kinds: set[str] = set()
    for path, n_train in train:
        fp = dataset_fingerprints(path)["train"]
        fp = fp if n_train is None else fp.take(slice(0, n_train))
        for k, s in enumerate(sets):
            for kind, (ia, _) in match(s, fp).items():
                if len(ia):
                    hit[k][ia] = True
                    kinds.add(kind)
    return Contamination(int(sum(h.sum() for h in hit)), total, sorted(kinds))


def eval_sets(task: EvalTask) -> list[EvalData]:
    """The field data a task reads: its ``data`` and any ``options.sources`` (empty: no field data)."""
    from sfm.config import from_dict

    if task.data.path is None and task.data.simulator is None:
        return []
    out = [task.data]
    sources = task.options.get("sources") if isinstance(task.options, dict) else None
    for i, spec in enumerate(sources if isinstance(sources, list) else []):
        out.append(from_dict(EvalData, spec, where=f"{task.task}: options.sources[{i}]"))
    return out


def _scored_rows(rows: list[dict[str, Any]], source: int, n_sources: int) -> np.ndarray | None:
    """Rows of eval source ``source`` that were scored (None: the rows do not say, so the whole split)."""
    if not rows or "trajectory" not in rows[0] or (n_sources > 1 and "source" not in rows[0]):
        return None
    used = {int(r["trajectory"]) for r in rows if int(r.get("source", 0)) == source}
    return np.array(sorted(used), dtype=np.int64)


def training_sets(record: RunRecord) -> tuple[list[tuple[Path, int | None]], list[str]]:
    """The run's training data sets with the train rows used, and the folders that could not be found.

    Each source's recorded folder is tried first, then (for the recipe's own data section) the folder its
    simulator settings resolve to under the current ``$SFM_HOME``, for runs evaluated from elsewhere.
    """
    data = record.data
    described = data.get("sources") or ([data] if data.get("path") else [])
    found, missing = [], []
    for i, src in enumerate(described):
        candidates = [Path(str(src.get("path")))]
        recipe_data = record.recipe.get("data", {}) if isinstance(record.recipe, dict) else {}
        if i == 0 and isinstance(recipe_data, dict):
            candidates.append(_recipe_path(recipe_data))
        path = next((p for p in candidates if p is not None and (p / FILENAME).is_file()), None)
        n = src.get("num_train_trajectories")
        if path is None:
            missing.append(str(candidates[0]))
        else:
            found.append((path, int(n) if isinstance(n, int) else None))
    return found, missing


def _recipe_path(d: dict[str, Any]) -> Path | None:
    if d.get("path") is None and d.get("simulator") is None:
        return None
    return resolve_data_path(
        d.get("path"),
        d.get("simulator"),
        d.get("params") or {},
        int(d.get("num_samples", 64)),
        int(d.get("seed", 0)),
    )


def describe(c: Contamination) -> str:
    """One line: ``contaminated: 3 of 20 eval trajectories are in the training data (simulator, content)``."""
    if c.overlapping is None:
        return f"contamination not checked ({c.note})"
    if not c.overlapping:
        return f"clean: none of {c.of} eval trajectories is in the training data"
    return (
        f"contaminated: {c.overlapping} of {c.of} eval trajectories are in the training data "
        f"({', '.join(c.kind)})"
    )
