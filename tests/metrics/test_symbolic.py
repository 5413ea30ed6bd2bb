"""Symbolic-regression metrics: golden values computed by hand, Zhang-Shasha against a brute force."""

from __future__ import annotations

import functools
import threading
import time

import numpy as np
import pytest
import sympy
from hypothesis import given, settings
from hypothesis import strategies as st

from sfm.errors import DataError
from sfm.metrics import compute
from sfm.metrics._sympy import Timeout as _Timeout
from sfm.metrics._sympy import evaluate as metrics_evaluate
from sfm.metrics._sympy import guarded as _guarded
from sfm.metrics._sympy import time_limit as _time_limit
from sfm.metrics.symbolic import (
    point_accuracy,
    r2,
    r2_accuracy_099,
    r2_accuracy_0999,
    symbolic_equivalence,
)
from sfm.metrics.tree_edit import expression_tree, tree_edit_distance, zhang_shasha
from sfm.physics.equations import EquationError, evaluate, parse
from sfm.registry import METRICS

TARGET = np.array([[1.0, 2.0, 3.0, 4.0]])


def _read(text: str | None):
    """A formula as the harness hands it to the metrics: parsed, or None where the text does not read."""
    try:
        return None if text is None else parse(text)
    except EquationError:
        return None  # mean 2.5, SS_tot = 2.25 + 0.25 + 0.25 + 2.25 = 5


# -- R² and accuracies -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("pred", "expected"),
    [
        ([1.0, 2.0, 3.0, 4.0], 1.0),
        ([1.0, 2.0, 3.0, 5.0], 0.8),  # SS_res = 1: 1 - 1/5
        ([2.5, 2.5, 2.5, 2.5], 0.0),  # predicting the mean
        ([1.0, 2.0, 3.0, 4.1], 1 - 0.01 / 5),
    ],
)
def test_r2_by_hand(pred, expected):
    np.testing.assert_allclose(r2(np.array([pred]), TARGET), [expected], rtol=1e-12)


def test_r2_floor_and_failures():
    reversed_ = np.array([[4.0, 3.0, 2.0, 1.0]])  # SS_res = 9 + 1 + 1 + 9 = 20: R² = 1 - 20/5 = -3
    assert r2(reversed_, TARGET)[0] == 0.0
    assert r2(reversed_, TARGET, floor=-np.inf)[0] == -3.0
    nan_pred = np.array([[1.0, np.nan, 3.0, 4.0]])
    assert r2(nan_pred, TARGET)[0] == 0.0
    assert r2(nan_pred, TARGET, floor=-np.inf)[0] == -np.inf
    assert r2(np.array([[1.0, np.inf, 3.0, 4.0]]), TARGET, floor=-1.0)[0] == -1.0
    flat = np.full((1, 4), 2.0)  # constant target: 1 if matched exactly, else the floor
    assert r2(flat, flat)[0] == 1.0
    assert r2(np.array([[2.0, 2.0, 2.0, 3.0]]), flat)[0] == 0.0


def test_r2_is_per_sample_and_vectorized():
    pred = np.array([[1.0, 2.0, 3.0, 4.0], [1.0, 2.0, 3.0, 5.0], [np.nan] * 4])
    target = np.repeat(TARGET, 3, axis=0)
    np.testing.assert_allclose(r2(pred, target), [1.0, 0.8, 0.0])
    assert compute("r2", pred, target) == pytest.approx(0.6)


def test_r2_accuracies_by_hand():
    pred = np.array(
        [[1.0, 2.0, 3.0, 4.1], [1.0, 2.0, 3.0, 4.05], [1.0, 2.0, 3.0, 5.0], [np.nan, 2.0, 3.0, 4.0]]
    )
    target = np.repeat(TARGET, 4, axis=0)
    # R² = 0.998, 0.9995, 0.8, failure
    assert r2_accuracy_099(pred, target).tolist() == [1.0, 1.0, 0.0, 0.0]
    assert r2_accuracy_0999(pred, target).tolist() == [0.0, 1.0, 0.0, 0.0]


def test_point_accuracy_by_hand():
    target = np.full((4, 20), 10.0)
    pred = target.copy()
    pred[0, 0] = 11.0  # exactly rtol * |y| away: counts as close; 20/20
    pred[1, 0] = 12.0  # 19/20 = 95%: passes
    pred[2, :2] = 12.0  # 18/20 = 90%: fails
    pred[3, :2] = [np.nan, 10.5]  # NaN point fails: 19/20 passes
    assert point_accuracy(pred, target).tolist() == [1.0, 1.0, 0.0, 1.0]
    assert point_accuracy(pred, target, fraction=1.0).tolist() == [1.0, 0.0, 0.0, 0.0]
    zero = np.zeros((1, 4))
    assert point_accuracy(zero + 1e-9, zero).tolist() == [0.0]  # y = 0 needs atol
    assert point_accuracy(zero + 1e-9, zero, atol=1e-6).tolist() == [1.0]


