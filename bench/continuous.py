"""Continuous-model benchmark: readouts compared on the quickstart's Burgers tasks, within a CPU budget.

    OMP_NUM_THREADS=1 python bench/continuous.py                       # the recipe's settings, every readout
    OMP_NUM_THREADS=1 python bench/continuous.py --readouts queries --max-steps 300
    OMP_NUM_THREADS=1 python bench/continuous.py --set model.encoder.type linear --set peft.method lora

Trains a continuous model (``sfm.models.continuous.build_continuous``) with the settings of a recipe
(default ``recipes/tiny/continuous/burgers-llama.yaml``) on the recipe's training windows (every start of
every training trajectory, as ``sfm.train`` cuts them) with a plain AdamW loop that follows the recipe's
``training`` section (batch size, learning rate, warm-up, cosine decay, clipping, seed), once per readout.
Then scores it on the windows of the recipe's ``evaluation.tasks`` (forecast and rollout tasks of
``eval/tasks``: their split, windows per trajectory and rollout steps; for the Burgers recipe the one-step
``forecast/burgers-tiny``, 8 windows per test trajectory, and the 10-step ``rollout/burgers-tiny``, 2 per
trajectory), rolling out autoregressively: each step's predicted frame is fed back as context.

nRMSE as the harness reports it (``sfm.metrics`` ``nrmse``: per sample and frame
``sqrt(mean_x (pred - y)^2) / sqrt(mean_x y^2)``, averaged over samples, then frames). Persistence and
linear extrapolation are scored on the same windows. Printed: a table of readouts x (steps, train CPU-s,
one-step, rollout), measured in this run. CPU seconds are the process's own (with one thread, other
processes on the machine do not inflate them); wall seconds are printed beside them.
"""

from __future__ import annotations

import argparse
import math
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
from _common import FunctionPredictor, field_data, field_spec, nrmse, rollout, task_windows

ROOT = Path(__file__).resolve().parents[1]
RECIPE = ROOT / "recipes" / "tiny" / "continuous" / "burgers-llama.yaml"


def load_data(recipe: Any) -> tuple[Any, Any]:
    """The recipe's field data set (generated into the ``$SFM_HOME`` cache on first use) and its format."""
    from sfm.tasks import get_task_format

    d = recipe.data
    return field_data(d), get_task_format(d.task, **d.task_options)


def windows(recipe: Any, fs: Any, fmt: Any) -> dict[str, Any]:
    """Training windows, and ``(rollout steps, windows)`` of each eval task of the recipe."""
    from sfm.errors import ConfigError
    from sfm.tasks.windows import FieldWindows

    out: dict[str, Any] = {
        "train": FieldWindows.from_split(fs.split("train"), fs.meta, fmt, seed=recipe.data.seed)
    }
    d = recipe.data
    for name in recipe.evaluation.tasks:
        task, w = task_windows(name, fs, fmt)
        if (task.data.simulator, task.data.params, task.data.num_samples) != (
            d.simulator,
            d.params,
            d.num_samples,
        ):
            raise ConfigError(f"{name}: scores other data than the recipe trains on")
        out[name] = (task.rollout_steps, w)
    return out


def lr_at(step: int, total: int, peak: float, warmup_ratio: float, schedule: str) -> float:
    """transformers' linear warm-up, then cosine (or constant) decay."""
    warm = math.ceil(warmup_ratio * total)
    if step < warm:
        return peak * (step + 1) / warm
    if schedule == "cosine":
        return peak * 0.5 * (1 + math.cos(math.pi * (step - warm) / max(1, total - warm)))
    return peak


