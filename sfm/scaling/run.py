"""``sfm scaling run SPEC``: run a sweep of fine-tunes locally (N cells at once) or as a Slurm job array.

A sweep folder holds everything, so a killed sweep continues where it stopped when the same command is run
again::

    DIR/sweep.json                    the expanded spec: stages, cells (index -> id) and their hashes
    DIR/cells.csv                     one row per finished cell, rewritten after every cell (sfm scaling fit DIR)
    DIR/pretrain/<model>/             pretraining stages of a tiny backbone (<stage>.yaml, <stage>/ run folder)
    DIR/init/<model>/seed<k>/         random-init copy of a Hub model (the scratch arm)
    DIR/cells/<id>/recipe.yaml        the cell's complete recipe (python -m sfm.train recipe.yaml)
    DIR/cells/<id>/eval/*.yaml        its eval tasks, retargeted at its data
    DIR/cells/<id>/run/, results/     the training run and its evaluation
    DIR/cells/<id>/cell.json          written last: the cell is finished

Every cell runs through the same code paths as a hand-made run: ``python -m sfm.train recipe.yaml`` in a
subprocess (which resumes from the run's last checkpoint when a killed cell is restarted), then
``sfm scaling cell DIR --index N`` (evaluation with ``sfm eval``'s library call, ``cell.json``, ``cells.csv``).
Cells with a valid ``cell.json`` are never rerun; a folder run under another configuration (the spec or
base recipe changed) is refused rather than mixed in.
"""

from __future__ import annotations

import os
import shlex
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from sfm import config
from sfm.errors import ConfigError
from sfm.models.run import RUN_FILE
from sfm.scaling.cells import PLAN_FILE, SWEEP_FILE, cell_dir, read_cell, write_cells_csv
from sfm.scaling.local import local_jobs, run_jobs
from sfm.scaling.plan import Cell, Plan, Stage, plan_sweep
from sfm.scaling.slurm import submit
from sfm.scaling.spec import load_spec
from sfm.scaling.sweep_data import generate_data
from sfm.utils.io import atomic_write_json, atomic_write_text, read_json

RUN_RECORD = RUN_FILE  # written last by sfm.train: the run is complete
INIT_RECORD = "sfm_init.json"


@dataclass
class SweepRun:
    """What ``run_sweep`` did.

    Attributes:
        out: The sweep folder. total: Cells in the sweep. finished: Cells with a valid ``cell.json`` now.
        ran: Jobs (stages and cells) run by this call. failed: Failed job -> its log. skipped: Jobs not
        run because a stage they need failed. script: The Slurm script written. commands: Submission
        commands (run, or printed with ``dry_run``).
    """

    out: Path
    total: int
    finished: int = 0
    ran: list[str] = field(default_factory=list)
    failed: dict[str, Path] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)
    seconds: float = 0.0
    script: Path | None = None
    commands: list[str] = field(default_factory=list)


def run_sweep(
    spec_path: str | Path,
    out: str | Path | None = None,
    *,
    parallel: int | None = None,
    launcher: str = "local",
    dry_run: bool = False,
    progress: bool = True,
) -> SweepRun:
    """Expand the spec and run (or continue) its sweep into ``out``.

    Args:
        spec_path: The sweep spec YAML.
        out: Sweep folder (default: the spec's ``out``, else ``runs/scaling/<name>``).
        parallel: Cells at once (local), or array tasks at once (Slurm); default: the spec's.
        launcher: ``local`` (subprocesses here) or ``slurm`` (job arrays submitted with ``sbatch``).
        dry_run: Plan and write the folder's files, but run nothing (Slurm: print the sbatch commands).
        progress: Print a line per job.
    """
    t0 = time.perf_counter()
    if launcher not in ("local", "slurm"):
        raise ConfigError(f"--launcher {launcher!r}: use 'local' or 'slurm'")
    spec = load_spec(spec_path)
    out = Path(out or spec.out or f"runs/scaling/{spec.name}").resolve()
    plan = plan_sweep(spec, where=str(spec_path))
    parallel = parallel or spec.parallel
    if parallel < 1:
        raise ConfigError(f"--parallel must be >= 1, got {parallel}")
    home = Path(os.environ.get("SFM_HOME") or ".").resolve()
    prepare(plan, out, spec_path, home)
    report = SweepRun(out, len(plan.cells))
    stages = [s for s in plan.stages if not stage_done(out, s)]
    cells = [c for c in plan.cells if read_cell(cell_dir(out, c.id)) is None]
    write_cells_csv(out)
    if launcher == "slurm":
        report.script, report.commands = submit(
            plan, out, home, stages, cells, parallel=parallel, dry_run=dry_run
        )
    else:
        jobs = local_jobs(plan, out, stages, cells)
        if dry_run:
            report.commands = [shlex.join(argv) for j in jobs for _, argv, _ in j.steps]
        else:
            generate_data(plan, home, progress=progress)
            done = {s.id for s in plan.stages} - {s.id for s in stages}
            run_jobs(jobs, done, report, parallel, home, progress=progress)
            write_cells_csv(out)
    report.finished = sum(read_cell(cell_dir(out, c.id)) is not None for c in plan.cells)
    report.seconds = time.perf_counter() - t0
    return report


