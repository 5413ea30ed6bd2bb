"""The safe infix parser: grammar and precedence against hand-built sympy, errors with columns, hostile input."""

from __future__ import annotations

import builtins
import contextlib
import math

import numpy as np
import pytest
import sympy
from hypothesis import given, settings
from hypothesis import strategies as st

from sfm.errors import SfmError
from sfm.physics.equations import EquationError, evaluate, parse
from sfm.physics.equations.parser import MAX_DEPTH, MAX_LENGTH

x, y, z = sympy.symbols("x y z")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "u_t + u*u_x - 0.01*u_xx",
            sympy.Symbol("u_t")
            + sympy.Symbol("u") * sympy.Symbol("u_x")
            - sympy.Float(0.01) * sympy.Symbol("u_xx"),
        ),
        (
            "G*m1*m2/r**2",
            sympy.Symbol("G") * sympy.Symbol("m1") * sympy.Symbol("m2") / sympy.Symbol("r") ** 2,
        ),
        (
            "exp(-theta**2/2)/sqrt(2*pi)",
            sympy.exp(-(sympy.Symbol("theta") ** 2) / 2) / sympy.sqrt(2 * sympy.pi),
        ),
        ("x^y", x**y),
        ("x^y^z", x ** (y**z)),  # right-associative, like Python's **
        ("x**y**z", x ** (y**z)),
        ("-x**2", -(x**2)),  # unary minus binds looser than **
        ("(-x)**2", x**2),
        ("2**-1", sympy.Rational(1, 2)),  # a signed exponent
        ("x*-y", -x * y),
        ("+x", x),
        ("--x", x),
        ("1/2", sympy.Rational(1, 2)),  # integers stay exact
        ("0.5", sympy.Float(0.5)),
        ("1e-3", sympy.Float(0.001)),
        ("6.674E-11", sympy.Float(6.674e-11)),
        ("1e+16", sympy.Float(1e16)),
        (".5", sympy.Float(0.5)),
        ("5.", sympy.Float(5.0)),
        ("ln(x)", sympy.log(x)),
        ("arcsin(x) + arccos(x) + arctan(x)", sympy.asin(x) + sympy.acos(x) + sympy.atan(x)),
        ("abs(x) + Abs(y)", sympy.Abs(x) + sympy.Abs(y)),
        ("sinh(x)*cosh(x)*tanh(x)*tan(x)", sympy.sinh(x) * sympy.cosh(x) * sympy.tanh(x) * sympy.tan(x)),
        ("pi", sympy.pi),
        ("e", sympy.Symbol("e")),  # not Euler's number: physics' elementary charge
        ("exp(1)", sympy.E),
        ("I + E", sympy.Symbol("I") + sympy.Symbol("E")),  # current and field, not sympy's I and E
        ("lambda * lambd", sympy.Symbol("lambda") * sympy.Symbol("lambd")),
        ("  x\t+\ny ", x + y),
        ("F = m*a", sympy.Eq(sympy.Symbol("F"), sympy.Symbol("m") * sympy.Symbol("a"), evaluate=False)),
        ("x = x", sympy.Eq(x, x, evaluate=False)),  # kept, not evaluated to True
    ],
)
def test_parse_builds_the_expected_sympy(text, expected):
    assert parse(text) == expected


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("2+3*4", 14),
        ("2*3**2", 18),
        ("-2**2", -4),
        ("(-2)**2", 4),
        ("2**3**2", 512),
        ("2^3^2", 512),
        ("8/2/2", 2),
        ("8-2-2", 4),
        ("8-(2-2)", 8),
        ("2*(3+4)-5/(1+4)", 13),
        ("-3 - -3", 0),
    ],
)
def test_precedence_and_associativity_match_arithmetic(text, value):
    assert parse(text) == value


def test_a_chain_keeps_its_structure():
    # Built as one n-ary Mul, 5*(y - 4)/y**2 is not distributed into (5*y - 20)/y**2.
    e = parse("5*(y - 4)/y**2")
    assert e == sympy.Mul(5, y - 4, y**-2)
    assert sympy.Add(5 * y, -20) not in e.args


