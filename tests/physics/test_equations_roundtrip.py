"""Round trips on random expressions: parse(to_infix(e)) == e and from_prefix(to_prefix(e)) == e, exactly.

The expressions are built by hypothesis straight from sympy's constructors (independent of sfm's generator),
with every construct the formula language has: sums, products, quotients, integer, rational, float and
symbolic powers, the 13 functions, pi, E, negative and float coefficients.
"""

from __future__ import annotations

import math
from functools import partial

import numpy as np
import pytest
import sympy
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sfm.physics.equations import (
    EquationError,
    ExpressionGenerator,
    evaluate,
    from_prefix,
    parse,
    to_infix,
    to_prefix,
)
from sfm.physics.equations.sme import sme_tokens

SYMBOLS = [sympy.Symbol(n) for n in ("x", "y", "z", "u_xx", "theta1", "E_n")]
FUNCS = [
    sympy.sin, sympy.cos, sympy.tan, sympy.asin, sympy.acos, sympy.atan, sympy.sinh, sympy.cosh, sympy.tanh,
    sympy.exp, sympy.log, sympy.sqrt, sympy.Abs,
]  # fmt: skip
EXACT = partial(sme_tokens, digits=17)  # 17 significant digits: every double survives the trip

leaves = st.one_of(
    st.sampled_from(SYMBOLS),
    st.integers(-30, 30).map(sympy.Integer),
    st.tuples(st.integers(-9, 9), st.integers(1, 9)).map(lambda t: sympy.Rational(*t)),
    st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False).map(sympy.Float),
    st.floats(1e-12, 1e-3).map(sympy.Float),
    st.sampled_from([sympy.pi, sympy.E]),
)
_EXPONENTS = [sympy.Rational(1, 2), sympy.Rational(-1, 2), sympy.Rational(1, 3), sympy.Rational(3, 2)]


def _extend(children):
    symbolic = children.filter(lambda e: not e.is_Number)  # keeps number**number exponents small
    return st.one_of(
        st.tuples(children, children).map(lambda t: t[0] + t[1]),
        st.tuples(children, children).map(lambda t: t[0] - t[1]),
        st.tuples(children, children).map(lambda t: t[0] * t[1]),
        st.tuples(children, children).map(lambda t: t[0] * t[1] ** -1),  # t[0]/t[1] raises for Float/0.0
        st.tuples(children, st.integers(-4, 4)).map(lambda t: t[0] ** t[1]),
        st.tuples(children, st.sampled_from(_EXPONENTS)).map(lambda t: t[0] ** t[1]),
        st.tuples(children, st.sampled_from([sympy.Float(0.5), sympy.Float(-1.5), sympy.Float(2.25)])).map(
            lambda t: t[0] ** t[1]
        ),
        # 0**x is rewritten by sympy to 0**re(x), outside the formula language
        st.tuples(children.filter(lambda e: not e.is_zero), symbolic).map(lambda t: t[0] ** t[1]),
        st.tuples(st.sampled_from(FUNCS), children).map(lambda t: t[0](t[1])),
        st.tuples(st.integers(-5, 5), children, children).map(lambda t: t[0] * t[1] * t[2]),
    )


def _representable(e: sympy.Basic) -> bool:
    if e.has(sympy.zoo, sympy.nan, sympy.oo, -sympy.oo, sympy.I):
        return False
    # Floats must be doubles: sympy's Float has an unbounded exponent, so products of tiny floats can hold
    # values (7.4e-324) that a double rounds (to 1e-323); to_infix prints the double.
    return all(math.isfinite(float(f)) and sympy.Float(float(f)) == f for f in e.atoms(sympy.Float))


expressions = st.recursive(leaves, _extend, max_leaves=8).filter(_representable)


def _rebuilt(e: sympy.Basic) -> sympy.Basic:
    """``e`` rebuilt bottom-up by sympy's evaluating constructors: its canonical form."""
    return e if not e.args else e.func(*(_rebuilt(a) for a in e.args))


def _same(back: sympy.Basic, e: sympy.Basic) -> bool:
    # Exact equality, except for the rare non-canonical objects sympy's own evaluation creates (such as
    # Mul(1/9, Mul(3, sqrt(2)), 3**(3/4)) from a power of a number): those come back in canonical form.
    return back == e or back == _rebuilt(e)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(expressions)
def test_round_trips_are_exact(e):
    text = to_infix(e)
    assert _same(parse(text), e), text
    tokens = to_prefix(e, number_tokens=EXACT)
    assert _same(from_prefix(tokens), e), tokens
    # Default sme keeps 4 significant digits per float: exact when there are no floats.
    back = from_prefix(to_prefix(e))
    assert back.free_symbols <= e.free_symbols
    if not e.atoms(sympy.Float):
        assert _same(back, e)


@settings(max_examples=100, deadline=None)
@given(st.floats(allow_nan=False, allow_infinity=False))
def test_a_float_leaf_round_trips(v):
    f = sympy.Float(v)
    assert parse(to_infix(f)) == f
    assert float(from_prefix(to_prefix(f, number_tokens=EXACT))) == v
    if abs(v) < 1.797e308:  # above, 4-digit rounding overflows: an error, tested below
        approx = float(from_prefix(to_prefix(f)))
        assert abs(approx - v) <= 5e-4 * abs(v)


def test_a_float_rounded_past_the_double_range_is_an_error():
    with pytest.raises(EquationError, match="out of double-precision range"):
        from_prefix(to_prefix(sympy.Float(1.7976e308)))


def test_generated_expressions_round_trip_both_ways():
    gen = ExpressionGenerator(
        variables=("x", "y", "z"), n_ops=(1, 12), constants=("pi",), integers=(1, 2, 3, -2)
    )
    for e in gen.generate(300, seed=11):
        assert parse(to_infix(e)) == e
        assert from_prefix(to_prefix(e)) == e


def test_default_sme_values_stay_within_the_stated_precision():
    e = parse("0.012345678*x + 98765.4321*y**2")
    back = from_prefix(to_prefix(e))
    pts = {"x": np.linspace(1, 2, 5), "y": np.linspace(1, 2, 5)}
    np.testing.assert_allclose(evaluate(back, pts), evaluate(e, pts), rtol=5e-4)


def test_long_sums_do_not_hit_the_recursion_limit():
    e = sympy.Add(*[sympy.Symbol(f"x{i}") for i in range(1200)]) - sympy.Symbol("y")
    tokens = to_prefix(e)
    assert len(tokens) == 2 * 1201 - 1
    assert from_prefix(tokens) == e  # one n-ary Add, not 1200 re-flattenings
    text = to_infix(e)
    assert text.count(" + ") == 1199 and text.count(" - ") == 1
