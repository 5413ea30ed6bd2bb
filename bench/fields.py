"""Field-model benchmarks: the window data path's cost, and the operator recipe's accuracy within its budget.

    OMP_NUM_THREADS=1 python bench/fields.py                 # both parts (about two minutes on 2 CPU cores)
    OMP_NUM_THREADS=1 python bench/fields.py --part data     # throughput only
    OMP_NUM_THREADS=1 python bench/fields.py --part accuracy --set training.max_steps=300

Prints, measured in this run on the quickstart's Burgers windows (2 frames of 64 points -> the next frame):

1. ``data``: examples/s of a whole training step (batch, forward, backward, AdamW) of the FNO of
   ``recipes/tiny/operator/burgers-fno.yaml`` fed by sfm's data path (``sfm.training.fields.WindowDataset``
   + ``FieldCollator`` through a torch ``DataLoader``, as the Trainer feeds it) against a bare loop that
   indexes tensors of the same windows preloaded in memory (target: ratio >= 0.9); and examples/s of the
   data path alone (every batch built, no model) against the model's step rate (target: >= 20x). Each
   configuration runs ``--repeats`` times, alternating, and the best run counts (other processes only ever
   add time). Times are CPU seconds of this process: with one thread, other processes on the machine do not
   inflate them.
2. ``accuracy``: trains the recipe through ``sfm.train.run`` (the same Trainer, checkpoints and run folder
   as ``python -m sfm.train``), timing the training loop in CPU seconds, then scores the saved run on the
   windows of ``eval/tasks/forecast/burgers-tiny.yaml`` (one step) and ``rollout/burgers-tiny.yaml`` (10
   autoregressive steps) with the nRMSE the harness reports (per sample and frame
   ``sqrt(mean_x (pred - y)^2) / sqrt(mean_x y^2)``, averaged), persistence beside it.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from _common import nrmse, rollout, task_windows

ROOT = Path(__file__).resolve().parents[1]
RECIPE = ROOT / "recipes" / "tiny" / "operator" / "burgers-fno.yaml"
os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("WANDB_MODE", "disabled")


def banner(title: str) -> None:
    print(f"\n== {title} " + "=" * max(0, 74 - len(title)), flush=True)


def _recipe(path: Path, overrides: list[str], out: Path) -> Any:
    from sfm.training.recipe import load_recipe

    flat = [x for item in overrides for x in ("--" + item.split("=", 1)[0], item.split("=", 1)[1])]
    return load_recipe(path, [*flat, "--training.output_dir", str(out)])


def _rel(path: Path) -> str:
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def _prepared(recipe: Any, out: Path) -> Any:
    import torch

    from sfm.train import load_sources
    from sfm.training.fields import prepare

    torch.manual_seed(recipe.training.seed)
    return prepare(recipe, load_sources(recipe, progress=False), out, progress=False)


# ---- 1. data path ------------------------------------------------------------------------------------------
def _step_fn(model: Any, lr: float) -> Any:
    import torch

    opt = torch.optim.AdamW(model.parameters(), lr=lr)

    def step(batch: dict[str, Any]) -> None:
        out = model(batch["context"], batch["coefficients"], batch["target"])
        opt.zero_grad(set_to_none=True)
        out["loss"].backward()
        opt.step()

    return step


def _loader(prepared: Any, batch_size: int, seed: int) -> Any:
    import torch

    g = torch.Generator().manual_seed(seed)
    return torch.utils.data.DataLoader(
        prepared.train_dataset, batch_size=batch_size, shuffle=True, generator=g, collate_fn=prepared.collator
    )


def _time_sfm(prepared: Any, step: Any, batch_size: int, steps: int, seed: int) -> float:
    """CPU seconds of ``steps`` training steps fed by sfm's data path."""
    done, start = 0, time.process_time()
    while done < steps:
        for batch in _loader(prepared, batch_size, seed):
            batch.pop("sfm_examples")  # what SfmTrainer.compute_loss does
            step(batch)
            done += 1
            if done == steps:
                break
    return time.process_time() - start


def _time_bare(tensors: dict[str, Any], step: Any, batch_size: int, steps: int, seed: int) -> float:
    """CPU seconds of ``steps`` training steps on windows preloaded as tensors (the floor)."""
    import torch

    n = tensors["context"].shape[0]
    g = torch.Generator().manual_seed(seed)
    done, start = 0, time.process_time()
    while done < steps:
        perm = torch.randperm(n, generator=g)
        for a in range(0, n, batch_size):
            idx = perm[a : a + batch_size]
            step({k: v[idx] for k, v in tensors.items()})
            done += 1
            if done == steps:
                break
    return time.process_time() - start


def _time_data(prepared: Any, batch_size: int, epochs: int, seed: int) -> tuple[float, int]:
    """CPU seconds and examples of ``epochs`` passes of the data path alone."""
    n, start = 0, time.process_time()
    for _ in range(epochs):
        for batch in _loader(prepared, batch_size, seed):
            n += batch["context"].shape[0]
    return time.process_time() - start, n


