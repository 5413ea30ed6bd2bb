"""The forecast task format: windows -> prompt/completion ids -> parsed frames, on tiny hand-made data sets."""

from __future__ import annotations

import numpy as np
import pytest

from sfm.errors import ConfigError, DataError
from sfm.models.backbones import build_tiny_tokenizer
from sfm.physics.metadata import FieldMeta
from sfm.tasks import get_task_format
from sfm.tasks.forecast import Forecast
from sfm.tokenize.fields import FieldCodec
from sfm.tokenize.numbers import get_encoding
from sfm.tokenize.vocab import ScienceTokenizer

ENCODINGS = {
    "bins": lambda: get_encoding("bins", n_bins=1023, low=-5.0, high=5.0),
    "sme": lambda: get_encoding("sme", digits=3),
    "digits": lambda: get_encoding("digits", digits=3),
}


def _meta_1d(n_t: int = 9, n_x: int = 8) -> FieldMeta:
    return FieldMeta(
        family="burgers",
        equation="u_t + u*u_x = nu*u_xx",
        description="viscous Burgers, periodic",
        fields=["u"],
        coords={"t": list(np.arange(n_t) * 0.05), "x": list(np.linspace(0, 1, n_x, endpoint=False))},
        boundary_conditions={"x": "periodic"},
        coefficients={"nu": 0.01, "note": "text coefficients are not numbers"},  # type: ignore[dict-item]
        varying=["nu"],
    )


def _row_1d(meta: FieldMeta, seed: int = 0) -> dict:
    t = np.array(meta.coords["t"])[:, None]
    x = np.array(meta.coords["x"])[None, :]
    u = np.sin(2 * np.pi * (x - 0.3 * t)) * np.exp(-t) + 0.01 * np.random.default_rng(seed).standard_normal(
        (t.size, x.size)
    )
    return {"u": u.astype(np.float32), "nu": np.float32(0.02)}


def _meta_2d() -> FieldMeta:
    return FieldMeta(
        family="navier_stokes",
        equation="incompressible NS",
        description="2D, periodic",
        fields=["u", "v", "p"],
        coords={"t": [0.0, 0.1, 0.2, 0.3, 0.4], "x": [0.0, 0.25, 0.5, 0.75], "y": [0.0, 0.5, 1.0]},
        coefficients={"re": 1000.0},
    )


def _row_2d(seed: int = 1) -> dict:
    rng = np.random.default_rng(seed)
    return {
        "u": rng.standard_normal((5, 4, 3)),
        "v": 1e-3 * rng.standard_normal((5, 4, 3)),
        "p": 1e5 + 10 * rng.standard_normal((5, 4, 3)),
    }


def _sci(fmt: Forecast, row: dict, meta: FieldMeta, enc: str) -> ScienceTokenizer:
    tok = build_tiny_tokenizer(fmt.texts(row, meta) * 4)
    return ScienceTokenizer.extend(tok, FieldCodec(ENCODINGS[enc](), list(meta.fields)))


CASES = [(enc, dims) for enc in ENCODINGS for dims in ("1d", "2d")]


def _case(enc: str, dims: str):
    if dims == "1d":
        meta, fmt = _meta_1d(), Forecast(context_frames=2, horizon=2)
        row = _row_1d(meta)
    else:
        meta, fmt = _meta_2d(), Forecast(context_frames=2, horizon=1)
        row = _row_2d()
    return meta, fmt, row, _sci(fmt, row, meta, enc)


# ---- round trip ------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("enc", "dims"), CASES)
def test_window_round_trips_through_prompt_completion_and_parse(enc, dims):
    meta, fmt, row, sci = _case(enc, dims)
    traj = fmt.trajectory(row, meta)
    space = traj.shape[2:]
    examples = fmt.training_examples(row, meta, sci, np.random.default_rng(0))
    assert len(examples) == traj.shape[0] - fmt.context_frames - fmt.horizon + 1
    k, m = fmt.context_frames, fmt.horizon
    for ex in examples:
        s = ex.meta["start"]
        assert ex.completion[-1] == sci.eos_id and sci.eos_id not in ex.completion[:-1]
        assert len(ex.completion) == fmt.completion_length(space, sci)
        scales = np.array(ex.meta["scales"])
        # the prompt ends with the header and the context frames, which decode to the context
        header = sci.codec.header_length()
        local = sci.to_local(ex.prompt)
        codec = sci.codec
        body = local[np.flatnonzero((local == codec.scale_id) | (local == codec.frame_id))[0] :]
        np.testing.assert_array_equal(sci.codec.decode_header(body[:header]), scales)
        context = sci.codec.decode_frames(body[header:], k, space, scales)
        target = traj[s + k : s + k + m]
        parsed = fmt.parse(ex.completion, space, ex.meta["scales"], sci)  # scales as stored: a JSON list
        assert parsed.all_valid and context.all_valid and parsed.values.shape == target.shape
        for c in range(len(meta.fields)):
            bound = sci.codec.encoding.max_error(target[:, c], scales[c])
            assert np.all(np.abs(parsed.values[:, c] - target[:, c]) <= bound)
            ctx_bound = sci.codec.encoding.max_error(traj[s : s + k, c], scales[c])
            assert np.all(np.abs(context.values[:, c] - traj[s : s + k, c]) <= ctx_bound)