def train(model: Any, data: Any, t: Any, steps: int) -> tuple[float, float, float]:
    """AdamW over random batches of ``data`` for ``steps`` steps; returns (CPU s, wall s, last loss)."""
    import torch

    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=t.learning_rate, weight_decay=t.weight_decay)
    rng = np.random.default_rng(t.seed)
    model.train()
    cpu0, wall0, loss = time.process_time(), time.perf_counter(), float("nan")
    for step in range(steps):
        for group in opt.param_groups:
            group["lr"] = lr_at(step, steps, t.learning_rate, t.warmup_ratio, t.lr_scheduler_type)
        batch = data.batch(rng.integers(0, len(data), t.per_device_train_batch_size))
        out = model(
            *(torch.from_numpy(np.ascontiguousarray(batch[k])) for k in ("context", "coefficients", "target"))
        )
        opt.zero_grad(set_to_none=True)
        out["loss"].backward()
        torch.nn.utils.clip_grad_norm_(params, t.max_grad_norm)
        opt.step()
        loss = float(out["loss"].detach())
    return time.process_time() - cpu0, time.perf_counter() - wall0, loss


def score(predictor: Any, w: dict[str, Any]) -> dict[str, float]:
    """nRMSE of a field predictor on each eval task's windows (rolled out over its steps, as the harness does)."""
    scores = {}
    for name, (steps, win) in ((k, v) for k, v in w.items() if k != "train"):
        batch = win.batch(np.arange(len(win)))
        scores[name] = nrmse(rollout(predictor, batch, steps), batch["target"])
    return scores


def baselines(w: dict[str, Any]) -> dict[str, dict[str, float]]:
    """Persistence (last frame) and linear extrapolation (2 u_k - u_{k-1})."""
    k = w["train"].context_frames
    return {
        "persistence": score(FunctionPredictor(lambda c, _: c[:, -1:], k), w),
        "linear": score(FunctionPredictor(lambda c, _: 2 * c[:, -1:] - c[:, -2:-1], k), w),
    }


def run_one(recipe: Any, spec: Any, w: dict[str, Any], steps: int) -> dict[str, Any]:
    """Build, train and score one continuous model."""
    import torch

    from sfm.models.continuous import build_continuous
    from sfm.models.field_io import FieldPredictor

    torch.manual_seed(recipe.training.seed)
    m = recipe.model
    model = build_continuous(spec, m, fields=m.fields, encoder=m.encoder, peft_section=recipe.peft)
    cpu, wall, loss = train(model, w["train"], recipe.training, steps)
    predictor = FieldPredictor("continuous", spec, model)
    scores = score(predictor, w)
    n_train = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return {"steps": steps, "cpu_s": cpu, "wall_s": wall, "loss": loss, "trainable": n_train, **scores}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipe", default=str(RECIPE))
    parser.add_argument("--readouts", default="queries,bidirectional,doubled")
    parser.add_argument("--max-steps", type=int, default=None, help="default: the recipe's max_steps")
    parser.add_argument("--set", nargs=2, action="append", default=[], metavar=("KEY", "VALUE"))
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch

    from sfm.training.recipe import load_recipe

    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    overrides = [s for kv in args.set for s in (f"--{kv[0]}", kv[1])]
    recipe = load_recipe(args.recipe, overrides)
    fs, fmt = load_data(recipe)
    w = windows(recipe, fs, fmt)
    spec = field_spec(w["train"], fmt)
    steps = args.max_steps or recipe.training.max_steps
    tasks = [k for k in w if k != "train"]
    sizes = ", ".join(f"{k} {len(w[k][1])}" for k in tasks)
    print(f"{len(w['train'])} training windows; eval windows: {sizes}")
    rows = [(name, None, s) for name, s in baselines(w).items()]
    for readout in args.readouts.split(","):
        recipe.model.encoder.readout = readout
        res = run_one(recipe, spec, w, steps)
        rows.append((readout, res, res))
        print(f"  {readout}: {res}", flush=True)
    print(
        "\n| readout | steps | trainable | train CPU-s (wall) | "
        + " | ".join(f"{k} nRMSE" for k in tasks)
        + " |"
    )
    print("|---" * (4 + len(tasks)) + "|")
    for name, res, s in rows:
        cost = "- | - | -"
        if res:
            cost = f"{res['steps']} | {res['trainable']:,} | {res['cpu_s']:.0f} ({res['wall_s']:.0f})"
        print(f"| {name} | {cost} | " + " | ".join(f"{s[k]:.4f}" for k in tasks) + " |")


if __name__ == "__main__":
    main()
