"""Relative L1/L2 errors: hand goldens, Poseidon's and FNO/DPOT's formulas re-derived, zero-norm guard."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sfm.metrics import compute, get_metric

# Three samples, one time step, two points.
TARGET = np.array([[[2.0, 2.0]], [[1.0, -1.0]], [[4.0, 0.0]]])
PRED = np.array([[[1.0, 2.0]], [[1.0, 1.0]], [[4.0, 1.0]]])


def test_hand_goldens():
    l1 = [1 / (2 + 2), 2 / (1 + 1), 1 / (4 + 0)]
    l2 = [math.sqrt(1 / (4 + 4)), math.sqrt(4 / (1 + 1)), math.sqrt(1 / (16 + 0))]
    np.testing.assert_allclose(get_metric("rel_l1")(PRED, TARGET), l1)
    np.testing.assert_allclose(get_metric("rel_l2")(PRED, TARGET), l2)
    assert compute("rel_l1", PRED, TARGET) == pytest.approx(0.25)  # median of 0.25, 1, 0.25 (Poseidon)
    assert compute("rel_l2", PRED, TARGET) == pytest.approx(sum(l2) / 3)  # mean (FNO, DPOT)


def test_norm_runs_over_time_and_space():
    rng = np.random.default_rng(0)
    target = rng.normal(size=(2, 3, 4, 5))
    pred = target + rng.normal(size=target.shape)
    for i in range(2):
        e, y = (pred[i] - target[i]).ravel(), target[i].ravel()
        assert get_metric("rel_l2")(pred, target)[i] == pytest.approx(np.linalg.norm(e) / np.linalg.norm(y))
        assert get_metric("rel_l1")(pred, target)[i] == pytest.approx(np.abs(e).sum() / np.abs(y).sum())


def _poseidon_relative_lp(preds, targets, p):
    # Poseidon scores (samples, channels, H, W): sum over channels and space, zero normalizer -> 1e-10.
    n, c = preds.shape[:2]
    err = np.sum(np.abs(preds - targets).reshape(n, c, -1) ** p, axis=-1).sum(axis=-1)
    norm = np.sum(np.abs(targets).reshape(n, c, -1) ** p, axis=-1).sum(axis=-1)
    norm = np.where(norm == 0, 1e-10, norm)
    return (err / norm) ** (1 / p)


def test_matches_poseidon_median_relative_l1_for_one_channel():
    rng = np.random.default_rng(1)
    targets = rng.normal(size=(9, 1, 8, 8))
    preds = targets + rng.normal(scale=0.2, size=targets.shape)
    targets[4] = 0.0  # exercises the zero-normalizer guard
    ref = np.median(_poseidon_relative_lp(preds, targets, 1))
    # Poseidon's one channel at one time is sfm's field with a time axis of length 1
    assert compute("rel_l1", preds, targets) == pytest.approx(ref, rel=1e-12)
    assert get_metric("rel_l1")(preds, targets)[4] == pytest.approx(np.abs(preds[4]).sum() / 1e-10)


def test_matches_fno_lploss_mean_relative_l2():
    rng = np.random.default_rng(2)
    y = rng.normal(size=(6, 10, 32))
    x = y + rng.normal(scale=0.1, size=y.shape)
    # FNO's LpLoss(p=2, size_average=True): per-sample norms of the flattened arrays, mean over samples
    ref = np.mean(np.linalg.norm((x - y).reshape(6, -1), axis=1) / np.linalg.norm(y.reshape(6, -1), axis=1))
    assert compute("rel_l2", x, y) == pytest.approx(ref, rel=1e-12)


def test_scale_invariance_and_nan():
    rng = np.random.default_rng(3)
    target = rng.normal(size=(4, 2, 16))
    pred = target + rng.normal(size=target.shape)
    for name in ("rel_l1", "rel_l2"):
        assert compute(name, 7.0 * pred, 7.0 * target) == pytest.approx(compute(name, pred, target))
        bad = pred.copy()
        bad[1, 1, 3] = np.nan
        values = get_metric(name)(bad, target)
        assert values.shape == (4,) and np.isnan(values[1]) and np.isfinite(np.delete(values, 1)).all()