def data_path(path: Path, overrides: list[str], repeats: int, steps: int) -> None:
    import torch

    banner("data path: training step through sfm's windows vs preloaded tensors")
    with tempfile.TemporaryDirectory(prefix="sfm-bench-fields-") as tmp:
        recipe = _recipe(path, overrides, Path(tmp) / "run")
        prepared = _prepared(recipe, Path(tmp) / "run")
    bs, lr = recipe.training.per_device_train_batch_size, recipe.training.learning_rate
    win = prepared.train_dataset.windows
    everything = win.batch(np.arange(len(win)))
    tensors = {
        k: torch.from_numpy(np.ascontiguousarray(everything[k]))
        for k in ("context", "coefficients", "target")
    }
    model = prepared.model
    step = _step_fn(model, lr)
    _time_sfm(prepared, step, bs, 10, 0)  # warm-up: first-call allocations and FFT plans
    sfm_t, bare_t, data_t = [], [], []
    for r in range(repeats):
        sfm_t.append(_time_sfm(prepared, step, bs, steps, r))
        bare_t.append(_time_bare(tensors, step, bs, steps, r))
        data_t.append(_time_data(prepared, bs, 3, r))
    examples = steps * bs
    sfm_rate, bare_rate = examples / min(sfm_t), examples / min(bare_t)
    secs, n = min(data_t, key=lambda x: x[0])
    data_rate = n / secs
    params = sum(p.numel() for p in model.parameters())
    print(
        f"windows: {len(win)} of {list(everything['context'].shape[1:])} -> {list(everything['target'].shape[1:])}"
    )
    print(
        f"model: {recipe.model.name_or_path}, {params:,} parameters; batch {bs}; {steps} steps x {repeats} repeats, best counts"
    )
    print(f"  training step, sfm data path     {sfm_rate:10.0f} examples/s")
    print(f"  training step, preloaded tensors {bare_rate:10.0f} examples/s")
    print(f"  data path alone                  {data_rate:10.0f} examples/s")
    print(f"ratio sfm / bare step rate: {sfm_rate / bare_rate:.3f}  (target >= 0.9)")
    print(f"ratio data-only / model step rate: {data_rate / bare_rate:.1f}x  (target >= 20x)")


# ---- 2. accuracy -------------------------------------------------------------------------------------------
def score(run: Path, task_name: str) -> tuple[float, float, int]:
    """``(model nRMSE, persistence nRMSE, windows)`` of a saved run on an eval task's windows."""
    from sfm.models.field_io import load_field_run

    task, win = task_windows(task_name)
    b = win.batch(np.arange(len(win)))
    pred = rollout(load_field_run(run), b, task.rollout_steps)
    persistence = np.repeat(b["context"][:, -1:], b["target"].shape[1], axis=1)
    return nrmse(pred, b["target"]), nrmse(persistence, b["target"]), len(win)


class _Clock:
    """CPU and wall seconds of the Trainer's training loop (a callback every Trainer of this process gets)."""

    runs: list[tuple[float, float]] = []  # noqa: RUF012

    @classmethod
    def install(cls) -> None:
        import transformers.trainer
        from transformers import TrainerCallback

        class _Cb(TrainerCallback):
            def on_train_begin(self, args, state, control, **kwargs):
                self.start = (time.process_time(), time.perf_counter())

            def on_train_end(self, args, state, control, **kwargs):
                cls.runs.append((time.process_time() - self.start[0], time.perf_counter() - self.start[1]))

        transformers.trainer.DEFAULT_CALLBACKS.append(_Cb)


def accuracy(path: Path, overrides: list[str]) -> None:
    from sfm.train import run

    banner(f"accuracy: {_rel(path)} through sfm.train.run")
    _Clock.install()
    with tempfile.TemporaryDirectory(prefix="sfm-bench-fields-") as tmp:
        recipe = _recipe(path, overrides, Path(tmp) / "run")
        t = recipe.training
        result = run(recipe, resume="never", progress=False)
        cpu, wall = _Clock.runs[-1]
        m = recipe.model.operator
        print(
            f"{recipe.model.name_or_path} n_modes={m.n_modes} width={m.hidden_channels} layers={m.n_layers} proj={m.projection_channels}; "
            f"{t.max_steps} steps x batch {t.per_device_train_batch_size}, lr {t.learning_rate}"
        )
        loss = (
            f"{result.train_loss[-1]:.3g}"
            if result.train_loss
            else "not logged (fewer steps than logging_steps)"
        )
        print(f"training loop: {cpu:.1f} CPU-s ({wall:.1f} s wall); final loss {loss}")
        for name in ("forecast/burgers-tiny", "rollout/burgers-tiny"):
            model, persistence, n = score(result.output_dir, name)
            print(f"  {name:24s} nRMSE {model:.5f}   persistence {persistence:.4f}   ({n} windows)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--recipe", type=Path, default=RECIPE, help="a Burgers operator recipe")
    parser.add_argument("--part", choices=["data", "accuracy", "all"], default="all")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--steps", type=int, default=60, help="training steps per timed run (data part)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="recipe override")
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    print(f"python {sys.version.split()[0]}, torch {torch.__version__}, {os.cpu_count()} CPU cores, 1 thread")
    if args.part in ("data", "all"):
        data_path(args.recipe.resolve(), args.set, args.repeats, args.steps)
    if args.part in ("accuracy", "all"):
        accuracy(args.recipe.resolve(), args.set)
    return 0


if __name__ == "__main__":
    sys.exit(main())
