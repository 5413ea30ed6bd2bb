"""Field codec: block layout, round trips within the number encoding's bound, tolerant frame decoding."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sfm.errors import DataError, SfmError
from sfm.tokenize.fields import FieldCodec
from sfm.tokenize.numbers import get_encoding

ENCODINGS = {
    "bins": get_encoding("bins", n_bins=511, low=-6.0, high=6.0),
    "sme": get_encoding("sme"),
    "digits": get_encoding("digits", digits=3),
}
NAMES = list(ENCODINGS)
SHAPES = {"1d": (3, (16,)), "2d": (2, (8, 6))}


def _codec(name: str, n_fields: int) -> FieldCodec:
    return FieldCodec(ENCODINGS[name], fields=["u", "v", "p"][:n_fields])


def _block(n_frames: int, n_fields: int, space: tuple[int, ...], seed: int = 0) -> np.ndarray:
    """Smooth-ish fields of very different magnitudes per channel (so per-field scales matter)."""
    rng = np.random.default_rng(seed)
    mags = np.array([1.0, 1e-3, 1e5])[:n_fields]
    x = rng.standard_normal((n_frames, n_fields, *space)) + 0.5
    return x * mags.reshape(1, -1, *[1] * len(space))


def _positions(codec: FieldCodec, n_frames: int, space: tuple[int, ...]) -> tuple[list[int], list[list[int]]]:
    """Hand-computed marker positions (after the header): frame starts and, per frame, field starts."""
    S, w, C = int(np.prod(space)), codec.encoding.width, codec.n_fields
    per_field = S * w + (C > 1)
    frame_len = 1 + C * per_field
    frames = [t * frame_len for t in range(n_frames)]
    fields = [[f + 1 + c * per_field for c in range(C)] for f in frames]
    return frames, fields


# ---- round trips and layout ---------------------------------------------------------------------------
@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("n_fields", [1, 3])
@pytest.mark.parametrize("dims", list(SHAPES))
def test_block_round_trip_within_bound(name, n_fields, dims):
    codec = _codec(name, n_fields)
    T, space = SHAPES[dims]
    frames = _block(T, n_fields, space)
    ids, scales = codec.encode_block(frames)
    hl = codec.header_length()
    assert ids.size == hl + T * codec.frame_length(space)
    header = codec.decode_header(ids[:hl])
    np.testing.assert_array_equal(header, scales)  # exact: the header carries the snapped scale
    out = codec.decode_frames(ids[hl:], T, space, header)
    assert out.all_valid and out.values.shape == frames.shape
    for c in range(n_fields):
        bound = codec.encoding.max_error(frames[:, c], scales[c])
        assert np.all(np.abs(out.values[:, c] - frames[:, c]) <= bound)
    assert np.abs(out.values[:, -1]).max() > 1e3 * np.abs(out.values[:, 0]).max() or n_fields == 1


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("n_fields", [1, 3])
def test_layout_markers_lengths_and_row_major_values(name, n_fields):
    codec = _codec(name, n_fields)
    enc = codec.encoding
    T, space = 2, (4, 3)
    frames = _block(T, n_fields, space, seed=1)
    ids, scales = codec.encode_block(frames)
    w, hw = enc.width, enc.header_width
    # header: <|scale|> then one scale group per field (absent for absolute encodings)
    assert codec.header_length() == (1 + hw * n_fields if hw else 0)
    if hw:
        assert ids[0] == codec.scale_id
        for c in range(n_fields):
            np.testing.assert_array_equal(ids[1 + c * hw : 1 + (c + 1) * hw], enc.encode_scale(scales[c]))
    body = ids[codec.header_length() :]
    S = 12
    assert codec.frame_length(space) == 1 + n_fields * S * w + (n_fields if n_fields > 1 else 0)
    frame_pos, field_pos = _positions(codec, T, space)
    assert np.flatnonzero(body == codec.frame_id).tolist() == frame_pos
    expected_fields = [p for row in field_pos for p in row] if n_fields > 1 else []
    assert np.flatnonzero(body == codec.field_id).tolist() == expected_fields
    assert codec.scale_id not in body
    for t in range(T):
        for c in range(n_fields):
            start = field_pos[t][c] + (n_fields > 1)
            np.testing.assert_array_equal(
                body[start : start + S * w], enc.encode_values(frames[t, c].reshape(-1), scales[c])
            )
    assert codec.tokens[codec.frame_id] == "<|frame|>" and codec.tokens[codec.field_id] == "<|field|>"
    assert codec.tokens[: enc.vocab_size] == enc.tokens and len(codec.tokens) == enc.vocab_size + 3


# ---- tolerant decoding ------------------------------------------------------------------------------------
@pytest.fixture(params=[(n, c) for n in NAMES for c in (1, 3)], ids=lambda p: f"{p[0]}-{p[1]}f")
def encoded(request):
    name, n_fields = request.param
    codec = _codec(name, n_fields)
    T, space = 3, (5, 2)
    frames = _block(T, n_fields, space, seed=2)
    scales = codec.scales(frames)
    body = codec.encode_frames(frames, scales)
    clean = codec.decode_frames(body, T, space, scales)
    assert clean.all_valid
    return codec, body, scales, clean, T, space


def _assert_masked_only(out, clean, masked: np.ndarray) -> None:
    assert np.array_equal(out.valid, ~masked), f"valid={out.valid.tolist()} expected={(~masked).tolist()}"
    assert np.isnan(out.values[masked]).all()
    np.testing.assert_array_equal(out.values[~masked], clean.values[~masked])


def test_truncated_output_masks_missing_frames_and_fields(encoded):
    codec, body, scales, clean, T, space = encoded
    S, w, C = 10, codec.encoding.width, codec.n_fields
    _, field_pos = _positions(codec, T, space)
    for cut in range(body.size + 1):
        out = codec.decode_frames(body[:cut], T, space, scales)
        # a (frame, field) survives exactly when its last value token made it
        ends = np.array([[field_pos[t][c] + (C > 1) + S * w for c in range(C)] for t in range(T)])
        _assert_masked_only(out, clean, ends > cut)


def test_extra_frames_are_ignored(encoded):
    codec, body, scales, clean, T, space = encoded
    longer = np.concatenate([body, body[: codec.frame_length(space)], body[:5]])
    out = codec.decode_frames(longer, T, space, scales)
    assert out.all_valid
    np.testing.assert_array_equal(out.values, clean.values)
    fewer = codec.decode_frames(body, T - 1, space, scales)  # asking for fewer frames drops the rest
    np.testing.assert_array_equal(fewer.values, clean.values[: T - 1])


@given(prefix=st.lists(st.integers(-5, 40000), max_size=30))
@settings(max_examples=25, deadline=None)
def test_garbage_prefix_is_ignored(prefix):
    codec = _codec("sme", 3)
    T, space = 2, (3,)
    frames = _block(T, 3, space, seed=3)
    scales = codec.scales(frames)
    body = codec.encode_frames(frames, scales)
    prefix = [p for p in prefix if p != codec.frame_id]
    out = codec.decode_frames(np.concatenate([prefix, body]).astype(np.int64), T, space, scales)
    assert out.all_valid
    np.testing.assert_array_equal(out.values, codec.decode_frames(body, T, space, scales).values)


def test_missing_field_marker_masks_that_field_only():
    for name in NAMES:
        codec = _codec(name, 3)
        T, space = 3, (4,)
        frames = _block(T, 3, space, seed=4)
        scales = codec.scales(frames)
        body = codec.encode_frames(frames, scales)
        clean = codec.decode_frames(body, T, space, scales)
        _, field_pos = _positions(codec, T, space)
        for t in range(T):
            for c in range(3):
                broken = np.delete(body, field_pos[t][c])
                masked = np.zeros((T, 3), dtype=bool)
                masked[t, c] = True
                _assert_masked_only(codec.decode_frames(broken, T, space, scales), clean, masked)


def test_bad_tokens_inside_a_field_mask_that_field_only(encoded):
    codec, body, scales, clean, T, space = encoded
    w, C = codec.encoding.width, codec.n_fields
    _, field_pos = _positions(codec, T, space)
    t, c = 1, C - 1
    start = field_pos[t][c] + (C > 1)
    masked = np.zeros((T, C), dtype=bool)
    masked[t, c] = True
    enc = codec.encoding
    # a token of another slot (bins: a scale token)
    wrong_slot = enc.slot_tokens()[1][0] if w > 1 else enc.vocab_size - 1
    for bad in (-1, 10**7, codec.scale_id, wrong_slot):
        broken = body.copy()
        broken[start] = bad  # the first slot of the field's first value
        _assert_masked_only(codec.decode_frames(broken, T, space, scales), clean, masked)
    one_more, one_less = np.insert(body, start + 3, body[start]), np.delete(body, start + 3)
    for broken in (one_more, one_less):
        _assert_masked_only(codec.decode_frames(broken, T, space, scales), clean, masked)
    early = body.copy()
    early[start + w] = codec.frame_id  # a frame marker where a value belongs starts the next frame early
    out = codec.decode_frames(early, T, space, scales)
    assert out.valid[:t].all() and not out.valid[t:, c].any() and not out.valid[t + 1 :].any()
    stray = np.insert(body, start + w, codec.field_id)  # a stray field marker between two values
    out = codec.decode_frames(stray, T, space, scales)
    assert not out.valid[t, c] and out.valid[:t].all() and out.valid[t + 1 :].all() and out.valid[t, :c].all()


def test_nan_scales_mask_every_frame(encoded):
    codec, body, _, _, T, space = encoded
    if not codec.encoding.header_width:
        return
    bad = codec.decode_header(np.array([codec.frame_id, *([0] * (codec.header_length() - 1))]))
    assert np.isnan(bad).all()
    assert not codec.decode_frames(body, T, space, bad).valid.any()
    assert np.isnan(codec.decode_header(np.array([codec.scale_id]))).all()  # too short


@given(ids=st.lists(st.integers(-(2**33), 2**33), max_size=200), n_fields=st.sampled_from([1, 3]))
@settings(max_examples=40, deadline=None)
def test_random_ids_never_raise(ids, n_fields):
    codec = _codec("bins", n_fields)
    mixed = np.array(ids + [codec.frame_id, codec.field_id] * 3, dtype=np.int64)
    np.random.default_rng(len(ids)).shuffle(mixed)
    out = codec.decode_frames(mixed, 2, (3, 2), np.ones(n_fields))
    assert out.values.shape == (2, n_fields, 3, 2) and out.valid.shape == (2, n_fields)
    assert np.isnan(out.values[~out.valid]).all() and np.isfinite(out.values[out.valid]).all()


def test_fast_and_tolerant_paths_agree(encoded):
    codec, body, scales, _, T, space = encoded
    S = int(np.prod(space))
    fast = codec._decode_well_formed(body, T, S, scales)
    slow = codec._decode_any(body, T, S, scales)
    assert fast is not None
    np.testing.assert_array_equal(fast[1], slow[1])
    np.testing.assert_array_equal(fast[0], slow[0])
    assert codec._decode_well_formed(body[1:], T, S, scales) is None
    assert codec._decode_well_formed(np.insert(body, 3, codec.frame_id), T, S, scales) is None


# ---- constrained generation ------------------------------------------------------------------------------
@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("n_fields", [1, 3])
def test_token_classes_admit_the_real_encoding(name, n_fields):
    codec = _codec(name, n_fields)
    T, space = 2, (3, 4)
    frames = _block(T, n_fields, space, seed=5) * np.geomspace(1e-3, 1e3, 12).reshape(3, 4)
    body = codec.encode_frames(frames, codec.scales(frames))
    classes = codec.token_classes(T, space)
    assert len(classes) == body.size == T * codec.frame_length(space)
    for pos, (tok, allowed) in enumerate(zip(body, classes)):
        assert tok in allowed, f"position {pos}: {codec.tokens[tok]} not allowed"
    # structural positions admit exactly one token
    assert all(len(classes[p]) == 1 for p in _positions(codec, T, space)[0])


# ---- errors and configuration ------------------------------------------------------------------------------
def test_encoding_errors_name_the_problem():
    codec = _codec("bins", 2)
    frames = np.ones((2, 2, 4))
    with pytest.raises(DataError, match="NaN or Inf"):
        codec.encode_block(np.where(np.arange(4) == 2, np.nan, frames))
    with pytest.raises(DataError, match=r"C=2 \(u, v\)"):
        codec.encode_block(np.ones((2, 3, 4)))
    for bad in ([1.0], [1.0, 0.0], [1.0, np.nan]):
        with pytest.raises(SfmError, match="positive finite"):
            codec.encode_frames(frames, np.array(bad))
    with pytest.raises(SfmError, match="need 2 scales"):
        codec.decode_frames(codec.encode_frames(frames, [1.0, 1.0]), 2, (4,), [1.0])


@pytest.mark.parametrize("name", NAMES)
def test_config_round_trip(name):
    codec = _codec(name, 3)
    again = FieldCodec.from_config(json.loads(json.dumps(codec.config())))
    assert again.tokens == codec.tokens and again.fields == codec.fields
    frames = _block(2, 3, (4,), seed=6)
    np.testing.assert_array_equal(again.encode_block(frames)[0], codec.encode_block(frames)[0])
