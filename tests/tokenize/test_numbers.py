"""Number encodings: round trips within each encoding's stated bound, exact headers, tolerant decoding.

The bounds are the ones each encoding states (``max_error``); the property tests draw samples over 60
decades (zeros, negatives, 1e-30, 1e30, constant samples, single values, mixed magnitudes) and check every
decoded value against its bound. The ``sme`` encoding is also checked token for token against the scalar
reference :func:`sfm.physics.equations.sme.sme_tokens`, including decimal ties.
"""

from __future__ import annotations

import functools
import json

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import sfm.tokenize._encoding as encoding_module
from sfm.errors import ConfigError, SfmError, UnknownNameError
from sfm.physics.equations.sme import parse_sme_tokens, sme_tokens
from sfm.tokenize.numbers import (
    SCALE_DECADES,
    SCALE_STEPS_PER_DECADE,
    encoding_from_config,
    get_encoding,
)

ENCODINGS = {
    "bins": get_encoding("bins"),
    "bins-255": get_encoding("bins", n_bins=255, low=-4.0, high=4.0),
    "bins-asym": get_encoding("bins", n_bins=101, low=-1.0, high=5.0),
    "sme": get_encoding("sme"),
    "sme-2": get_encoding("sme", digits=2, min_exp=-40, max_exp=35),
    "sme-5": get_encoding("sme", digits=5),
    "digits": get_encoding("digits"),
    "digits-1": get_encoding("digits", digits=1),
    "digits-6": get_encoding("digits", digits=6),
}
NAMES = list(ENCODINGS)
SME = ENCODINGS["sme"]
PROPERTY = settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# ---- strategies ---------------------------------------------------------------------------------------------
signs = st.sampled_from([-1.0, 1.0])
magnitude = st.builds(lambda m, e: m * 10.0**e, st.floats(1.0, 10.0, exclude_max=True), st.integers(-30, 30))
value = st.one_of(
    st.just(0.0),
    st.sampled_from([1e-30, -1e-30, 1e30, -1e30, 1.0, -1.0]),
    st.builds(lambda s, m: s * m, signs, magnitude),
    st.floats(-1e3, 1e3, allow_nan=False, allow_infinity=False),
)
mixed_sample = st.lists(value, min_size=1, max_size=12)
constant_sample = st.builds(lambda v, n: [v] * n, value, st.integers(1, 8))
typical_sample = st.builds(
    lambda s, e, xs: [s * x * 10.0**e for x in xs],
    signs,
    st.integers(-30, 29),
    st.lists(st.floats(-10, 10, allow_nan=False), min_size=1, max_size=12),
)
sample = st.one_of(mixed_sample, constant_sample, typical_sample)


@st.composite
def batches(draw: st.DrawFn) -> np.ndarray:
    """[n, m] samples of equal length (each sample drawn on its own, so magnitudes differ across rows)."""
    m = draw(st.integers(1, 12))
    rows = draw(st.lists(sample.map(lambda r: (r * m)[:m]), min_size=1, max_size=4))
    return np.array(rows, dtype=np.float64)


def _check_within(enc, x: np.ndarray, decoded: np.ndarray, scale) -> None:
    bound = enc.max_error(x, scale)
    err = np.abs(decoded - x)
    assert np.all(np.isfinite(decoded))
    bad = ~(err <= bound)
    assert not bad.any(), (
        f"{enc}: x={x[bad][:3]} decoded={decoded[bad][:3]} err={err[bad][:3]} bound={bound[bad][:3]}"
    )


# ---- round trips ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", NAMES)
@PROPERTY
@given(x=batches())
def test_batch_round_trip_within_stated_bound(name, x):
    enc = ENCODINGS[name]
    ids = enc.encode_batch(x)
    assert ids.dtype == np.int64 and ids.shape == (x.shape[0], enc.header_width + x.shape[1] * enc.width)
    scale = enc.scales(x)
    _check_within(enc, x, enc.decode_batch(ids), scale[:, None])
    # the header holds the snapped scale exactly, bit for bit
    if enc.header_width:
        np.testing.assert_array_equal(enc._decode_scale(ids[:, : enc.header_width]), scale)
        assert [enc.decode_scale(row[: enc.header_width]) for row in ids] == scale.tolist()


