"""Symbolic-regression evaluation end to end with fake predictors (oracle, garbage) and baselines by hand."""

from __future__ import annotations

from functools import partial
from types import SimpleNamespace

import numpy as np
import pytest
import sympy
import yaml

import sfm.harness.generate as gen
from sfm.config import from_dict, merge
from sfm.errors import ConfigError
from sfm.harness import runner
from sfm.harness.results import EvalResults, ModelInfo
from sfm.harness.symbolic import (
    SymbolicSet,
    build_symbolic_set,
    constant,
    linear_regression,
    options_of,
    per_sample_scores,
)
from sfm.harness.tasks import EvalTask
from sfm.models.backbones import build_tiny_tokenizer
from sfm.physics.equations import parse, to_prefix
from sfm.physics.equations.sme import sme_tokens
from sfm.tasks import get_task_format
from sfm.tokenize.fields import FieldCodec
from sfm.tokenize.numbers import get_encoding
from sfm.tokenize.vocab import ScienceTokenizer

METRICS = ["r2_acc_099", "r2", "r2_acc_0999", "point_accuracy", "symbolic_equiv", "tree_edit_distance"]
TASK = {
    "task": "symbolic/test",
    "version": 1,
    "family": "symbolic_regression",
    "task_format": "symbolic_regression",
    "format": {"num_points": 16},
    "options": {
        "equations": [
            {"source": "feynman", "ids": ["I.12.1", "I.6.2a"], "num_points": 16},
            {"source": "generated", "num_equations": 30, "num_points": 16, "seed": 3, "variables": ["x_1", "x_2"],
             "n_ops": [1, 3], "split": "test"},
        ],
        "num_eval_points": 64,
    },
    "metrics": METRICS,
    "primary_metric": "r2_acc_099",
    "baselines": ["constant", "linear_regression"],
    "bootstrap": 100,
}  # fmt: skip


def _task(**changes) -> EvalTask:
    return from_dict(EvalTask, merge(TASK, changes))


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SFM_HOME", str(tmp_path_factory.mktemp("home")))
        task = _task()
        fmt = get_task_format(task.task_format, **task.format)
        opts, sources = options_of(task)
        sset = build_symbolic_set(
            sources, fmt, num_eval_points=opts.num_eval_points, eval_seed=opts.eval_seed
        )
        corpus = [fmt.prompt_text(n) for n in sset.names] + [" ".join(to_prefix(e)) for e in sset.exprs]
        sci = ScienceTokenizer.extend(
            build_tiny_tokenizer(corpus * 3), FieldCodec(get_encoding("sme"), ["y"])
        )
        yield SimpleNamespace(task=task, fmt=fmt, sset=sset, loaded=SimpleNamespace(sci=sci))


def _oracle(setup, monkeypatch):
    fmt, sci, s = setup.fmt, setup.loaded.sci, setup.sset
    words = [to_prefix(e, number_tokens=partial(sme_tokens, digits=4)) for e in s.exprs]
    truth = {
        tuple(fmt.prompt(n, X, y, sci)): fmt.completion(w, sci)
        for n, X, y, w in zip(s.names, s.X, s.y, words)
    }

    def fake(loaded, prompts, *, max_new_tokens, allowed=None, batch_size=8):
        assert allowed is None and max_new_tokens == fmt.max_answer_tokens
        return [truth[tuple(p)] for p in prompts]

    monkeypatch.setattr(gen, "generate", fake)


def _run(setup):
    return runner.run_task(setup.task, setup.loaded, limit=None, batch_size=4, seed=0, state=None)


def test_the_set_mixes_feynman_and_held_out_generated_formulas(setup):
    s = setup.sset
    assert (
        s.ids[:2] == ["I.12.1", "I.6.2a"] and all(i.startswith("gen-3-") for i in s.ids[2:]) and len(s) >= 4
    )
    for X, Xe, b, names in zip(s.X, s.X_eval, s.bounds, s.names):
        assert X.shape == (16, len(names)) and Xe.shape == (64, len(names))
        lo, hi = np.array([b[n] for n in names]).T
        assert np.all((Xe >= lo) & (Xe <= hi))


