"""The data sets a sweep reads, generated once before any of its jobs starts.

Parallel cells (or Slurm array tasks) that found a data set missing would all start writing the same cache
folder at once; :func:`generate_data` builds each one here first, so every job only reads.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from sfm import config
from sfm.data.cache import ensure_dataset, resolve_data_path
from sfm.harness.tasks import load_task
from sfm.scaling.plan import Plan


def generate_data(plan: Plan, home: Path, *, progress: bool = True) -> None:
    """Generate every data set the sweep reads, once, before any job starts (parallel cells never race to
    write the same cache folder)."""
    wanted: dict[str, dict[str, Any]] = {}
    for r in [r for s in plan.stages for r in s.recipes] + [c.recipe for c in plan.cells]:
        wanted.setdefault(_data_key(r["data"]), r["data"])
    for t in {json.dumps(t, sort_keys=True) for c in plan.cells for t in c.eval_tasks}:
        data = _eval_data(json.loads(t))
        if data.get("simulator") or data.get("path"):
            wanted.setdefault(_data_key(data), {"num_proc": 1, **data})
    previous = os.environ.get("SFM_HOME")
    os.environ["SFM_HOME"] = str(home)  # where the subprocesses will look (resolve_data_path reads it)
    try:
        for d in wanted.values():
            path = resolve_data_path(d["path"], d["simulator"], d["params"], d["num_samples"], d["seed"])
            if progress and not path.is_dir():
                print(f"==> data {d['simulator']} x {d['num_samples']} -> {path}", flush=True)
            ensure_dataset(
                path, d["simulator"], d["params"], d["num_samples"], d["seed"], d["num_proc"], progress=False
            )
    finally:
        if previous is None:
            os.environ.pop("SFM_HOME", None)
        else:
            os.environ["SFM_HOME"] = previous


def _eval_data(task: dict[str, Any] | str) -> dict[str, Any]:
    """The data section of an eval task (as planned, or a named task as shipped)."""
    if isinstance(task, dict):
        return task["data"]
    return config.to_dict(load_task(task).data)


def _data_key(d: dict[str, Any]) -> str:
    keys = ("path", "simulator", "params", "num_samples", "seed")
    return json.dumps({k: d.get(k) for k in keys}, sort_keys=True)
