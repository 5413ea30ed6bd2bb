"""Eval tasks: small versioned YAML files under ``eval/tasks/`` mapping onto :class:`EvalTask`.

A task's name is its path under the tasks folder without ``.yaml`` (``forecast/burgers``). A file may start
from another with ``include: <name>`` and override any key; ``version`` must be bumped whenever prompts or
scoring change, and results carry it (the leaderboard refuses to rank rows whose versions differ).

Task folders searched, first match wins: ``$SFM_TASKS_PATH`` (``:``-separated), the repository's
``eval/tasks`` (editable installs), and the copy shipped inside the wheel (``sfm/_eval_tasks``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from sfm import config
from sfm.errors import ConfigError
from sfm.registry import BASELINES, EVAL_TASKS, FAMILIES, METRICS, SIMULATORS, TASK_FORMATS


@dataclass
class EvalData:
    """The data a task is scored on: an existing field data set, or one generated (and cached) from a
    simulator exactly as a recipe's ``data`` section would."""

    path: str | None = None
    simulator: str | None = field(default=None, metadata={"registry": SIMULATORS})
    params: dict[str, Any] = field(default_factory=dict)
    num_samples: int = 32
    seed: int = 0
    split: Literal["train", "validation", "test"] = "test"


@dataclass
class EvalTask:
    """One downstream task.

    Attributes:
        task: The task's name (set from its file path; a mismatch is an error).
        version: Bumped whenever prompts or scoring change.
        family: The eval family that runs and scores it (``sfm list eval-families``).
        description: One line for ``sfm eval --list`` and cards.
        data: Where the examples come from.
        format: Task-format options (``context_frames``, ``horizon``, ``space_stride``...).
        task_format: The task format that builds prompts (registry name).
        rollout_steps: Autoregressive steps (each predicts ``horizon`` frames); 1 = one-step forecast.
        windows: Named ranges ``[start, stop)`` of predicted frames scored separately (The Well scores
            6:12 and 13:30); every metric is also reported over all predicted frames.
        metrics: Metric names (``sfm list metrics``).
        primary_metric: The metric the leaderboard ranks by (lower is better unless registered otherwise).
        baselines: Baselines scored beside the model (``sfm list baselines``).
        noise_levels: Robustness: relative Gaussian noise levels added to the context frames.
        constrained: Generation may only emit tokens valid at each position of a completion.
        invalid: What an invalid or truncated output is scored as: ``persistence`` (the persistence
            baseline's frame stands in, so an invalid output never scores better than persistence) or
            ``drop`` (only fully valid examples are scored, for model and baselines alike).
        limit: Examples scored at most (``sfm eval --limit`` overrides).
        windows_per_trajectory: Forecast start frames per trajectory (None: every start).
        bootstrap: Bootstrap resamples for confidence intervals.
        options: Family-specific settings (e.g. symbolic regression: ``num_points``, ``equations``).
    """

    task: str
    version: int
    family: str = field(metadata={"registry": FAMILIES})
    description: str = ""
    data: EvalData = field(default_factory=EvalData)
    format: dict[str, Any] = field(default_factory=dict)
    task_format: str = field(default="forecast", metadata={"registry": TASK_FORMATS})
    rollout_steps: int = 1
    windows: dict[str, list[int]] = field(default_factory=dict)
    metrics: list[str] = field(default_factory=lambda: ["nrmse"], metadata={"registry": METRICS})
    primary_metric: str = "nrmse"
    baselines: list[str] = field(default_factory=lambda: ["persistence"], metadata={"registry": BASELINES})
    noise_levels: list[float] = field(default_factory=list)
    constrained: bool = True
    invalid: Literal["persistence", "drop"] = "persistence"
    limit: int | None = None
    windows_per_trajectory: int | None = None
    bootstrap: int = 1000
    options: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.version < 1:
            raise ValueError("version must be >= 1")
        if self.primary_metric not in self.metrics:
            raise ValueError(f"primary_metric {self.primary_metric!r} is not in metrics {self.metrics}")
        if self.rollout_steps < 1:
            raise ValueError("rollout_steps must be >= 1")
        for name, win in self.windows.items():
            if len(win) != 2 or not 0 <= win[0] < win[1]:
                raise ValueError(f"window {name!r} must be [start, stop) with 0 <= start < stop, got {win}")
        meta = FAMILIES.meta(self.family)
        for key in meta.get("requires", ()):
            if not getattr(self, key):
                raise ValueError(f"a {self.family} task needs {key}")
        if meta.get("needs_data") and self.data.path is None and self.data.simulator is None:
            raise ValueError("set data.path or data.simulator")
        _check_baselines(self.family, str(meta.get("answers", self.family)), self.baselines)


