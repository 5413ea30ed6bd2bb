"""Every shipped recipe loads strictly; bad recipes fail with one line and a non-zero exit."""

from pathlib import Path

import pytest

from sfm.cli import main
from sfm.training.recipe import load_recipe

ROOT = Path(__file__).resolve().parents[1]
# recipes/scaling/ holds sweep specs, not recipes (validated in tests/scaling/test_run.py)
RECIPES = sorted(p for p in (ROOT / "recipes").rglob("*.yaml") if "scaling" not in p.relative_to(ROOT).parts)


def test_there_are_recipes():
    assert any(p.name == "quickstart.yaml" for p in RECIPES)


@pytest.mark.parametrize("path", RECIPES, ids=lambda p: str(p.relative_to(ROOT)))
def test_shipped_recipe_validates(path):
    recipe = load_recipe(path)
    # A run folder of its own, relative (no machine-specific path): an existing run folder resumes, so a
    # recipe left on the default folder would continue another recipe's run.
    out = Path(recipe.training.output_dir)
    assert not out.is_absolute() and out.parts[0] == "runs" and len(out.parts) >= 2, out
    text = path.read_text()
    assert text.lstrip().startswith("#"), "every recipe starts with a header comment giving its command"


def test_recipes_write_distinct_run_folders():
    folders = [load_recipe(p).training.output_dir for p in RECIPES]
    assert len(set(folders)) == len(folders), sorted(f for f in folders if folders.count(f) > 1)


BAD = {
    "typo_key": (
        "data:\n  simulator: burgers\ntraining:\n  learnig_rate: 0.1\n",
        "unknown key 'training.learnig_rate' (did you mean 'learning_rate'?)",
    ),
    "wrong_type": (
        "data:\n  simulator: burgers\ntraining:\n  max_steps: many\n",
        "training.max_steps: expected an integer, got 'many'",
    ),
    "unknown_simulator": (
        "data:\n  simulator: burger\n",
        "unknown simulator 'burger' (did you mean 'burgers'?)",
    ),
    "unknown_encoding": ("data:\n  simulator: burgers\n  encoding: binz\n", "unknown number encoding 'binz'"),
    "bad_task_option": (
        "data:\n  simulator: burgers\n  task_options: {contxt_frames: 2}\n",
        "unknown key 'contxt_frames' (did you mean 'context_frames'?)",
    ),
    "bad_sim_param": ("data:\n  simulator: burgers\n  params: {nuu: 0.1}\n", "unknown parameter 'nuu'"),
    "bad_peft_method": ("data:\n  simulator: burgers\npeft:\n  method: lorra\n", "'lorra' is not one of"),
    "no_data": ("model:\n  name_or_path: tiny-llama\n", "missing required key 'data'"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_recipe_one_line_error(case, tmp_path, capsys):
    text, message = BAD[case]
    path = tmp_path / f"{case}.yaml"
    path.write_text(text)
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err
    assert len(err.splitlines()) == 1


def test_train_entry_point_rejects_bad_recipe_before_work(tmp_path, capsys):
    from sfm.train import main as train_main

    path = tmp_path / "r.yaml"
    path.write_text(BAD["typo_key"][0] + "  output_dir: " + str(tmp_path / "run") + "\n")
    assert train_main([str(path)]) == 2
    assert "learnig_rate" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_train_overrides_are_checked(tmp_path, capsys):
    from sfm.train import main as train_main

    assert train_main([str(ROOT / "recipes" / "quickstart.yaml"), "--training.learnig_rate", "1"]) == 2
    assert "did you mean" in capsys.readouterr().err
