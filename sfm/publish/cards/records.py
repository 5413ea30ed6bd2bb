"""What a model card is built from: the run record, the data set's ``field_meta.json`` and typed results.

Every fact in a card comes from records the code itself wrote: ``sfm_run.json`` (recipe, base model, data,
encoding, parameters, losses), the data set's ``field_meta.json`` when it can be found, and the typed results
(:class:`~sfm.harness.results.EvalResults`) of exactly the weights in the run folder.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sfm.errors import DataError
from sfm.harness.results import EvalResults, TaskResult
from sfm.models.run import RUN_FILE as RUN_FILE  # re-exported by sfm.publish.cards
from sfm.models.run import RunRecord
from sfm.publish.kinds import is_trained, model_kind
from sfm.utils.provenance import model_fingerprint


def read_run(run_dir: str | Path) -> dict[str, Any]:
    """``sfm_run.json`` of a run folder, as plain data (read and checked by :class:`~sfm.models.run.RunRecord`).

    Raises:
        DataError: the folder has no readable ``sfm_run.json``.
    """
    return RunRecord.read(run_dir).to_dict()


def run_name(run_dir: str | Path) -> str:
    """The run's name as ``sfm eval`` records it: the folder name, or ``parent/model`` for a ``model`` folder."""
    p = Path(run_dir).resolve()
    return f"{p.parent.name}/model" if p.name == "model" else p.name


def matches(run_dir: str | Path, results: EvalResults, fingerprint: str | None = None) -> bool:
    """True if ``results`` scored exactly the weights now in ``run_dir`` (by fingerprint, else by path).

    Args:
        run_dir: The run folder.
        results: An evaluation (of a trained model of any kind; a baseline's never matches).
        fingerprint: The run's fingerprint if already computed (it hashes the weights).
    """
    info = results.model
    if not is_trained(model_kind(info)):
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


def latest_tasks(results: Sequence[EvalResults]) -> list[tuple[EvalResults, TaskResult]]:
    """Every (results, task) pair; a task version scored twice keeps the newer evaluation."""
    best: dict[tuple[str, int], tuple[EvalResults, TaskResult]] = {}
    for res in sorted(results, key=lambda r: r.date):
        for t in res.tasks.values():
            if t.model is not None:
                best[(t.task, t.version)] = (res, t)
    return [best[k] for k in sorted(best)]


def base_model_id(record: dict[str, Any]) -> str | None:
    """The base model as a Hub id, or None for a tiny backbone or a local folder (not Hub ids)."""
    base = record.get("base_model")
    if not base or record.get("tiny_base"):
        return None
    from sfm.models.backbones import is_tiny

    if is_tiny(base) or Path(base).expanduser().exists() or base.startswith((".", "/", "~")):
        return None
    return base


def training_dataset(record: dict[str, Any]) -> str:
    """The training data set's name: its folder name (pass ``dataset=`` for a Hub id)."""
    return Path(str(record.get("data", {}).get("path") or "unknown")).name


def find_field_meta(run_dir: str | Path, record: dict[str, Any]) -> Path | None:
    """The training data's ``field_meta.json``, if any candidate location holds it.

    A relative data path was relative to the folder training ran from; that folder is recovered from the run
    folder and the recipe's relative ``output_dir``, then ``$SFM_HOME`` and the current folder are tried.
    """
    data = Path(str(record.get("data", {}).get("path") or ""))
    if str(data) in ("", "."):
        return None
    bases = [Path(os.environ.get("SFM_HOME", ".")), Path.cwd()]
    out_dir = Path(str(record["recipe"].get("training", {}).get("output_dir", "")))
    run = Path(run_dir).resolve()
    n = len(out_dir.parts)
    if n and not out_dir.is_absolute() and run.parts[-n:] == out_dir.parts:
        bases.insert(0, run.parents[n - 1])  # run = <where training ran>/<output_dir>
    for base in [Path("/")] if data.is_absolute() else bases:
        if (base / data / "field_meta.json").is_file():
            return base / data / "field_meta.json"
    return None
