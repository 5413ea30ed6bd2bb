"""The metric contract: registration metadata, aggregation, input checks, option checks, bootstrap."""

from __future__ import annotations

import math
import pkgutil
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import sfm.metrics
import sfm.metrics.core as core
from sfm.errors import ConfigError, SfmError, UnknownNameError
from sfm.metrics import AGGREGATIONS, aggregate, bootstrap_ci, compute, get_metric
from sfm.registry import METRICS

FIELD = [n for n in METRICS.names() if METRICS.meta(n)["kind"] == "field"]


def test_every_module_in_the_package_is_imported_and_field_metrics_are_registered():
    for info in pkgutil.iter_modules(sfm.metrics.__path__):
        if not info.name.startswith("_"):
            assert f"sfm.metrics.{info.name}" in sys.modules, info.name  # symbolic.py too, when present
    expected = {"rmse", "nrmse", "crmse", "brmse", "max_error", "frmse_low", "frmse_mid", "frmse_high"}
    expected |= {"mse", "well_nrmse", "vrmse", "rel_l1", "rel_l2"}
    assert expected <= set(FIELD)


@pytest.mark.parametrize("name", FIELD)
def test_registration_metadata(name):
    meta = METRICS.meta(name)
    assert meta["higher_is_better"] is False  # every field metric here is an error
    assert meta["aggregation"] in AGGREGATIONS
    assert meta["source"] in {"pdebench", "the_well", "poseidon", "dpot"}
    assert meta["description"] and "\n" not in meta["description"]
    assert get_metric(name).__doc__


def test_aggregation_names_by_hand():
    expected = {"rmse": "mean", "max_error": "max", "crmse": "rms", "frmse_mid": "rms", "rel_l1": "median"}
    assert {n: METRICS.meta(n)["aggregation"] for n in expected} == expected
    values = np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 9.0]])  # 3 samples x 2 times
    assert aggregate("rmse", values) == pytest.approx((1 + 3 + 5 + 2 + 4 + 9) / 6)
    assert aggregate("max_error", values) == pytest.approx((5 + 9) / 2)
    assert aggregate("crmse", values) == pytest.approx(
        (math.sqrt((1 + 9 + 25) / 3) + math.sqrt((4 + 16 + 81) / 3)) / 2
    )
    assert aggregate("rel_l1", values[:, 0]) == 3.0
    assert aggregate("rel_l1", values) == pytest.approx((3 + 4) / 2)
    assert aggregate("rmse", values[:, 1:]) == pytest.approx((2 + 4 + 9) / 3)  # a time window is a slice


def test_compute_is_aggregate_of_per_sample_values():
    rng = np.random.default_rng(0)
    target = rng.normal(size=(5, 3, 32))
    pred = target + rng.normal(size=target.shape)
    for name in FIELD:
        assert compute(name, pred, target) == aggregate(name, get_metric(name)(pred, target))


def test_float32_inputs_give_the_float64_numbers():
    rng = np.random.default_rng(1)
    target = rng.normal(size=(3, 2, 32, 32)).astype(np.float32)
    pred = (target + rng.normal(size=target.shape)).astype(np.float32)
    for name in FIELD:
        expected = compute(name, pred.astype(np.float64), target.astype(np.float64))
        assert compute(name, pred, target) == pytest.approx(expected, rel=1e-12), name


def test_unknown_names_and_options_suggest_the_closest():
    with pytest.raises(UnknownNameError, match=r"unknown metric 'nrmes' \(did you mean 'nrmse'"):
        compute("nrmes", np.ones((1, 1, 4)), np.ones((1, 1, 4)))
    with pytest.raises(UnknownNameError, match="did you mean 'vrmse'"):
        aggregate("vrmsee", [1.0])
    with pytest.raises(
        ConfigError, match=r"metric 'frmse_low' has no option 'lenghts' \(did you mean 'lengths'"
    ):
        compute("frmse_low", np.ones((1, 1, 32)), np.ones((1, 1, 32)), lenghts=[1.0])
    with pytest.raises(ConfigError, match=r"metric 'rmse' has no option 'eps'.*options: none"):
        compute("rmse", np.ones((1, 1, 4)), np.ones((1, 1, 4)), eps=1.0)


GOOD = np.ones((2, 3, 4))


@pytest.mark.parametrize(
    ("pred", "target", "message"),
    [
        (
            np.ones((2, 3, 4)),
            np.ones((2, 3, 5)),
            r"pred shape \(2, 3, 4\) does not match target shape \(2, 3, 5\)",
        ),
        (np.ones((2, 3, 4), dtype=int), GOOD, "pred must be a floating-point array, got dtype int64"),
        (GOOD, np.ones((2, 3, 4), dtype=bool), "target must be a floating-point array, got dtype bool"),
        (GOOD + 0j, GOOD, "pred must be a floating-point array, got dtype complex128"),
        (np.ones((2, 3)), np.ones((2, 3)), r"with 1-3 spatial axes, got shape \(2, 3\)"),
        (np.ones((1, 1, 2, 2, 2, 2)), np.ones((1, 1, 2, 2, 2, 2)), "with 1-3 spatial axes"),
        (np.ones((0, 3, 4)), np.ones((0, 3, 4)), "must not have an empty axis"),
        (
            GOOD,
            np.where(np.arange(24).reshape(2, 3, 4) == 7, np.nan, 1.0),
            r"1 non-finite value\(s\) .*\(0, 1, 3\)",
        ),
        (GOOD, np.full((2, 3, 4), np.inf), "24 non-finite value"),
    ],
)
def test_bad_inputs_raise_one_line_naming_the_metric(pred, target, message):
    for name in ("nrmse", "vrmse", "rel_l2", "frmse_low"):
        with pytest.raises(SfmError, match=message) as info:
            get_metric(name)(pred, target)
        assert str(info.value).startswith(f"{name}: ") and "\n" not in str(info.value)


