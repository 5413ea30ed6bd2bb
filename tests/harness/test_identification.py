"""PDE-identification evaluation end to end with fake predictors (oracle, garbage), baselines by hand, and
every shipped eval task file parsed."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import yaml

import sfm.harness.generate as gen
from sfm.config import from_dict, merge
from sfm.errors import ConfigError
from sfm.harness import runner
from sfm.harness.identification import build_identification_set, load_sources, majority, options_of
from sfm.harness.results import EvalResults, ModelInfo
from sfm.harness.tasks import EvalTask, load_task
from sfm.models.backbones import build_tiny_tokenizer
from sfm.registry import EVAL_TASKS
from sfm.tasks import get_task_format
from sfm.tokenize.fields import FieldCodec
from sfm.tokenize.numbers import get_encoding
from sfm.tokenize.vocab import ScienceTokenizer

TASK = {
    "task": "identify/test",
    "version": 1,
    "family": "pde_identification",
    "task_format": "pde_identification",
    # 30 burgers trajectories split 24/3/3, 20 heat and 20 advection split 16/2/2: burgers is the majority
    "data": {"simulator": "burgers", "params": {"nu": [0.04, 0.1], "nx": 64, "nt": 11, "t_end": 0.5},
             "num_samples": 30, "seed": 0, "split": "test"},
    "format": {"frames": 3, "time_stride": 2, "space_stride": 2},
    "options": {"sources": [
        {"simulator": "heat", "params": {"nx": 64, "nt": 11, "t_end": 0.5}, "num_samples": 20, "seed": 1},
        {"simulator": "advection", "params": {"nx": 64, "nt": 11, "t_end": 0.5}, "num_samples": 20, "seed": 2},
    ]},
    "metrics": ["family_accuracy", "coef_rel_error"],
    "primary_metric": "family_accuracy",
    "baselines": ["majority"],
    "bootstrap": 200,
}  # fmt: skip


def _task(**changes) -> EvalTask:
    return from_dict(EvalTask, merge(TASK, changes))


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    path = tmp_path_factory.mktemp("home")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SFM_HOME", str(path))
        yield path


@pytest.fixture(scope="module")
def setup(home):
    task = _task()
    fieldset = runner.load_eval_data(task.data)
    sources = load_sources(task, fieldset)
    fmt = get_task_format(task.task_format, **task.format)
    corpus = [t for _, fs in sources for r in fs.split("train") for t in fmt.texts(r, fs.meta)]
    codec = FieldCodec(get_encoding("bins", n_bins=255, low=-4.0, high=4.0), ["u"])
    sci = ScienceTokenizer.extend(build_tiny_tokenizer(corpus * 2), codec)
    return SimpleNamespace(
        task=task, fieldset=fieldset, sources=sources, fmt=fmt, loaded=SimpleNamespace(sci=sci)
    )


def _oracle(setup, monkeypatch):
    """generate() answering every prompt with its true completion."""
    fmt, sci = setup.fmt, setup.loaded.sci
    iset = build_identification_set(setup.sources, fmt)
    truth = {
        tuple(fmt.prompt(f, m, sci)): fmt.completion(fam, c, sci)
        for f, m, fam, c in zip(iset.frames, iset.metas, iset.families, iset.coefficients)
    }

    def fake(loaded, prompts, *, max_new_tokens, allowed=None, batch_size=8):
        assert allowed is None and max_new_tokens == fmt.max_answer_tokens  # free text, length-bounded
        return [truth[tuple(p)] for p in prompts]

    monkeypatch.setattr(gen, "generate", fake)


def _run(setup, limit=None):
    return runner.run_task(setup.task, setup.loaded, limit=limit, batch_size=4, seed=0, state=None)


def test_oracle_scores_perfectly(setup, monkeypatch):
    _oracle(setup, monkeypatch)
    result, rows, examples = _run(setup)
    m = result.model.metrics
    assert result.n_examples == 7 and result.validity == 1.0
    assert m["family_accuracy"].value == 1.0 and m["family_accuracy"].n == 7
    assert m["coef_rel_error"].n == 7 and m["coef_rel_error"].value <= 5e-4  # 4 significant digits
    assert result.extra["per_family"]["model"] == {"advection": 1.0, "burgers": 1.0, "heat": 1.0}
    assert set(result.extra["per_coefficient"]["model"]) == {"nu", "D", "beta"}
    assert result.extra["families"] == {"burgers": 3, "heat": 2, "advection": 2}
    assert [r["source"] for r in rows] == [0, 1, 2, 0, 1, 2, 0]  # taken in turn from each source
    assert all(r["model_valid"] and r["model_family"] == r["family"] for r in rows)
    assert examples == {}  # answers are text: nothing for the leaderboard's field plots
    assert result.primary_metric == "family_accuracy" and result.higher_is_better


def test_garbage_is_invalid_and_scores_zero(setup, monkeypatch):
    sci = setup.loaded.sci
    rng = np.random.default_rng(0)
    # field tokens where text belongs (what an undertrained model emits), and empty output
    junk = [sci.to_global(rng.integers(0, 255, 12)).tolist(), []]
    monkeypatch.setattr(
        gen, "generate", lambda loaded, prompts, **kw: [junk[i % 2] for i in range(len(prompts))]
    )
    result, rows, _ = _run(setup)
    assert result.validity == 0.0
    assert result.model.metrics["family_accuracy"].value == 0.0
    assert (
        result.model.metrics["coef_rel_error"].value is None and result.model.metrics["coef_rel_error"].n == 0
    )
    assert all(r["model_family_accuracy"] == 0.0 and r["model_coef_rel_error"] is None for r in rows)
    assert result.baselines["majority"].metrics["family_accuracy"].value == pytest.approx(3 / 7)  # unaffected


def test_majority_baseline_by_hand(setup, monkeypatch):
    _oracle(setup, monkeypatch)
    result, _, _ = _run(setup)
    nu_train = setup.fieldset.column("train", "nu")
    assert len(nu_train) == 24  # more than heat's and advection's 16 each: burgers is the majority family
    nu_test = setup.fieldset.column("test", "nu")
    s = result.baselines["majority"].metrics
    assert s["family_accuracy"].value == pytest.approx(3 / 7) and s["family_accuracy"].n == 7
    expected = np.mean(np.abs(nu_train.mean() - nu_test) / nu_test)
    assert s["coef_rel_error"].value == pytest.approx(expected, rel=1e-12) and s["coef_rel_error"].n == 3
    assert result.extra["per_family"]["majority"] == {"advection": 0.0, "burgers": 1.0, "heat": 0.0}


def test_majority_ties_go_to_the_first_name():
    got = majority(["heat", "burgers", "heat", "burgers"], [{"D": 1.0}, {"nu": 2.0}, {"D": 3.0}, {"nu": 4.0}])
    assert got.family == "burgers" and got.coefficients == {"nu": 3.0} and got.valid


def test_limit_keeps_sources_balanced(setup):
    iset = build_identification_set(setup.sources, setup.fmt, limit=4)
    assert iset.families == ["burgers", "heat", "advection", "burgers"]


def test_evaluate_writes_loadable_results(setup, monkeypatch, tmp_path):
    _oracle(setup, monkeypatch)
    path = tmp_path / "identify-test.yaml"
    path.write_text(yaml.safe_dump({**TASK, "task": "identify-test"}))
    monkeypatch.setattr(runner, "_load", lambda model: (setup.loaded, ModelInfo(name="oracle")))
    runner.evaluate("oracle", [str(path)], tmp_path / "out", progress=False)
    back = EvalResults.load(tmp_path / "out" / "results.json")
    t = back.tasks["identify-test"]
    assert t.model.metrics["family_accuracy"].value == 1.0 and t.baselines["majority"].metrics
    lines = (tmp_path / "out" / "samples_identify-test.jsonl").read_text().splitlines()
    assert len(lines) == t.n_examples == 7


def test_task_errors(setup):
    with pytest.raises(ConfigError, match=r"did you mean 'sources'"):
        options_of(_task(options={"source": []}))
    bad = _task(options={"sources": [{"simulator": "burgers", "nu": 1}]})
    with pytest.raises(ConfigError, match=r"options.sources\[0\].*unknown key 'nu'"):
        load_sources(bad, setup.fieldset)
    with pytest.raises(ConfigError, match="not \\['nrmse'\\]"):
        runner.run_task(
            _task(metrics=["family_accuracy", "nrmse"]), None, limit=None, batch_size=1, seed=0, state=None
        )
    with pytest.raises(
        ConfigError,
        match="baseline 'persistence' is for forecast tasks; a pde_identification task takes: majority",
    ):
        _task(baselines=["persistence"])
    with pytest.raises(ConfigError, match="baseline 'majority' is for pde_identification tasks"):
        load_task_from({"task": "f", "version": 1, "family": "forecast", "data": {"simulator": "burgers"},
                        "baselines": ["majority"]})  # fmt: skip


def load_task_from(data: dict) -> EvalTask:
    return from_dict(EvalTask, data)


# ---- every shipped task file ---------------------------------------------------------------------------
TASK_DIR = Path(__file__).resolve().parents[2] / "eval" / "tasks"


@pytest.mark.parametrize(
    "name", sorted(p.relative_to(TASK_DIR).with_suffix("").as_posix() for p in TASK_DIR.rglob("*.yaml"))
)
def test_every_task_file_loads(name):
    from sfm.harness import symbolic

    assert name in EVAL_TASKS
    task = load_task(name)
    fmt = get_task_format(task.task_format, **task.format)  # format options checked too
    assert fmt.name == {
        "pde_identification": "pde_identification",
        "symbolic_regression": "symbolic_regression",
    }.get(task.family, "forecast")
    if task.family == "pde_identification":
        options_of(task)
    if task.family == "symbolic_regression":
        symbolic.options_of(task)


def test_a_real_untrained_model_runs_end_to_end(setup):
    """The real generate() path (batched, KV cache, free text) on a tiny random model: whatever it emits is
    scored, nothing crashes, and the headline numbers are the means of the per-sample rows."""
    import torch

    from sfm.models.run import LoadedModel
    from sfm.training.setup import make_model

    torch.manual_seed(0)
    sci = setup.loaded.sci
    loaded = LoadedModel(make_model("tiny-llama", sci).eval(), sci, {}, None)
    result, rows, _ = runner.run_task(setup.task, loaded, limit=4, batch_size=4, seed=0, state=None)
    assert result.n_examples == len(rows) == 4 and 0.0 <= result.validity <= 1.0
    assert all(isinstance(r["model_text"], str) for r in rows)
    acc = result.model.metrics["family_accuracy"].value
    assert acc == pytest.approx(np.mean([r["model_family_accuracy"] for r in rows]))
    assert result.validity == pytest.approx(np.mean([r["model_valid"] for r in rows]))
