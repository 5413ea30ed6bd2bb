"""The pde_identification task format: frames -> prompt, answer text -> ids -> parsed answer, mixtures."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sfm.data import generate_dataset, load_field_dataset
from sfm.errors import ConfigError, DataError
from sfm.models.backbones import build_tiny_tokenizer
from sfm.tasks import get_task_format
from sfm.tasks.pde_identification import Identified, PdeIdentification, answer_text, parse_answer
from sfm.tokenize.fields import FieldCodec
from sfm.tokenize.numbers import get_encoding
from sfm.tokenize.vocab import ScienceTokenizer
from sfm.training.examples import build_mixture_examples

SIMS = {
    "burgers": {"nu": [0.04, 0.1], "nx": 64, "nt": 11, "t_end": 0.5},
    "heat": {"D": [0.001, 0.01], "nx": 32, "nt": 11, "t_end": 0.5},
    "advection": {"beta": [0.1, 2.0], "nx": 64, "nt": 11, "t_end": 0.5},
}


@pytest.fixture(scope="module")
def fieldsets(tmp_path_factory):
    root = tmp_path_factory.mktemp("ident")
    out = {}
    for name, params in SIMS.items():
        generate_dataset(name, 10, root / name, params=params, progress=False)
        out[name] = load_field_dataset(root / name)
    return out


def _sci(fmt: PdeIdentification, fieldsets, encoding: str = "bins") -> ScienceTokenizer:
    corpus = [t for fs in fieldsets.values() for r in fs.split("train") for t in fmt.texts(r, fs.meta)]
    enc = {"bins": get_encoding("bins", n_bins=255, low=-4.0, high=4.0), "sme": get_encoding("sme", digits=3)}
    return ScienceTokenizer.extend(build_tiny_tokenizer(corpus * 3), FieldCodec(enc[encoding], ["u"]))


# ---- the answer text ---------------------------------------------------------------------------------------
@settings(max_examples=200, deadline=None)
@given(
    family=st.sampled_from(["burgers", "heat", "advection", "kdv", "diffusion_reaction"]),
    values=st.lists(st.floats(1e-9, 1e9) | st.floats(-1e9, -1e-9), min_size=0, max_size=3),
    digits=st.integers(1, 10),
)
def test_answer_text_parses_back_within_its_formatting_precision(family, values, digits):
    coefficients = {f"c{i}": v for i, v in enumerate(values)}
    got = parse_answer(answer_text(family, coefficients, digits))
    assert got.valid and got.family == family and set(got.coefficients) == set(coefficients)
    for (
        k,
        v,
    ) in coefficients.items():  # rounding to `digits` significant digits: half a unit in the last place
        assert abs(got.coefficients[k] - v) <= 0.5 * 10.0 ** (1 - digits) * abs(v) * (1 + 1e-12)


@pytest.mark.parametrize(
    ("text", "family", "coefficients"),
    [
        (" burgers nu=0.0123", "burgers", {"nu": 0.0123}),
        ("Burgers   nu = 0.0123 ", "burgers", {"nu": 0.0123}),  # case and spacing
        ("diffusion_reaction D: 1e-3, rho=+5.", "diffusion_reaction", {"D": 1e-3, "rho": 5.0}),
        ("kdv delta=.022; extra=-2E+1.", "kdv", {"delta": 0.022, "extra": -20.0}),
        ("heat D=0.005\nheat D=0.006 and more text", "heat", {"D": 0.005}),  # only the first line counts
        ("advection", "advection", {}),
    ],
)
def test_tolerant_parse(text, family, coefficients):
    got = parse_answer(text)
    assert got == Identified(family, coefficients, True, got.text)


@pytest.mark.parametrize(
    "text",
    ["", "   ", "nu=0.01", "burgers nu", "burgers nu=", "burgers nu=abc", "burgers nu=0.01 nu=0.02",
     "burgers nu=0.01x", "burgers nu=1e999", "burgers=1", "3burgers nu=1", "burgers nu=0.01 trailing words"],
)  # fmt: skip
def test_malformed_answers_are_invalid_not_errors(text):
    assert parse_answer(text) == Identified(None, {}, False, parse_answer(text).text)


# ---- prompt and completion ids ------------------------------------------------------------------------------
@pytest.mark.parametrize("encoding", ["bins", "sme"])
def test_round_trip_prompt_completion_parse(fieldsets, encoding):
    fmt = PdeIdentification(frames=3, time_stride=2, space_stride=2, windows_per_trajectory=2)
    sci = _sci(fmt, fieldsets, encoding)
    for fs in fieldsets.values():
        for row in fs.split("test"):
            truth = fmt.coefficients(row, fs.meta)
            assert set(truth) == set(fs.meta.varying) and len(truth) == 1
            examples = fmt.training_examples(row, fs.meta, sci, np.random.default_rng(0))
            assert len(examples) == 2 and len({e.meta["start"] for e in examples}) == 2
            traj = fmt.trajectory(row, fs.meta)
            for ex in examples:
                # the completion is the family and its coefficients within 4 significant digits, then EOS
                assert ex.completion[-1] == sci.eos_id and sci.eos_id not in ex.completion[:-1]
                got = fmt.parse(ex.completion, sci)
                assert got.valid and got.family == fs.meta.family
                for k, v in truth.items():
                    assert abs(got.coefficients[k] - v) <= 5e-4 * abs(v)
                # the prompt names the grid but no coefficient, and its field tokens are the frames
                local = sci.to_local(ex.prompt)
                first = int(np.flatnonzero(local >= 0)[0])
                text = sci.tokenizer.decode(ex.prompt[:first])
                assert text.startswith(fmt.prompt_text(fs.meta)) and not any(k in text for k in truth)
                block = local[first + sci.codec.header_length() :]
                scales = sci.codec.decode_header(local[first : first + sci.codec.header_length()])
                frames = traj[ex.meta["start"] : ex.meta["start"] + fmt.frames]
                decoded = sci.codec.decode_frames(block, fmt.frames, frames.shape[2:], scales)
                assert decoded.all_valid
                assert np.all(
                    np.abs(decoded.values - frames) <= sci.codec.encoding.max_error(frames, scales[0])
                )


def test_prompt_states_the_subsampled_grid(fieldsets):
    meta = fieldsets["heat"].meta  # nx=32 on [0, 1), 11 frames to t=0.5
    fmt = PdeIdentification(frames=2, time_stride=2, space_stride=4)
    assert fmt.prompt_text(meta) == "identify pde: dt=0.1 dx=0.125 frames 2:"


def test_truncated_and_garbage_completions_are_invalid(fieldsets):
    fmt = PdeIdentification(frames=2)
    sci = _sci(fmt, fieldsets)
    fs = fieldsets["burgers"]
    ex = fmt.training_examples(fs.split("test")[0], fs.meta, sci, np.random.default_rng(0))[0]
    eq = sci.tokenizer.convert_tokens_to_ids("=")
    cut = ex.completion[: ex.completion.index(eq)]  # " burgers nu" (no EOS): a name without a value
    assert not fmt.parse(cut, sci).valid
    assert fmt.parse(
        ex.completion[:1], sci
    ).valid  # just the family: parsable (scored as missing coefficients)
    rng = np.random.default_rng(1)
    for n in (0, 1, 5, 40):
        ids = rng.integers(0, len(sci), size=n).tolist()
        got = fmt.parse(ids, sci)
        assert isinstance(got, Identified) and (got.valid or got.family is None)


@pytest.fixture(scope="module")
def tiny_sci():
    tok = build_tiny_tokenizer(["identify pde: dt=0.1 dx=0.1 frames 4:", " burgers nu=0.01"] * 4)
    return ScienceTokenizer.extend(tok, FieldCodec(get_encoding("sme"), ["u"]))


@settings(max_examples=100, deadline=None)
@given(ids=st.lists(st.integers(0, 100_000), max_size=60))
def test_parse_never_raises_on_any_ids(tiny_sci, ids):
    ids = [i % len(tiny_sci) for i in ids]  # any id a model can emit
    assert isinstance(PdeIdentification().parse(ids, tiny_sci), Identified)


def test_eval_frames_are_the_first_frames(fieldsets):
    fs = fieldsets["advection"]
    fmt = PdeIdentification(frames=3, time_stride=3)
    row = fs.split("test")[0]
    expected = np.asarray(row["u"], dtype=np.float64)[::3][:3, None, :]  # [frames, C=1, x]
    np.testing.assert_array_equal(fmt.eval_frames(row, fs.meta), expected)


def test_option_and_data_errors(fieldsets):
    with pytest.raises(ConfigError, match="did you mean 'frames'"):
        get_task_format("pde_identification", frame=3)
    with pytest.raises(ConfigError, match="frames must be >= 1"):
        PdeIdentification(frames=0)
    fs = fieldsets["burgers"]
    with pytest.raises(ConfigError, match="time_stride=5, fewer than frames=4"):
        PdeIdentification(frames=4, time_stride=5).trajectory(fs.split("test")[0], fs.meta)
    steady = fs.meta.replace(coords={"x": fs.meta.coords["x"]})
    with pytest.raises(DataError, match="steady"):
        PdeIdentification().trajectory(fs.split("test")[0], steady)


# ---- mixtures ---------------------------------------------------------------------------------------------
def test_mixture_concatenates_every_family_and_names_each(fieldsets):
    fmt = PdeIdentification(frames=3, windows_per_trajectory=2)
    sci = _sci(fmt, fieldsets)
    parts = [(fs.split("train"), fs.meta) for fs in fieldsets.values()]
    mixed = build_mixture_examples(parts, fmt, sci, seed=0)
    n_train = [len(s) for s, _ in parts]
    assert len(mixed) == 2 * sum(n_train)
    assert np.bincount(mixed["source"]).tolist() == [2 * n for n in n_train]
    families = list(fieldsets)
    for src, completion in zip(mixed["source"], mixed["completion"]):
        assert fmt.parse(completion, sci).family == families[src]
    assert np.any(np.diff(np.asarray(mixed["source"])) < 0)  # shuffled, not one family after another
    capped = build_mixture_examples(parts, fmt, sci, seed=0, max_samples=5)
    assert len(capped) == 5


def test_mixture_refuses_data_sets_with_other_fields(fieldsets):
    fmt = PdeIdentification(frames=2)
    sci = _sci(fmt, fieldsets)
    fs = fieldsets["burgers"]
    two = fs.meta.replace(fields=["u", "v"], family="shallow_water")
    with pytest.raises(ConfigError, match=r"shallow_water has fields \['u', 'v'\]"):
        build_mixture_examples([(fs.split("train"), fs.meta), (fs.split("train"), two)], fmt, sci)
