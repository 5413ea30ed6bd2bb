"""Scaling sweep specs: one YAML file that says which fine-tunes to run, and their expansion into cells.

A spec names a base recipe and the axes to vary. ``sfm scaling run SPEC`` expands it into *cells* — one per
(task variant x arm x model x steps x data size x seed) — each one fine-tune plus one evaluation, and into
*stages* that cells need first (pretraining a tiny backbone on other physics; a random-init copy of a Hub
model for the scratch arm)::

    name: laptop
    recipe: ../quickstart.yaml            # base recipe, relative to this file
    overrides: {peft: {method: full}}     # common recipe overrides (nested mapping)
    tasks:                                # physics variants, each scored by its own eval task(s)
      burgers: {overrides: {data: {params: {nu: [0.01, 0.03]}}}, eval: [forecast/burgers-tiny]}
    grid: {data_size: [4, 8, 16, 32], steps: [200]}
    arms: [pretrained, scratch]
    pretrain: [{name: advection, overrides: {data: {simulator: advection, params: {beta: [0.2, 1.5]}}}}]

Override semantics (applied in this order: ``overrides``, the task variant's, the model's, the arm's, then
the grid values): mappings merge key by key, other values replace; two exceptions make variants read
naturally — an override that changes ``data.simulator`` starts ``data.params`` afresh (another simulator's
parameters never mix with the base's), and a model variant's ``tiny`` replaces ``model.tiny`` whole (a named
size is a complete size).

Arms: ``scratch`` trains the same architecture from random weights (a tiny backbone by name; a Hub model
through a random-init copy made by an ``init`` stage); ``pretrained`` starts from pretrained weights — a Hub
model's own, or, for a tiny backbone (which has none), the output of the spec's ``pretrain`` stages, run once
per model and cached. Any other arm is a *reference* (``fno``: a neural operator, the standard to beat): its
``arm_overrides`` entry says what it trains, from random weights, on the same data and step budget; fits
measure the other arms' data and accuracy gains against it. Every seed of the ``seeds`` list is a replicate (``training.seed``: initialisation of
new weights and data order); the data set itself stays fixed.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sfm import config
from sfm.errors import ConfigError, did_you_mean
from sfm.scaling.table import ARMS

LORA_METHODS = ("lora", "dora", "rslora", "qlora")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
CELL_RUN = "@cell/run"
"""Placeholder of a cell's run folder in its planned recipe (see :mod:`sfm.scaling.plan`)."""


@dataclass
class TaskVariant:
    """One physics variant of the sweep.

    Attributes:
        eval: Eval task names (``eval/tasks``) or YAML paths that score it; the first gives the headline
            metric columns of ``cells.csv``.
        overrides: Recipe overrides (``data.simulator``, ``data.params``...).
        eval_overrides: Keys merged into every eval task of this variant (``windows_per_trajectory``...).
        match_data: Point each eval task's data (and task-format options) at this variant's data, so the
            model is scored on held-out trajectories of what it was trained on; the task file used is
            written into the sweep folder.
    """

    eval: list[str]
    overrides: dict[str, Any] = field(default_factory=dict)
    eval_overrides: dict[str, Any] = field(default_factory=dict)
    match_data: bool = True

    def __post_init__(self) -> None:
        if not self.eval:
            raise ValueError("eval: name at least one eval task")


@dataclass
class ModelVariant:
    """One value of the ``model`` axis.

    Attributes:
        name: Label in cell ids and the ``model`` column.
        name_or_path: Tiny backbone name, Hub id or local folder (default: the base recipe's).
        tiny: A tiny backbone's size (``model.tiny``), replacing the base recipe's whole.
        lora_rank: ``peft.r``; ``peft.alpha`` is scaled with it so that alpha/r stays the base recipe's (the
            LoRA update is multiplied by alpha/r: a fixed alpha would confound rank with step size).
        revision: Hub revision to pin.
        overrides: Further recipe overrides for this model (batch size, learning rate...).
    """

    name: str
    name_or_path: str | None = None
    tiny: dict[str, Any] | None = None
    lora_rank: int | None = None
    revision: str | None = None
    overrides: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _check_name(self.name, "name")
        if self.lora_rank is not None and self.lora_rank < 1:
            raise ValueError(f"lora_rank must be >= 1, got {self.lora_rank}")


@dataclass
class Grid:
    """The swept axes; every combination is a cell.

    Attributes:
        data_size: Training trajectories (``data.train_trajectories``: larger sizes nest smaller ones).
        model: Model variants (default: the base recipe's model, named ``base``).
        steps: Optimizer steps (``training.max_steps``; default: the recipe's).
    """

    data_size: list[int]
    model: list[ModelVariant] = field(default_factory=lambda: [ModelVariant("base")])
    steps: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        _check_axis("data_size", self.data_size, empty_ok=False)
        _check_axis("steps", self.steps, empty_ok=True)
        if not self.model:
            raise ValueError("model: give at least one model variant (or leave the key out)")
        _unique("model", [m.name for m in self.model])


@dataclass
class PretrainStage:
    """One stage of pretraining a backbone on other physics (stage k starts from stage k-1's weights)."""

    name: str
    overrides: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _check_name(self.name, "name")


@dataclass
class SlurmSection:
    """``#SBATCH`` settings of the generated job arrays (None: the cluster's default).

    Attributes:
        setup: Shell lines run before the commands (``source .venv/bin/activate``, ``module load ...``).
        extra: Further ``#SBATCH`` options, verbatim (``--qos=high``).
        max_concurrent: Array tasks running at once (default: the spec's ``parallel``).
    """

    partition: str | None = None
    account: str | None = None
    time: str = "24:00:00"
    nodes: int = 1
    gpus_per_node: int | None = None
    cpus_per_task: int | None = None
    mem: str | None = None
    setup: list[str] = field(default_factory=list)
    extra: list[str] = field(default_factory=list)
    max_concurrent: int | None = None


