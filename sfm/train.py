"""Fine-tune a model on science data from a recipe: a token model, a continuous model or a neural operator.

The same file runs under plain python, as ``sfm train``, and under ``accelerate launch`` (DDP, DeepSpeed
ZeRO-2/3, FSDP):

    python -m sfm.train recipes/quickstart.yaml
    sfm train recipes/quickstart.yaml --training.max_steps 50 --peft.r 8
    accelerate launch --config_file launch/accelerate/cpu_zero2.yaml -m sfm.train recipes/tiny/burgers-forecast/lora.yaml
    accelerate launch --config_file launch/accelerate/deepspeed_zero3.yaml -m sfm.train recipes/llama-3.1-8b/burgers-forecast/lora.yaml

An existing run folder resumes from its last complete checkpoint (``--resume never`` starts over,
``--resume PATH`` picks a checkpoint). With ``evaluation.tasks`` in the recipe, the saved run is then
evaluated on them into ``<output_dir>/eval/``.
"""

from __future__ import annotations

import argparse
import errno
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sfm.errors import ConfigError, SfmError


@dataclass
class TrainResult:
    """What a training run produced."""

    output_dir: Path
    train_loss: list[float]
    eval_loss: float | None
    facts: dict[str, Any]
    metrics: dict[str, Any]


def banner(text: str) -> None:
    """A stage banner on the main process."""
    if int(os.environ.get("RANK", "0")) == 0:
        print(f"==> {text}", flush=True)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The arguments of ``python -m sfm.train`` and ``sfm train`` (overrides are the rest: ``--key value``)."""
    parser.add_argument("recipe", help="recipe YAML file")
    parser.add_argument(
        "--resume",
        default="auto",
        help="auto (default): continue an existing run folder; never: start over; or a checkpoint folder",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")


def load_sources(recipe: Any, *, progress: bool) -> Any:
    """The recipe's data, built first if missing (:func:`sfm.training.data.load_sources`)."""
    from sfm.training import data as td

    d = recipe.data
    main = td.Source(d.path, d.simulator, d.params, d.num_samples, d.seed)
    mixed = [td.Source(x.path, x.simulator, x.params, x.num_samples, x.seed) for x in d.mixture]
    return td.load_sources(
        [main, *mixed],
        equations=d.equations,
        equations_path=d.path if d.equations is not None else None,
        train_trajectories=d.train_trajectories,
        num_proc=d.num_proc,
        progress=progress,
    )


