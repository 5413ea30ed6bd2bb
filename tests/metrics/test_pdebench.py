"""PDEBench metrics: hand-computed goldens, analytic Fourier cases, and an independent re-derivation of
PDEBench's ``metric_func`` (its semantics translated to numpy here, in PDEBench's own layout)."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from sfm.errors import SfmError
from sfm.metrics import aggregate, compute, get_metric

PDEBENCH = ["rmse", "nrmse", "crmse", "max_error", "brmse", "frmse_low", "frmse_mid", "frmse_high"]


# ---------------------------------------------------------------------------------------------------------
# Independent re-derivation of PDEBench's metric_func(if_mean=True) in its layout (batch, *space, time, chan).
# ---------------------------------------------------------------------------------------------------------
def _pdebench_reference(pred, target, lengths=(1.0, 1.0, 1.0), i_low=4, i_high=12):
    nd = pred.ndim - 3
    p = np.moveaxis(pred, -1, 1)  # PDEBench permutes to (batch, chan, *space, time)
    y = np.moveaxis(target, -1, 1)
    nb, nc, nt = p.shape[0], p.shape[1], p.shape[-1]
    space = p.shape[2:-1]
    pv, yv = p.reshape(nb, nc, -1, nt), y.reshape(nb, nc, -1, nt)  # the "view([nb, nc, -1, nt])"

    err_mean = np.sqrt(np.mean((pv - yv) ** 2, axis=2))
    out = {"rmse": err_mean.mean(axis=0)}
    out["nrmse"] = (err_mean / np.sqrt(np.mean(yv**2, axis=2))).mean(axis=0)
    out["crmse"] = np.sqrt(np.mean((pv.sum(axis=2) - yv.sum(axis=2)) ** 2, axis=0)) / np.prod(space)
    out["max_error"] = np.abs(pv - yv).max(axis=2).max(axis=0)

    sq = (p - y) ** 2
    if nd == 1:
        out["brmse"] = np.sqrt((sq[:, :, 0] + sq[:, :, -1]) / 2.0).mean(axis=0)
    elif nd == 2:
        nx, ny = space
        bx = sq[:, :, 0] + sq[:, :, -1]  # (nb, nc, ny, nt)
        by = sq[:, :, :, 0] + sq[:, :, :, -1]  # (nb, nc, nx, nt)
        out["brmse"] = np.sqrt((bx.sum(axis=-2) + by.sum(axis=-2)) / (2 * nx + 2 * ny)).mean(axis=0)
    else:  # per-channel form of PDEBench's 3D branch
        nx, ny, nz = space
        bx = (sq[:, :, 0] + sq[:, :, -1]).reshape(nb, nc, -1, nt).sum(axis=2)
        by = (sq[:, :, :, 0] + sq[:, :, :, -1]).reshape(nb, nc, -1, nt).sum(axis=2)
        bz = (sq[:, :, :, :, 0] + sq[:, :, :, :, -1]).reshape(nb, nc, -1, nt).sum(axis=2)
        out["brmse"] = np.sqrt((bx + by + bz) / (2 * nx * ny + 2 * ny * nz + 2 * nz * nx)).mean(axis=0)

    axes = tuple(range(2, 2 + nd))
    if nd == 1:
        diff = np.fft.rfft(p, axis=2) - np.fft.rfft(y, axis=2)
        err_f = np.sqrt(np.mean(np.abs(diff) ** 2, axis=0)) / space[0] * lengths[0]
    else:
        e2 = np.abs(np.fft.fftn(p, axes=axes) - np.fft.fftn(y, axes=axes)) ** 2
        half = [n // 2 for n in space]
        n_bins = min(half)
        binned = np.zeros((nb, nc, n_bins, nt))
        for idx in itertools.product(*[range(h) for h in half]):
            shell = math.floor(math.sqrt(sum(i * i for i in idx)))
            if shell > n_bins - 1:
                continue
            binned[:, :, shell] += e2[(slice(None), slice(None), *idx)]
        err_f = np.sqrt(binned.mean(axis=0)) / np.prod(space) * np.prod(lengths[:nd])
    bands = [err_f[:, :i_low], err_f[:, i_low:i_high], err_f[:, i_high:]]
    for name, band in zip(["frmse_low", "frmse_mid", "frmse_high"], bands):
        out[name] = band.mean(axis=1)
    return {k: float(np.mean(v)) for k, v in out.items()}  # final mean over channels and time


def _field(arr, c):
    """Channel ``c`` of a PDEBench-layout array, in sfm's (batch, time, *space) layout."""
    return np.moveaxis(arr[..., c], -1, 1)


