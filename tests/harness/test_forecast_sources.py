"""Forecast tasks over several PDE families (``options.sources``: scored per family and pooled), and metrics
over The Well's step ranges (``windows``) checked against a hand computation."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from sfm.config import from_dict
from sfm.errors import ConfigError
from sfm.harness import forecast as fc
from sfm.harness.context import EvalContext
from sfm.harness.scoring import score_fields
from sfm.harness.tasks import EvalTask

GRID = {"nx": 64, "nt": 9, "t_end": 0.4}
TASK = {
    "task": "mixed-test",
    "version": 1,
    "family": "forecast",
    "data": {"simulator": "advection", "params": {"beta": [0.1, 1.0], **GRID}, "num_samples": 20, "seed": 0},
    "options": {
        "sources": [
            {"simulator": "heat", "params": {"D": [1e-3, 1e-2], **GRID}, "num_samples": 20, "seed": 1},
        ]
    },
    "format": {"context_frames": 2, "horizon": 1, "space_stride": 2},
    "rollout_steps": 2,
    "windows": {"t2": [1, 2]},
    "windows_per_trajectory": 2,
    "metrics": ["nrmse", "vrmse"],
    "primary_metric": "nrmse",
    "baselines": ["persistence", "linear", "coarse_solver"],
    "bootstrap": 0,
}


@pytest.fixture(scope="module")
def mixed(tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SFM_HOME", str(tmp_path_factory.mktemp("home")))
        task = from_dict(EvalTask, TASK)
        f = fc.predict(task, None, EvalContext(), [0.0])
        result, rows, _ = fc.score_forecasts(task, f, EvalContext())
        # Each source alone, as a one-source task: what the per-family scores must reproduce.
        alone = {}
        for name, data in [("advection", TASK["data"]), ("heat", TASK["options"]["sources"][0])]:
            single = from_dict(EvalTask, {**TASK, "options": {}, "data": data})
            alone[name] = fc.score_forecasts(
                single, fc.predict(single, None, EvalContext(), [0.0]), EvalContext()
            )
        yield SimpleNamespace(task=task, f=f, result=result, rows=rows, alone=alone)


def test_sources_are_pooled_in_order_and_scored_per_family(mixed):
    f, result = mixed.f, mixed.result
    n_adv, n_heat = (mixed.alone[k][0].n_examples for k in ("advection", "heat"))
    assert f.families == ["advection", "heat"] and result.n_examples == n_adv + n_heat
    assert list(f.source) == [0] * n_adv + [1] * n_heat
    fams = result.extra["families"]
    for name in ("advection", "heat"):
        single = mixed.alone[name][0]
        assert fams[name]["n_examples"] == single.n_examples
        for b in TASK["baselines"]:
            for m in TASK["metrics"]:
                assert fams[name]["baselines"][b]["metrics"][m]["value"] == pytest.approx(
                    single.baselines[b].metrics[m].value, rel=1e-12
                )
    # The pooled nRMSE is the example-weighted mean of the families' (nRMSE aggregates by the mean).
    for b in TASK["baselines"]:
        pooled = result.baselines[b].metrics["nrmse"].value
        parts = [(fams[k]["n_examples"], fams[k]["baselines"][b]["metrics"]["nrmse"]["value"]) for k in fams]
        assert pooled == pytest.approx(sum(n * v for n, v in parts) / sum(n for n, _ in parts), rel=1e-12)


def test_the_coarse_solver_restarts_each_familys_own_equation(mixed):
    # Heat and advection are solved exactly, so their coarse solver is near-perfect; it would be far off if one
    # family's frames were evolved with the other's equation.
    fams = mixed.result.extra["families"]
    for name in ("advection", "heat"):
        coarse = fams[name]["baselines"]["coarse_solver"]["metrics"]["nrmse"]["value"]
        assert coarse < 0.1 * fams[name]["baselines"]["persistence"]["metrics"]["nrmse"]["value"]


def test_sample_rows_name_their_source_and_family(mixed):
    assert {(r["source"], r["family"]) for r in mixed.rows} == {(0, "advection"), (1, "heat")}


def test_a_single_source_task_has_no_per_family_section(mixed):
    assert "families" not in mixed.alone["heat"][0].extra and "source" not in mixed.alone["heat"][1][0]


def test_sources_on_different_grids_or_with_unknown_keys_are_one_line_errors(tmp_path, monkeypatch):
    monkeypatch.setenv("SFM_HOME", str(tmp_path))
    other = {"simulator": "heat", "params": {"D": 1e-3, **GRID, "nx": 32}, "num_samples": 20, "seed": 1}
    task = from_dict(EvalTask, {**TASK, "options": {"sources": [other]}, "baselines": ["persistence"]})
    with pytest.raises(ConfigError, match=r"options.sources\[0\] \(heat\) gives frames of shape \(16,\)"):
        fc.predict(task, None, EvalContext(), [0.0])
    typo = from_dict(EvalTask, {**TASK, "options": {"sourcse": []}})
    with pytest.raises(ConfigError, match="did you mean 'sources'"):
        fc.eval_sources(typo)


def _hand_vrmse(pred: np.ndarray, target: np.ndarray) -> float:
    """The Well's VRMSE by loops: per sample, frame and field sqrt(mean (p - t)^2 / (unbiased var(t) + 1e-7)),
    then the mean over all of them."""
    vals = []
    for i in range(pred.shape[0]):
        for t in range(pred.shape[1]):
            for c in range(pred.shape[2]):
                p, y = pred[i, t, c].ravel(), target[i, t, c].ravel()
                var = sum((v - y.mean()) ** 2 for v in y) / (y.size - 1)
                vals.append(np.sqrt(np.mean((p - y) ** 2) / (var + 1e-7)))
    return float(np.mean(vals))


def test_vrmse_over_the_wells_step_ranges_equals_a_hand_computation():
    rng = np.random.default_rng(0)
    target = rng.standard_normal((3, 30, 2, 6, 5))
    # Errors that grow with the step, so each range has its own value.
    pred = target + 0.01 * np.arange(1, 31)[None, :, None, None, None] * rng.standard_normal(target.shape)
    windows = {"t6-12": [5, 12], "t13-30": [12, 30]}
    s = score_fields(pred, target, ["vrmse"], windows, n_boot=0)
    assert s.windows["t6-12"]["vrmse"].value == pytest.approx(
        _hand_vrmse(pred[:, 5:12], target[:, 5:12]), rel=1e-12
    )
    assert s.windows["t13-30"]["vrmse"].value == pytest.approx(
        _hand_vrmse(pred[:, 12:], target[:, 12:]), rel=1e-12
    )
    assert s.windows["t6-12"]["vrmse"].value < s.windows["t13-30"]["vrmse"].value
    # A shorter rollout clips the range to the frames it has; a range past the end is left out.
    short = score_fields(pred[:, :20], target[:, :20], ["vrmse"], {**windows, "t31-40": [30, 40]}, n_boot=0)
    assert short.windows["t13-30"]["vrmse"].value == pytest.approx(
        _hand_vrmse(pred[:, 12:20], target[:, 12:20]), rel=1e-12
    )
    assert "t31-40" not in short.windows


def test_the_shipped_well_style_task_scores_vrmse_over_steps_6_12_and_13_30():
    from sfm.harness.tasks import load_task

    task = load_task("rollout/gray-scott-well")
    assert task.primary_metric == "vrmse" and task.rollout_steps == 30
    assert task.windows["t6-12"] == [5, 12] and task.windows["t13-30"] == [12, 30]
    mixed = load_task("forecast/advection-heat-burgers")
    assert [d.simulator for d in fc.eval_sources(mixed)] == ["advection", "heat", "burgers"]