@pytest.mark.parametrize("fn", [r2, r2_accuracy_099, point_accuracy])
def test_point_metric_input_errors(fn):
    with pytest.raises(DataError, match="does not match"):
        fn(np.zeros((2, 3)), np.zeros((2, 4)))
    with pytest.raises(DataError, match=r"\(batch, n_points\)"):
        fn(np.zeros(4), np.zeros(4))
    with pytest.raises(DataError, match="target holds non-finite"):
        fn(np.zeros((1, 2)), np.array([[0.0, np.nan]]))


# -- symbolic equivalence --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("pred", "target", "expected"),
    [
        ("x*y", "y*x", 1.0),  # structurally equal
        ("(x + 1)**2", "x**2 + 2*x + 1", 1.0),  # simplify proves it
        ("sin(x)**2 + cos(x)**2", "1", 1.0),
        ("sqrt(x**2)", "x", 1.0),  # not for negative x: sympy refuses, the positive domain agrees
        ("0.333333333333*x", "x/3", 1.0),  # float noise below rtol
        ("3.14*x", "pi*x", 0.0),
        ("x + 1", "x", 0.0),
        ("x*y", "x*z", 0.0),
        ("y = x**2", "x**2", 1.0),  # an equation's right-hand side is compared
        ("x +", "x", 0.0),  # unreadable prediction: a failure
        (None, "x", 0.0),
        ("log(x)", "log(x) + 0*y", 1.0),
        ("sqrt(x - 10)", "sqrt(x - 10)*1", 1.0),
        ("sqrt(x - 10)", "sqrt(x - 20)", 0.0),  # undefined on the whole domain: no evidence, not equal
    ],
)
def test_symbolic_equivalence_cases(pred, target, expected):
    assert symbolic_equivalence([_read(pred)], [_read(target)]).tolist() == [expected]


def test_equivalence_domain_is_configurable():
    x = sympy.Symbol("x")
    assert symbolic_equivalence([sympy.sqrt(x**2)], [x], domain=(-5.0, -0.5)).tolist() == [0.0]
    assert symbolic_equivalence([sympy.sqrt(x**2)], [x], domain={"x": (1.0, 2.0)}).tolist() == [1.0]
    assert compute("symbolic_equiv", [x, x + 1], [x, x]) == 0.5


def test_symbolic_input_errors():
    x = sympy.Symbol("x")
    with pytest.raises(DataError, match=r"target 0 is text \('x \+'\).*sfm.physics.equations.parse"):
        symbolic_equivalence([x], ["x +"])  # text is the harness's to parse: metrics take sympy objects
    with pytest.raises(DataError, match="target 0 must be a sympy expression, got NoneType"):
        symbolic_equivalence([x], [None])
    with pytest.raises(DataError, match="2 predictions for 1 targets"):
        symbolic_equivalence([x, x], [x])
    with pytest.raises(DataError, match="single string"):
        tree_edit_distance("x", "x")
    with pytest.raises(DataError, match="pred 0 must be a sympy expression, got int"):
        symbolic_equivalence([3], [x])
    with pytest.raises(DataError, match="no formulas"):
        symbolic_equivalence([], [])


@pytest.mark.parametrize(
    "text",
    ["x*y + sin(x)/y", "sqrt(x - 3)", "log(x)**2 - exp(-y)", "Abs(x - 2)*tanh(y)", "(-8)**(x/3)", "pi*2"],
)
def test_the_metrics_evaluator_agrees_with_the_formula_language(text):
    """sfm.metrics may not import sfm.physics, so it walks expressions itself: same values, same NaNs."""
    rng = np.random.default_rng(0)
    values = {"x": rng.uniform(-4, 4, 50), "y": rng.uniform(0.5, 3, 50)}
    np.testing.assert_array_equal(metrics_evaluate(parse(text), values), evaluate(parse(text), values))


def test_time_limit_interrupts_and_is_skipped_off_the_main_thread():
    start = time.perf_counter()
    with pytest.raises(_Timeout), _time_limit(0.05) as guarded:
        assert guarded
        while True:
            pass
    assert time.perf_counter() - start < 2.0
    seen = []

    def worker():
        with _time_limit(0.05) as guarded:
            seen.append(guarded)

    t = threading.Thread(target=worker)
    t.start()
    t.join()
    assert seen == [False]


