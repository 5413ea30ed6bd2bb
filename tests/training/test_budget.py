"""The training budget: examples counted as the Trainer batches, a time limit that stops a run, and a clock
kept in the checkpoint so a resumed run continues it."""

from __future__ import annotations

import itertools
import json
import math
from pathlib import Path
from types import SimpleNamespace

import pytest

from sfm.training import budget
from sfm.training.budget import BUDGET_FILE, TimeBudget, budget_record, examples_seen, spent_seconds

ROOT = Path(__file__).resolve().parents[2]
RECIPE = ROOT / "recipes" / "tiny" / "burgers-forecast" / "lora.yaml"


def _simulate(n: int, steps: int, b: int, g: int, w: int) -> int:
    """Examples the Trainer's loop consumes, counted batch by batch (the reference for examples_seen)."""
    micro = math.ceil(n / b) if w == 1 else math.ceil(n / (b * w))
    sizes = [min(b, n - i * b) for i in range(micro)] if w == 1 else [b * w] * micro
    seen, done = 0, 0
    while done < steps:
        for start in range(
            0, micro, g
        ):  # one optimizer step per g micro-batches (a partial group at the end)
            if done == steps:
                break
            seen += sum(sizes[start : start + g])
            done += 1
    return seen


@pytest.mark.parametrize(
    "n, b, g, w", [(64, 4, 2, 1), (10, 4, 1, 1), (10, 4, 2, 1), (13, 2, 3, 2), (7, 4, 1, 2)]
)
def test_examples_seen_counts_batches_as_the_trainer_does(n, b, g, w):
    for steps in range(0, 12):
        assert examples_seen(n, steps, b, g, w) == _simulate(n, steps, b, g, w), steps


def _fake_clock(monkeypatch, start: float = 0.0) -> None:
    """Every reading of the clock is one second after the previous one."""
    ticks = itertools.count(start)
    monkeypatch.setattr(budget, "monotonic", lambda: float(next(ticks)))


def _state(step: int) -> SimpleNamespace:
    return SimpleNamespace(global_step=step, is_world_process_zero=True)


def test_clock_stops_after_the_step_that_passes_the_limit_and_saves(monkeypatch, tmp_path):
    _fake_clock(monkeypatch)
    args = SimpleNamespace(output_dir=str(tmp_path), save_strategy="steps")
    clock = TimeBudget(2.5, spent_s=0.0)
    clock.on_train_begin(args, _state(0), None)
    for step in (1, 2):
        control = clock.on_step_end(args, _state(step), SimpleNamespace(should_training_stop=False))
        assert not control.should_training_stop and clock.elapsed == step
    control = clock.on_step_end(
        args, _state(3), SimpleNamespace(should_training_stop=False, should_save=False)
    )
    assert control.should_training_stop and control.should_save and clock.stopped and clock.elapsed == 3.0
    (tmp_path / "checkpoint-3").mkdir()
    clock.on_save(args, _state(3), control)
    assert spent_seconds(tmp_path / "checkpoint-3") == 3.0
    rec = budget_record(
        clock, steps=3, max_steps=8, num_examples=64, per_device=4, grad_accum=2, world_size=1
    )
    assert rec == {
        "steps": 3,
        "examples_seen": 24,
        "train_seconds": 3.0,
        "stopped_by": "max_time_s",
        "max_steps": 8,
        "max_time_s": 2.5,
    }


def test_resumed_clock_starts_from_the_checkpoint(monkeypatch, tmp_path):
    _fake_clock(monkeypatch)
    (tmp_path / BUDGET_FILE).write_text(json.dumps({"train_seconds": 4.0, "global_step": 4}))
    clock = TimeBudget(None, spent_s=spent_seconds(tmp_path))
    args = SimpleNamespace(output_dir=str(tmp_path), save_strategy="steps")
    clock.on_train_begin(args, _state(4), None)
    control = clock.on_step_end(args, _state(5), SimpleNamespace(should_training_stop=False))
    assert clock.elapsed == 5.0 and not control.should_training_stop  # no limit: the clock only counts
    rec = budget_record(
        clock, steps=8, max_steps=8, num_examples=64, per_device=4, grad_accum=2, world_size=1
    )
    assert rec["stopped_by"] == "max_steps" and rec["max_time_s"] is None
    assert budget_record(clock, steps=8, max_steps=-1, **_batch())["stopped_by"] == "epochs"


def _batch() -> dict:
    return {"num_examples": 64, "per_device": 4, "grad_accum": 2, "world_size": 1}


def test_a_checkpoint_without_a_clock_counts_from_zero(tmp_path):
    assert spent_seconds(None) == 0.0
    assert spent_seconds(tmp_path) == 0.0  # written before budgets existed
    (tmp_path / BUDGET_FILE).write_text("{torn")
    assert spent_seconds(tmp_path) == 0.0


@pytest.mark.trains
@pytest.mark.slow
def test_time_limit_stops_a_run_and_a_resume_continues_its_clock(tmp_path, monkeypatch):
    """Two real runs in one folder, timed by a clock that ticks one second per reading: begin, each step.

    The first stops after step 3 (3 s > 2.5 s) and checkpoints there; the second, allowed 5.5 s, resumes at
    3 s and stops after step 6. A clock restarted at 0 would run it to step 8 (max_steps).
    """
    from sfm import train
    from sfm.models.run import RunRecord
    from sfm.training.recipe import load_recipe

    _fake_clock(monkeypatch)
    monkeypatch.setenv("SFM_HOME", str(tmp_path))
    out = tmp_path / "run"

    def run(limit: float) -> RunRecord:
        opts = ["--output_dir", str(out), "--max_steps", "8", "--save_steps", "4", "--max_time_s", str(limit)]
        train.run(load_recipe(RECIPE, opts), progress=False)
        return RunRecord.read(out)

    first = run(2.5)
    assert first.train["steps"] == 3 and first.budget["stopped_by"] == "max_time_s"
    assert spent_seconds(out / "checkpoint-3") == 3.0 and first.budget["examples_seen"] == 3 * 8
    second = run(5.5)
    assert second.train["steps"] == 6 and second.budget["stopped_by"] == "max_time_s"
    assert spent_seconds(out / "checkpoint-6") == 6.0
    assert second.budget["train_seconds"] >= 6.0 and second.budget["max_time_s"] == 5.5
