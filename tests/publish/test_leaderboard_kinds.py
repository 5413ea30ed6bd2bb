"""The leaderboard's kind column and training budgets: baselines, the oracle, old token results, operators.

Results files written before the three model kinds say ``model.kind = "model"`` and carry no budget; newer ones
say ``token`` / ``continuous`` / ``operator`` and carry ``model.budget``. Budgets are set as attributes here,
so the tests hold whether or not ``ModelInfo`` has a ``budget`` field yet.
"""

from __future__ import annotations

import csv
import json

import pytest

from sfm.harness.results import EvalResults, ModelInfo
from sfm.publish.kinds import baseline_kind, budget, budget_cell, is_trained, model_kind
from sfm.publish.leaderboard import build_leaderboard, load_results, write_leaderboard

from .test_leaderboard import res, task

BUDGET = {"steps": 1000, "examples_seen": 8000, "train_seconds": 61.5}
BASELINES = {"persistence": 0.4, "coarse_solver": 0.01}


def with_budget(r: EvalResults, b: dict) -> EvalResults:
    r.model.budget = b  # ModelInfo.budget, whether declared by the dataclass yet or not
    return r


def _old_results_file(tmp_path):
    """A results file as sfm wrote it before the model kinds: kind "model", no budget key at all."""
    path = res("old", task("t1", model=0.2, baselines=BASELINES)).save(tmp_path / "old")
    raw = json.loads(path.read_text())
    raw["model"].pop("budget", None)
    assert raw["model"]["kind"] == "model"
    path.write_text(json.dumps(raw))
    return path


@pytest.fixture
def board(tmp_path):
    """persistence (baseline), coarse_solver (oracle), an old token model, an operator and a continuous
    model with equal budgets."""
    (old,), _ = load_results([_old_results_file(tmp_path)])
    fno = with_budget(res("fno", task("t1", model=0.1, baselines=BASELINES), kind="operator"), BUDGET)
    enc = with_budget(res("enc", task("t1", model=0.3, baselines=BASELINES), kind="continuous"), BUDGET)
    lb = build_leaderboard([old, (tmp_path / "fno/results.json", fno), (tmp_path / "enc/results.json", enc)])
    return lb, write_leaderboard(lb, tmp_path / "out")


def test_every_row_has_its_kind(board):
    lb, _ = board
    kinds = {r.name: r.kind for r in lb.rows}
    assert kinds == {
        "persistence": "baseline",
        "coarse_solver": "oracle",
        "old": "token",  # "model" in an old results file
        "fno": "operator",
        "enc": "continuous",
    }
    assert [r.name for r in lb.rows if r.trained] == ["fno", "old", "enc"]  # ranked: 0.25, 0.5, 0.75
    assert lb.row("coarse_solver").score == pytest.approx(0.01 / 0.4) and lb.row("coarse_solver").rank == 1


def test_markdown_states_kinds_budgets_and_the_oracle(board):
    _, paths = board
    md = paths["md"].read_text()
    # overall table: rank | name | kind | score | tasks | t1 | validity
    assert "| 1 | coarse_solver | oracle | 0.025 | 1/1 | 0.01 [0.009, 0.011] | - |" in md
    assert "| 2 | fno | operator | 0.25 | 1/1 | 0.1 [0.09, 0.11] | 100% |" in md
    assert "| 3 | old | token | 0.5 | 1/1 | 0.2 [0.18, 0.22] | 100% |" in md
    assert "| 4 | enc | continuous | 0.75 | 1/1 | 0.3 [0.27, 0.33] | 100% |" in md
    assert "| 5 | persistence | baseline | 1 | 1/1 | 0.4 [0.36, 0.44] | - |" in md
    # every kind on the board is explained, and only those
    for k in ("baseline", "oracle", "token", "continuous", "operator"):
        assert md.count(f"- `{k}`: ") == 1, k
    assert "coarse_solver is an oracle: it is given the true PDE and its coefficients" in md
    # each trained row's budget; the old file has none
    assert "| name | kind | steps | examples seen | CPU-seconds |" in md
    assert "| fno | operator | 1,000 | 8,000 | 61.5 |" in md
    assert "| old | token | – | – | – |" in md
    assert "| enc | continuous | 1,000 | 8,000 | 61.5 |" in md
    assert "| persistence | baseline | –" not in md  # baselines are not trained: no budget row
    assert "Equal budgets (1,000 steps, 8,000 examples seen, 61.5 CPU-seconds): fno, enc." in md