def test_oracle_scores_perfectly(setup, monkeypatch):
    _oracle(setup, monkeypatch)
    result, rows, examples = _run(setup)
    assert result.validity == 1.0 and result.n_examples == len(setup.sset)
    perfect = {"r2": 1.0, "r2_acc_099": 1.0, "r2_acc_0999": 1.0, "point_accuracy": 1.0, "symbolic_equiv": 1.0,
               "tree_edit_distance": 0.0}  # fmt: skip
    assert {m: v.value for m, v in result.model.metrics.items()} == perfect
    assert all(r["model_valid"] and r["model_expr"] == r["expr"] for r in rows)
    assert examples == {}  # answers are formulas: nothing for the leaderboard's field plots


def test_garbage_scores_as_failure(setup, monkeypatch):
    sci = setup.loaded.sci
    junk = [sci.to_global(np.arange(9)).tolist(), [], sci.text(" add x_1")]  # numbers, nothing, truncated
    monkeypatch.setattr(
        gen, "generate", lambda loaded, prompts, **kw: [junk[i % 3] for i in range(len(prompts))]
    )
    result, rows, _ = _run(setup)
    assert result.validity == 0.0
    failed = {"r2": 0.0, "r2_acc_099": 0.0, "r2_acc_0999": 0.0, "point_accuracy": 0.0, "symbolic_equiv": 0.0,
              "tree_edit_distance": 1.0}  # fmt: skip
    assert {m: v.value for m, v in result.model.metrics.items()} == failed
    assert all(r["model_expr"] is None and not r["model_valid"] for r in rows)


def _r2(pred: np.ndarray, y: np.ndarray) -> float:
    return max(0.0, 1.0 - float(np.sum((y - pred) ** 2) / np.sum((y - y.mean()) ** 2)))


def test_baselines_by_hand(setup, monkeypatch):
    _oracle(setup, monkeypatch)
    result, rows, _ = _run(setup)
    s = setup.sset
    for i, row in enumerate(rows):
        # constant: the prompt's mean y; its R² on held-out points is at most 0 (clipped to 0)
        c = s.y[i].mean()
        assert float(parse(row["constant_expr"])) == pytest.approx(c, rel=1e-12)
        assert row["constant_r2"] == _r2(np.full(64, c), s.y_eval[i]) == 0.0
        # linear regression: least squares on the prompt's points, by the normal equations
        A = np.concatenate([np.ones((16, 1)), s.X[i]], axis=1)
        coef = np.linalg.solve(A.T @ A, A.T @ s.y[i])
        pred = np.concatenate([np.ones((64, 1)), s.X_eval[i]], axis=1) @ coef
        assert row["linear_regression_r2"] == pytest.approx(_r2(pred, s.y_eval[i]), abs=1e-8)
    lin = result.baselines["linear_regression"].metrics["r2"].value
    assert lin == pytest.approx(np.mean([r["linear_regression_r2"] for r in rows]))


def _one(expr: str, names: list[str], low: float = 0.5, high: float = 3.0) -> SymbolicSet:
    e = parse(expr, variables=names)
    rng = np.random.default_rng(0)
    X, Xe = rng.uniform(low, high, (16, len(names))), rng.uniform(low, high, (64, len(names)))
    f = sympy.lambdify([sympy.Symbol(n) for n in names], e, "numpy")
    return SymbolicSet(["t"], [names], [e], [X], [f(*X.T) * np.ones(16)], [Xe], (f(*Xe.T) * np.ones(64))[None],
                       [dict.fromkeys(names, (low, high))])  # fmt: skip