def prepare(plan: Plan, out: Path, spec_path: str | Path, home: Path) -> None:
    """Write ``sweep.json`` and every stage's and cell's files, refusing folders of another configuration."""
    _refuse_stale(plan, out)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(
        out / SWEEP_FILE,
        {
            "name": plan.spec.name,
            "spec_path": str(Path(spec_path).resolve()),
            "home": str(home),
            "spec": config.to_dict(plan.spec),
            "stages": [
                {
                    "id": s.id,
                    "kind": s.kind,
                    "model": s.model,
                    "source": s.source,
                    "output": s.output,
                    "config_hash": s.config_hash,
                }
                for s in plan.stages
            ],
            "cells": [{"index": c.index, "id": c.id, "needs": c.needs} for c in plan.cells],
        },
    )
    for s in plan.stages:
        if s.kind == "pretrain":
            _write_pretrain(s, out)
    for c in plan.cells:
        _write_cell(c, plan.spec.metric, out)


def stage_done(out: Path, stage: Stage) -> bool:
    """A pretrain stage is done when its last run folder is complete; an init stage when its copy is."""
    folder = resolve(stage.output, out, out)
    if stage.kind == "pretrain":
        return (Path(folder) / RUN_RECORD).is_file()
    try:
        return read_json(Path(folder) / INIT_RECORD).get("config_hash") == stage.config_hash
    except (OSError, ValueError):
        return False


def resolve(value: Any, out: Path, folder: Path) -> Any:
    """Turn an ``@`` placeholder into a path: ``@cell/x`` under the cell's folder, ``@y`` under ``out``."""
    if not isinstance(value, str) or not value.startswith("@"):
        return value
    if value.startswith("@cell/"):
        return str(folder / value[len("@cell/") :])
    return str(out / value[1:])


def _write_pretrain(stage: Stage, out: Path) -> None:
    folder = out / stage.id
    paths = []
    for r in stage.recipes:
        name = Path(r["training"]["output_dir"]).name
        paths.append(_write_recipe(r, folder / f"{name}.yaml", out, folder, f"pretraining of {stage.model}"))
    plan = {"id": stage.id, "config_hash": stage.config_hash, "recipes": [str(p) for p in paths]}
    atomic_write_json(folder / PLAN_FILE, plan)


def _write_cell(c: Cell, metric: str, out: Path) -> None:
    """A cell's recipe, eval task files and ``plan.json`` (what ``sfm scaling cell`` reads)."""
    folder = cell_dir(out, c.id)
    _write_recipe(c.recipe, folder / "recipe.yaml", out, folder, f"cell {c.index} ({c.id})")
    tasks = []
    for t in c.eval_tasks:
        if isinstance(t, dict):
            rel = f"eval/{t['task']}.yaml"
            atomic_write_text(folder / rel, yaml.safe_dump(t, sort_keys=False))
            t = rel
        tasks.append(t)
    plan = {
        "id": c.id,
        "index": c.index,
        "config_hash": c.config_hash,
        "columns": c.columns,
        "metric": metric,
        "eval_tasks": tasks,
        "eval_args": c.eval_args,
        "needs": c.needs,
    }
    atomic_write_json(folder / PLAN_FILE, plan)


def _write_recipe(recipe: dict[str, Any], path: Path, out: Path, folder: Path, what: str) -> Path:
    r = {**recipe, "model": dict(recipe["model"]), "training": dict(recipe["training"])}
    r["model"]["name_or_path"] = resolve(r["model"]["name_or_path"], out, folder)
    r["training"]["output_dir"] = resolve(r["training"]["output_dir"], out, folder)
    header = f"# {what}, written by `sfm scaling run`; runs alone as:\n#   python -m sfm.train {path}\n"
    atomic_write_text(path, header + yaml.safe_dump(r, sort_keys=False))
    return path


def _refuse_stale(plan: Plan, out: Path) -> None:
    """Folders that hold work of another configuration would be resumed or mixed in silently: refuse."""
    stale = []
    for c in plan.cells:
        folder = cell_dir(out, c.id)
        if _other_hash(folder / PLAN_FILE, c.config_hash) and any(
            (folder / p).exists() for p in ("run", "results", "cell.json")
        ):
            stale.append(folder)
    for s in plan.stages:
        folder = out / s.id
        record = folder / PLAN_FILE if s.kind == "pretrain" else folder / INIT_RECORD
        if _other_hash(record, s.config_hash) and folder.exists() and any(folder.iterdir()):
            stale.append(folder)
    if stale:
        raise ConfigError(
            f"{out}: {len(stale)} folder(s) hold runs of another configuration (first: {stale[0]}); the spec "
            f"or its base recipe changed since they ran: use another --out, or delete them to rerun"
        )


def _other_hash(path: Path, expected: str) -> bool:
    try:
        return read_json(path).get("config_hash") != expected
    except (OSError, ValueError):
        return False
