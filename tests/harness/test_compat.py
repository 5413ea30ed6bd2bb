"""An eval task that does not fit the trained model is refused in one line before anything is scored: the
task format and its options against the run record (a plain dict or a ``RunRecord``), the data's fields
against the encoding, and a field model's frames, channels, grid and coefficients against its spec."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

import sfm.harness.generate as gen
from sfm.config import from_dict, merge
from sfm.errors import ConfigError
from sfm.harness import runner
from sfm.harness.compat import check_data, check_format, model_kind, record_section
from sfm.harness.tasks import EvalTask
from sfm.models.run import RunRecord
from sfm.tasks import get_task_format

TASK = {
    "task": "compat-test",
    "version": 1,
    "family": "forecast",
    "data": {"simulator": "burgers", "params": {"nu": [0.04, 0.1], "nx": 64, "nt": 11, "t_end": 0.5},
             "num_samples": 30, "seed": 0, "split": "test"},
    "format": {"context_frames": 2, "horizon": 1, "space_stride": 2},
    "windows_per_trajectory": 2,
    "baselines": ["persistence"],
    "bootstrap": 0,
}  # fmt: skip
TRAINED = {"name": "forecast", "options": {"context_frames": 2, "horizon": 1, "space_stride": 2}}


def _task(**changes) -> EvalTask:
    return from_dict(EvalTask, merge(TASK, changes))


def _records(task: dict, **sections):
    """The same record as sfm_run.json's dict and as the typed RunRecord."""
    raw = {"recipe": {}, "task": task, **sections}
    return [raw, RunRecord.from_dict(raw)]


@pytest.fixture
def no_generation(monkeypatch):
    def fail(*args, **kwargs):
        raise AssertionError("a mismatched task must be refused before the model generates anything")

    monkeypatch.setattr(gen, "generate", fail)


class FieldModel:
    """A field model as the harness sees it: predict_frames and a spec (grid, channels, coefficients)."""

    def __init__(
        self, kind="operator", k=2, h=1, space=(32,), fields=("u",), coefficients=("nu",), record=None
    ):
        self.kind, self.context_frames, self.horizon, self.record = kind, k, h, record
        self.spec = SimpleNamespace(
            space=list(space),
            n_fields=len(fields),
            field_names=list(fields),
            coefficient_names=list(coefficients),
        )

    def predict_frames(self, contexts, coefficients, batch_size):
        return np.repeat(contexts[:, -1:], self.horizon, axis=1)


@pytest.mark.parametrize("record", _records(TRAINED, kind="token"), ids=["dict", "RunRecord"])
def test_token_model_trained_on_two_context_frames_refuses_three(record, no_generation):
    model = SimpleNamespace(sci=None, record=record)
    with pytest.raises(ConfigError, match=r"compat-test: the forecast format differs from the trained model's: "
                                          r"context_frames=3 here, 2 in training$"):  # fmt: skip
        runner.run_task(
            _task(format={"context_frames": 3}), model, limit=None, batch_size=1, seed=0, state=None
        )


@pytest.mark.parametrize(
    "record", _records({"name": "pde_identification", "options": {}}), ids=["dict", "RunRecord"]
)
def test_token_model_of_another_task_format_is_refused(record, no_generation):
    with pytest.raises(
        ConfigError, match="trained on the 'pde_identification' task format; this task uses 'forecast'"
    ):
        runner.run_task(_task(), SimpleNamespace(sci=None, record=record), limit=None, batch_size=1, seed=0,
                        state=None)  # fmt: skip


def test_what_a_token_model_may_be_asked_differently():
    fmt = get_task_format("forecast", context_frames=2, horizon=1, space_stride=4, time_stride=2)
    for record in _records(TRAINED):  # strides and window sampling differ: a fair transfer question
        check_format(_task(windows_per_trajectory=5), SimpleNamespace(sci=None, record=record), fmt)
    check_format(
        _task(), SimpleNamespace(sci=None, record={}), get_task_format("forecast", horizon=4)
    )  # no record
    with pytest.raises(
        ConfigError, match="horizon=2 here, 1 in training; include_coefficients=False here, True"
    ):
        check_format(
            _task(),
            SimpleNamespace(sci=None, record=_records(TRAINED)[1]),
            get_task_format("forecast", horizon=2, include_coefficients=False),
        )


@pytest.mark.parametrize("section", ["data", "encoding"])
def test_token_model_refuses_data_with_other_fields(section):
    for record in _records(TRAINED, **{section: {"fields": ["u", "v"]}}):
        model = SimpleNamespace(sci=None, record=record)
        check_data(_task(), model, ["u", "v"])
        with pytest.raises(ConfigError, match=r"trained on fields \['u', 'v'\]; the data has \['u'\]"):
            check_data(_task(), model, ["u"])


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    path = tmp_path_factory.mktemp("home")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SFM_HOME", str(path))
        yield path


def _run(model, **changes):
    return runner.run_task(_task(**changes), model, limit=None, batch_size=4, seed=0, state=None)


def test_a_field_model_that_fits_is_scored(home):
    result, _, _ = _run(FieldModel())  # 64 points, space_stride 2: the 32-point grid of its spec
    assert result.model.metrics["nrmse"].value == result.baselines["persistence"].metrics["nrmse"].value


@pytest.mark.parametrize(
    ("model", "changes", "message"),
    [
        (FieldModel(space=(64,)), {}, "trained on a 64 grid; this task shows it 32"),
        (FieldModel(), {"format": {"space_stride": 4}}, "trained on a 32 grid; this task shows it 16"),
        (FieldModel(fields=("u", "v")), {}, r"trained on fields \['u', 'v'\]; the data has \['u'\]"),
        (FieldModel(coefficients=("D",)), {}, r"takes coefficients \['D'\]; the data states \['nu'\]"),
        (FieldModel(k=3), {}, "context_frames is 2 here; the operator model takes 3"),
        (FieldModel(kind="continuous", h=2), {}, "horizon is 1 here; the continuous model takes 2"),
        (
            FieldModel(
                record=_records({"name": "forecast", "options": {"space_stride": 2, "time_stride": 2}})[1]
            ),
            {},
            "time_stride=1 here, 2 in training",  # a field model takes no time step: the stride must match
        ),
    ],
)
def test_field_models_refuse_tasks_that_do_not_fit(home, model, changes, message):
    with pytest.raises(ConfigError, match=message):
        _run(model, **changes)


def test_a_field_model_answers_forecast_families_only():
    task = from_dict(
        EvalTask,
        {"task": "sr", "version": 1, "family": "symbolic_regression", "task_format": "symbolic_regression",
         "metrics": ["r2"], "primary_metric": "r2", "baselines": []},
    )  # fmt: skip
    with pytest.raises(
        ConfigError,
        match="sr: operator models predict fields; a symbolic_regression task needs a token model",
    ):
        runner.run_task(task, FieldModel(), limit=None, batch_size=1, seed=0, state=None)


def test_record_accessor_and_kind():
    raw, typed = _records(TRAINED, kind="token")
    assert record_section(raw, "task") == record_section(typed, "task") == TRAINED
    assert record_section(None, "task") is None and record_section({}, "data") is None
    assert model_kind(None) == "baseline" and model_kind(FieldModel(kind="continuous")) == "continuous"
    assert model_kind(SimpleNamespace(record=typed)) == model_kind(SimpleNamespace(record={})) == "token"
