"""The run-folder contract: RunRecord round trips, old records read as token runs, bad records fail in one
line, and load_model dispatches on the kind."""

from __future__ import annotations

import json
import os

import pytest

from sfm.errors import DataError
from sfm.models import run as R
from sfm.models.run import RUN_FILE, RunRecord, load_model

# A record as sfm.train wrote it before kinds and budgets existed (trimmed from a real tiny run).
OLD = {
    "recipe": {"model": {"name_or_path": "tiny-llama"}, "training": {"output_dir": "runs/x"}},
    "recipe_path": "recipes/tiny/burgers-forecast/lora.yaml",
    "base_model": "tiny-llama",
    "tiny_base": True,
    "data": {"path": "data/b", "family": "burgers", "num_train_examples": 64},
    "task": {"name": "forecast", "options": {"context_frames": 2}},
    "encoding": {"encoding": {"name": "bins", "n_bins": 255}, "fields": ["u"]},
    "parameters": {"trainable": 10, "total": 100},
    "train": {"steps": 8, "loss_history": [3.0, 2.0], "tokens": 4800},
    "distributed": {"world_size": 1, "zero_stage": None},
    "sfm_version": "0.1.0",
    "git": "abc",
    "date": "2026-11-29T11:47:42+00:00",
}


def test_old_record_reads_as_a_token_run_and_round_trips(tmp_path):
    (tmp_path / RUN_FILE).write_text(json.dumps(OLD))
    rec = RunRecord.read(tmp_path)
    assert rec.kind == "token" and rec.budget == {} and rec.field_model is None and rec.merged is None
    assert rec.base_model == "tiny-llama" and rec.train["steps"] == 8 and rec.parameters["total"] == 100
    # Writing it back adds only the new fields' defaults: nothing the old file held changes.
    assert rec.to_dict() == {**OLD, "kind": "token", "budget": {}}


def test_save_is_atomic_and_read_inverts_it(tmp_path):
    rec = RunRecord(
        recipe={"model": {"name_or_path": "operator:fno"}},
        kind="operator",
        budget={"steps": 5, "examples_seen": 40, "train_seconds": 1.5, "stopped_by": "max_time_s"},
        field_model={"kind": "operator", "operator": {"n_modes": [16]}},
        extra={"written_by_a_newer_sfm": [1, 2]},
    )
    path = rec.save(tmp_path)
    assert path == tmp_path / RUN_FILE and sorted(os.listdir(tmp_path)) == [RUN_FILE]  # no temporary left
    back = RunRecord.read(tmp_path)
    assert back == rec
    assert json.loads(path.read_text())["written_by_a_newer_sfm"] == [1, 2]  # unknown keys survive


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "sfm_run.json: no readable run record (.* is not a run folder written by sfm.train)"),
        ('{"recipe": ', "sfm_run.json: no readable run record \\(not valid JSON"),
        ("[1, 2]", "not an sfm run record \\(no 'recipe'\\)"),
        ('{"recipe": {}, "kind": "tokens"}', "unknown kind 'tokens'; known: token, continuous, operator"),
        ('{"recipe": {}, "train": [1]}', "'train' should be an object, not list"),
    ],
    ids=["missing", "torn", "not-a-record", "bad-kind", "bad-section"],
)
def test_bad_records_fail_in_one_line(tmp_path, content, message):
    if content is not None:
        (tmp_path / RUN_FILE).write_text(content)
    with pytest.raises(DataError, match=message) as err:
        RunRecord.read(tmp_path)
    assert len(str(err.value).splitlines()) == 1


def test_load_model_sends_field_runs_to_field_io(tmp_path, monkeypatch):
    import sfm.models.field_io as field_io

    RunRecord(recipe={}, kind="operator").save(tmp_path)
    calls = []
    monkeypatch.setattr(
        field_io, "load_field_run", lambda folder, record: calls.append((folder, record)) or "P"
    )
    assert load_model(tmp_path) == "P"
    assert calls == [(tmp_path, RunRecord.read(tmp_path))]


def test_load_model_refuses_a_folder_that_is_not_a_run(tmp_path):
    with pytest.raises(DataError, match=r"not a run folder written by sfm\.train"):
        load_model(tmp_path)


def test_budget_keys_are_the_ones_the_leaderboard_reads():
    from sfm.publish import kinds

    assert R.BUDGET_KEYS == kinds.BUDGET_KEYS