def test_linear_regression_recovers_a_linear_formula():
    s = _one("2 + 3*x_1 - x_2/2", ["x_1", "x_2"])
    fit = linear_regression(s.X[0], s.y[0], s.names[0])
    assert isinstance(fit, sympy.Expr) and not isinstance(fit, sympy.Float)
    got = per_sample_scores([fit], s, METRICS, timeout=2.0)
    assert {m: float(v[0]) for m, v in got.items()} == {
        "r2_acc_099": 1.0, "r2": 1.0, "r2_acc_0999": 1.0, "point_accuracy": 1.0, "symbolic_equiv": 1.0,
        "tree_edit_distance": 0.0,
    }  # fmt: skip
    assert float(constant(s.X[0], s.y[0], s.names[0])) == pytest.approx(s.y[0].mean())


@pytest.mark.parametrize(
    ("pred", "truth"), [("x**2 + x", "x*(x + 1)"), ("x", "sqrt(x**2)"), ("exp(log(x) * 2)", "x**2")]
)
def test_equivalent_formulas_are_not_rejected_by_the_numeric_shortcut(pred, truth):
    s = _one(truth, ["x"])
    got = per_sample_scores([parse(pred)], s, ["symbolic_equiv", "r2_acc_0999"], timeout=2.0)
    assert got["symbolic_equiv"][0] == 1.0 and got["r2_acc_0999"][0] == 1.0


def test_evaluate_writes_loadable_results(setup, monkeypatch, tmp_path):
    _oracle(setup, monkeypatch)
    monkeypatch.setenv("SFM_HOME", str(tmp_path / "home"))
    path = tmp_path / "sr-test.yaml"
    path.write_text(yaml.safe_dump({**TASK, "task": "sr-test"}))
    monkeypatch.setattr(runner, "_load", lambda model: (setup.loaded, ModelInfo(name="oracle")))
    runner.evaluate("oracle", [str(path)], tmp_path / "out", progress=False)
    back = EvalResults.load(tmp_path / "out" / "results.json")
    t = back.tasks["sr-test"]
    assert t.model.metrics["symbolic_equiv"].value == 1.0 and set(t.baselines) == {
        "constant",
        "linear_regression",
    }
    assert len((tmp_path / "out" / "samples_sr-test.jsonl").read_text().splitlines()) == t.n_examples


def test_option_errors():
    with pytest.raises(ConfigError, match="did you mean 'num_eval_points'"):
        options_of(_task(options={"num_eval_point": 3}))
    with pytest.raises(ConfigError, match=r"equations\[0\].*did you mean 'num_points'"):
        options_of(_task(options={"equations": [{"source": "feynman", "num_point": 3}]}))
    with pytest.raises(ConfigError, match="split: expected all, train, validation or test"):
        options_of(_task(options={"equations": [{"source": "feynman", "split": "dev"}]}))
    assert options_of(_task(options={"equations": "feynman"}))[1][0][1] == "all"
    with pytest.raises(ConfigError, match=r"not \['nrmse'\]"):
        runner.run_task(_task(metrics=["r2", "nrmse"], primary_metric="r2"), None, limit=None, batch_size=1, seed=0,
                        state=None)  # fmt: skip


def test_a_real_untrained_model_runs_end_to_end(setup):
    """The real generate() path on a tiny random model: its output is read back and scored, never a crash."""
    import torch

    from sfm.models.run import LoadedModel
    from sfm.training.setup import make_model

    torch.manual_seed(0)
    sci = setup.loaded.sci
    loaded = LoadedModel(make_model("tiny-llama", sci).eval(), sci, {}, None)
    task = _task(format={"num_points": 16, "max_answer_tokens": 24}, baselines=[])
    result, rows, _ = runner.run_task(task, loaded, limit=3, batch_size=3, seed=0, state=None)
    assert result.n_examples == len(rows) == 3 and 0.0 <= result.validity <= 1.0
    assert result.validity == pytest.approx(np.mean([r["model_valid"] for r in rows]))
    r2 = result.model.metrics["r2"].value
    assert r2 == pytest.approx(np.mean([r["model_r2"] for r in rows])) and 0.0 <= r2 <= 1.0