@pytest.mark.parametrize("name", NAMES)
@PROPERTY
@given(x=sample)
def test_single_sample_round_trip_with_header(name, x):
    enc = ENCODINGS[name]
    x = np.array(x)
    shape = (1, x.size) if x.size % 2 else (2, x.size // 2)
    ids = enc.encode(x.reshape(shape))
    assert ids.shape == (enc.header_width + x.size * enc.width,)
    decoded = enc.decode(ids, shape=shape)
    assert decoded.shape == shape
    scale = enc.scales(x[None])[0]
    _check_within(enc, x, decoded.reshape(-1), scale)
    np.testing.assert_array_equal(decoded.reshape(-1), enc.decode(ids))


@pytest.mark.parametrize("name", NAMES)
@PROPERTY
@given(x=sample, scale=st.builds(lambda m, e: m * 10.0**e, st.floats(0.5, 5.0), st.integers(-30, 30)))
def test_encode_values_with_a_given_scale(name, x, scale):
    """Any positive scale, on the grid or not, larger or smaller than the values: still within the bound."""
    enc = ENCODINGS[name]
    x = np.array(x)
    assume(name.startswith("sme") or np.abs(x).max() / scale < 1e200)
    ids = enc.encode_values(x, scale)
    assert ids.shape == (x.size * enc.width,)
    _check_within(enc, x, enc.decode_values(ids, scale), scale)


def test_bounds_match_hand_computed_values():
    """The stated bounds themselves, from the formulas in the module table."""
    bins = ENCODINGS["bins"]  # 4093 centers over [-15, 15]: width 30/4092
    assert bins.max_error(np.array([1.0]), 2.0)[0] == pytest.approx(2.0 * 30 / 4092 / 2, rel=1e-8)
    assert bins.max_error(np.array([40.0]), 2.0)[0] == pytest.approx(10 + 30 / 4092, rel=1e-8)  # clips at 30
    asym = ENCODINGS["bins-asym"]  # [-1, 5]: -3 clips to -1, an error of 2 beyond the half bin
    assert asym.max_error(np.array([-3.0]), 1.0)[0] == pytest.approx(2 + 0.03, rel=1e-8)
    assert SME.max_error(np.array([-123.456]))[0] == pytest.approx(0.5e-3 * 123.456, rel=1e-8)
    assert SME.max_error(np.array([1e-50]))[0] == pytest.approx(0.5e-42)
    digits = ENCODINGS["digits"]
    assert digits.max_error(np.array([0.3]), 1.0)[0] == pytest.approx(0.0005, rel=1e-8)
    assert digits.max_error(np.array([0.9999]), 1.0)[0] == pytest.approx(0.0009, rel=1e-6)  # clamps to 0.999


def test_known_encodings_by_hand():
    bins = get_encoding("bins", n_bins=5, low=-2.0, high=2.0)  # centers -2 -1 0 1 2
    x = np.array([1.0, -1.4, 0.6, 9.0, -3.0])  # mean |x| = 3 -> scale 10**(10/20) = 3.1623
    ids = bins.encode(x)
    scale = 10 ** (10 / 20)
    assert bins.tokens[ids[0]] == "<scale10>"
    assert [bins.tokens[i] for i in ids[1:]] == ["<bin2>", "<bin2>", "<bin2>", "<bin4>", "<bin1>"]
    np.testing.assert_allclose(bins.decode(ids), [0, 0, 0, 2 * scale, -scale])
    digits = get_encoding("digits", digits=3)
    ids = digits.encode(np.array([0.5, -0.25, 0.0]))  # max 0.5 -> scale 10**(-6/20) = 0.50119
    assert "".join(digits.tokens[i] for i in ids) == "-006" + "+998" + "-499" + "+000"
    assert [SME.tokens[i] for i in SME.encode(np.array([-0.031416]))] == ["<->", "<N3142>", "<E-5>"]


# ---- scales ----------------------------------------------------------------------------------------------
@PROPERTY
@given(k=st.integers(-SCALE_DECADES * SCALE_STEPS_PER_DECADE, SCALE_DECADES * SCALE_STEPS_PER_DECADE))
def test_scale_grid_snaps_exactly_and_upward(k):
    grid = encoding_module._scale_value(np.array([k]))
    for enc in (ENCODINGS["bins"], ENCODINGS["digits"]):
        assert enc.decode_scale(enc.encode_scale(float(grid[0]))) == grid[0]
    # snapping up never lands below the magnitude, even an ulp away from a grid value
    for m in (grid, np.nextafter(grid, 0), np.nextafter(grid, np.inf)):
        if abs(k) < SCALE_DECADES * SCALE_STEPS_PER_DECADE:
            up = encoding_module._scale_value(encoding_module._snap_scale(m, up=True))
            assert up[0] >= m[0] and up[0] <= m[0] * 10 ** (1 / SCALE_STEPS_PER_DECADE) * (1 + 1e-12)


def test_sample_scales():
    x = np.array([[1.0, -3.0, 0.0, 4.0], [0.0, 0.0, 0.0, 0.0]])
    np.testing.assert_allclose(ENCODINGS["bins"].scales(x), [10 ** (round(20 * np.log10(2.0)) / 20), 1.0])
    digits = ENCODINGS["digits"].scales(x)
    assert digits[0] >= 4.0 and digits[0] < 4.0 * 10**0.05
    top = encoding_module._scale_value(np.array([7]))[0] * (1 + 1e-15)  # just above a grid value
    assert ENCODINGS["digits"].scales(np.array([[top]]))[0] >= top


# ---- sme against the scalar reference --------------------------------------------------------------------
decimal_ties = st.builds(
    lambda m, e, s: s * float(f"{m}5e{e}"), st.integers(1000, 9999), st.integers(-35, 30), signs
)  # d+1 significant digits ending in 5: the decimal value is a tie, its binary neighbour is not


@pytest.mark.parametrize("digits", [2, 4, 5])
@settings(max_examples=150, deadline=None)
@given(
    v=st.one_of(st.builds(lambda s, m: s * m, signs, magnitude), decimal_ties, st.just(0.0), st.just(-0.0))
)
def test_sme_vectorized_agrees_with_scalar_tokens(digits, v):
    enc = SME if digits == 4 else ENCODINGS[f"sme-{digits}"]
    got = [enc.tokens[i] for i in enc.encode_values(np.array([v]))]
    assert got == sme_tokens(v, digits=digits)
    # and decoding equals the scalar parser, which reads the decimal exactly
    assert enc.decode_values(enc.encode_values(np.array([v])))[0] == pytest.approx(
        parse_sme_tokens(got), rel=1e-15
    )


def test_sme_many_values_agree_with_scalar_tokens():
    rng = np.random.default_rng(1)
    x = rng.standard_normal(3000) * 10.0 ** rng.integers(-30, 30, 3000)
    x[:200] = np.round(x[:200], 3)  # short decimals, many near ties
    ids = SME.encode_values(x).reshape(-1, 3)
    tokens = [[SME.tokens[i] for i in row] for row in ids]
    assert tokens == [sme_tokens(v) for v in x]
    decoded = SME.decode_values(ids.reshape(-1))
    parsed = np.array([parse_sme_tokens(t) for t in tokens])
    # one rounding, like the exact decimal parser, while the power of ten is exact (|exponent| <= 22)
    moderate = (np.abs(x) > 1e-19) & (np.abs(x) < 1e25)
    np.testing.assert_array_equal(decoded[moderate], parsed[moderate])
    np.testing.assert_allclose(decoded, parsed, rtol=1e-15, atol=0)


def test_sme_limits():
    largest = 9999e40
    assert SME.decode_values(SME.encode_values(np.array([largest, -largest])))[0] == largest
    for too_large in (1e45, 9999.6e40, -2e44):
        with pytest.raises(SfmError, match="too large for max_exp=40"):
            SME.encode_values(np.array([1.0, too_large]))
    smallest = 1e-42  # 1000 * 10**-45
    tiny = np.array([1e-50, -3e-43, 4.9e-43, 5.1e-43, 9.9e-43, smallest, 0.0])
    decoded = SME.decode_values(SME.encode_values(tiny))
    np.testing.assert_array_equal(decoded, [0.0, -0.0, 0.0, smallest, smallest, smallest, 0.0])
    assert np.all(np.abs(decoded - tiny) <= SME.max_error(tiny))
    assert SME.smallest == smallest and SME.largest == largest


# ---- vocabulary ------------------------------------------------------------------------------------------
def test_digits_uses_only_its_12_native_tokens():
    enc = ENCODINGS["digits"]
    assert enc.tokens == list("0123456789+-") and not enc.adds_tokens
    ids = enc.encode_batch(np.random.default_rng(0).standard_normal((5, 50)) * 1e7)
    assert ids.min() >= 0 and ids.max() < 12


@pytest.mark.parametrize("name", NAMES)
def test_slot_tokens_admit_every_encoded_token(name):
    enc = ENCODINGS[name]
    x = np.random.default_rng(2).standard_normal(500) * 10.0 ** np.random.default_rng(3).integers(-3, 3, 500)
    groups = enc.encode_values(x, 1.0).reshape(-1, enc.width)
    slots = enc.slot_tokens()
    assert len(slots) == enc.width
    for j, allowed in enumerate(slots):
        assert np.isin(groups[:, j], allowed).all()
        assert allowed.min() >= 0 and allowed.max() < enc.vocab_size
    assert len(set(enc.tokens)) == enc.vocab_size and enc.index[enc.tokens[-1]] == enc.vocab_size - 1


# ---- errors ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_input_raises(name, bad):
    enc = ENCODINGS[name]
    x = np.array([[1.0, bad, 2.0]])
    for call in (lambda: enc.encode(x[0]), lambda: enc.encode_batch(x), lambda: enc.encode_values(x)):
        with pytest.raises(SfmError, match="NaN or infinite"):
            call()


@pytest.mark.parametrize("scale", [0.0, -1.0, np.nan, np.inf])
def test_bad_given_scale_raises(scale):
    with pytest.raises(SfmError, match="positive finite"):
        ENCODINGS["bins"].encode_values(np.ones(3), scale)


def test_get_encoding_errors_suggest_names():
    with pytest.raises(UnknownNameError, match="did you mean 'bins'"):
        get_encoding("bin")
    with pytest.raises(ConfigError, match=r"unknown key 'n_bin'.*did you mean 'n_bins'"):
        get_encoding("bins", n_bin=10)
    with pytest.raises(ConfigError, match="n_bins"):
        get_encoding("bins", n_bins="many")
    with pytest.raises(ConfigError, match="n_bins >= 2"):
        get_encoding("bins", n_bins=1)
    with pytest.raises(ConfigError, match="digits"):
        get_encoding("sme", digits=9)
    with pytest.raises(ConfigError, match="min_exp"):
        get_encoding("sme", min_exp=3)
    with pytest.raises(ConfigError, match="name"):
        encoding_from_config({"digits": 3})


@pytest.mark.parametrize("name", NAMES)
def test_config_round_trip(name):
    enc = ENCODINGS[name]
    cfg = json.loads(json.dumps(enc.config()))
    again = encoding_from_config(cfg)
    assert type(again) is type(enc) and again.config() == enc.config() and again.tokens == enc.tokens
    x = np.random.default_rng(4).standard_normal((3, 7))
    np.testing.assert_array_equal(again.encode_batch(x), enc.encode_batch(x))


# ---- malformed input never raises ------------------------------------------------------------------------
@functools.cache
def _invalid_pool(name: str, j: int) -> list[int]:
    """Token ids not allowed at slot j: negative, past the vocabulary, or (some) from other slots."""
    enc = ENCODINGS[name]
    others = np.setdiff1d(np.arange(enc.vocab_size), enc.slot_tokens()[j])
    return [-1, -(10**6), enc.vocab_size, 10**9, *others[:: max(1, others.size // 50)].tolist()]


@pytest.mark.parametrize("name", NAMES)
@PROPERTY
@given(seed=st.integers(0, 2**32 - 1), n_bad=st.integers(1, 6))
def test_corrupted_tokens_give_nan_exactly_there(name, seed, n_bad):
    enc = ENCODINGS[name]
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((2, 9)) * 10.0 ** rng.integers(-5, 5, (2, 1))
    ids = enc.encode_batch(x)
    clean = enc.decode_batch(ids)
    body = ids[:, enc.header_width :].copy().reshape(2, 9, enc.width)
    hit = np.zeros((2, 9), dtype=bool)
    for _ in range(n_bad):
        r, v, j = rng.integers(2), rng.integers(9), rng.integers(enc.width)
        body[r, v, j] = rng.choice(_invalid_pool(name, int(j)))
        hit[r, v] = True
    bad = np.concatenate([ids[:, : enc.header_width], body.reshape(2, -1)], axis=1)
    decoded = enc.decode_batch(bad)
    assert np.array_equal(np.isnan(decoded), hit)
    np.testing.assert_array_equal(decoded[~hit], clean[~hit])


@pytest.mark.parametrize("name", [n for n in NAMES if ENCODINGS[n].header_width])
def test_corrupted_header_masks_its_sample_only(name):
    enc = ENCODINGS[name]
    x = np.random.default_rng(5).standard_normal((3, 4))
    ids = enc.encode_batch(x)
    ids[1, 0] = enc.vocab_size + 7
    decoded = enc.decode_batch(ids)
    assert np.isnan(decoded[1]).all() and np.isfinite(decoded[[0, 2]]).all()
    assert np.isnan(enc.decode_scale(ids[1, : enc.header_width]))
    assert np.isnan(enc.decode_scale(ids[0, 1 : enc.header_width]))  # a header one token short


@pytest.mark.parametrize("name", NAMES)
@PROPERTY
@given(garbage=st.lists(st.integers(-(2**40), 2**40), max_size=40), cut=st.integers(0, 60))
def test_garbage_and_truncated_sequences_never_raise(name, garbage, cut):
    enc = ENCODINGS[name]
    out = enc.decode(np.array(garbage, dtype=np.int64), shape=(3, 2))
    assert out.shape == (3, 2)
    x = np.linspace(-2, 3, 8)
    ids = enc.encode(x)
    part = enc.decode(ids[:cut], shape=(8,))
    full_groups = max(0, (min(cut, ids.size) - enc.header_width) // enc.width)
    if cut >= enc.header_width:
        np.testing.assert_array_equal(part[:full_groups], enc.decode(ids)[:full_groups])
    assert np.isnan(part[full_groups:]).all()
    assert enc.decode_values(ids[enc.header_width : cut]).size == full_groups


def test_decoding_accepts_any_integer_dtype_and_empty_input():
    enc = ENCODINGS["sme"]
    ids = enc.encode(np.array([1.5, -2.0]))
    np.testing.assert_array_equal(enc.decode(ids.astype(np.int32)), [1.5, -2.0])
    assert enc.decode(np.zeros(0, dtype=np.int64)).size == 0
    assert ENCODINGS["bins"].encode(np.zeros(0)).size == 1  # just the header
    assert ENCODINGS["bins"].decode_batch(np.zeros((0, 3), dtype=np.int64), shape=(2,)).shape == (0, 2)


# ---- vectorized plumbing ---------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["bins", "sme", "digits"])
def test_blocked_kernels_equal_a_single_pass(name, monkeypatch):
    """Encoding in cache-sized blocks (rows and columns) gives the same ids as one pass; float32 too."""
    enc = ENCODINGS[name]
    rng = np.random.default_rng(6)
    x = (rng.standard_normal((5, 37)) * 10.0 ** rng.integers(-3, 3, (5, 1))).astype(np.float32)
    monkeypatch.setattr(encoding_module, "_CHUNK", 1 << 20)
    ids = enc.encode_batch(x.astype(np.float64))
    decoded = enc.decode_batch(ids)
    for chunk in (7, 80):  # 7: rows split into column blocks; 80: two whole rows per block
        monkeypatch.setattr(encoding_module, "_CHUNK", chunk)
        np.testing.assert_array_equal(enc.encode_batch(x), ids)
        np.testing.assert_array_equal(enc.decode_batch(ids), decoded)