def test_feynman_style_formula_evaluates_to_the_hand_computed_value():
    e = parse("exp(-theta**2/2)/sqrt(2*pi)")
    assert math.isclose(float(e.subs("theta", 1)), math.exp(-0.5) / math.sqrt(2 * math.pi), rel_tol=1e-15)


def test_variables_restrict_the_names_and_suggest_the_closest():
    assert parse("x1 + x2", variables=["x1", "x2"]) == sympy.Symbol("x1") + sympy.Symbol("x2")
    with pytest.raises(EquationError, match=r"unknown variable 'x3' \(did you mean 'x[12]'.*\) at column 6"):
        parse("x1 + x3", variables=["x1", "x2"])
    assert parse("pi*x1", variables=["x1"]) == sympy.pi * sympy.Symbol("x1")  # constants are always allowed


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("x.__class__", r"attribute access is not allowed: '\.' at column 2"),
        ("__import__('os')", r"names starting with '__' are not allowed: '__import__' at column 1"),
        ("x + __builtins__", r"names starting with '__' .* at column 5"),
        ("lambda: 1", r"':' is not allowed .* at column 7"),
        ("import os", r"expected an operator or the end, found 'os' at column 8"),
        ("'abc'", r"strings are not allowed: \"'\" at column 1"),
        ('"abc"', r"strings are not allowed"),
        ("x[0]", r"brackets/indexing are not allowed: '\[' at column 2"),
        ("log(x, 2)", r"commas are not allowed .* at column 6"),
        ("f(x)", r"unknown function 'f' at column 1"),
        ("sinn(x)", r"unknown function 'sinn' \(did you mean 'sin'.*\) at column 1"),
        ("sin x", r"function 'sin' needs an argument in parentheses at column 1"),
        ("x +", r"expected a number, name or '\(', found end of input at column 4"),
        ("(x + 1", r"expected '\)', found end of input at column 7"),
        ("x + 1)", r"expected an operator or the end, found '\)' at column 6"),
        ("2x", r"found 'x' at column 2"),
        ("x == y", r"use a single '=' for an equation at column 3"),
        ("a = b = c", r"only one '=' is allowed at column 7"),
        ("x; y", r"';' is not allowed .* at column 2"),
        ("x @ y", r"unexpected character: '@' at column 3"),
        ("θ + 1", r"unexpected character: 'θ' at column 1"),
        ("{x}", r"braces are not allowed"),
        ("x ** ", r"found end of input"),
        ("", r"formula is empty"),
        ("   ", r"formula is empty"),
        ("1/0", r"undefined or complex"),
        ("0/0", r"undefined or complex"),
        ("log(0)", r"undefined or complex"),
        ("sqrt(-1)", r"undefined or complex"),
        ("log(-1)", r"undefined or complex"),
        ("1e999", r"out of double-precision range"),
        ("1e308*10.0", r"overflows or underflows double precision"),
        ("1e-300*1e-300", r"overflows or underflows double precision"),
        ("9**9**9", r"exact power \(9\)\*\*\(387420489\) is too large"),
        ("sqrt(2)**1000000000", r"exact power .* is too large"),
        ("(2*x)**(10**9)", r"exact power .* is too large"),
        ("((2**100)**100)**100", r"exact power .* is too large"),
        ("1" * 400, r"number longer than 300 characters"),
    ],
)
def test_errors_say_what_and_where(text, message):
    with pytest.raises(EquationError, match=message) as info:
        parse(text)
    assert "\n" not in str(info.value)
    assert isinstance(info.value, SfmError)


