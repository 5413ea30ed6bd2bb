"""The quickstart end to end at reduced size: data -> three models (tokens, continuous, fno) -> eval vs
baselines -> one leaderboard -> a card each, and its outputs are right: every loss fell, the results hold
finite metrics for each model and the baselines, each card parses with huggingface_hub and its eval results
equal its results JSON, and the leaderboard names every row with its kind."""

from __future__ import annotations

import json
import math

import pytest
from huggingface_hub import ModelCard

from sfm.cli import main
from sfm.harness.results import EvalResults

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def quickstart(tmp_path_factory, monkeypatch_module):
    out = tmp_path_factory.mktemp("qs") / "run"
    monkeypatch_module.setenv("OMP_NUM_THREADS", "1")
    code = main(
        [
            "quickstart",
            "--out",
            str(out),
            "--max-steps",
            "12",
            "--num-samples",
            "10",
            "--limit",
            "4",
            "--no-progress",
        ]
    )
    assert code == 0
    return out


@pytest.fixture(scope="module")
def monkeypatch_module():
    mp = pytest.MonkeyPatch()
    yield mp
    mp.undo()


KINDS = {"tokens": "token", "continuous": "continuous", "fno": "operator"}


def test_layout(quickstart):
    out = quickstart
    for rel in (
        "tokens/adapter_model.safetensors",
        "continuous/field_model.json",
        "fno/field_model.json",
        *(f"{m}/{f}" for m in KINDS for f in ("README.md", "sfm_run.json")),
        *(f"results/{m}/results.json" for m in KINDS),
        "leaderboard/leaderboard.md",
        "leaderboard/leaderboard.html",
        "leaderboard/leaderboard.csv",
    ):
        assert (out / rel).is_file(), rel
    assert any((out / "data").iterdir())


@pytest.mark.parametrize("model", list(KINDS))
def test_loss_fell(quickstart, model):
    record = json.loads((quickstart / model / "sfm_run.json").read_text())
    losses = record["train"]["loss_history"]
    assert len(losses) >= 2 and losses[-1] < losses[0]


@pytest.mark.parametrize("model", list(KINDS))
def test_results_finite_for_model_and_baseline(quickstart, model):
    results = EvalResults.load(quickstart / "results" / model / "results.json")
    assert results.model.name == f"quickstart/{model}" and results.model.kind == KINDS[model]
    assert results.tasks
    for task in results.tasks.values():
        m = task.primary_metric
        assert task.model is not None and math.isfinite(task.model.metrics[m].value)
        assert math.isfinite(task.baselines["persistence"].metrics[m].value)
        assert 0.0 <= task.validity <= 1.0 and task.n_examples > 0


@pytest.mark.parametrize("model", list(KINDS))
def test_card_eval_results_equal_results_json(quickstart, model):
    card = ModelCard.load(quickstart / model / "README.md")
    results = json.loads((quickstart / "results" / model / "results.json").read_text())
    entries = card.data.eval_results
    assert entries
    seen = 0
    for e in entries:
        task = results["tasks"][e.dataset_type]
        if e.metric_type == "validity":
            assert e.metric_value == pytest.approx(task["validity"], rel=1e-12)
            continue
        if e.metric_config:  # a time window's value
            value = task["model"]["windows"][e.metric_config][e.metric_type]["value"]
        else:
            value = task["model"]["metrics"][e.metric_type]["value"]
        assert e.metric_value == pytest.approx(value, rel=1e-12)
        seen += 1
    assert seen >= len(results["tasks"])


def test_leaderboard_ranks_model_and_persistence(quickstart):
    text = (quickstart / "leaderboard" / "leaderboard.md").read_text()
    assert "persistence" in text
    for model, kind in KINDS.items():
        row = next((line for line in text.splitlines() if f"quickstart/{model} " in line), None)
        assert row is not None and f"| {kind} |" in row, (model, row)


@pytest.mark.parametrize(
    ("model", "says", "never"),
    [
        ("fno", "A neural operator (`FNO` from `neuraloperator`", "number tokens"),
        ("continuous", "A continuous field model made with sfm: `tiny-llama`", "number tokens"),
        ("tokens", "written as number tokens", "field_model.json"),
    ],
)
def test_card_describes_its_kind(quickstart, model, says, never):
    card = ModelCard.load(quickstart / model / "README.md")
    assert says in card.text
    assert never not in card.text
    tags = card.data.tags
    assert ("encoding-bins" in tags) == (model == "tokens")