def test_prompt_text_and_coefficients():
    meta = _meta_1d()
    fmt = Forecast(context_frames=2, horizon=3, time_stride=2)
    row = _row_1d(meta)
    coeffs = fmt.coefficients(row, meta)
    assert coeffs == {"nu": pytest.approx(0.02)}  # the row's varying value wins; text coefficients skipped
    assert fmt.prompt_text(meta, coeffs) == "burgers nu=0.02 dt=0.1 predict 3:"
    assert Forecast(include_coefficients=False).prompt_text(meta, coeffs) == "burgers dt=0.05 predict 1:"
    sci = _sci(fmt, row, meta, "sme")
    ids, _ = fmt.prompt(fmt.trajectory(row, meta)[:2], meta, coeffs, sci)
    text = sci.text("burgers nu=0.02 dt=0.1 predict 3: ")
    assert ids[: len(text)] == text and (sci.to_local(ids[len(text) :]) >= 0).all()


def test_trajectory_subsamples_time_and_space():
    meta = _meta_2d()
    row = _row_2d()
    traj = Forecast(time_stride=2, space_stride=2).trajectory(row, meta)
    assert traj.shape == (3, 3, 2, 2)
    np.testing.assert_array_equal(traj[:, 2], row["p"][::2, ::2, ::2])
    assert Forecast(time_stride=2).dt(meta) == pytest.approx(0.2)


# ---- constrained generation -----------------------------------------------------------------------------
@pytest.mark.parametrize(("enc", "dims"), CASES)
def test_allowed_tokens_admit_the_real_completion(enc, dims):
    meta, fmt, row, sci = _case(enc, dims)
    traj = fmt.trajectory(row, meta)
    ex = fmt.encode(traj, 1, meta, fmt.coefficients(row, meta), sci)
    allowed = fmt.allowed_tokens(traj.shape[2:], sci)
    assert len(allowed) == len(ex.completion)
    for pos, (tok, ok) in enumerate(zip(ex.completion, allowed)):
        assert tok in ok, f"position {pos}"
    assert allowed[-1].tolist() == [sci.eos_id]
    assert len(fmt.allowed_tokens(traj.shape[2:], sci, horizon=3)) == fmt.completion_length(
        traj.shape[2:], sci, 3
    )


# ---- tolerant parsing -----------------------------------------------------------------------------------
def test_parse_tolerates_truncation_trailing_garbage_and_text():
    meta, fmt, row, sci = _case("sme", "1d")
    traj = fmt.trajectory(row, meta)
    ex = fmt.encode(traj, 0, meta, fmt.coefficients(row, meta), sci)
    space = traj.shape[2:]
    full = fmt.parse(ex.completion, space, ex.meta["scales"], sci)
    half = fmt.parse(ex.completion[: len(ex.completion) // 2], space, ex.meta["scales"], sci)
    assert half.valid[:, 0].tolist() == [True, False]  # first of the two frames made it
    np.testing.assert_array_equal(half.values[0], full.values[0])
    noisy = sci.text("sure, here it is:") + ex.completion + sci.text("and more") + ex.completion
    np.testing.assert_array_equal(fmt.parse(noisy, space, ex.meta["scales"], sci).values, full.values)
    nothing = fmt.parse(sci.text("no numbers"), space, ex.meta["scales"], sci)
    assert not nothing.valid.any() and np.isnan(nothing.values).all()
    one = fmt.parse(ex.completion, space, ex.meta["scales"], sci, horizon=1)
    np.testing.assert_array_equal(one.values, full.values[:1])


# ---- windows ------------------------------------------------------------------------------------------
def test_starts_and_windows_per_trajectory():
    fmt = Forecast(context_frames=2, horizon=1)
    np.testing.assert_array_equal(fmt.starts(10), np.arange(8))
    np.testing.assert_array_equal(fmt.starts(3), [0])
    few = Forecast(context_frames=2, horizon=1, windows_per_trajectory=3)
    a = few.starts(10, np.random.default_rng(5))
    assert (
        len(a) == 3 and len(set(a.tolist())) == 3 and a.min() >= 0 and a.max() <= 7 and (np.diff(a) > 0).all()
    )
    np.testing.assert_array_equal(a, few.starts(10, np.random.default_rng(5)))
    np.testing.assert_array_equal(Forecast(windows_per_trajectory=50).starts(10), np.arange(8))
    meta = _meta_1d()
    row = _row_1d(meta)
    sci = _sci(few, row, meta, "bins")
    examples = few.training_examples(row, meta, sci, np.random.default_rng(5))
    assert [e.meta["start"] for e in examples] == few.starts(9, np.random.default_rng(5)).tolist()


def test_too_short_trajectories_are_an_error():
    fmt = Forecast(context_frames=4, horizon=3, time_stride=2)
    with pytest.raises(
        ConfigError, match=r"5 frames after time_stride=2, fewer than context_frames \+ horizon = 7"
    ):
        fmt.starts(5)
    meta = _meta_1d(n_t=9)
    row = _row_1d(meta)
    with pytest.raises(ConfigError, match="fewer than"):
        fmt.training_examples(row, meta, _sci(fmt, row, meta, "bins"), np.random.default_rng(0))
    traj = Forecast().trajectory(row, meta)
    with pytest.raises(DataError, match="window start 8 out of range"):
        Forecast().encode(traj, 8, meta, {}, _sci(fmt, row, meta, "bins"))


def test_steady_data_sets_are_rejected():
    meta = _meta_2d().replace(coords={"x": [0.0, 0.5], "y": [0.0, 0.5]}, family="darcy")
    with pytest.raises(DataError, match="darcy is steady"):
        Forecast().trajectory({"u": np.zeros((2, 2))}, meta)


def test_options_are_checked():
    for key in ("context_frames", "horizon", "time_stride", "space_stride", "windows_per_trajectory"):
        with pytest.raises(ConfigError, match=f"{key} must be >= 1"):
            Forecast(**{key: 0})
    with pytest.raises(ConfigError, match="did you mean 'context_frames'"):
        get_task_format("forecast", context_frame=2)
    fmt = get_task_format("forecast", horizon=2, windows_per_trajectory=4)
    assert isinstance(fmt, Forecast) and fmt.horizon == 2