def test_length_and_depth_limits():
    with pytest.raises(EquationError, match=f"the limit is {MAX_LENGTH}"):
        parse("x+" * (MAX_LENGTH // 2) + "x")
    assert parse("(" * MAX_DEPTH + "x" + ")" * MAX_DEPTH) == x
    with pytest.raises(EquationError, match=f"nested deeper than {MAX_DEPTH}"):
        parse("(" * (MAX_DEPTH + 1) + "x" + ")" * (MAX_DEPTH + 1))
    with pytest.raises(EquationError, match="nested deeper"):
        parse("-" * 500 + "x")
    with pytest.raises(EquationError, match="nested deeper"):
        parse("x**" * 500 + "x")
    with pytest.raises(EquationError, match="nested deeper"):
        parse("sin(" * 200 + "x" + ")" * 200)
    # A long flat chain is not nesting: 2000 terms parse fine.
    assert parse("+".join(["x"] * 2000)) == 2000 * x


def test_non_string_input_is_refused():
    with pytest.raises(EquationError, match="must be a string, got bytes"):
        parse(b"x + 1")


def _hostile(marker: str) -> list[str]:
    return [
        f"__import__('pathlib').Path({marker!r}).touch()",
        f"open({marker!r}, 'w').write('x')",
        f"exec(\"open({marker!r}, 'w')\")",
        f"eval(\"open({marker!r}, 'w')\")",
        "globals().__setitem__('SFM_PWNED', 1)",
        "setattr(__builtins__, 'SFM_PWNED', 1)",
        "().__class__.__bases__[0].__subclasses__()",
        "Symbol('x').__class__.__init__.__globals__",
        "lambda: __import__('os').system('true')",
        "[c for c in ().__class__.__base__.__subclasses__()]",
        "x if 1 else y",
        "f'{x}'",
        "\\x41",
    ]


def test_hostile_strings_are_rejected_and_nothing_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    marker = str(tmp_path / "PWNED")
    for text in _hostile(marker):
        with pytest.raises(EquationError):
            parse(text)
    assert not (tmp_path / "PWNED").exists()
    assert list(tmp_path.iterdir()) == []
    assert "SFM_PWNED" not in globals() and not hasattr(builtins, "SFM_PWNED")


def test_the_hostile_string_would_run_under_sympify(tmp_path):
    # Why sfm never hands user text to sympy: sympify evaluates it as Python and creates the file.
    marker = tmp_path / "PWNED"
    text = f"__import__('pathlib').Path({str(marker)!r}).touch()"
    with contextlib.suppress(Exception):  # whatever sympy makes of the result, the side effect has happened
        sympy.sympify(text)
    assert marker.exists()
    marker.unlink()
    with pytest.raises(EquationError):
        parse(text)
    assert not marker.exists()


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="xyz12.e+-*/^()= sincoxplgqrtab_,[]'", max_size=40))
def test_any_text_parses_or_raises_equation_error(text):
    try:
        result = parse(text)
    except EquationError:
        return
    assert isinstance(result, sympy.Basic)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=30))
def test_arbitrary_unicode_never_escapes_as_another_exception(text):
    with contextlib.suppress(EquationError):
        parse(text)


def test_evaluate_matches_numpy_and_hand_values():
    e = parse("x**2 + sin(y)/2 - exp(-x) + abs(y - 3) + log(x)*sqrt(y)")
    xs, ys = np.array([0.5, 1.0, 2.0]), np.array([1.0, 4.0, 9.0])
    expected = xs**2 + np.sin(ys) / 2 - np.exp(-xs) + np.abs(ys - 3) + np.log(xs) * np.sqrt(ys)
    np.testing.assert_allclose(evaluate(e, {"x": xs, "y": ys}), expected, rtol=1e-14)
    assert evaluate(parse("2*pi"), {"x": np.zeros(4)}).tolist() == [2 * math.pi] * 4  # constants broadcast
    assert evaluate(parse("x*y"), {"x": np.ones((2, 1)), "y": np.ones(3)}).shape == (2, 3)


def test_evaluate_gives_nan_outside_the_real_domain_and_names_missing_variables():
    out = evaluate(parse("log(x) + sqrt(x) + x**(1/3)"), {"x": np.array([-1.0, 8.0])})
    assert np.isnan(out[0]) and math.isclose(out[1], math.log(8) + math.sqrt(8) + 2.0)
    with pytest.raises(EquationError, match="no values given for variable 'y'"):
        evaluate(parse("x + y"), {"x": np.ones(2)})
    with pytest.raises(EquationError, match="cannot evaluate"):
        evaluate(parse("F = m*a"), {"m": 1.0, "a": 2.0, "F": 1.0})