@pytest.mark.parametrize(
    "space",
    [(40,), (28, 32), (26, 26, 28)],
    ids=["1d", "2d", "3d"],
)
def test_matches_pdebench_rederivation_averaged_over_channels(space):
    rng = np.random.default_rng(len(space))
    nb, nt, nc = 5, 3, 2
    target = rng.normal(size=(nb, *space, nt, nc)) + 0.5
    pred = target + rng.normal(scale=0.3, size=target.shape)
    lengths = (2.0, 0.5, 3.0)
    ref = _pdebench_reference(pred, target, lengths=lengths)
    for name in PDEBENCH:
        opts = {"lengths": lengths[: len(space)]} if name.startswith("frmse") else {}
        ours = np.mean([compute(name, _field(pred, c), _field(target, c), **opts) for c in range(nc)])
        assert ours == pytest.approx(ref[name], rel=1e-12), name


def test_matches_pdebench_rederivation_float32_one_field():
    rng = np.random.default_rng(7)
    target = rng.normal(size=(3, 48, 4, 1)).astype(np.float32)
    pred = (target + 0.1 * rng.normal(size=target.shape)).astype(np.float32)
    ref = _pdebench_reference(pred.astype(np.float64), target.astype(np.float64))
    for name in PDEBENCH:
        assert compute(name, _field(pred, 0), _field(target, 0)) == pytest.approx(ref[name], rel=1e-12), name


# ---------------------------------------------------------------------------------------------------------
# Goldens computed by hand.
# ---------------------------------------------------------------------------------------------------------
# Two samples, one time step, four points. Errors: sample 0 -> [0, 1, 2, 3]; sample 1 -> [0, 0, 0, -2].
HAND_TARGET = np.array([[[1.0, 1.0, 1.0, 1.0]], [[2.0, 2.0, 2.0, 2.0]]])
HAND_PRED = np.array([[[1.0, 2.0, 3.0, 4.0]], [[2.0, 2.0, 2.0, 0.0]]])


def test_hand_goldens_1d():
    rmse0, rmse1 = math.sqrt((0 + 1 + 4 + 9) / 4), math.sqrt((0 + 0 + 0 + 4) / 4)
    assert compute("rmse", HAND_PRED, HAND_TARGET) == pytest.approx((rmse0 + rmse1) / 2)
    assert compute("nrmse", HAND_PRED, HAND_TARGET) == pytest.approx((rmse0 / 1.0 + rmse1 / 2.0) / 2)
    # conserved quantity: summed errors 6 and -2 over 4 points, RMS over the two samples
    assert compute("crmse", HAND_PRED, HAND_TARGET) == pytest.approx(
        math.sqrt(((6 / 4) ** 2 + (2 / 4) ** 2) / 2)
    )
    assert compute("max_error", HAND_PRED, HAND_TARGET) == pytest.approx(3.0)
    # boundary: first and last point only
    assert compute("brmse", HAND_PRED, HAND_TARGET) == pytest.approx(
        (math.sqrt((0 + 9) / 2) + math.sqrt((0 + 4) / 2)) / 2
    )


def test_max_error_takes_the_worst_sample_per_time_then_averages_time():
    target = np.zeros((2, 2, 3))
    pred = np.zeros((2, 2, 3))
    pred[0, 0, 1], pred[1, 0, 2] = 3.0, -2.0  # time 0: worst sample error 3
    pred[0, 1, 0], pred[1, 1, 1] = 1.0, 5.0  # time 1: worst sample error 5
    values = get_metric("max_error")(pred, target)
    np.testing.assert_allclose(values, [[3.0, 1.0], [2.0, 5.0]])
    assert compute("max_error", pred, target) == pytest.approx((3 + 5) / 2)


def test_brmse_2d_counts_corners_on_both_faces():
    target = np.zeros((1, 1, 3, 3))
    corner, edge, center = target.copy(), target.copy(), target.copy()
    corner[0, 0, 0, 0] = edge[0, 0, 0, 1] = center[0, 0, 1, 1] = 2.0
    faces = 2 * 3 + 2 * 3  # two x-faces of 3 points, two y-faces of 3 points
    assert compute("brmse", corner, target) == pytest.approx(math.sqrt((4 + 4) / faces))
    assert compute("brmse", edge, target) == pytest.approx(math.sqrt(4 / faces))
    assert compute("brmse", center, target) == 0.0


