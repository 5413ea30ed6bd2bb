"""The bins codec's fast kernels equal a plain one-value-at-a-time reference, bit for bit."""

import math

import numpy as np
import pytest

from sfm.errors import SfmError
from sfm.tokenize._encoding import _K_MAX, SCALE_STEPS_PER_DECADE
from sfm.tokenize.numbers import get_encoding

OPTIONS = [{}, {"n_bins": 255, "low": -4.0, "high": 4.0}, {"n_bins": 101, "low": -1.0, "high": 5.0}]


def reference_encode(enc, row: np.ndarray) -> list[int]:
    """One sample, value by value, in float64: scale header, then the nearest bin (ties to even)."""
    mag = float(np.abs(row).sum(dtype=np.float64)) / max(row.size, 1)
    k = 0 if not (mag > 0 and math.isfinite(mag)) else round(math.log10(mag) * SCALE_STEPS_PER_DECADE)
    k = min(max(k, -_K_MAX), _K_MAX)
    scale = 10.0 ** (k / SCALE_STEPS_PER_DECADE)
    inv = 1.0 / enc.bin_width
    ids = [enc.n_bins + _K_MAX + k]
    for v in row.astype(np.float64):
        q = float(v) * (inv / scale) - enc.low * inv
        ids.append(round(min(max(q, 0.0), enc.n_bins - 1)))  # Python's round: half to even, like rint
    return ids


def reference_decode(enc, ids: np.ndarray) -> list[float]:
    i = int(ids[0]) - enc.n_bins
    scale = 10.0 ** ((i - _K_MAX) / SCALE_STEPS_PER_DECADE) if 0 <= i < 2 * _K_MAX + 1 else math.nan
    centers = np.linspace(enc.low, enc.high, enc.n_bins)
    return [float(centers[j]) * scale if 0 <= j < enc.n_bins else math.nan for j in ids[1:].tolist()]


def awkward_rows(enc, rng: np.random.Generator, dtype: type) -> np.ndarray:
    """Random magnitudes, values on bin centers and exactly half-way between them, far out of range, zeros."""
    m = 64
    x = rng.standard_normal((6, m)) * 10.0 ** rng.uniform(-4, 4, (6, 1))
    x[1] = np.linspace(enc.low, enc.high, m)  # bin edges/centers in scale units (the scale snaps near 1)
    x[2] = enc.low + (rng.integers(0, enc.n_bins - 1, m) + 0.5) * enc.bin_width  # ties
    x[3, ::2] *= 1e6  # far beyond [low, high] * scale: clips to the end bins
    x[4] = 0.0  # zero magnitude: scale 1
    info = np.finfo(dtype)
    x[5, :3] = [info.max / 1e3, -info.max / 10, info.smallest_subnormal]  # huge, huge negative, tiny
    return x.astype(dtype)


@pytest.mark.parametrize("options", OPTIONS)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_fast_kernels_equal_reference(options, dtype):
    enc = get_encoding("bins", **options)
    rng = np.random.default_rng(len(options))
    x = awkward_rows(enc, rng, dtype)
    ids = enc.encode_batch(x)
    assert ids.tolist() == [reference_encode(enc, row) for row in x]
    bad = ids.copy()
    bad[:, 1::7] = rng.integers(-3, enc.vocab_size + 3, bad[:, 1::7].shape)  # foreign, negative, scale ids
    bad[2, 0] = -1  # a malformed header: the whole sample is NaN
    for case in (ids, bad):
        np.testing.assert_array_equal(enc.decode_batch(case), [reference_decode(enc, row) for row in case])


def test_exact_ties_round_half_to_even():
    """Centers -2..2 (width 1) and a mean |x| of exactly 1 (scale 1): each value sits exactly half-way."""
    enc = get_encoding("bins", n_bins=5, low=-2.0, high=2.0)
    x = np.array([[-1.5, -0.5, 0.5, 1.5]], dtype=np.float32)
    ids = enc.encode_batch(x)
    assert ids[0, 1:].tolist() == [0, 2, 2, 4]  # q = 0.5, 1.5, 2.5, 3.5 -> even neighbours
    assert ids.tolist() == [reference_encode(enc, x[0])]
    np.testing.assert_array_equal(enc.decode_batch(ids), [[-2.0, 0.0, 0.0, 2.0]])


def test_blocks_and_long_rows():
    """Rows longer than one block and many short rows go through the block loop unchanged."""
    enc = get_encoding("bins")
    rng = np.random.default_rng(3)
    for shape in [(2, 40_000), (300, 3), (1, 1)]:
        x = rng.standard_normal(shape) * 7
        ids = enc.encode_batch(x)
        assert ids.tolist() == [reference_encode(enc, row) for row in x]
        np.testing.assert_array_equal(enc.decode_batch(ids), [reference_decode(enc, row) for row in ids])


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_refused(bad):
    x = np.ones((2, 5), dtype=np.float32)
    x[1, 3] = bad
    with pytest.raises(SfmError, match="NaN or infinite"):
        get_encoding("bins").encode_batch(x)
