"""``sfm quickstart``: the whole pipeline on tiny models, on a laptop CPU, with no download.

1. build data   — 1D viscous Burgers trajectories from the built-in spectral solver;
2. fine-tune    — three models on the same data: ``tokens`` (LoRA on a tiny Llama-architecture backbone, fields
                  as bins tokens), ``continuous`` (the same backbone fed by a field encoder through
                  ``inputs_embeds``, a regression head reading the next frame out) and ``fno`` (a Fourier neural
                  operator from ``neuraloperator``, the standard the others must beat);
3. evaluate     — one-step and 10-step rollout forecasts on held-out trajectories, against baselines;
4. publish      — results JSON per model, one Markdown/HTML leaderboard and a Hugging Face card per model.

Everything lands under ``--out`` (default ``runs/quickstart``); the README documents the layout.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sfm.errors import ConfigError

RECIPE = "quickstart.yaml"
#: The quickstart's models: run folder name (also its row name, ``quickstart/<name>``) -> shipped recipe.
MODELS: dict[str, str] = {
    "tokens": "quickstart.yaml",
    "continuous": "quickstart-continuous.yaml",
    "fno": "quickstart-fno.yaml",
}


def shipped_recipe(name: str) -> Path:
    """A recipe shipped with sfm: the repository's ``recipes/`` (editable installs) or the wheel's copy."""
    here = Path(__file__).resolve().parent
    for root in (here.parent / "recipes", here / "_recipes"):
        if (root / name).is_file():
            return root / name
    raise ConfigError(f"shipped recipe {name!r} not found")


@dataclass
class QuickstartResult:
    """Paths and numbers of a quickstart run (one entry per model in the per-model dicts)."""

    out: Path
    model_dirs: dict[str, Path]
    results_paths: dict[str, Path]
    leaderboard: dict[str, Path]
    cards: dict[str, Path]
    train_loss: dict[str, list[float]]
    results: dict[str, Any]
    seconds: dict[str, float] = field(default_factory=dict)


def run_quickstart(
    out: str | Path = "runs/quickstart",
    *,
    max_steps: int | None = None,
    num_samples: int | None = None,
    limit: int | None = None,
    tasks: list[str] | None = None,
    progress: bool = True,
    overrides: list[str] | None = None,
    models: list[str] | None = None,
) -> QuickstartResult:
    """Run build -> fine-tune -> evaluate -> leaderboard -> card into ``out``, for each quickstart model.

    Args:
        out: Output folder (data, models, results, leaderboard).
        max_steps: Training steps of every model (default: each recipe's).
        num_samples: Trajectories to generate (default: the recipes'; the eval tasks then read the same
            cached data only if it is the recipes' default, so a reduced run evaluates on its own test split).
        limit: Examples per eval task at most.
        tasks: Eval tasks (default: the recipes' ``evaluation.tasks``).
        progress: Progress bars.
        overrides: Extra ``--key value`` overrides applied to every recipe.
        models: Which of :data:`MODELS` to train (default: all, in that order).
    """
    from sfm.harness.runner import evaluate
    from sfm.publish.cards import write_model_card
    from sfm.publish.leaderboard import build_leaderboard, load_results, write_leaderboard

    names = list(models or MODELS)
    unknown = [n for n in names if n not in MODELS]
    if unknown:
        raise ConfigError(f"quickstart: unknown model(s) {unknown}; choose from {list(MODELS)}")
    out = Path(out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    # Data paths in the recipes and eval tasks resolve against SFM_HOME: keep everything inside ``out``.
    os.environ["SFM_HOME"] = str(out)
    res = QuickstartResult(out, {}, {}, {}, {}, {}, {})
    for name in names:
        recipe, losses, seconds = _train(name, out, max_steps, num_samples, overrides, progress)
        res.model_dirs[name], res.train_loss[name] = out / name, losses
        res.seconds[f"train {name}"] = seconds
        t0 = time.perf_counter()
        task_names = tasks or list(recipe.evaluation.tasks)
        if num_samples is not None:
            task_names = [_retarget(t, recipe, out) for t in task_names]
        res.results[name] = evaluate(
            str(out / name),
            task_names,
            out / "results" / name,
            limit=limit,
            batch_size=recipe.evaluation.batch_size,
            seed=0,
            progress=progress,
            name=f"quickstart/{name}",
        )
        res.results_paths[name] = out / "results" / name / "results.json"
        res.seconds[f"evaluate {name}"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    loaded, _warnings = load_results([out / "results"])
    res.leaderboard = write_leaderboard(build_leaderboard(loaded), out / "leaderboard")
    for name in names:
        res.cards[name] = write_model_card(out / name, [res.results[name]])
    res.seconds["publish"] = time.perf_counter() - t0
    return res


def _train(
    name: str,
    out: Path,
    max_steps: int | None,
    num_samples: int | None,
    overrides: list[str] | None,
    progress: bool,
) -> tuple[Any, list[float], float]:
    """Train quickstart model ``name`` into ``out/name``; returns (recipe, loss history, seconds)."""
    from sfm import train
    from sfm.training.recipe import load_recipe

    args = [*list(overrides or []), "--training.output_dir", str(out / name)]
    if max_steps is not None:
        # log about ten points of the loss curve whatever the length
        args += ["--training.max_steps", str(max_steps)]
        args += ["--training.logging_steps", str(max(1, max_steps // 10))]
    if num_samples is not None:
        args += ["--data.num_samples", str(num_samples)]
    path = shipped_recipe(MODELS[name])
    recipe = load_recipe(path, args)
    t0 = time.perf_counter()
    # train.run only trains; the evaluation after it retargets the tasks to reduced-size data if asked.
    result = train.run(recipe, resume="never", progress=progress, recipe_path=str(path))
    return recipe, result.train_loss, time.perf_counter() - t0


def _retarget(task: str, recipe: Any, out: Path) -> str:
    """A copy of eval task ``task`` reading the recipe's data (for reduced-size runs), written under ``out``."""
    from sfm import config
    from sfm.harness.tasks import load_task

    t = load_task(task)
    data = config.to_dict(t)
    data["data"].update(
        num_samples=recipe.data.num_samples,
        params=recipe.data.params,
        seed=recipe.data.seed,
        simulator=recipe.data.simulator,
    )
    data["task"] = f"{t.task}-n{recipe.data.num_samples}"  # not the registered task: other data
    data["description"] = f"{t.description} (quickstart data: {recipe.data.num_samples} trajectories)"
    path = out / "tasks" / f"{data['task'].replace('/', '__')}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    import yaml

    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return str(path)