def test_brmse_3d_counts_a_corner_on_three_faces():
    target = np.zeros((1, 1, 2, 2, 2))
    pred = target.copy()
    pred[0, 0, 0, 0, 0] = 1.0
    faces = 2 * (2 * 2) * 3  # six faces of 4 points
    assert compute("brmse", pred, target) == pytest.approx(math.sqrt(3 / faces))
    assert compute("brmse", target + 1.0, target) == pytest.approx(1.0)


def test_crmse_is_the_error_of_the_spatial_mean_in_2d():
    target = np.zeros((1, 1, 4, 5))
    pred = target + np.arange(20.0).reshape(4, 5)
    assert compute("crmse", pred, target) == pytest.approx(np.arange(20.0).sum() / 20)


# ---------------------------------------------------------------------------------------------------------
# Fourier bands against analytic spectra.
# ---------------------------------------------------------------------------------------------------------
def _cosine_1d(n, k, amp):
    return amp * np.cos(2 * np.pi * k * np.arange(n) / n)


@pytest.mark.parametrize(
    ("k", "band", "modes_in_band"),
    # N=32: rfft modes 0..16, so the high band holds modes 12..16
    [(2, "frmse_low", 4), (5, "frmse_mid", 8), (13, "frmse_high", 5)],
)
def test_frmse_1d_cosine(k, band, modes_in_band):
    n = 32
    # two samples with amplitudes 1 and 3: each mode amplitude is a/2, RMS over samples, mean over band modes
    err = np.stack([_cosine_1d(n, k, 1.0), _cosine_1d(n, k, 3.0)])[:, None, :]
    target = np.ones_like(err)
    expected = math.sqrt((0.5**2 + 1.5**2) / 2) / modes_in_band
    assert compute(band, target + err, target) == pytest.approx(expected, rel=1e-12)
    for other in {"frmse_low", "frmse_mid", "frmse_high"} - {band}:
        assert compute(other, target + err, target) == pytest.approx(0.0, abs=1e-14)
    assert compute(band, target + err, target, lengths=[2.5]) == pytest.approx(2.5 * expected, rel=1e-12)


def test_frmse_1d_includes_the_nyquist_mode():
    n = 32
    err = _cosine_1d(n, 16, 1.0)[None, None, :]  # (-1)^j: all of its energy sits at mode 16, amplitude 1
    assert compute("frmse_high", err, np.zeros_like(err)) == pytest.approx(1.0 / 5)


def _plane_wave(nx, ny, kx, ky, amp=1.0):
    x, y = np.meshgrid(np.arange(nx), np.arange(ny), indexing="ij")
    return amp * np.cos(2 * np.pi * (kx * x / nx + ky * y / ny))


@pytest.mark.parametrize(
    ("kx", "ky", "band", "bins_in_band"),
    [(1, 1, "frmse_low", 4), (3, 4, "frmse_mid", 8), (3, 3, "frmse_mid", 8), (9, 9, "frmse_high", 4)],
)
def test_frmse_2d_plane_wave_lands_in_shell_floor_of_k(kx, ky, band, bins_in_band):
    # 32x32: 16 shells; floor(|(1,1)|)=1 low, |(3,4)|=5 and floor(|(3,3)|)=4 mid, floor(|(9,9)|)=12 high (12..15)
    err = _plane_wave(32, 32, kx, ky, amp=2.0)[None, None]
    expected = (2.0 / 2) / bins_in_band  # |FFT| = a*nx*ny/2 at (kx, ky), divided by nx*ny
    assert compute(band, err, np.zeros_like(err)) == pytest.approx(expected, rel=1e-12)


def test_frmse_2d_ignores_waves_outside_the_first_quadrant_like_pdebench():
    # cos(2pi(3x - 4y)/32) has its energy at (3, -4) and (-3, 4): PDEBench's binning never looks there.
    err = _plane_wave(32, 32, 3, -4)[None, None]
    for band in ("frmse_low", "frmse_mid", "frmse_high"):
        assert compute(band, err, np.zeros_like(err)) == pytest.approx(0.0, abs=1e-13)
    assert compute("rmse", err, np.zeros_like(err)) == pytest.approx(math.sqrt(0.5))


def test_frmse_2d_lengths_scale_by_the_domain_area():
    err = _plane_wave(32, 16, 1, 2)[None, None]
    base = compute("frmse_low", err, np.zeros_like(err))
    assert compute("frmse_low", err, np.zeros_like(err), lengths=[2.0, 3.0]) == pytest.approx(6 * base)