def test_guarded_refuses_large_expressions_and_survives_sympy_errors():
    x = sympy.Symbol("x")
    big = sum(sympy.sin(i * x) for i in range(1, 60))  # count_ops ~ 180
    assert _guarded(sympy.simplify, big, timeout=1.0, max_ops=100) is None

    def boom(expr):
        raise sympy.PolynomialError("internal")

    assert _guarded(boom, x, timeout=1.0, max_ops=100) is None
    assert _guarded(sympy.expand, (x + 1) ** 2, timeout=1.0, max_ops=100) == x**2 + 2 * x + 1


# -- tree edit distance ----------------------------------------------------------------------------------
def test_zhang_shasha_paper_example():
    # Zhang & Shasha (1989), Fig. 1: f(d(a, c(b)), e) -> f(c(d(a, b)), e) costs 2 (delete c, insert c).
    a = ("f", ("d", ("a",), ("c", ("b",))), ("e",))
    b = ("f", ("c", ("d", ("a",), ("b",))), ("e",))
    assert zhang_shasha(a, b) == 2
    assert zhang_shasha(b, a) == 2
    assert zhang_shasha(a, a) == 0
    assert zhang_shasha(("a",), ("b",)) == 1
    assert zhang_shasha(a, ("f",)) == 5  # delete five nodes
    assert zhang_shasha(("x",), a) == 6  # relabel the root, insert five


@functools.cache
def _forest_distance(f: tuple, g: tuple) -> int:
    """Edit distance between ordered forests by the textbook recursion on rightmost roots (exponential)."""
    if not f and not g:
        return 0
    if not f:
        w = g[-1]
        return _forest_distance(f, g[:-1] + w[1:]) + 1
    if not g:
        v = f[-1]
        return _forest_distance(f[:-1] + v[1:], g) + 1
    v, w = f[-1], g[-1]
    return min(
        _forest_distance(f[:-1] + v[1:], g) + 1,
        _forest_distance(f, g[:-1] + w[1:]) + 1,
        _forest_distance(f[:-1], g[:-1]) + _forest_distance(v[1:], w[1:]) + (v[0] != w[0]),
    )


trees = st.recursive(
    st.sampled_from("abc").map(lambda s: (s,)),
    lambda kids: st.tuples(st.sampled_from("abc"), st.lists(kids, min_size=1, max_size=3)).map(
        lambda t: (t[0], *t[1])
    ),
    max_leaves=5,
)


@settings(max_examples=150, deadline=None)
@given(trees, trees)
def test_zhang_shasha_equals_the_brute_force_recursion(a, b):
    assert zhang_shasha(a, b) == _forest_distance((a,), (b,))


def test_expression_tree_labels_like_srsd():
    x, y = sympy.symbols("x y")
    assert expression_tree(2 * x + sympy.sin(y)) == ("Add", ("Mul", ("Const",), ("x",)), ("sin", ("y",)))
    assert expression_tree(sympy.sqrt(2) * sympy.pi) == ("Const",)


@pytest.mark.parametrize(
    ("pred", "target", "expected"),
    [
        ("x*y", "y*x", 0.0),
        ("x + y", "x*y", 1 / 3),  # relabel Add -> Mul, of 3 target nodes
        ("x*y*z", "x*y", 1 / 3),  # delete z
        ("x", "sin(x)", 1 / 2),  # insert sin, of 2 target nodes
        ("sin(x)", "x", 1.0),  # 1 edit over a 1-node target
        ("2*pi*r", "6.2*r", 0.0),  # every number is one Const leaf
        ("exp(x)*log(y)*sinh(z)", "x", 1.0),  # capped at 1
        ("sin(x)**2 + cos(x)**2 + x", "x + 1", 0.0),  # SRSD simplifies both sides first
        (None, "x + 1", 1.0),
        ("x +", "x + 1", 1.0),
    ],
)
def test_tree_edit_distance_by_hand(pred, target, expected):
    assert tree_edit_distance([_read(pred)], [_read(target)])[0] == pytest.approx(expected)


def test_tree_edit_distance_without_simplification_sees_the_raw_tree():
    # Add(x, Pow(sin(x), 2), Pow(cos(x), 2)) vs Add(x, 1): 9 nodes vs 3, distance capped at 3 -> 1.
    assert (
        tree_edit_distance([_read("sin(x)**2 + cos(x)**2 + x")], [_read("x + 1")], simplify=False)[0] == 1.0
    )


def test_metrics_are_registered_with_their_metadata():
    for name, better, kind in [
        ("r2", True, "points"),
        ("r2_acc_099", True, "points"),
        ("r2_acc_0999", True, "points"),
        ("point_accuracy", True, "points"),
        ("symbolic_equiv", True, "symbolic"),
        ("tree_edit_distance", False, "symbolic"),
    ]:
        meta = METRICS.meta(name)
        assert meta["higher_is_better"] is better and meta["kind"] == kind and meta["aggregation"] == "mean"
        assert meta["description"]