def test_nan_and_inf_in_pred_are_allowed_and_propagate():
    pred = GOOD.copy()
    pred[0, 0, 0] = np.nan
    pred[1, 2, 1] = np.inf
    values = get_metric("rmse")(pred, GOOD)
    assert np.isnan(values[0, 0]) and values[1, 2] == np.inf
    assert math.isnan(compute("rmse", pred, GOOD))


@settings(max_examples=30, deadline=None)
@given(
    arrays(np.float64, (3, 2, 32), elements=st.floats(-1e3, 1e3)),
    arrays(np.float64, (3, 2, 32), elements=st.floats(-1e3, 1e3)),
    st.floats(0.01, 100),
)
def test_properties_on_random_fields(pred, target, scale):
    target = target + np.sign(target) + (target == 0)  # keep every frame away from zero (nrmse has no eps)
    for name in FIELD:
        values = get_metric(name)(pred, target)
        assert (values >= 0).all(), name
        assert np.allclose(get_metric(name)(target, target), 0.0), name
    for name in ("rmse", "crmse", "max_error", "brmse", "frmse_low", "frmse_high"):  # absolutely homogeneous
        assert compute(name, scale * pred, scale * target) == pytest.approx(
            scale * compute(name, pred, target)
        )
    for name in ("nrmse", "rel_l1", "rel_l2"):  # scale free
        assert compute(name, scale * pred, scale * target) == pytest.approx(compute(name, pred, target))


# --------------------------------------------------------------------------------------------------------
# Bootstrap
# --------------------------------------------------------------------------------------------------------
def _reference_bootstrap(name, values, n_resamples, confidence, seed):
    """The definition, one resample at a time: resample samples with replacement, re-aggregate, percentiles."""
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(values), size=(n_resamples, len(values)))
    stats = [aggregate(name, values[i]) for i in idx]
    return tuple(np.percentile(stats, [50 * (1 - confidence), 50 * (1 + confidence)]))


@pytest.mark.parametrize("name", ["rmse", "max_error", "crmse", "rel_l1", "frmse_low"])
def test_bootstrap_matches_its_definition_and_contains_the_estimate(name, monkeypatch):
    rng = np.random.default_rng(2)
    target = rng.normal(size=(40, 3, 32))
    pred = target + rng.normal(scale=rng.uniform(0.1, 1.0, size=(40, 1, 1)), size=target.shape)
    values = get_metric(name)(pred, target)
    expected = _reference_bootstrap(name, values, 300, 0.9, seed=5)
    low, high = bootstrap_ci(name, values, n_resamples=300, confidence=0.9, seed=5)
    assert (low, high) == pytest.approx(expected, rel=1e-12)
    monkeypatch.setattr(core, "_CHUNK_ELEMENTS", values[0].size * 7)  # chunked draws: the same interval
    assert bootstrap_ci(name, values, n_resamples=300, confidence=0.9, seed=5) == pytest.approx((low, high))
    assert low <= compute(name, pred, target) <= high
    assert bootstrap_ci(name, values, n_resamples=300, seed=6) != bootstrap_ci(name, values, n_resamples=300)


def test_bootstrap_narrows_with_more_samples():
    rng = np.random.default_rng(3)
    widths = {}
    for n in (25, 2500):
        values = rng.exponential(size=(n, 4))
        low, high = bootstrap_ci("rmse", values, n_resamples=500)
        assert low <= aggregate("rmse", values) <= high
        widths[n] = high - low
    assert widths[2500] < widths[25] / 5  # ~ 1/sqrt(n): a factor 10 expected


def test_bootstrap_mean_interval_covers_the_true_mean_about_95_percent():
    rng = np.random.default_rng(4)
    covered = 0
    trials = 200
    for trial in range(trials):
        values = rng.normal(loc=2.0, size=60)
        low, high = bootstrap_ci("rel_l2", values, n_resamples=400, seed=trial)
        covered += low <= 2.0 <= high
    assert 0.89 <= covered / trials <= 0.99  # binomial sd ~0.015 around 0.95 (percentile CIs run a bit short)


def test_bootstrap_edge_cases_and_errors():
    assert bootstrap_ci("rmse", np.array([[0.3, 0.5]])) == pytest.approx((0.4, 0.4))  # one sample
    assert all(math.isnan(v) for v in bootstrap_ci("rmse", np.array([0.1, np.nan, 0.2])))
    for kwargs, message in [
        ({"n_resamples": 0}, "n_resamples must be a positive integer"),
        ({"n_resamples": 10.5}, "n_resamples must be a positive integer"),
        ({"confidence": 1.0}, "confidence must lie strictly between 0 and 1"),
        ({"confidence": 0.0}, "confidence must lie strictly between 0 and 1"),
    ]:
        with pytest.raises(SfmError, match=message):
            bootstrap_ci("rmse", np.ones(5), **kwargs)
    with pytest.raises(SfmError, match=r"rmse: per-sample values must be a non-empty array"):
        bootstrap_ci("rmse", np.ones(0))
    with pytest.raises(SfmError, match="non-empty array"):
        aggregate("rmse", 3.0)


def test_field_metric_rejects_an_unknown_aggregation():
    with pytest.raises(ValueError, match="unknown aggregation 'mode'"):
        sfm.metrics.field_metric(
            "_x", higher_is_better=False, aggregation="mode", description="x", source="x"
        )