def _baseline_family(name: str) -> str:
    return str(BASELINES.meta(name).get("family", "forecast"))


def _check_baselines(family: str, kind: str, baselines: list[str]) -> None:
    """Each baseline predicts one kind of answer (frames, a PDE name, a formula): it must suit the task's
    family, whose registry entry says which kind it ``answers``."""
    for b in baselines:
        if _baseline_family(b) != kind:
            fitting = [n for n in BASELINES.names() if _baseline_family(n) == kind]
            raise ValueError(
                f"baseline {b!r} is for {_baseline_family(b)} tasks; a {family} task takes: {', '.join(fitting)}"
            )


def task_dirs() -> list[Path]:
    """Folders searched for task YAML files, in priority order."""
    dirs = [Path(p) for p in os.environ.get("SFM_TASKS_PATH", "").split(os.pathsep) if p]
    here = Path(__file__).resolve().parents[1]
    dirs += [here.parent / "eval" / "tasks", here / "_eval_tasks"]
    return [d for d in dirs if d.is_dir()]


def _scan() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for root in task_dirs():
        for path in sorted(root.rglob("*.yaml")):
            name = path.relative_to(root).with_suffix("").as_posix()
            found.setdefault(name, path)
    return found


def _raw(name: str, files: dict[str, Path], seen: tuple[str, ...] = ()) -> dict[str, Any]:
    """The task's YAML with its ``include`` chain merged (the including file wins)."""
    if name in seen:
        raise ConfigError(f"eval task {name!r}: include cycle {' -> '.join((*seen, name))}")
    if name not in files:
        from sfm.errors import did_you_mean

        raise ConfigError(
            f"eval task {seen[-1] if seen else name!r}: includes unknown task {name!r}{did_you_mean(name, files)}"
        )
    data = config.read_yaml(files[name])
    parent = data.pop("include", None)
    if parent is None:
        return data
    return config.merge(_raw(str(parent), files, (*seen, name)), data)


def load_task(name_or_path: str) -> EvalTask:
    """Load an eval task by registry name or YAML path, with includes resolved and every key checked."""
    path = Path(name_or_path)
    files = _scan()
    if path.suffix == ".yaml" and path.is_file():
        name = path.stem
        files = {**files, name: path}
    else:
        name = name_or_path
        EVAL_TASKS.get(name)  # unknown name -> did-you-mean
    data = _raw(name, files)
    declared = data.get("task", name)
    if path.suffix == ".yaml" and path.is_file():
        name = str(declared)  # a file outside the task folders names itself
    elif declared != name:
        raise ConfigError(f"{files[name]}: 'task: {declared}' does not match its file name ({name})")
    data["task"] = name
    return config.from_dict(EvalTask, data, where=str(path if path.is_file() else files[name]))


def _description(path: Path) -> str:
    try:
        return str(config.read_yaml(path).get("description", ""))
    except ConfigError:
        return "(unreadable)"


# The registry entry of a task is its YAML path; load_task() builds the checked EvalTask from it.
for _name, _path in _scan().items():
    EVAL_TASKS.register(_name, description=_description(_path))(_path)
