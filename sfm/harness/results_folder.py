"""Writing one model's results into a results folder that other evaluations may be writing at the same time.

A results folder holds one ``results.json`` (one model, several tasks) beside its per-task ``samples_*.jsonl``
and ``examples_*.npz``. Two ``sfm eval`` processes pointed at the same ``--out`` must both keep their results:

* the same model (same name, path and weight fingerprint), other or the same tasks: the write merges task by
  task under a lock (read, merge, atomic write), the newer result of a task replacing the older;
* another model: its results go into a subfolder named after it (``<out>/<name>-<fingerprint>/``), which the
  leaderboard finds as it searches folders recursively.

The lock (``filelock``, a file beside ``results.json``) serializes only the read-merge-write of the folder's
files, not the evaluations.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
from filelock import FileLock

from sfm.errors import DataError
from sfm.harness.results import RESULTS_FILE, EvalResults
from sfm.utils.io import atomic_write_bytes, atomic_write_text

LOCK_FILE = ".results.lock"
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")


def same_model(a: EvalResults, b: EvalResults) -> bool:
    """Whether two results are of one model (baselines by name; trained models by path and fingerprint)."""
    ma, mb = a.model, b.model
    return (ma.name, ma.kind, ma.path, ma.fingerprint) == (mb.name, mb.kind, mb.path, mb.fingerprint)


def write_results(
    results: EvalResults,
    samples: dict[str, list[dict[str, Any]]],
    examples: dict[str, dict[str, np.ndarray]],
    out: str | Path,
) -> Path:
    """Write ``results`` and its samples into ``out``, keeping what other evaluations wrote there.

    Returns:
        The ``results.json`` written (in ``out``, or in a subfolder when ``out`` holds another model's).
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    with FileLock(str(out / LOCK_FILE)):
        existing = _read(out / RESULTS_FILE)
        if existing is not None and not same_model(existing, results):
            fp = (results.model.fingerprint or "")[:8]
            out = out / _UNSAFE.sub("_", f"{results.model.name}-{fp}".strip("-"))
            out.mkdir(parents=True, exist_ok=True)
            existing = _read(out / RESULTS_FILE)
        if existing is not None and same_model(existing, results):
            merged = {**existing.tasks, **results.tasks}
            results.tasks = merged
            results.config = {**existing.config, **results.config, "tasks": sorted(merged)}
        _write_samples(samples, examples, out)
        return results.save(out)


def _read(path: Path) -> EvalResults | None:
    """The results already there; None when there are none. An unreadable file is moved aside (kept as
    ``results.json.unreadable``, never overwritten silently) and counts as none."""
    if not path.is_file():
        return None
    try:
        return EvalResults.load(path)
    except DataError:
        path.replace(path.with_name(path.name + ".unreadable"))
        return None


def _write_samples(
    samples: dict[str, list[dict[str, Any]]], examples: dict[str, dict[str, np.ndarray]], out: Path
) -> None:
    import io

    for task, rows in samples.items():
        safe = task.replace("/", "__")
        atomic_write_text(out / f"samples_{safe}.jsonl", "".join(json.dumps(r) + "\n" for r in rows))
        if examples.get(task):
            buf = io.BytesIO()
            np.savez_compressed(buf, **examples[task])
            atomic_write_bytes(out / f"examples_{safe}.npz", buf.getvalue())