# ---------------------------------------------------------------------------------------------------------
# Shapes, vectorization, NaN, errors.
# ---------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("space", [(32,), (32, 32)], ids=["1d", "2d"])
def test_per_sample_shapes(space):
    rng = np.random.default_rng(0)
    target = rng.normal(size=(3, 4, *space))
    pred = target + rng.normal(size=target.shape)
    for name in ["rmse", "nrmse", "crmse", "max_error", "brmse"]:
        assert get_metric(name)(pred, target).shape == (3, 4), name
    n_bins = 17 if len(space) == 1 else 16
    assert get_metric("frmse_low")(pred, target).shape == (3, 4, 4)
    assert get_metric("frmse_mid")(pred, target).shape == (3, 4, 8)
    assert get_metric("frmse_high")(pred, target).shape == (3, 4, n_bins - 12)


@pytest.mark.parametrize("space", [(26,), (28, 30), (26, 26, 26)], ids=["1d", "2d", "3d"])
def test_samples_are_independent(space):
    """Per-sample values of a batch equal those of each sample alone (vectorized over the batch correctly)."""
    rng = np.random.default_rng(1)
    target = rng.normal(size=(4, 2, *space))
    pred = target + rng.normal(size=target.shape)
    for name in PDEBENCH:
        batch = get_metric(name)(pred, target)
        alone = np.concatenate([get_metric(name)(pred[i : i + 1], target[i : i + 1]) for i in range(4)])
        np.testing.assert_allclose(batch, alone, rtol=1e-12, err_msg=name)


def test_nan_in_pred_propagates_to_its_sample_and_time():
    rng = np.random.default_rng(2)
    target = rng.normal(size=(3, 2, 32))
    pred = target.copy()
    pred[1, 0, 5] = np.nan  # interior point
    for name in ["rmse", "nrmse", "crmse", "max_error"]:
        values = get_metric(name)(pred, target)
        assert np.isnan(values[1, 0]) and np.isfinite(np.delete(values.ravel(), 2)).all(), name
        assert math.isnan(compute(name, pred, target)), name
    for name in ["frmse_low", "frmse_high"]:
        values = get_metric(name)(pred, target)
        assert np.isnan(values[1, 0]).all() and np.isfinite(values[0]).all(), name
    # brmse sees only the boundary: an interior NaN does not reach it, a boundary NaN does
    assert np.isfinite(compute("brmse", pred, target))
    pred[2, 1, -1] = np.nan
    assert np.isnan(get_metric("brmse")(pred, target)[2, 1])


def test_nrmse_of_a_zero_target_frame_is_inf_like_pdebench():
    target = np.zeros((1, 1, 8))
    with np.errstate(all="raise"):  # no warning escapes: the inf is documented, not an accident
        assert get_metric("nrmse")(target + 1.0, target)[0, 0] == np.inf


def test_empty_band_and_bad_options_raise_one_line():
    target = np.zeros((1, 1, 16))  # rfft of 16 points: modes 0..8, so the high band (>= 12) is empty
    with pytest.raises(SfmError, match=r"frmse_high: the band starts at mode 12.*16 grid has only 9"):
        compute("frmse_high", target, target)
    # a band reaching past the last mode is cut short, as in PDEBench: mid = modes 4..8 here
    assert compute("frmse_mid", target + _cosine_1d(16, 8, 1.0), target) == pytest.approx(1.0 / 5)
    with pytest.raises(SfmError, match=r"frmse_high: the band starts at mode 12.*32x16"):
        compute("frmse_high", np.zeros((1, 1, 32, 16)), np.zeros((1, 1, 32, 16)))
    bad = [
        ({"lengths": [1.0, 2.0]}, "must give 1 positive domain length"),
        ({"lengths": [-1.0]}, "must give 1 positive domain length"),
        ({"low": 12, "high": 4}, "low .12. must be smaller than high .4."),
        ({"low": 0}, "low must be a positive integer"),
        ({"high": 2.5}, "high must be a positive integer"),
    ]
    for opts, message in bad:
        with pytest.raises(SfmError, match=message) as info:
            compute("frmse_low", np.ones((1, 1, 32)), np.ones((1, 1, 32)), **opts)
        assert "\n" not in str(info.value)


def test_custom_band_edges():
    err = _cosine_1d(64, 6, 1.0)[None, None]
    assert compute("frmse_low", err, np.zeros_like(err), low=8, high=20) == pytest.approx(0.5 / 8)
    assert aggregate("frmse_low", get_metric("frmse_low")(err, np.zeros_like(err), low=8, high=20)) > 0
