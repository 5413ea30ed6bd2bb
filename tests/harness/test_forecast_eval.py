"""The forecast runner end to end with fake predictors: an oracle (scores at the encoding's precision) and
garbage (invalid -> the persistence fallback, scored exactly like persistence); results written and read."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest
import yaml

import sfm.harness.generate as gen
from sfm.config import from_dict, merge
from sfm.errors import ConfigError
from sfm.harness import forecast as fc
from sfm.harness import runner
from sfm.harness.results import EvalResults, ModelInfo
from sfm.harness.tasks import EvalTask
from sfm.models.backbones import build_tiny_tokenizer
from sfm.tasks import get_task_format
from sfm.tokenize.fields import FieldCodec
from sfm.tokenize.numbers import get_encoding
from sfm.tokenize.vocab import ScienceTokenizer

TASK = {
    "task": "rollout-test",
    "version": 1,
    "family": "forecast",
    "data": {"simulator": "burgers", "params": {"nu": [0.04, 0.1], "nx": 64, "nt": 11, "t_end": 0.5},
             "num_samples": 30, "seed": 0, "split": "test"},
    "format": {"context_frames": 2, "horizon": 1, "space_stride": 2},
    "rollout_steps": 3,
    "windows": {"t1": [0, 1], "t2-3": [1, 3]},
    "windows_per_trajectory": 2,
    "metrics": ["nrmse", "rmse"],
    "primary_metric": "nrmse",
    "baselines": ["persistence", "linear"],
    "bootstrap": 100,
}  # fmt: skip
BINS = {"n_bins": 255, "low": -4.0, "high": 4.0}


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SFM_HOME", str(tmp_path_factory.mktemp("home")))
        task = from_dict(EvalTask, TASK)
        fieldset = runner.load_eval_data(task.data)
        fmt = get_task_format(task.task_format, **task.format)
        fs = fc.build_forecast_set(fieldset, "test", fmt, task.rollout_steps, windows_per_trajectory=2)
        corpus = [t for r in fieldset.split("train") for t in fmt.texts(r, fieldset.meta)]
        sci = ScienceTokenizer.extend(
            build_tiny_tokenizer(corpus * 4), FieldCodec(get_encoding("bins", **BINS), ["u"])
        )
        yield SimpleNamespace(task=task, fieldset=fieldset, fmt=fmt, fs=fs, loaded=SimpleNamespace(sci=sci))


def _prompt_scale(prompt: list[int], sci: ScienceTokenizer) -> np.ndarray:
    local = sci.to_local(prompt)
    first = int(np.flatnonzero(local >= 0)[0])
    return sci.codec.decode_header(local[first : first + sci.codec.header_length()])


def _oracle(setup, monkeypatch) -> list[np.ndarray]:
    """generate() answering each rollout step with the true next frame, encoded with the prompt's own scale.

    model_rollout makes one generate() call per step, with the prompts in example order. Returns the list the
    scales of each call are appended to (``[n_examples]`` per step)."""
    fmt, sci, targets = setup.fmt, setup.loaded.sci, setup.fs.targets
    scales: list[np.ndarray] = []

    def fake(loaded, prompts, *, max_new_tokens, allowed=None, batch_size=8):
        step = len(scales)
        s = np.stack([_prompt_scale(p, sci) for p in prompts])
        scales.append(s[:, 0])
        assert max_new_tokens == fmt.completion_length(targets.shape[3:], sci) and allowed is not None
        return [fmt.completion(targets[i, step : step + 1], s[i], sci) for i in range(len(prompts))]

    monkeypatch.setattr(gen, "generate", fake)
    return scales


def _run(setup, **changes):
    task = from_dict(EvalTask, merge(TASK, changes))
    return runner.run_task(
        task, setup.loaded, limit=None, batch_size=4, seed=0, state=SimpleNamespace(num_processes=1)
    )


def test_oracle_scores_at_the_encoding_precision(setup, monkeypatch):
    scales = _oracle(setup, monkeypatch)
    result, rows, ex = _run(setup)
    targets = setup.fs.targets  # [N, 3, 1, 32]
    assert result.validity == 1.0 and result.n_examples == len(setup.fs) == targets.shape[0]
    assert len(scales) == 3  # one generate call per rollout step
    # every decoded value is within half a bin of the truth, bins sized by the scale of its own prompt
    half_bin = 0.5 * (BINS["high"] - BINS["low"]) / (BINS["n_bins"] - 1)
    err_bound = half_bin * np.stack(scales, axis=1)[:, :, None, None] * (1 + 1e-9)  # [N, 3, 1, 1]
    assert np.all(np.abs(ex["model"] - ex["target"]) <= err_bound[:4])
    # hence each per-frame nRMSE is at most that bound over the frame's RMS, and so is their mean
    rms = np.sqrt(np.mean(targets[:, :, 0] ** 2, axis=-1))  # [N, 3]
    bound = float(np.mean(err_bound[:, :, 0, 0] / rms))
    nrmse = result.model.metrics["nrmse"].value
    assert 0 < nrmse <= bound and bound < 0.05
    assert nrmse < result.baselines["persistence"].metrics["nrmse"].value / 3
    assert set(result.model.windows) == {"t1", "t2-3"} and len(result.model.curves["nrmse"]) == 3
    assert all(r["model_valid"] == 1.0 for r in rows)


def test_garbage_falls_back_to_persistence_exactly(setup, monkeypatch):
    sci = setup.loaded.sci
    junk = [sci.text(" burgers nu"), [], [sci.eos_id]]
    monkeypatch.setattr(
        gen, "generate", lambda loaded, prompts, **kw: [junk[i % 3] for i in range(len(prompts))]
    )
    result, rows, ex = _run(setup)
    assert result.validity == 0.0
    model, pers = result.model, result.baselines["persistence"]
    for m in ("nrmse", "rmse"):
        assert model.metrics[m].value == pers.metrics[m].value  # exactly: the same frames
        for w in ("t1", "t2-3"):
            assert model.windows[w][m].value == pers.windows[w][m].value
    assert model.curves["nrmse"] == pers.curves["nrmse"]
    np.testing.assert_array_equal(ex["model"], ex["persistence"])
    assert all(r["model_valid"] == 0.0 and r["model_nrmse"] == r["persistence_nrmse"] for r in rows)


def test_invalid_drop_with_no_valid_output_is_an_error(setup, monkeypatch):
    monkeypatch.setattr(gen, "generate", lambda loaded, prompts, **kw: [[] for _ in prompts])
    with pytest.raises(ConfigError, match="no example decoded validly"):
        _run(setup, invalid="drop")


def test_results_written_and_loadable(setup, monkeypatch, tmp_path):
    _oracle(setup, monkeypatch)
    path = tmp_path / "rollout-test.yaml"
    path.write_text(yaml.safe_dump(TASK))
    monkeypatch.setattr(runner, "_load", lambda model: (setup.loaded, ModelInfo(name="oracle")))
    results = runner.evaluate("oracle", [str(path)], tmp_path / "out", progress=False)
    back = EvalResults.load(tmp_path / "out" / "results.json")
    t = back.tasks["rollout-test"]
    assert t.model.metrics["nrmse"].value == results.tasks["rollout-test"].model.metrics["nrmse"].value
    assert set(t.model.windows) == {"t1", "t2-3"} and len(t.model.curves["nrmse"]) == 3
    assert set(t.baselines) == {"persistence", "linear"} and t.validity == 1.0
    lines = (tmp_path / "out" / "samples_rollout-test.jsonl").read_text().splitlines()
    assert len(lines) == t.n_examples and {"model_nrmse", "persistence_nrmse"} <= set(json.loads(lines[0]))
    with np.load(tmp_path / "out" / "examples_rollout-test.npz") as z:
        assert {"target", "context", "model", "persistence", "linear"} <= set(z.files)
