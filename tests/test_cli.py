"""The ``sfm`` command line: ``sfm train`` is ``python -m sfm.train``; other commands refuse stray arguments."""

from __future__ import annotations

from pathlib import Path

import pytest

import sfm.train as train_module
from sfm.cli import build_parser, main

ROOT = Path(__file__).resolve().parents[1]
RECIPE = ROOT / "recipes" / "tiny" / "burgers-forecast" / "lora.yaml"


@pytest.fixture
def calls(monkeypatch):
    """Replace training and evaluation by recorders: what each entry point passes them."""
    seen: list[tuple] = []

    def fake_run(recipe, *, resume, progress, recipe_path):
        seen.append(("run", recipe, resume, progress, recipe_path))
        return train_module.TrainResult(Path(recipe.training.output_dir), [], None, {}, {})

    monkeypatch.setattr(train_module, "run", fake_run)
    monkeypatch.setattr(train_module, "evaluate_run", lambda r, out, progress: seen.append(("eval", out)))
    return seen


def test_sfm_train_and_python_m_sfm_train_do_the_same(calls):
    argv = [str(RECIPE), "--training.max_steps", "3", "--resume", "never", "--no-progress", "--peft.r=4"]
    assert main(["train", *argv]) == 0
    assert train_module.main(argv) == 0
    run_a, eval_a, run_b, eval_b = calls
    assert run_a[0] == run_b[0] == "run" and eval_a[0] == eval_b[0] == "eval"
    assert run_a[1:] == run_b[1:]  # the same recipe (dataclasses compare by value), resume, progress, path
    recipe, resume, progress, path = run_a[1:]
    assert recipe.training.max_steps == 3 and recipe.peft.r == 4
    assert (resume, progress, path) == ("never", False, str(RECIPE))
    assert eval_a[1] == eval_b[1] == Path(recipe.training.output_dir)  # evaluation comes after training


def test_sfm_train_bad_override_is_one_line_before_any_work(calls, capsys):
    assert main(["train", str(RECIPE), "--training.max_step", "3"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "unknown override --training.max_step" in err
    assert "did you mean" in err and calls == []


def test_other_commands_refuse_unknown_arguments(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["list", "backbones", "--bogus", "1"])
    assert exit_.value.code == 2 and "unrecognized arguments: --bogus 1" in capsys.readouterr().err


def test_every_command_has_help():
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    assert "train" in sub.choices
    helps = {c.dest: c.help for c in sub._choices_actions}
    assert sorted(helps) == sorted(sub.choices)
    assert all(helps.values()), [n for n, h in helps.items() if not h]
