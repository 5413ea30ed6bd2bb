"""Field models (arrays in, arrays out) in the forecast families, with fake predictors whose exact answer is
known: linear extrapolation must reproduce the ``linear`` baseline and repetition the ``persistence`` one,
batched over all windows (one ``predict_frames`` call per rollout step), sharded like the token path."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from sfm.config import from_dict, merge
from sfm.errors import DataError
from sfm.harness import runner
from sfm.harness.baselines import RolloutInfo, linear, persistence
from sfm.harness.forecast_set import coefficient_matrix
from sfm.harness.rollout import array_rollout, is_field_predictor
from sfm.harness.tasks import EvalTask

ROOT = Path(__file__).resolve().parents[2]
TASK = {
    "task": "array-test",
    "version": 1,
    "family": "forecast",
    "data": {"simulator": "burgers", "params": {"nu": [0.04, 0.1], "nx": 64, "nt": 11, "t_end": 0.5},
             "num_samples": 30, "seed": 0, "split": "test"},
    "format": {"context_frames": 2, "horizon": 1, "space_stride": 2},
    "rollout_steps": 4,
    "windows": {"t1": [0, 1], "t2-4": [1, 4]},
    "windows_per_trajectory": 2,
    "metrics": ["nrmse", "rmse"],
    "primary_metric": "nrmse",
    "baselines": ["persistence", "linear"],
    "bootstrap": 50,
}  # fmt: skip


class Linear:
    """Linear extrapolation ``last + j (last - previous)`` for ``j = 1..h``; records every call."""

    kind = "operator"

    def __init__(self, context_frames: int = 2, horizon: int = 1) -> None:
        self.context_frames, self.horizon = context_frames, horizon
        self.calls: list[tuple[tuple[int, ...], np.ndarray]] = []

    def predict_frames(self, contexts: np.ndarray, coefficients: np.ndarray, batch_size: int) -> np.ndarray:
        self.calls.append((contexts.shape, np.array(coefficients)))
        last, prev = contexts[:, -1:], contexts[:, -2:-1]
        j = np.arange(1, self.horizon + 1).reshape((1, -1) + (1,) * (contexts.ndim - 2))
        return last + j * (last - prev)


class Persistence(Linear):
    """Repeats the last frame, returned as ``dtype`` (the protocol's float32, or the input's own)."""

    kind = "continuous"

    def __init__(self, horizon: int = 1, dtype: type | None = None) -> None:
        super().__init__(horizon=horizon)
        self.dtype = dtype

    def predict_frames(self, contexts: np.ndarray, coefficients: np.ndarray, batch_size: int) -> np.ndarray:
        self.calls.append((contexts.shape, np.array(coefficients)))
        out = np.repeat(contexts[:, -1:], self.horizon, axis=1)
        return out if self.dtype is None else out.astype(self.dtype)


def _integer_contexts(n: int = 5, k: int = 3) -> np.ndarray:
    """Integer-valued frames: every extrapolation is exact in floating point, so equality can be exact."""
    return np.random.default_rng(0).integers(-50, 50, size=(n, k, 2, 16)).astype(np.float64)


def _info() -> RolloutInfo:
    return RolloutInfo(meta=None, dt=0.1)  # the linear and persistence baselines read nothing else


def test_coefficient_matrix_orders_names_and_refuses_mixed_windows():
    names, arr = coefficient_matrix([{"nu": 0.1, "a": 2.0}, {"a": 3.0, "nu": 0.2}])
    assert names == ["a", "nu"]
    np.testing.assert_array_equal(arr, [[2.0, 0.1], [3.0, 0.2]])
    assert coefficient_matrix([{}, {}])[1].shape == (2, 0)
    with pytest.raises(DataError, match=r"window 1 states coefficients \['D'\], window 0 states \['nu'\]"):
        coefficient_matrix([{"nu": 0.1}, {"D": 0.1}])


@pytest.mark.parametrize(("horizon", "steps"), [(1, 5), (2, 3)])
def test_linear_predictor_rolls_out_exactly_like_the_linear_baseline(horizon, steps):
    contexts, coef = _integer_contexts(), np.arange(5.0).reshape(5, 1)
    model = Linear(horizon=horizon)
    r = array_rollout(model, contexts, coef, steps, batch_size=2)
    np.testing.assert_array_equal(r.frames, linear(contexts, steps * horizon, _info()))
    assert r.valid.shape == (5, steps * horizon, 2) and r.valid.all() and r.validity == 1.0
    # batched over every window: one call per step, each with all 5 windows' last 2 frames
    assert [shape for shape, _ in model.calls] == [(5, 2, 2, 16)] * steps
    assert all(np.array_equal(c, coef) for _, c in model.calls)


def test_persistence_predictor_equals_the_persistence_baseline():
    contexts = _integer_contexts() + 0.25  # exact in float32 too
    r = array_rollout(Persistence(horizon=2, dtype=np.float32), contexts, np.zeros((5, 0)), 3, batch_size=8)
    np.testing.assert_array_equal(r.frames, persistence(contexts, 6, _info()))
    assert r.frames.dtype == np.float64


def test_bad_predictor_output_and_too_few_frames_are_errors():
    class Wrong(Linear):
        def predict_frames(self, contexts, coefficients, batch_size):
            return contexts[:, -1:, :1]  # one field of two

    with pytest.raises(
        DataError, match=r"predict_frames returned shape \(5, 1, 1, 16\), expected \(5, 1, 2, 16\)"
    ):
        array_rollout(Wrong(), _integer_contexts(), np.zeros((5, 0)), 1, batch_size=1)
    with pytest.raises(Exception, match="takes 4 context frames; the examples have 3"):
        array_rollout(Linear(context_frames=4), _integer_contexts(), np.zeros((5, 0)), 1, batch_size=1)
    assert is_field_predictor(Linear()) and not is_field_predictor(SimpleNamespace(sci=None))


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    path = tmp_path_factory.mktemp("home")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SFM_HOME", str(path))
        yield path


def _run(model, **changes):
    task = from_dict(EvalTask, merge(TASK, changes))
    return runner.run_task(task, model, limit=None, batch_size=4, seed=0, state=None)


def test_forecast_family_scores_a_field_model_like_the_baseline_it_imitates(home):
    model = Linear()
    result, rows, ex = _run(model)
    lin, pers = result.baselines["linear"], result.baselines["persistence"]
    assert result.validity == 1.0 and result.validity_note == "arrays, no decoding"
    for m in ("nrmse", "rmse"):
        assert result.model.metrics[m].value == pytest.approx(lin.metrics[m].value, rel=1e-9)
        assert result.model.windows["t2-4"][m].value == pytest.approx(lin.windows["t2-4"][m].value, rel=1e-9)
    assert result.model.metrics["nrmse"].value != pytest.approx(pers.metrics["nrmse"].value, rel=1e-3)
    assert result.model.curves["nrmse"] == pytest.approx(lin.curves["nrmse"], rel=1e-9)
    np.testing.assert_allclose(ex["model"], ex["linear"], rtol=1e-12, atol=1e-12)
    assert all(r["model_valid"] == 1.0 for r in rows)
    # one batched call per rollout step, every window at once, with its own trajectory's coefficient
    n = result.n_examples
    assert [shape[0] for shape, _ in model.calls] == [n] * 4
    fieldset = runner.load_eval_data(from_dict(EvalTask, TASK).data)
    nu_test = fieldset.column("test", "nu")
    nu_seen = model.calls[0][1][:, 0]
    assert np.allclose(nu_seen, np.repeat(nu_test, 2)[:n])  # 2 windows per trajectory, in row order


def test_robustness_family_runs_field_models_at_every_noise_level(home):
    result, rows, _ = _run(Persistence(), family="robustness", noise_levels=[0.0, 0.05])
    curve = result.extra["noise_curve"]
    assert curve["levels"] == [0.0, 0.05] and curve["model"] == curve["persistence"]  # the same frames
    assert result.model.metrics["nrmse"].value == result.baselines["persistence"].metrics["nrmse"].value
    assert sorted({r["noise"] for r in rows}) == [0.0, 0.05]


@pytest.mark.distributed
@pytest.mark.slow
def test_two_processes_shard_the_windows_and_gather_the_same_scores(home, tmp_path):
    """Under accelerate launch each process predicts its share of the windows; every score is the
    single-process one."""
    runner.load_eval_data(from_dict(EvalTask, TASK).data)  # generate once; the processes read the cache
    script = tmp_path / "shard.py"
    script.write_text(_SCRIPT)
    accelerate = shutil.which("accelerate", path=str(Path(sys.executable).parent)) or "accelerate"
    env = {**os.environ, "SFM_HOME": str(home), "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    cmd = [accelerate, "launch", "--config_file", str(ROOT / "launch/accelerate/cpu_ddp.yaml"), str(script)]
    done = subprocess.run([*cmd, json.dumps(TASK), str(tmp_path)], env=env, capture_output=True, text=True,
                          timeout=600, cwd=ROOT)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    one = _run(Linear())[0]
    two = json.loads((tmp_path / "result.json").read_text())
    assert two["n"] == one.n_examples
    assert two["nrmse"] == pytest.approx(one.model.metrics["nrmse"].value, rel=1e-12)
    assert two["curve"] == pytest.approx(one.model.curves["nrmse"], rel=1e-12)
    calls = [json.loads((tmp_path / f"calls{r}.json").read_text()) for r in (0, 1)]
    assert sum(c[0] for c in calls) == one.n_examples and all(0 < c[0] < one.n_examples for c in calls)


_SCRIPT = """
import json, sys
from pathlib import Path

import numpy as np

from sfm.config import from_dict
from sfm.harness import runner
from sfm.harness.tasks import EvalTask


class Linear:
    kind, context_frames, horizon = "operator", 2, 1

    def __init__(self):
        self.sizes = []

    def predict_frames(self, contexts, coefficients, batch_size):
        self.sizes.append(int(contexts.shape[0]))
        last = contexts[:, -1:]
        return last + 1 * (last - contexts[:, -2:-1])  # the test's Linear, operation for operation


state = runner.eval_state()
assert state.num_processes == 2, state
out = Path(sys.argv[2])
model = Linear()
result, _, _ = runner.run_task(from_dict(EvalTask, json.loads(sys.argv[1])), model, limit=None, batch_size=4,
                               seed=0, state=state)
(out / f"calls{state.process_index}.json").write_text(json.dumps(model.sizes))
if state.is_main_process:
    m = result.model
    (out / "result.json").write_text(json.dumps({"n": result.n_examples, "nrmse": m.metrics["nrmse"].value,
                                                 "curve": m.curves["nrmse"]}))
"""
