"""``sfm quickstart``: the whole pipeline on a tiny backbone, on a laptop CPU, with no download.

1. build data   — 1D viscous Burgers trajectories from the built-in spectral solver;
2. fine-tune    — LoRA on a tiny Llama-architecture backbone built from a config, bins tokens added;
3. evaluate     — one-step and 10-step rollout forecasts on held-out trajectories, against baselines;
4. publish      — results JSON, a Markdown/HTML leaderboard and a Hugging Face model card.

Everything lands under ``--out`` (default ``runs/quickstart``); the README documents the layout.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sfm.errors import ConfigError

RECIPE = "quickstart.yaml"


def shipped_recipe(name: str) -> Path:
    """A recipe shipped with sfm: the repository's ``recipes/`` (editable installs) or the wheel's copy."""
    here = Path(__file__).resolve().parent
    for root in (here.parent / "recipes", here / "_recipes"):
        if (root / name).is_file():
            return root / name
    raise ConfigError(f"shipped recipe {name!r} not found")


@dataclass
class QuickstartResult:
    """Paths and numbers of a quickstart run."""

    out: Path
    model_dir: Path
    results_path: Path
    leaderboard: dict[str, Path]
    card: Path
    train_loss: list[float]
    results: Any
    seconds: dict[str, float]


def run_quickstart(
    out: str | Path = "runs/quickstart",
    *,
    max_steps: int | None = None,
    num_samples: int | None = None,
    limit: int | None = None,
    tasks: list[str] | None = None,
    progress: bool = True,
    overrides: list[str] | None = None,
) -> QuickstartResult:
    """Run build -> fine-tune -> evaluate -> leaderboard -> card into ``out``.

    Args:
        out: Output folder (data, model, results, leaderboard).
        max_steps: Training steps (default: the recipe's).
        num_samples: Trajectories to generate (default: the recipe's; the eval tasks then read the same
            cached data only if it is the recipe's default, so a reduced run evaluates on its own test split).
        limit: Examples per eval task at most.
        tasks: Eval tasks (default: the recipe's ``evaluation.tasks``).
        progress: Progress bars.
        overrides: Extra ``--key value`` recipe overrides.
    """
    from sfm import train
    from sfm.harness.runner import evaluate
    from sfm.publish.cards import write_model_card
    from sfm.publish.leaderboard import build_leaderboard, load_results, write_leaderboard
    from sfm.training.recipe import load_recipe

    out = Path(out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    # Data paths in the recipe and eval tasks resolve against SFM_HOME: keep everything inside ``out``.
    os.environ["SFM_HOME"] = str(out)
    args = [*list(overrides or []), "--training.output_dir", str(out / "model")]
    if max_steps is not None:
        # log about ten points of the loss curve whatever the length
        args += [
            "--training.max_steps",
            str(max_steps),
            "--training.logging_steps",
            str(max(1, max_steps // 10)),
        ]
    if num_samples is not None:
        args += ["--data.num_samples", str(num_samples)]
    recipe = load_recipe(shipped_recipe(RECIPE), args)
    seconds: dict[str, float] = {}

    t0 = time.perf_counter()
    # train.run only trains; the evaluation below retargets the tasks to reduced-size data if asked.
    result = train.run(recipe, resume="never", progress=progress, recipe_path=str(shipped_recipe(RECIPE)))
    seconds["data + fine-tune"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    task_names = tasks or list(recipe.evaluation.tasks)
    if num_samples is not None:
        task_names = [_retarget(t, recipe, out) for t in task_names]
    results = evaluate(
        str(out / "model"),
        task_names,
        out / "results",
        limit=limit,
        batch_size=recipe.evaluation.batch_size,
        seed=0,
        progress=progress,
    )
    seconds["evaluate"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    loaded, _warnings = load_results([out / "results"])
    board = build_leaderboard(loaded)
    paths = write_leaderboard(board, out / "leaderboard")
    card = write_model_card(out / "model", [results])
    seconds["publish"] = time.perf_counter() - t0
    return QuickstartResult(
        out, out / "model", out / "results" / "results.json", paths, card, result.train_loss, results, seconds
    )


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