def test_html_states_the_same(board):
    _, paths = board
    html = paths["html"].read_text()
    assert "<td>fno</td><td>operator</td><td>1,000</td><td>8,000</td><td>61.5</td>" in html
    assert "<td>old</td><td>token</td><td>–</td><td>–</td><td>–</td>" in html
    assert "<td>coarse_solver</td><td>oracle</td>" in html
    assert "coarse_solver is an oracle: it is given the true PDE and its coefficients" in html
    assert "restarts the data set&#39;s own solver" in html  # shared prose is escaped on the HTML page
    assert "Equal budgets (1,000 steps, 8,000 examples seen, 61.5 CPU-seconds): fno, enc." in html


def test_csv_and_json_carry_kind_and_budget(board):
    _, paths = board
    rows = {r["name"]: r for r in csv.DictReader(paths["csv"].open())}
    assert {n: r["kind"] for n, r in rows.items()}["coarse_solver"] == "oracle"
    assert (rows["fno"]["steps"], rows["fno"]["examples_seen"], rows["fno"]["train_seconds"]) == (
        "1000",
        "8000",
        "61.5",
    )
    assert (rows["old"]["steps"], rows["persistence"]["train_seconds"]) == ("", "")
    data = {r["name"]: r for r in json.loads(paths["json"].read_text())["rows"]}
    assert data["fno"]["kind"] == "operator" and data["fno"]["budget"] == BUDGET
    assert data["old"]["budget"] == {"steps": None, "examples_seen": None, "train_seconds": None}


def test_a_board_of_baselines_and_one_old_model_says_nothing_of_oracles_or_equal_budgets(tmp_path):
    lb = build_leaderboard(
        [(tmp_path / "r.json", res("m", task("t1", model=0.2, baselines={"persistence": 0.4})))]
    )
    md = write_leaderboard(lb, tmp_path / "out")["md"].read_text()
    assert "oracle" not in md and "Equal budgets" not in md
    assert "- `token`: " in md and "- `operator`: " not in md


def test_the_oracle_may_be_the_reference(tmp_path):
    lb = build_leaderboard(
        [(None, res("m", task("t1", model=0.02, baselines=BASELINES)))], baseline="coarse_solver"
    )
    assert lb.row("m").score == pytest.approx(2.0) and lb.row("persistence").score == pytest.approx(40.0)


def test_an_operator_result_belongs_to_its_run_for_the_card(tmp_path):
    from sfm.publish.cards import matches

    run = tmp_path / "run"
    run.mkdir()
    assert matches(run, res("x", task("t1"), kind="operator", fingerprint="fp"), fingerprint="fp")
    assert matches(run, res("x", task("t1"), kind="model", fingerprint="fp"), fingerprint="fp")
    assert not matches(run, res("x", task("t1"), kind="baseline", fingerprint="fp"), fingerprint="fp")


# -- the small rules in sfm.publish.kinds --------------------------------------------------------------


def test_kind_rules():
    assert model_kind(ModelInfo(name="a", kind="model")) == "token"
    assert [model_kind(ModelInfo(name="a", kind=k)) for k in ("token", "operator", "baseline")] == [
        "token",
        "operator",
        "baseline",
    ]
    assert baseline_kind("coarse_solver") == baseline_kind("coarse_solver [run_a]") == "oracle"
    assert baseline_kind("persistence") == baseline_kind("coarse_solver_v2") == "baseline"
    assert not is_trained("oracle") and is_trained("operator") and is_trained("some_future_kind")


def test_budget_reading_and_cells():
    info = ModelInfo(name="a")
    assert budget(info) == {"steps": None, "examples_seen": None, "train_seconds": None}  # no attribute
    info.budget = {"steps": 12, "examples_seen": float("nan"), "train_seconds": True, "other": 1}
    assert budget(info) == {"steps": 12, "examples_seen": None, "train_seconds": None}
    assert [budget_cell(v) for v in (None, 12000, 60.0, 95.34, 0.25)] == ["–", "12,000", "60", "95.3", "0.25"]