@dataclass
class LaunchSection:
    """How a cell's training is launched under Slurm (locally it is plain ``python -m sfm.train``).

    Attributes:
        accelerate_config: The ``accelerate launch --config_file`` (``launch/accelerate/*.yaml``).
        slurm: Job array settings.
    """

    accelerate_config: str = "launch/accelerate/single_gpu.yaml"
    slurm: SlurmSection = field(default_factory=SlurmSection)


@dataclass
class SweepSpec:
    """A whole sweep (see the module docstring).

    Attributes:
        name: Names the sweep folder (``runs/scaling/<name>``) and its Slurm jobs.
        recipe: The base recipe, relative to the spec file.
        tasks: Physics variants by name. grid: The swept axes.
        overrides: Recipe overrides common to every cell and pretraining stage.
        arms: ``pretrained``, ``scratch``, and reference arms: any other name with an entry in
            ``arm_overrides`` that says what it trains (``model: {name_or_path: operator:fno}``), from random
            weights, on the same data and budget. arm_overrides: Recipe overrides per arm.
        pretrain: Stages that make a tiny backbone's pretrained weights (other physics), in order.
        metric: The headline error column (a metric of each variant's first eval task).
        seeds: Replicates (``training.seed``). parallel: Cells at once (local) or array tasks at once (Slurm).
        out: Sweep folder (default ``runs/scaling/<name>``). launch: How Slurm runs the cells.
    """

    name: str
    recipe: str
    tasks: dict[str, TaskVariant]
    grid: Grid
    overrides: dict[str, Any] = field(default_factory=dict)
    arms: list[str] = field(default_factory=lambda: list(ARMS))
    arm_overrides: dict[str, dict[str, Any]] = field(default_factory=dict)
    pretrain: list[PretrainStage] = field(default_factory=list)
    metric: str = "nrmse"
    seeds: list[int] = field(default_factory=lambda: [0])
    parallel: int = 1
    out: str | None = None
    launch: LaunchSection = field(default_factory=LaunchSection)

    def __post_init__(self) -> None:
        try:  # the helpers raise ValueError, which nested sections get prefixed with their key
            _check_name(self.name, "name")
            if not self.tasks:
                raise ValueError("tasks: name at least one task variant")
            for name in self.tasks:
                _check_name(name, f"tasks.{name}")
            if not self.arms:
                raise ValueError("arms: name at least one of 'pretrained', 'scratch'")
            for arm in self.arms:
                _check_name(arm, "arms")
                if arm not in ARMS and arm not in self.arm_overrides:
                    raise ValueError(
                        f"arms: {arm!r} is neither 'pretrained' nor 'scratch'{did_you_mean(arm, ARMS)}; a "
                        f"reference arm needs an arm_overrides.{arm} entry saying what it trains"
                    )
            extra = sorted(set(self.arm_overrides) - set(self.arms))
            if extra:
                raise ValueError(f"arm_overrides: {', '.join(extra)} not in arms ({', '.join(self.arms)})")
            if not self.seeds:
                raise ValueError("seeds: give at least one seed")
            _unique("arms", list(self.arms))
            _unique("seeds", list(self.seeds))
            _unique("pretrain", [s.name for s in self.pretrain])
            if self.parallel < 1:
                raise ValueError(f"parallel must be >= 1, got {self.parallel}")
        except ValueError as exc:
            raise ConfigError(str(exc)) from None


def load_spec(path: str | Path) -> SweepSpec:
    """Read a sweep spec strictly; the base recipe path is made absolute (relative to the spec file).

    Raises:
        ConfigError: one line naming the file and key (unknown keys suggest the closest valid one).
    """
    path = Path(path)
    data = config.read_yaml(path)
    spec = config.from_dict(SweepSpec, data, where=str(path))
    recipe = Path(spec.recipe)
    if not recipe.is_absolute():
        recipe = (path.parent / recipe).resolve()
    if not recipe.is_file():
        raise ConfigError(f"{path}: recipe: no such file {recipe}")
    spec.recipe = str(recipe)
    return spec


def apply_overrides(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Merge recipe ``override`` into ``base`` (see the module docstring for the ``data.params`` rule)."""
    out = config.merge(base, override)
    new_data = override.get("data") or {}
    old_sim = (base.get("data") or {}).get("simulator")
    if "simulator" in new_data and new_data["simulator"] != old_sim:
        out["data"]["params"] = dict(new_data.get("params") or {})
    return out


def config_hash(data: Any) -> str:
    """A short stable hash of plain data: identifies the configuration a cell or stage was run with."""
    text = json.dumps(data, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _check_name(name: str, key: str) -> None:
    if not _NAME.match(str(name)):
        raise ValueError(f"{key}: {name!r} must be letters, digits, '_', '.' or '-' (it names folders)")


def _check_axis(key: str, values: list[int], *, empty_ok: bool) -> None:
    if not values and not empty_ok:
        raise ValueError(f"{key}: give at least one value")
    bad = [v for v in values if v < 1]
    if bad:
        raise ValueError(f"{key}: values must be >= 1, got {bad}")
    _unique(key, values)


def _unique(key: str, values: list[Any]) -> None:
    dupes = sorted({str(v) for v in values if values.count(v) > 1})
    if dupes:
        raise ValueError(f"{key}: duplicate value(s) {', '.join(dupes)}")
