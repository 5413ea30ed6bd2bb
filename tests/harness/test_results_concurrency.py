"""Two evaluations writing into one results folder keep both results (sfm.harness.results_folder)."""

from __future__ import annotations

import multiprocessing as mp

import numpy as np
import pytest

from sfm.harness.results import RESULTS_FILE, EvalResults, ModelInfo, TaskResult
from sfm.harness.results_folder import write_results
from sfm.publish.leaderboard.load import find_results


def _results(model: str, tasks: list[str], *, fingerprint: str = "abc123") -> EvalResults:
    info = ModelInfo(name=model, kind="operator", path=f"runs/{model}", fingerprint=fingerprint)
    return EvalResults(
        model=info,
        tasks={t: TaskResult(task=t, version=1, family="forecast", primary_metric="nrmse") for t in tasks},
        config={"tasks": tasks},
    )


def _writer(out: str, model: str, prefix: str, n: int) -> None:
    for i in range(n):
        task = f"{prefix}/t{i}"
        write_results(_results(model, [task]), {task: [{"i": i}]}, {task: {"u": np.zeros(3)}}, out)


def test_same_model_other_tasks_merge(tmp_path):
    write_results(_results("fno", ["forecast/a"]), {}, {}, tmp_path)
    write_results(_results("fno", ["rollout/b"]), {}, {}, tmp_path)
    assert sorted(EvalResults.load(tmp_path / RESULTS_FILE).tasks) == ["forecast/a", "rollout/b"]


def test_same_task_again_replaces_it(tmp_path):
    first = _results("fno", ["forecast/a"])
    first.tasks["forecast/a"].n_examples = 1
    write_results(first, {}, {}, tmp_path)
    again = _results("fno", ["forecast/a"])
    again.tasks["forecast/a"].n_examples = 2
    write_results(again, {}, {}, tmp_path)
    assert EvalResults.load(tmp_path / RESULTS_FILE).tasks["forecast/a"].n_examples == 2


def test_another_model_goes_to_a_subfolder_the_leaderboard_finds(tmp_path):
    write_results(_results("fno", ["forecast/a"]), {}, {}, tmp_path)
    second = write_results(_results("tokens", ["forecast/a"], fingerprint="ffff0000aa"), {}, {}, tmp_path)
    assert second == tmp_path / "tokens-ffff0000" / RESULTS_FILE
    assert EvalResults.load(tmp_path / RESULTS_FILE).model.name == "fno"
    files, _ = find_results([tmp_path])
    assert {EvalResults.load(f).model.name for f in files} == {"fno", "tokens"}


def test_an_unreadable_results_file_is_kept_aside(tmp_path):
    (tmp_path / RESULTS_FILE).write_text("{not json")
    write_results(_results("fno", ["forecast/a"]), {}, {}, tmp_path)
    assert (tmp_path / (RESULTS_FILE + ".unreadable")).read_text() == "{not json"
    assert list(EvalResults.load(tmp_path / RESULTS_FILE).tasks) == ["forecast/a"]


@pytest.mark.slow
def test_two_processes_writing_one_folder_keep_every_result(tmp_path):
    """Without the lock, read-merge-write races lose tasks (checked by hand with the lock removed)."""
    ctx = mp.get_context("spawn")
    n = 15
    procs = [ctx.Process(target=_writer, args=(str(tmp_path), "fno", p, n)) for p in ("forecast", "rollout")]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    tasks = EvalResults.load(tmp_path / RESULTS_FILE).tasks
    assert sorted(tasks) == sorted(f"{p}/t{i}" for p in ("forecast", "rollout") for i in range(n))
    assert len(list(tmp_path.glob("samples_*.jsonl"))) == 2 * n
