"""The symbolic_regression task format and its equation data sets: points -> prompt, formula -> ids -> sympy."""

from __future__ import annotations

import numpy as np
import pytest
import sympy
from hypothesis import given, settings
from hypothesis import strategies as st

from sfm.data.equations import (
    EquationSpec,
    build_equation_dataset,
    ensure_equation_dataset,
    equation_rows,
    load_equation_dataset,
    row_table,
    spec_from_dict,
)
from sfm.errors import ConfigError, DataError, UnknownNameError
from sfm.metrics.symbolic import symbolic_equivalence
from sfm.models.backbones import build_tiny_tokenizer
from sfm.physics.equations import evaluate, parse, to_infix
from sfm.tasks import get_task_format
from sfm.tasks.symbolic_regression import ParsedFormula, SymbolicRegression
from sfm.tokenize.fields import FieldCodec
from sfm.tokenize.numbers import get_encoding
from sfm.tokenize.vocab import ScienceTokenizer
from sfm.training.examples import build_examples

GEN = EquationSpec(num_equations=30, num_points=24, seed=3, variables=["x_1", "x_2"], n_ops=[1, 4])
FEYN = EquationSpec(source="feynman", ids=["I.6.2a", "I.12.1", "I.10.7", "I.29.4"], num_points=24, seed=0)


def _float_row() -> dict:
    """A formula with float constants (the generator writes only integers), one with more than 4 digits."""
    expr = parse("-0.012345678*x**2 + 2.5e-3*exp(-x)", variables=["x"])
    X = np.linspace(0.5, 3.0, 24)[:, None]
    y = evaluate(expr, {"x": X[:, 0]})
    return {"id": "floats", "expr": to_infix(expr), "prefix": "", "variables": ["x"], "low": [0.5], "high": [3.0],
            "X": X.reshape(-1).tolist(), "y": y.tolist()}  # fmt: skip


@pytest.fixture(scope="module")
def rows():
    return equation_rows(GEN) + equation_rows(FEYN) + [_float_row()]


@pytest.fixture(scope="module")
def sci(rows):
    fmt = SymbolicRegression(num_points=16)
    corpus = [t for r in rows for t in fmt.texts(r)]
    return ScienceTokenizer.extend(
        build_tiny_tokenizer(corpus * 3), FieldCodec(get_encoding("sme", digits=4), ["y"])
    )


# ---- round trip ------------------------------------------------------------------------------------------
def test_round_trip_prompt_completion_parse(rows, sci):
    fmt = SymbolicRegression(num_points=16, examples_per_equation=3)
    enc = sci.codec.encoding
    for row in rows:
        names, X, y = row_table(row)
        truth = parse(row["expr"], variables=names)
        examples = fmt.training_examples(row, None, sci, np.random.default_rng(0))
        assert len(examples) == 3
        for k, ex in enumerate(examples):
            assert ex.completion[-1] == sci.eos_id and sci.eos_id not in ex.completion[:-1]
            got = fmt.parse(ex.completion, names, sci)
            assert got.valid, (row["expr"], got.error)
            if row["id"] == "floats":  # constants come back at sme precision (4 digits): equal to 1e-3
                assert symbolic_equivalence([got.expr], [truth], rtol=1e-3, domain=(0.5, 3.0))[0] == 1.0
                assert got.expr != truth
            else:  # integers and pi are exact
                assert got.expr == truth
            # the prompt is the text, then one <|frame|> group per point holding its x values and y
            local = sci.to_local(ex.prompt)
            first = int(np.flatnonzero(local >= 0)[0])
            assert sci.tokenizer.decode(ex.prompt[:first]) == fmt.prompt_text(names) + " "
            table = sci.codec.decode_frames(local[first:], fmt.num_points, (len(names) + 1,), np.ones(1))
            assert table.all_valid
            shown = np.concatenate([X, y[:, None]], axis=1)
            idx = np.arange(16) if k == 0 else None  # the first example shows the first points
            if idx is not None:
                expected = shown[idx]
                assert np.all(np.abs(table.values[:, 0] - expected) <= enc.max_error(expected))
            else:  # the others a subset of the row's points: each decoded point is one of them
                for point in table.values[:, 0]:
                    assert np.any(np.all(np.abs(point - shown) <= enc.max_error(shown), axis=1))


def test_sme_constants_are_single_codec_tokens(sci):
    fmt = SymbolicRegression(num_points=16)
    words = fmt.target_words(_float_row(), sci)
    ids = fmt.completion(words, sci)[:-1]
    for w in ("<N1235>", "<E-5>", "<+>", "<N2500>", "<E-6>"):  # 0.012345678 rounds to 4 digits
        assert w in words and sci.tokenizer.convert_tokens_to_ids(w) in ids
    assert fmt.words(ids, sci) == words


@pytest.mark.parametrize(
    ("words", "reason"),
    [
        (["add", "x_1"], "ends early"),
        (["add", "x_1", "x_2", "x_2"], "trailing"),
        (["mul", "x_1", "z"], "unknown variable 'z'"),
        (["sin"], "ends early"),
        (["<+>", "<N1000>"], ""),
        ([], "empty"),
        (["<|frame|>", "x_1"], ""),
    ],
)
def test_malformed_words_are_invalid(words, reason):
    got = SymbolicRegression().parse(words, ["x_1", "x_2"]) if words else None
    if got is None:
        got = SymbolicRegression().parse(np.array([], dtype=np.int64), ["x_1"], _SCI)
    assert isinstance(got, ParsedFormula) and not got.valid and got.expr is None and reason in got.error