def run(
    recipe: Any, *, resume: str = "auto", progress: bool = True, recipe_path: str | None = None
) -> TrainResult:
    """Train from a loaded :class:`~sfm.training.recipe.Recipe` into its run folder; the library form of
    ``python -m sfm.train`` (without the evaluation after it: see :func:`evaluate_run`)."""
    from transformers import set_seed

    from sfm.training import setup
    from sfm.training.args import (
        launch_from_env,
        recipe_launch_problem,
        resolve_deepspeed_config,
        training_arguments,
    )
    from sfm.training.peft_setup import quantization_config
    from sfm.training.recipe import model_kind, recipe_to_dict
    from sfm.training.run_folder import make_session, save_run, train

    t, kind = recipe.training, model_kind(recipe.model)
    out = Path(t.output_dir)

    banner(f"seed ({kind} model)")
    resolve_deepspeed_config()
    problem = recipe_launch_problem(recipe, launch_from_env(), recipe_path)
    if problem:  # an unsupported (recipe x launch) cell: refused before any data is built
        raise ConfigError(problem)
    set_seed(t.seed)
    qconfig = quantization_config(
        recipe.peft.method
    )  # QLoRA without CUDA fails here, before any data is built

    banner("data")
    sources = load_sources(recipe, progress=progress)

    banner("training arguments")  # before the model: ZeRO-3 partitions a Hub model while it loads
    world = setup.world_size()
    grad_accum = setup.resolve_batch(
        t.per_device_train_batch_size, t.gradient_accumulation_steps, world, t.global_batch_size
    )
    args = training_arguments(
        t, output_dir=out, grad_accum=grad_accum, has_eval=bool(t.eval_steps), progress=progress
    )

    banner("model")
    if kind != "token":
        from sfm.training import fields  # field models: written beside this path, imported only when used

        prepared = fields.prepare(recipe, sources, out, progress=progress)
    else:
        from sfm.training.tokens import prepare_tokens

        prepared = prepare_tokens(recipe, sources, out, progress=progress, quantization=qconfig)

    banner("trainer")
    session = make_session(prepared, args, out, resume=resume, max_time_s=t.max_time_s)
    facts = session.facts
    zero = f", ZeRO-{facts['zero_stage']}" if facts["zero_stage"] else ""
    banner(f"train on {facts['world_size']} process(es), {facts['distributed_type']}{zero}")
    if session.checkpoint is not None:
        banner(f"resuming from {session.checkpoint}")
    result = train(session)  # Trainer.train, resuming from session.checkpoint

    banner("save")
    record = {
        "recipe": recipe_to_dict(recipe),
        "recipe_path": recipe_path,
        "kind": kind,
        "data": sources.record,
        "task": {"name": recipe.data.task, "options": recipe.data.task_options},
    }
    saved = save_run(session, prepared, result, out, record)
    train = saved.train if saved is not None else {}
    return TrainResult(
        out, train.get("loss_history", []), train.get("eval_loss"), facts, dict(result.metrics)
    )


def evaluate_run(recipe: Any, out: Path, *, progress: bool = True) -> Path | None:
    """Evaluate a trained run on the recipe's ``evaluation.tasks`` into ``out/eval`` (examples sharded
    across the launch's processes); returns the results file, or None when the recipe names no tasks."""
    ev = recipe.evaluation
    if not ev.tasks:
        return None
    from sfm.harness.report import print_summary
    from sfm.harness.runner import evaluate

    banner(f"eval {', '.join(ev.tasks)}")
    results = evaluate(
        str(out),
        list(ev.tasks),
        out / "eval",
        limit=ev.limit,
        batch_size=ev.batch_size,
        seed=recipe.training.seed,
        progress=progress,
    )
    if int(os.environ.get("RANK", "0")) == 0:
        print_summary(results)
    return out / "eval" / "results.json"


def train_and_evaluate(args: argparse.Namespace, overrides: Sequence[str]) -> int:
    """Load the recipe, train, evaluate; the body shared by ``python -m sfm.train`` and ``sfm train``.

    Raises:
        SfmError: a bad recipe or override (before any work), or a run that cannot proceed.
    """
    from sfm.training.recipe import load_recipe

    recipe = load_recipe(args.recipe, overrides)
    result = run(recipe, resume=args.resume, progress=not args.no_progress, recipe_path=args.recipe)
    evaluate_run(recipe, result.output_dir, progress=not args.no_progress)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m sfm.train RECIPE [--key value ...]``; returns the exit status."""
    parser = argparse.ArgumentParser(prog="python -m sfm.train", description=__doc__.split("\n\n")[0])
    add_arguments(parser)
    args, overrides = parser.parse_known_args(argv)
    try:
        return train_and_evaluate(args, overrides)
    except SfmError as exc:
        # A recipe or launch error is the same on every rank of a launch: the main process says it once.
        if not isinstance(exc, ConfigError) or int(os.environ.get("RANK", "0")) == 0:
            print(f"sfm.train: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        if exc.errno != errno.ENOSPC:
            raise
        # Saves are crash-safe (sfm.training.run_folder.save_run, setup.last_checkpoint): nothing to clean up.
        print(
            f"sfm.train: error: no space left on the device writing {exc.filename or 'the run folder'}; free "
            "space and rerun the same command: it resumes from the last complete checkpoint",
            file=sys.stderr,
        )
        return 2


if __name__ == "__main__":
    sys.exit(main())
