"""Prefix notation: token sequences written out by hand, malformed sequences, the vocabulary."""

from __future__ import annotations

import pytest
import sympy

from sfm.physics.equations import EquationError, from_prefix, parse, prefix_vocabulary, to_infix, to_prefix

x, y = sympy.symbols("x y")


@pytest.mark.parametrize(
    ("text", "tokens"),
    [
        ("x - 2*y/3", "sub x div mul INT+ 2 y INT+ 3"),
        ("exp(-theta**2/2)", "exp neg div pow theta INT+ 2 INT+ 2"),
        ("0.01*u_xx", "mul <+> <N1000> <E-5> u_xx"),
        ("-0.5*x", "neg mul <+> <N5000> <E-4> x"),
        ("x - 0.25", "sub x <+> <N2500> <E-4>"),
        ("120", "INT+ 1 2 0"),
        ("-7", "INT- 7"),
        ("3/4", "div INT+ 3 INT+ 4"),
        ("-3/4", "neg div INT+ 3 INT+ 4"),
        ("x**(-2)", "div INT+ 1 pow x INT+ 2"),
        ("sqrt(x)", "sqrt x"),
        ("1/sqrt(x)", "div INT+ 1 sqrt x"),
        ("x**(3/2)", "pow x div INT+ 3 INT+ 2"),
        ("x**y", "pow x y"),
        ("2*pi*x", "mul INT+ 2 mul pi x"),
        ("exp(1)", "exp INT+ 1"),
        ("abs(x)", "abs x"),
        ("G*m1*m2/r**2", "div mul mul G m1 m2 pow r INT+ 2"),
        ("5*(y - 4)/y**2", "mul INT+ 5 div sub y INT+ 4 pow y INT+ 2"),
        ("F = m*a", "eq F mul a m"),
    ],
)
def test_prefix_tokens_written_by_hand(text, tokens):
    e = parse(text)
    assert to_prefix(e) == tokens.split()
    assert from_prefix(tokens.split()) == e


def test_from_prefix_reads_sub_and_div_a_model_may_emit():
    assert from_prefix(["sub", "x", "y"]) == x - y
    assert from_prefix(["div", "x", "add", "y", "INT+", "1"]) == x / (y + 1)
    assert from_prefix(["add", "x", "neg", "y"]) == x - y
    assert from_prefix(["INT+", "0", "7"]) == 7  # leading zeros are read, not refused


def test_plain_python_numbers_are_accepted():
    assert to_prefix(3) == ["INT+", "3"]
    assert to_prefix(0.5) == ["<+>", "<N5000>", "<E-4>"]
    assert to_infix(-2) == "-2"


@pytest.mark.parametrize(
    ("tokens", "message"),
    [
        ([], "empty prefix sequence"),
        (["add", "x"], "ends early: 'add' is missing operands"),
        (["sin"], "ends early: 'sin' is missing operands"),
        (["x", "y"], r"trailing tokens from position 1: \['y'\]"),
        (["add", "x", "y", "z"], "trailing tokens from position 3"),
        (["add", "x", "@"], "unknown token '@' at position 2"),
        (["add", "x", "foo("], "unknown token 'foo\\(' at position 2"),
        (["INT+"], "INT\\+ at position 0 is not followed by digits"),
        (["add", "5", "x"], "digit '5' at position 1 is not part of an INT"),
        (
            ["add", "eq", "x", "y"],
            "'eq' at position 1: an equation marker is allowed only as the first token",
        ),
        (["div", "x", "INT+", "0"], "undefined or complex"),
        (["div", "<+>", "<N1000>", "<E-3>", "<+>", "<N0000>", "<E0>"], "undefined or complex"),
        (["log", "INT+", "0"], "undefined or complex"),
        (["__import__"], "names starting with '__' are not allowed"),
        (["<+>", "<Nabc>", "<E0>"], "unknown token '<\\+>' at position 0 \\(not a number"),
        (["mul", "x", "<+>", "<N1000>"], "not a number"),
        (["pow", "INT+", "9", "pow", "INT+", "9", "INT+", "9"], "too large"),
        (["INT+", *("9" * 301)], "more than 300 digits"),
    ],
)
def test_malformed_sequences_are_refused(tokens, message):
    with pytest.raises(EquationError, match=message):
        from_prefix(tokens)


def test_variables_restrict_prefix_names():
    assert from_prefix(["add", "x", "y"], variables=["x", "y"]) == x + y
    with pytest.raises(EquationError, match=r"unknown variable 'z' at position 2 \(did you mean"):
        from_prefix(["add", "x", "z"], variables=["x", "y", "zz"])


@pytest.mark.parametrize(
    ("expr", "message"),
    [
        (sympy.Symbol("add") + 1, "variable name 'add' collides with a prefix-notation token"),
        (sympy.Symbol("pi") * 2, "collides"),
        (sympy.Symbol("x y"), "is not a plain identifier"),
        (sympy.I * x, "cannot represent"),
        (sympy.oo, "cannot represent"),
        (sympy.gamma(x), "cannot represent gamma"),
        (sympy.Function("f")(x), "cannot represent"),
        (sympy.Integral(x, x), "cannot represent Integral"),
        (sympy.log(x, 2) * sympy.Min(x, y), "cannot represent"),
    ],
)
def test_objects_outside_the_language_are_refused(expr, message):
    with pytest.raises(EquationError, match=message):
        to_prefix(expr)


def test_vocabulary_lists_every_non_number_token():
    vocab = prefix_vocabulary()
    assert vocab[:6] == ["add", "sub", "mul", "div", "pow", "neg"]
    for token in ["sin", "asin", "tanh", "sqrt", "abs", "log", "exp", "pi", "eq", "INT+", "INT-", "0", "9"]:
        assert token in vocab
    assert len(vocab) == len(set(vocab))
    # Every token to_prefix writes for a float-free expression is in the vocabulary.
    e = parse("F = -sqrt(abs(x))*exp(-x)/(3*pi) + asin(y)**2 - 120")
    with_vars = prefix_vocabulary(["F", "x", "y"])
    assert set(to_prefix(e)) <= set(with_vars)
    assert with_vars[-3:] == ["F", "x", "y"]
    with pytest.raises(EquationError, match="collides"):
        prefix_vocabulary(["sin"])