_SCI = ScienceTokenizer.extend(
    build_tiny_tokenizer(["add x_1 sin"] * 4), FieldCodec(get_encoding("sme"), ["y"])
)


def test_truncated_completion_is_invalid(rows, sci):
    fmt = SymbolicRegression(num_points=16)
    row = rows[0]
    ex = fmt.training_examples(row, None, sci, np.random.default_rng(0))[0]
    assert not fmt.parse(ex.completion[:-3], row["variables"], sci).valid  # cut before the last operand


@settings(max_examples=60, deadline=None)
@given(ids=st.lists(st.integers(0, 10**6), max_size=40))
def test_parse_never_raises_on_any_ids(ids):
    ids = [i % len(_SCI) for i in ids]
    assert isinstance(SymbolicRegression().parse(ids, ["x_1"], _SCI), ParsedFormula)


def test_refusals(rows, sci):
    fmt = SymbolicRegression(num_points=16)
    bins = ScienceTokenizer.extend(
        build_tiny_tokenizer(["a b"] * 4), FieldCodec(get_encoding("bins", n_bins=15), ["y"])
    )
    with pytest.raises(ConfigError, match="encoding is 'bins'"):
        fmt.training_examples(rows[0], None, bins, np.random.default_rng(0))
    with pytest.raises(DataError, match="fewer than num_points=40"):
        SymbolicRegression(num_points=40).table(rows[0])
    bad = dict(rows[0], y=[float("nan"), *rows[0]["y"][1:]])
    with pytest.raises(DataError, match="non-finite"):
        fmt.table(bad)
    with pytest.raises(ConfigError, match="did you mean 'num_points'"):
        get_task_format("symbolic_regression", num_point=3)


# ---- equation data sets ----------------------------------------------------------------------------------
def test_rows_are_the_formula_at_points_in_range(rows):
    for row in rows:
        names, X, y = row_table(row)
        expr = parse(row["expr"], variables=names)
        low, high = np.asarray(row["low"]), np.asarray(row["high"])
        assert X.shape == (24, len(names)) and np.all(X - low >= 0) and np.all(high - X >= 0)
        np.testing.assert_allclose(y, evaluate(expr, {n: X[:, j] for j, n in enumerate(names)}), rtol=1e-12)
        assert " ".join(row["prefix"].split()) == row["prefix"]


def test_generated_rows_are_distinct_and_deterministic():
    a, b = equation_rows(GEN), equation_rows(GEN)
    assert a == b
    exprs = [sympy.srepr(parse(r["expr"], variables=r["variables"])) for r in a]
    assert len(set(exprs)) == len(exprs) and 15 < len(exprs) <= GEN.num_equations


def test_feynman_selection():
    assert [r["id"] for r in equation_rows(FEYN)] == FEYN.ids
    small = equation_rows(EquationSpec(source="feynman", max_variables=1, num_points=4))
    assert small and all(len(r["variables"]) == 1 for r in small)
    with pytest.raises(UnknownNameError, match=r"I.6.2z' \(did you mean .*'I.6.2a'"):
        equation_rows(EquationSpec(source="feynman", ids=["I.6.2z"]))


def test_data_set_splits_never_share_a_formula(tmp_path, monkeypatch):
    path = build_equation_dataset(GEN, tmp_path / "eq")
    dd = load_equation_dataset(path)
    splits = {s: {r["expr"] for r in dd[s]} for s in ("train", "validation", "test")}
    assert sum(len(v) for v in splits.values()) == len(equation_rows(GEN))
    assert not (splits["train"] & splits["test"]) and not (splits["train"] & splits["validation"])
    monkeypatch.setenv("SFM_HOME", str(tmp_path / "home"))
    cached = ensure_equation_dataset(GEN)  # built under $SFM_HOME, then read back
    assert [r["expr"] for r in cached["test"]] == [r["expr"] for r in dd["test"]]
    with pytest.raises(DataError, match="another spec"):
        ensure_equation_dataset(EquationSpec(num_equations=31), path)
    with pytest.raises(DataError, match="not an equation data set"):
        load_equation_dataset(tmp_path)


def test_spec_keys_are_checked():
    assert spec_from_dict({"source": "feynman", "ids": ["I.6.2a"]}).ids == ["I.6.2a"]
    with pytest.raises(ConfigError, match="did you mean 'num_points'"):
        spec_from_dict({"num_point": 3})
    with pytest.raises(ConfigError, match="source"):
        spec_from_dict({"source": "feyman"})


def test_training_examples_build_over_an_equation_split(tmp_path, sci):
    """The training data path: ``build_examples`` runs the task format over an equation split (no FieldMeta)."""
    dd = load_equation_dataset(build_equation_dataset(GEN, tmp_path / "eq"))
    fmt = SymbolicRegression(num_points=16, examples_per_equation=2)
    examples = build_examples(dd["train"], None, fmt, sci, seed=0)
    assert len(examples) == 2 * len(dd["train"])
    first = dd["train"][0]
    assert fmt.parse(examples[0]["completion"], first["variables"], sci).expr == parse(first["expr"])
