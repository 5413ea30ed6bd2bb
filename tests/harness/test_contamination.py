"""Contamination: a run evaluated on trajectories it trained on is flagged in its results; the held-out
split of its own data set is not. No model is trained: a run folder holds only its record, and a fake field
model stands in for the weights."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest
import yaml

from sfm.config import from_dict, merge
from sfm.data import split_indices
from sfm.harness import contamination, runner
from sfm.harness.results import EvalResults, ModelInfo
from sfm.harness.tasks import EvalData, EvalTask
from sfm.models.run import RunRecord

DATA = {"simulator": "burgers", "params": {"nu": [0.04, 0.1], "nx": 64, "nt": 11, "t_end": 0.5},
        "num_samples": 30, "seed": 0}  # fmt: skip
TASK = {
    "task": "contamination-test",
    "version": 1,
    "family": "forecast",
    "data": {**DATA, "split": "test"},
    "format": {"context_frames": 2, "horizon": 1, "space_stride": 2},
    "windows_per_trajectory": 2,
    "baselines": ["persistence"],
    "bootstrap": 0,
}


def _task(**data) -> EvalTask:
    return from_dict(EvalTask, merge(TASK, {"data": data}))


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    path = tmp_path_factory.mktemp("home")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SFM_HOME", str(path))
        fieldset = runner.load_eval_data(from_dict(EvalData, DATA))  # the run's training data set D
        yield SimpleNamespace(path=path, data=fieldset.path)


def _run_folder(tmp_path, data_path, n_train=24, recipe_data=None):
    """A finished run folder whose record says it trained on the first ``n_train`` train rows of a data set."""
    source = {"path": str(data_path), "family": "burgers", "fields": ["u"], "num_train_trajectories": n_train}
    record = RunRecord(
        recipe={"data": recipe_data or {}},
        kind="operator",
        data={"kind": "fields", "sources": [source], **source},
    )
    record.save(tmp_path)
    return tmp_path


def _rows(n):
    return [{"example": i, "trajectory": i} for i in range(n)]


def test_evaluating_on_the_training_split_is_contaminated_and_on_the_test_split_is_clean(home, tmp_path):
    run = _run_folder(tmp_path, home.data)
    dirty = contamination.check(_task(**DATA, split="train"), run, _rows(24))
    assert (dirty.overlapping, dirty.of, dirty.kind) == (
        24,
        24,
        ["content", "simulator"],
    ) and dirty.contaminated
    clean = contamination.check(_task(**DATA, split="test"), run, _rows(3))
    assert (clean.overlapping, clean.of, clean.kind) == (0, 3, []) and not clean.contaminated
    assert contamination.describe(dirty).startswith("contaminated: 24 of 24 eval trajectories")


def test_only_the_train_rows_the_run_used_count(home, tmp_path):
    run = _run_folder(tmp_path, home.data, n_train=5)  # data.train_trajectories: 5
    c = contamination.check(_task(**DATA, split="train"), run, _rows(24))
    assert (c.overlapping, c.of) == (5, 24)


def test_data_generated_again_with_more_samples_leaks_the_shared_trajectories(home, tmp_path):
    """60 trajectories of the same settings and seed: its first 30 are D's, split another way."""
    run = _run_folder(tmp_path, home.data)
    big = {**DATA, "num_samples": 60}
    test_rows = split_indices(60, 0)["test"]
    expected = len(set(test_rows.tolist()) & set(split_indices(30, 0)["train"].tolist()))
    c = contamination.check(_task(**big, split="test"), run, _rows(len(test_rows)))
    assert expected > 0 and (c.overlapping, c.of) == (expected, len(test_rows))


def test_missing_training_data_is_reported_unchecked_and_found_again_through_the_recipe(home, tmp_path):
    gone = _run_folder(tmp_path / "a", tmp_path / "moved-away")
    c = contamination.check(_task(**DATA, split="train"), gone, _rows(24))
    assert c.overlapping is None and "training data not found" in c.note and not c.contaminated
    # a stale recorded folder, but the recipe's simulator settings resolve to D under $SFM_HOME
    found = _run_folder(tmp_path / "b", tmp_path / "moved-away", recipe_data=DATA)
    assert contamination.check(_task(**DATA, split="train"), found, _rows(24)).overlapping == 24


def test_baselines_and_data_less_tasks_are_not_checked(home, tmp_path):
    assert contamination.check(_task(**DATA), "baseline:persistence", []) is None
    assert contamination.check(_task(**DATA), tmp_path, []) is None  # not a run folder
    run = tmp_path / "eq"
    run.mkdir()
    RunRecord(recipe={}, data={"kind": "equations"}).save(run)
    assert contamination.check(_task(**DATA), run, []) is None


class FieldModel:
    """A field model as the harness sees it (persistence inside): predict_frames and a spec."""

    kind, context_frames, horizon, record = "operator", 2, 1, None
    spec = SimpleNamespace(space=[32], n_fields=1, field_names=["u"], coefficient_names=["nu"])

    def predict_frames(self, contexts, coefficients, batch_size):
        return np.repeat(contexts[:, -1:], self.horizon, axis=1)


def test_sfm_eval_records_contamination_and_old_results_still_load(home, tmp_path, monkeypatch, capsys):
    run = _run_folder(tmp_path / "run", home.data)
    monkeypatch.setattr(
        runner, "_load", lambda m: (FieldModel(), ModelInfo(name="fake", kind="operator", path=m))
    )
    monkeypatch.setattr(runner, "eval_state", lambda: SimpleNamespace(is_main_process=True))
    tasks = []
    for split in ("train", "test"):
        path = tmp_path / f"{split}.yaml"
        path.write_text(yaml.safe_dump(merge(TASK, {"task": f"c-{split}", "data": {"split": split}})))
        tasks.append(str(path))
    res = runner.evaluate(str(run), tasks, tmp_path / "out")
    assert "warning: contaminated: 24 of 24 eval trajectories" in capsys.readouterr().out
    back = EvalResults.load(tmp_path / "out" / "results.json")
    assert back.tasks["c-train"].contamination.overlapping == 24 == back.tasks["c-train"].n_examples // 2
    assert back.tasks["c-test"].contamination.overlapping == 0
    assert back.tasks == res.tasks
    # results written before the check existed have no key at all
    raw = (tmp_path / "out" / "results.json").read_text().replace('"contamination"', '"_gone"')
    old = tmp_path / "old.json"
    data = json.loads(raw)
    for t in data["tasks"].values():
        del t["_gone"]
    old.write_text(json.dumps(data))
    assert EvalResults.load(old).tasks["c-train"].contamination is None


def test_a_task_with_several_sources_checks_each_and_its_scored_rows():
    from sfm.harness.tasks import load_task

    task = load_task("identify/burgers-heat-advection")
    sims = [d.simulator for d in contamination.eval_sets(task)]
    assert sims == ["burgers", "heat", "advection"]
    rows = [{"source": 1, "trajectory": 4}, {"source": 0, "trajectory": 2}, {"source": 1, "trajectory": 0}]
    assert contamination._scored_rows(rows, 1, 3).tolist() == [0, 4]
    assert contamination._scored_rows(rows, 2, 3).tolist() == []
    # rows that do not say their source: every source's whole split is checked
    assert contamination._scored_rows([{"trajectory": 1}], 1, 3) is None
    assert contamination._scored_rows([{"trajectory": 1}], 0, 1).tolist() == [1]
