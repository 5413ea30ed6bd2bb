"""A model evaluated on trajectories it trained on is marked: ``⚠ contaminated (k/n)`` in the leaderboard's
tables, a note, two CSV columns, and a sentence in the card's results; a clean or unchecked one is not."""

from __future__ import annotations

import csv
import json

import pytest

from sfm.harness.results import Contamination, EvalResults, MetricValue, ModelInfo, Scores, TaskResult
from sfm.publish.cards import model_card
from sfm.publish.leaderboard import build_leaderboard, write_leaderboard
from sfm.publish.leaderboard.render import overall_table, task_table
from sfm.utils.provenance import model_fingerprint


def _task(name, nrmse, contamination=None):
    return TaskResult(
        name,
        1,
        "forecast",
        "nrmse",
        n_examples=40,
        model=Scores(metrics={"nrmse": MetricValue(nrmse, n=40)}),
        baselines={"persistence": Scores(metrics={"nrmse": MetricValue(0.1, n=40)})},
        contamination=contamination,
    )


def _results(name, path=None, **tasks):
    info = ModelInfo(name=name, kind="operator", path=str(path) if path else None)
    if path is not None:
        info.fingerprint = model_fingerprint(path)
    return EvalResults(
        model=info, tasks={t.task: t for t in tasks.values()}, date="2026-12-04T00:00:00+00:00"
    )


DIRTY = Contamination(24, 24, ["content", "simulator"])
CLEAN = Contamination(0, 20, [])


@pytest.fixture
def board():
    return build_leaderboard(
        [
            _results("dirty", a=_task("f/train", 0.001, DIRTY), b=_task("f/test", 0.02, CLEAN)),
            _results("old", a=_task("f/train", 0.05), b=_task("f/test", 0.03)),  # written before the check
        ]
    )


def test_only_the_contaminated_entry_is_marked(board):
    header, rows = overall_table(board)
    by_name = {r[1]: r for r in rows}
    col = {h.split(" v1")[0]: i for i, h in enumerate(header)}
    assert by_name["dirty"][col["f/train"]] == "0.001 ⚠ contaminated (24/24)"
    assert by_name["dirty"][col["f/test"]] == "0.02"
    assert "contaminated" not in " ".join(by_name["old"] + by_name["persistence"])
    _, train_rows = task_table(board, board.task("f/train@v1"))
    assert [r[1] for r in train_rows] == ["dirty ⚠ contaminated (24/24)", "old", "persistence"]
    _, test_rows = task_table(board, board.task("f/test@v1"))
    assert not any("⚠" in r[1] for r in test_rows)
    notes = [n for n in board.notes if "contaminated" in n]
    assert notes == [
        "dirty on f/train@v1: 24 of 24 eval trajectories are in its training data (found by content, "
        "simulator); marked ⚠ contaminated: its score there is not a held-out score"
    ]


def test_the_outputs_carry_the_mark(board, tmp_path):
    paths = write_leaderboard(board, tmp_path)
    assert "dirty ⚠ contaminated (24/24)" in paths["md"].read_text(encoding="utf-8")
    assert "dirty ⚠ contaminated (24/24)" in paths["html"].read_text(encoding="utf-8")
    rows = {(r["name"], r["task"]): r for r in csv.DictReader(paths["csv"].open(encoding="utf-8"))}
    assert (rows["dirty", "f/train"]["contaminated"], rows["dirty", "f/train"]["contamination_of"]) == (
        "24",
        "24",
    )
    assert (rows["dirty", "f/test"]["contaminated"], rows["old", "f/test"]["contaminated"]) == ("0", "")
    data = json.loads(paths["json"].read_text(encoding="utf-8"))
    dirty = next(r for r in data["rows"] if r["name"] == "dirty")
    assert dirty["entries"]["f/train@v1"]["contamination"]["overlapping"] == 24


def _run(tmp_path):
    run = tmp_path / "runs/op"
    run.mkdir(parents=True)
    (run / "model.safetensors").write_bytes(b"weights")
    recipe = {"data": {"simulator": "burgers", "task": "forecast"}, "training": {"output_dir": "runs/op"}}
    record = {
        "recipe": recipe,
        "kind": "operator",
        "data": {"path": str(tmp_path / "data"), "family": "burgers"},
    }
    (run / "sfm_run.json").write_text(json.dumps(record))
    return run


def test_the_card_says_which_results_are_contaminated_and_which_were_checked_clean(tmp_path):
    run = _run(tmp_path)
    res = _results("op", run, a=_task("f/train", 0.001, DIRTY), b=_task("f/test", 0.02, CLEAN))
    text = str(model_card(run, [res]))
    sections = {part.split("`")[0]: part.split("\n## ")[0] for part in text.split("### `")[1:]}
    train, test = sections["f/train"], sections["f/test"]
    assert (
        "**⚠ Contaminated:** 24 of the 24 eval trajectories of this task are in the model's training data "
        "(found by content, simulator), so these numbers are not held-out scores."
    ) in train
    assert "none of the 20 eval trajectories is in the model's training data" in test and "⚠" not in test
    old = str(model_card(run, [_results("op", run, a=_task("f/train", 0.001))]))
    assert "ontaminat" not in old and "train/eval overlap" not in old
