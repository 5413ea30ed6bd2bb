"""A sweep spec expanded into stages and cells, each with its full recipe, eval tasks and configuration hash.

:func:`plan_sweep` is pure: it builds every cell's recipe from the spec (see :mod:`sfm.scaling.spec` for the
override order), checks it as strictly as ``sfm validate`` would, and retargets the eval tasks at the cell's
data — without writing or downloading anything, so a typo anywhere fails before the first cell starts.

Folders that exist only inside a sweep folder are written as ``@`` placeholders (``@cell/run``,
``@pretrain/<model>/<stage>``, ``@init/<model>/seed<k>``) and resolved when the cell files are written, so a
configuration hash does not depend on where the sweep folder lives.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, NamedTuple

from sfm import config
from sfm.data.splits import SPLIT_FRACTIONS, split_counts
from sfm.errors import ConfigError, SfmError, did_you_mean
from sfm.harness.tasks import EvalTask, load_task
from sfm.models.backbones import is_tiny
from sfm.scaling.spec import (
    CELL_RUN,
    LORA_METHODS,
    ModelVariant,
    SweepSpec,
    TaskVariant,
    apply_overrides,
    config_hash,
)
from sfm.training.recipe import ModelSection, PeftSection, Recipe


@dataclass
class Stage:
    """Work that cells need first: pretraining a backbone, or a random-init copy of a Hub model.

    Attributes:
        id: ``pretrain/<model>`` or ``init/<model>/seed<k>``; also its folder under the sweep folder.
        kind: ``pretrain`` (``python -m sfm.train`` per recipe, in order) or ``init``.
        recipes: Pretrain: one recipe per stage, with ``@`` placeholders for sweep folders.
        source: Init: the model to copy the architecture of (``name_or_path``, ``revision``...), and ``seed``.
        output: Placeholder of the folder cells start from.
    """

    id: str
    kind: Literal["pretrain", "init"]
    model: str
    recipes: list[dict[str, Any]]
    source: dict[str, Any]
    output: str
    config_hash: str


@dataclass
class Cell:
    """One fine-tune + evaluation of the sweep; ``columns`` are its identifying ``cells.csv`` values."""

    index: int
    id: str
    columns: dict[str, Any]
    recipe: dict[str, Any]
    eval_tasks: list[dict[str, Any] | str]
    eval_args: dict[str, Any]
    needs: list[str]
    config_hash: str


@dataclass
class Plan:
    """A spec expanded: stages first, then cells in a fixed order (the index of ``sfm scaling cell``)."""

    spec: SweepSpec
    stages: list[Stage]
    cells: list[Cell]


def plan_sweep(spec: SweepSpec, *, where: str = "spec") -> Plan:
    """Expand ``spec`` into stages and cells, building and checking every cell's recipe and eval tasks.

    Nothing is written and nothing downloaded: a typo in any override, an unknown eval task or a data size
    larger than the training split fails here, with one line, before the first cell starts.
    """
    base = config.read_yaml(spec.recipe)
    stages: dict[str, Stage] = {}
    cells: list[Cell] = []
    axes = itertools.product(
        spec.tasks, spec.grid.model, spec.grid.steps or [None], spec.grid.data_size, spec.arms, spec.seeds
    )
    for task, model, steps, n, arm, seed in axes:
        key = _Key(task, model, steps, n, arm, seed)
        cells.append(_plan_cell(spec, base, key, len(cells), stages, where))
    return Plan(spec, list(stages.values()), cells)


class _Key(NamedTuple):
    task: str
    model: ModelVariant
    steps: int | None
    n: int
    arm: str
    seed: int


def _plan_cell(
    spec: SweepSpec, base: dict[str, Any], key: _Key, index: int, stages: dict[str, Stage], where: str
) -> Cell:
    task, model, steps, n, arm, seed = key
    variant = spec.tasks[task]

    d = apply_overrides(apply_overrides(base, spec.overrides), variant.overrides)
    d = _apply_model(d, model)
    name = d["model"]["name_or_path"]
    needs = []
    start = _arm_start(spec, base, model, arm, seed, name, stages, where)
    if start is not None:
        needs.append(start.id)
        d["model"]["name_or_path"] = start.output
        d["model"]["revision"] = None  # a local folder
    d = apply_overrides(d, spec.arm_overrides.get(arm, {}))
    train: dict[str, Any] = {"seed": seed, "output_dir": CELL_RUN}
    if steps is not None:
        train["max_steps"] = steps
    d = apply_overrides(d, {"data": {"train_trajectories": n}, "training": train})
    label = f"{task}.{arm}.{model.name}.d{n}"
    # The cell evaluates its run itself (sfm scaling cell), on the variant's tasks: sfm.train must not also.
    d = {**d, "evaluation": {**(d.get("evaluation") or {}), "tasks": []}}
    recipe = config.from_dict(Recipe, d, where=f"{where}: cell {label}")
    if recipe.training.max_steps <= 0:
        raise ConfigError(
            f"{where}: grid.steps: the recipe trains by epochs (max_steps="
            f"{recipe.training.max_steps}); give the step budget(s) in grid.steps"
        )
    _check_data_size(recipe, n, task, where)
    cid = f"{label}.s{recipe.training.max_steps}.seed{seed}"
    evals = [_eval_task(t, recipe, variant, where, task) for t in variant.eval]
    _check_metric(spec.metric, evals[0], where)
    p = recipe.peft
    columns = {
        "task": task,
        "arm": arm,
        "model": model.name,
        "data_size": n,
        "lora_rank": p.r if p.method in LORA_METHODS else None,
        "steps": recipe.training.max_steps,
        "seed": seed,
    }
    eval_args = {"limit": recipe.evaluation.limit, "batch_size": recipe.evaluation.batch_size, "seed": seed}
    plain = config.to_dict(recipe)
    digest = config_hash(
        {
            "recipe": plain,
            "eval": evals,
            "eval_args": eval_args,
            "needs": needs,
            "stages": [stages[s].config_hash for s in needs],
        }
    )
    return Cell(index, cid, columns, plain, evals, eval_args, needs, digest)


def _apply_model(d: dict[str, Any], m: ModelVariant) -> dict[str, Any]:
    d = dict(d)
    model = {"name_or_path": ModelSection.name_or_path, **(d.get("model") or {})}
    if m.name_or_path is not None:
        model["name_or_path"] = m.name_or_path
    if m.tiny is not None:
        model["tiny"] = dict(m.tiny)
    if m.revision is not None:
        model["revision"] = m.revision
    d["model"] = model
    if m.lora_rank is not None:
        peft = dict(d.get("peft") or {})
        r0, a0 = peft.get("r", PeftSection.r), peft.get("alpha", PeftSection.alpha)
        peft.update(r=m.lora_rank, alpha=float(a0) * m.lora_rank / r0)
        d["peft"] = peft
    return apply_overrides(d, m.overrides)


def _arm_start(
    spec: SweepSpec,
    base: dict[str, Any],
    model: ModelVariant,
    arm: str,
    seed: int,
    name: str,
    stages: dict[str, Stage],
    where: str,
) -> Stage | None:
    """The stage whose output this arm starts from (None: start from ``name`` itself)."""
    if arm not in ("pretrained", "scratch"):
        return None  # a reference arm: what its arm_overrides name, built from random weights
    if arm == "scratch":
        if is_tiny(name):
            return None  # a tiny backbone by name is built with random weights
        sid = f"init/{model.name}/seed{seed}"
        if sid not in stages:
            d = _apply_model(apply_overrides(base, spec.overrides), model)["model"]
            source = {
                "name_or_path": name,
                "revision": d.get("revision"),
                "seed": seed,
                "trust_remote_code": bool(d.get("trust_remote_code", False)),
                "torch_dtype": d.get("torch_dtype", "auto"),
            }
            stages[sid] = Stage(sid, "init", model.name, [], source, f"@{sid}", config_hash(source))
        return stages[sid]
    if not spec.pretrain:
        if is_tiny(name):
            raise ConfigError(
                f"{where}: arms: 'pretrained' on the tiny backbone {name!r} (model {model.name}) needs a "
                f"pretrain section: a tiny backbone has no pretrained weights (or drop the arm)"
            )
        return None  # a Hub model or saved folder: its own weights are the pretrained ones
    sid = f"pretrain/{model.name}"
    if sid not in stages:
        stages[sid] = _pretrain_stage(spec, base, model, sid, where)
    return stages[sid]


def _pretrain_stage(
    spec: SweepSpec, base: dict[str, Any], model: ModelVariant, sid: str, where: str
) -> Stage:
    recipes, prev = [], None
    for st in spec.pretrain:
        d = _apply_model(apply_overrides(base, spec.overrides), model)
        if prev is not None:
            d["model"] = {**d["model"], "name_or_path": prev, "revision": None}
        d = apply_overrides(d, st.overrides)
        prev = f"@{sid}/{st.name}"
        d = apply_overrides(d, {"training": {"output_dir": prev}})
        # A stage is scored by the cells that start from it, not on the base recipe's tasks (other physics).
        d = {**d, "evaluation": {**(d.get("evaluation") or {}), "tasks": []}}
        recipe = config.from_dict(Recipe, d, where=f"{where}: pretrain.{st.name} (model {model.name})")
        recipes.append(config.to_dict(recipe))
    return Stage(sid, "pretrain", model.name, recipes, {}, prev, config_hash(recipes))


def _eval_task(name: str, recipe: Any, variant: TaskVariant, where: str, task: str) -> dict[str, Any] | str:
    """The eval task as used by this cell: its name, or its full definition retargeted at the cell's data."""
    try:
        t = load_task(name)
    except SfmError as exc:
        raise ConfigError(f"{where}: tasks.{task}.eval: {exc}") from None
    if not variant.match_data and not variant.eval_overrides:
        return name
    data = config.to_dict(t)
    if variant.match_data:
        rd = recipe.data
        data["data"].update(
            path=rd.path, simulator=rd.simulator, params=rd.params, num_samples=rd.num_samples, seed=rd.seed
        )
        if t.task_format == rd.task:
            data["format"] = {**data["format"], **rd.task_options}
    data = config.merge(data, variant.eval_overrides)
    data["task"] = Path(name).stem if name.endswith(".yaml") else name.replace("/", "__")
    try:
        return config.to_dict(config.from_dict(EvalTask, data, where=f"tasks.{task}.eval {name}"))
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from None


def _check_metric(metric: str, first: dict[str, Any] | str, where: str) -> None:
    t = load_task(first) if isinstance(first, str) else first
    metrics = t.metrics if not isinstance(t, dict) else t["metrics"]
    name = t.task if not isinstance(t, dict) else t["task"]
    if metric not in metrics:
        raise ConfigError(
            f"{where}: metric {metric!r} is not scored by eval task {name}"
            f"{did_you_mean(metric, metrics)}; it scores {', '.join(metrics)}"
        )


def _check_data_size(recipe: Any, n: int, task: str, where: str) -> None:
    """A data size above the training split fails now, not in the middle of the sweep."""
    if recipe.data.simulator is None:
        return  # an imported data set: its split sizes are known only once it is read (sfm.train checks)
    fractions = SPLIT_FRACTIONS  # generate_dataset's default, which recipe data uses
    n_train = split_counts(recipe.data.num_samples, fractions)[0]
    if n > n_train:
        raise ConfigError(
            f"{where}: grid.data_size: {n} trajectories exceed the {n_train} in the training split of task "
            f"{task} (data.num_samples={recipe.data.num_samples}, {fractions[0]:.0%} train); raise num_samples"
        )
