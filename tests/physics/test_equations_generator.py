"""The Lample & Charton generator: tree counts, uniform shapes, determinism, rejection, errors."""

from __future__ import annotations

import itertools
from collections import Counter

import numpy as np
import pytest
import sympy
from scipy import stats

from sfm.errors import ConfigError
from sfm.physics.equations import ExpressionGenerator, evaluate, from_prefix, tree_counts


def _shapes(n: int, unary: bool = True) -> set[tuple[int, ...]]:
    """Every unary-binary tree with n internal nodes, as prefix arity tuples (brute force)."""
    if n == 0:
        return {(0,)}
    out = set()
    if unary:
        out |= {(1, *s) for s in _shapes(n - 1, unary)}
    for k in range(n):
        for left, right in itertools.product(_shapes(k, unary), _shapes(n - 1 - k, unary)):
            out.add((2, *left, *right))
    return out


def test_counts_are_schroeder_and_catalan_numbers():
    d = tree_counts(6)
    assert d[1, :7].tolist() == [1, 2, 6, 22, 90, 394, 1806]  # large Schröder numbers
    assert tree_counts(6, p1=0)[1, :7].tolist() == [1, 1, 2, 5, 14, 42, 132]  # Catalan numbers
    # By hand: 2 empty slots, 1 operator: unary or binary in slot 1 or slot 2.
    assert d[2, 1] == 4
    assert d[0, 3] == 0 and d[3, 0] == 1
    assert [len(_shapes(n)) for n in range(1, 6)] == d[1, 1:6].tolist()
    # Weighted: D(e, 0) = L**e, and D(1, 1) = p1*L + p2*L**2.
    w = tree_counts(2, leaves=3.0, p1=2.0, p2=5.0)
    assert w[2, 0] == 9 and w[1, 1] == 2 * 3 + 5 * 9


def test_shapes_are_uniform():
    gen = ExpressionGenerator(n_ops=4)
    rng = np.random.default_rng(0)
    seen = Counter(tuple(gen.sample_shape(rng, 4)) for _ in range(9000))
    assert set(seen) == _shapes(4)  # 90 shapes, nothing else
    _, p = stats.chisquare(list(seen.values()))
    assert p > 1e-3, p


def test_binary_only_shapes_are_uniform_over_catalan_trees():
    gen = ExpressionGenerator(n_ops=3, unary={})
    rng = np.random.default_rng(1)
    seen = Counter(tuple(gen.sample_shape(rng, 3)) for _ in range(2000))
    assert set(seen) == _shapes(3, unary=False)  # 5 shapes
    _, p = stats.chisquare(list(seen.values()))
    assert p > 1e-3, p


def test_operator_weights_are_respected():
    gen = ExpressionGenerator(n_ops=5, unary={}, binary={"add": 3, "mul": 1}, variable_prob=1.0)
    ops = Counter(t for e in gen.generate(400, seed=0, tokens=True) for t in e if t in ("add", "mul"))
    share = ops["add"] / (ops["add"] + ops["mul"])
    assert abs(share - 0.75) < 0.03, share  # 2000 draws: 3 sigma is 0.029


def test_generation_is_deterministic_and_independent_of_chunking():
    gen = ExpressionGenerator(variables=("x", "y"), n_ops=(1, 8))
    a = gen.generate(30, seed=7)
    assert a == gen.generate(30, seed=7)
    assert gen.generate(10, seed=7, start=20) == a[20:]
    assert a != gen.generate(30, seed=8)
    tokens = gen.generate(30, seed=7, tokens=True)
    assert [from_prefix(t) for t in tokens] == a  # the sympy form is exactly the token form, evaluated


def test_generated_expressions_are_valid_on_the_domain():
    gen = ExpressionGenerator(variables=("x", "y"), n_ops=(1, 10), domain=(0.1, 10.0))
    rng = np.random.default_rng(3)
    pts = {v: rng.uniform(0.1, 10.0, 512) for v in ("x", "y")}
    for e in gen.generate(200, seed=1):
        assert e.free_symbols and {s.name for s in e.free_symbols} <= {"x", "y"}
        assert not e.has(sympy.zoo, sympy.nan, sympy.I)
        y = evaluate(e, pts)
        finite = np.isfinite(y)
        assert finite.mean() > 0.9  # checked on 32 points; undefined pockets elsewhere are rare
        assert np.ptp(y[finite]) > 0  # never constant


@pytest.mark.parametrize(
    ("labels", "valid"),
    [
        (["add", ("var", "x"), ("const", 1)], True),
        (["sub", "pow2", "sin", ("var", "x"), "pow2", "cos", ("var", "x")], True),
        (["add", "pow2", "sin", ("var", "x"), "pow2", "cos", ("var", "x")], False),  # = 1: constant
        (["log", "sub", ("var", "x"), ("const", 20)], False),  # undefined on (0.1, 10)
        (["inv", "sub", ("var", "x"), "div", ("const", 2), "log", ("const", 1)], False),  # 2/log(1): zoo
        (["add", ("const", 2), ("const", 3)], False),  # no variable
        (["exp", "exp", "exp", ("var", "x")], False),  # above max_abs
    ],
)
def test_rejection_rules(labels, valid):
    gen = ExpressionGenerator(domain=(0.1, 10.0))
    assert gen._valid(labels, np.random.default_rng(0)) is valid


def test_generator_tokens_use_the_prefix_vocabulary():
    gen = ExpressionGenerator(
        variables=("x",),
        unary={"pow2": 1, "pow3": 1, "inv": 1, "neg": 1, "sqrt": 1},
        integers=(-3, 2),
        n_ops=6,
    )
    for tokens in gen.generate(50, seed=2, tokens=True):
        e = from_prefix(tokens)  # raises on any token outside the vocabulary
        assert e.free_symbols == {sympy.Symbol("x")}


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"unary": {"sinn": 1}}, r"unknown unary operator 'sinn' \(did you mean 'sin'"),
        ({"binary": {"plus": 1}}, "unknown binary operator 'plus'"),
        ({"binary": {"add": -1}}, "weight of 'add' must be >= 0"),
        ({"unary": {}, "binary": {}}, "at least one unary or binary operator"),
        ({"n_ops": (5, 2)}, "n_ops must satisfy"),
        ({"n_ops": 0}, "n_ops must satisfy"),
        ({"n_ops": 500}, "n_ops must satisfy"),
        ({"variables": ()}, "at least one variable"),
        ({"constants": ("e",)}, "unknown constant 'e'"),
        ({"variable_prob": 0.0}, "variable_prob must be in"),
        ({"domain": (5.0, 1.0)}, "low < high"),
    ],
)
def test_bad_settings_are_config_errors(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        ExpressionGenerator(**kwargs)


def test_impossible_settings_give_up_with_a_config_error():
    # asin of anything built from x > 2 and the integer 3 is undefined: no draw can pass.
    gen = ExpressionGenerator(unary={"asin": 1}, binary={}, integers=(3,), domain=(2.0, 10.0), max_tries=50)
    with pytest.raises(ConfigError, match="no valid expression in 50 draws"):
        gen.generate(1, seed=0)
