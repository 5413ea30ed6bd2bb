"""The Well metrics: hand goldens, the unbiased-variance choice, and an independent re-derivation of The Well's
per-(sample, time, field) formulas and its batch-then-time-window averaging, written in its own layout."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sfm.errors import SfmError
from sfm.metrics import aggregate, compute, get_metric

EPS = 1e-7


# The Well's layout is (batch, time, *space, field); metrics reduce the spatial axes -> (batch, time, field),
# the validation loop averages over the batch, then over a time window (and over fields for "full").
def _well_reference(x, y, n_spatial_dims, kind, window=slice(None)):
    dims = tuple(range(-n_spatial_dims - 1, -1))
    mse = np.mean((x - y) ** 2, axis=dims)
    per = {
        "mse": mse,
        "rmse": np.sqrt(mse),
        "well_nrmse": np.sqrt(mse / (np.mean(y**2, axis=dims) + EPS)),
        "vrmse": np.sqrt(mse / (np.std(y, axis=dims, ddof=1) ** 2 + EPS)),  # torch.std: unbiased by default
    }[kind]
    over_batch = per.mean(axis=0)  # (time, field)
    return over_batch[window].mean(axis=0)  # one number per field


@pytest.mark.parametrize("space", [(33,), (12, 10)], ids=["1d", "2d"])
@pytest.mark.parametrize("kind", ["mse", "rmse", "well_nrmse", "vrmse"])
def test_matches_the_well_rederivation_per_field_and_window(space, kind):
    rng = np.random.default_rng(3)
    target = rng.normal(size=(4, 31, *space, 2)) * np.array([1.0, 5.0]) + np.array([0.0, 3.0])
    pred = target + rng.normal(scale=0.5, size=target.shape)
    for window in (slice(None), slice(6, 12), slice(13, 30)):  # The Well's rollout windows
        ref = _well_reference(pred, target, len(space), kind, window)
        for f in range(2):
            values = get_metric(kind)(pred[..., f], target[..., f])
            assert aggregate(kind, values[:, window]) == pytest.approx(ref[f], rel=1e-12)


def test_hand_goldens():
    target = np.array([[[1.0, 2.0, 3.0, 4.0]]])
    pred = target + 1.0
    unbiased_var = ((1 - 2.5) ** 2 + (2 - 2.5) ** 2 + (3 - 2.5) ** 2 + (4 - 2.5) ** 2) / (4 - 1)  # 5/3
    assert compute("mse", pred, target) == pytest.approx(1.0)
    assert compute("vrmse", pred, target) == pytest.approx(math.sqrt(1.0 / (unbiased_var + EPS)))
    mean_sq = (1 + 4 + 9 + 16) / 4
    assert compute("well_nrmse", pred, target) == pytest.approx(math.sqrt(1.0 / (mean_sq + EPS)))
    assert compute("well_nrmse", pred, target, eps=0.5) == pytest.approx(math.sqrt(1.0 / (mean_sq + 0.5)))


def test_predicting_the_spatial_mean_scores_sqrt_n_minus_1_over_n():
    rng = np.random.default_rng(4)
    n = 10
    target = rng.normal(size=(6, 3, n))
    pred = np.broadcast_to(target.mean(axis=-1, keepdims=True), target.shape).copy()
    values = get_metric("vrmse")(pred, target)
    np.testing.assert_allclose(values, math.sqrt((n - 1) / n), rtol=1e-6)  # eps=1e-7 against var ~ 1


def test_constant_target_is_guarded_by_eps():
    target = np.full((1, 1, 4), 2.0)
    assert compute("vrmse", target + 1.0, target) == pytest.approx(math.sqrt(1.0 / EPS))
    assert compute("well_nrmse", target * 0.0, target * 0.0) == 0.0  # zero target: eps keeps it finite


def test_shapes_nan_and_errors():
    rng = np.random.default_rng(5)
    target = rng.normal(size=(3, 4, 8, 8))
    pred = target.copy()
    pred[2, 1, 3, 3] = np.nan
    for name in ("mse", "well_nrmse", "vrmse"):
        values = get_metric(name)(pred, target)
        assert values.shape == (3, 4)
        assert np.isnan(values[2, 1]) and np.isfinite(values[:2]).all()
        assert math.isnan(compute(name, pred, target))
    with pytest.raises(SfmError, match="vrmse: the unbiased spatial variance needs at least 2 grid points"):
        compute("vrmse", np.ones((2, 3, 1)), np.ones((2, 3, 1)))
    for bad in (-1.0, float("nan"), "small", True):
        with pytest.raises(SfmError, match="option eps must be a non-negative number"):
            compute("vrmse", target, target, eps=bad)


def test_rmse_is_the_wells_rmse():
    rng = np.random.default_rng(6)
    target = rng.normal(size=(3, 5, 16, 1))
    pred = target + rng.normal(size=target.shape)
    ref = _well_reference(pred, target, 1, "rmse")[0]
    assert compute("rmse", pred[..., 0], target[..., 0]) == pytest.approx(ref, rel=1e-12)
