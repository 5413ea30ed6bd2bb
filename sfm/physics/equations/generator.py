"""Random expressions in the style of Lample & Charton (2019), "Deep learning for symbolic mathematics".

Drawing operators top-down at random favours shallow, unbalanced trees. Lample & Charton instead sample the
*shape* uniformly among unary-binary trees with ``n`` internal nodes, using the number ``D(e, n)`` of trees
with ``n`` internal nodes that can fill ``e`` empty slots::

    D(0, n) = 0            (n > 0)
    D(e, 0) = L**e
    D(e, n) = L*D(e-1, n) + p1*D(e, n-1) + p2*D(e+1, n-1)

Filling slots left to right (prefix order), the next internal node goes to slot ``k`` (the ``k`` slots before
it become leaves) with arity ``a`` with probability ``L**k * p_a * D(e-k-1+a, n-1) / D(e, n)``. With
``L = p1 = p2 = 1`` every shape is equally likely (``D(1, n)`` are the large Schröder numbers 2, 6, 22, 90);
``p1``/``p2`` tilt the shape towards unary or binary nodes. Labels are then drawn independently: operators by
their weights, leaves as variables (probability ``variable_prob``) or small integers and constants.

A sample is rejected and redrawn when it is useless for symbolic regression: it has no variable, is constant
on the sampling domain (``sin(x)**2 + cos(x)**2``), or is undefined or huge (> ``max_abs``) at any of
``n_check`` random points of the domain (``log(x - 5)`` on (0.1, 10)). Checking numerically on the tree is
~100x cheaper than ``sympy.simplify`` and catches exactly what matters: the function on the data's domain.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Mapping, Sequence

import numpy as np
import sympy

from sfm.errors import ConfigError, did_you_mean
from sfm.physics.equations.parser import EquationError
from sfm.physics.equations.prefix import from_prefix

_NP_UNARY = {
    "sin": np.sin, "cos": np.cos, "tan": np.tan, "asin": np.arcsin, "acos": np.arccos, "atan": np.arctan,
    "sinh": np.sinh, "cosh": np.cosh, "tanh": np.tanh, "exp": np.exp, "log": np.log, "sqrt": np.sqrt,
    "abs": np.abs, "pow2": np.square, "pow3": lambda a: a * a * a, "inv": lambda a: 1.0 / a, "neg": np.negative,
}  # fmt: skip
_NP_BINARY = {"add": np.add, "sub": np.subtract, "mul": np.multiply, "div": np.divide, "pow": np.power}
#: Default operator weights: arithmetic dominates, as in physical formulas; inverse trigonometric and
#: hyperbolic functions are available but off (weight 0) because they are rare and often undefined.
DEFAULT_UNARY = {
    "sin": 1.0,
    "cos": 1.0,
    "exp": 1.0,
    "log": 1.0,
    "sqrt": 1.0,
    "pow2": 2.0,
    "pow3": 1.0,
    "inv": 1.0,
}
DEFAULT_BINARY = {"add": 3.0, "sub": 2.0, "mul": 3.0, "div": 2.0}
MAX_OPS = 200  # D(e, n) grows like 6**n: floats overflow near n = 390; no formula needs 200 operators


def tree_counts(max_ops: int, *, leaves: float = 1.0, p1: float = 1.0, p2: float = 1.0) -> np.ndarray:
    """Table ``D[e, n]`` of Lample & Charton's recurrence for ``n <= max_ops`` (float64).

    ``D(1, n)`` with ``leaves = p1 = p2 = 1`` are the large Schröder numbers; with ``p1 = 0``, the Catalan
    numbers (binary trees only).
    """
    n_e = 2 * max_ops + 3  # D(e, n) needs D(e + 1, n - 1): keep enough e for every n up to max_ops
    d = np.zeros((n_e, max_ops + 1))
    d[:, 0] = leaves ** np.arange(n_e)
    for n in range(1, max_ops + 1):
        for e in range(1, n_e - 1):
            d[e, n] = leaves * d[e - 1, n] + p1 * d[e, n - 1] + p2 * d[e + 1, n - 1]
    return d


class ExpressionGenerator:
    """Samples random expressions with uniformly distributed tree shapes (Lample & Charton, 2019).

    Args:
        variables: Variable names used at leaves.
        n_ops: Number of internal nodes: an int, or ``(low, high)`` drawn uniformly per expression.
        unary: Unary operator weights (functions of :data:`FUNCTIONS`, ``pow2``, ``pow3``, ``inv``, ``neg``).
        binary: Binary operator weights (``add sub mul div pow``).
        integers: Integer leaves; ``constants``: constant leaves (``"pi"``).
        variable_prob: Probability that a leaf is a variable rather than an integer/constant.
        p1, p2: Shape weights of unary and binary nodes (1, 1: uniform over shapes).
        domain: Interval the variables are checked on; ``n_check`` points; ``max_abs``: largest allowed value.
        max_tries: Rejected draws allowed per expression before giving up.

    Example:
        >>> gen = ExpressionGenerator(variables=("x", "y"), n_ops=(2, 5))
        >>> exprs = gen.generate(3, seed=0)   # the same three expressions on every run
    """

    def __init__(
        self,
        *,
        variables: Sequence[str] = ("x",),
        n_ops: int | tuple[int, int] = (1, 6),
        unary: Mapping[str, float] | None = None,
        binary: Mapping[str, float] | None = None,
        integers: Sequence[int] = (1, 2, 3, 4, 5),
        constants: Sequence[str] = (),
        variable_prob: float = 0.75,
        p1: float = 1.0,
        p2: float = 1.0,
        domain: tuple[float, float] = (0.1, 10.0),
        n_check: int = 32,
        max_abs: float = 1e12,
        max_tries: int = 1000,
    ) -> None:
        self.variables = tuple(variables)
        if not self.variables:
            raise ConfigError("ExpressionGenerator: variables must name at least one variable")
        lo, hi = (n_ops, n_ops) if isinstance(n_ops, int) else n_ops
        if not 1 <= lo <= hi <= MAX_OPS:
            raise ConfigError(
                f"ExpressionGenerator: n_ops must satisfy 1 <= low <= high <= {MAX_OPS}, got {n_ops}"
            )
        self.n_ops = (int(lo), int(hi))
        self.unary = _weights("unary", DEFAULT_UNARY if unary is None else unary, _NP_UNARY)
        self.binary = _weights("binary", DEFAULT_BINARY if binary is None else binary, _NP_BINARY)
        p1 = p1 if self.unary[0] else 0.0  # no unary operator: shapes must not contain unary nodes
        p2 = p2 if self.binary[0] else 0.0
        if p1 <= 0 and p2 <= 0:
            raise ConfigError(
                "ExpressionGenerator: give at least one unary or binary operator a positive weight"
            )
        bad = [c for c in constants if c != "pi"]
        if bad:
            raise ConfigError(f"ExpressionGenerator: unknown constant {bad[0]!r}; known: pi")
        if not 0 < variable_prob <= 1:
            raise ConfigError(f"ExpressionGenerator: variable_prob must be in (0, 1], got {variable_prob}")
        self.constants: tuple[int | str, ...] = (*(int(i) for i in integers), *constants)
        self.variable_prob = float(variable_prob) if self.constants else 1.0
        if not domain[0] < domain[1]:
            raise ConfigError(
                f"ExpressionGenerator: domain must be (low, high) with low < high, got {domain}"
            )
        self.domain = (float(domain[0]), float(domain[1]))
        self.n_check, self.max_abs, self.max_tries = int(n_check), float(max_abs), int(max_tries)
        self.p = (p1, p2)
        self.counts = tree_counts(self.n_ops[1], p1=p1, p2=p2)
        self._cdf: dict[tuple[int, int], list[float]] = {}

    # -- shapes --------------------------------------------------------------------------------------------
    def _position_cdf(self, e: int, n: int) -> list[float]:
        """Cumulative probabilities of the 2e choices (k, arity) for e empty slots and n operators left."""
        cdf = self._cdf.get((e, n))
        if cdf is None:
            d, k = self.counts, np.arange(e)
            weights = np.concatenate([self.p[0] * d[e - k, n - 1], self.p[1] * d[e - k + 1, n - 1]])
            cdf = (np.cumsum(weights) / d[e, n]).tolist()  # cached: bisect on a list beats numpy per draw
            self._cdf[(e, n)] = cdf
        return cdf

    def _next_position(self, u: float, e: int, n: int) -> tuple[int, int]:
        """Map a uniform draw to (k, arity): the next internal node fills empty slot k with this arity."""
        choice = min(bisect.bisect_right(self._position_cdf(e, n), u), 2 * e - 1)  # min: float round-off
        return choice % e, 1 + choice // e

    def sample_shape(self, rng: np.random.Generator, n_ops: int) -> list[int]:
        """A uniformly drawn shape in prefix order: the arity of each node (0 for a leaf)."""
        tree: list[int | None] = [None]  # None marks an empty slot
        empty = 1  # empty slots at or after the current position
        filled_leaves = 0  # empty slots already passed over; they stay leaves
        for n, u in zip(range(n_ops, 0, -1), rng.random(n_ops).tolist()):
            k, arity = self._next_position(u, empty, n)
            filled_leaves += k
            slots = [i for i, v in enumerate(tree) if v is None]
            pos = slots[filled_leaves]
            tree[pos : pos + 1] = [arity] + [None] * arity
            empty += arity - 1 - k
        return [0 if v is None else v for v in tree]

    # -- labels, checks, sympy ---------------------------------------------------------------------------
    def _label(self, rng: np.random.Generator, shape: list[int]) -> list:
        out: list = []
        u = rng.random(2 * len(shape)).tolist()  # one draw for the kind, one for the pick
        for i, arity in enumerate(shape):
            u1, u2 = u[2 * i], u[2 * i + 1]
            if arity == 2:
                out.append(self.binary[1][_pick(self.binary[2], u1)])
            elif arity == 1:
                out.append(self.unary[1][_pick(self.unary[2], u1)])
            elif u1 < self.variable_prob:
                out.append(("var", self.variables[int(u2 * len(self.variables))]))
            else:
                out.append(("const", self.constants[int(u2 * len(self.constants))]))
        return out

    def _valid(self, labels: list, rng: np.random.Generator) -> bool:
        if not any(isinstance(t, tuple) and t[0] == "var" for t in labels):
            return False
        pts = dict(zip(self.variables, rng.uniform(*self.domain, size=(len(self.variables), self.n_check))))
        with np.errstate(all="ignore"):
            y = _fold(
                labels,
                lambda t: pts[t[1]] if t[0] == "var" else np.full(self.n_check, _num(t[1])),
                self.max_abs,
            )
        if y is None:
            return False
        return bool(np.ptp(y) > 1e-9 * max(1.0, float(np.max(np.abs(y)))))

    def sample_tokens(self, rng: np.random.Generator) -> list[str]:
        """Prefix tokens (:mod:`.prefix` vocabulary) of one valid expression, as drawn (not simplified).

        This is the fast path (no sympy): ``from_prefix`` of the result is what :meth:`sample` returns.

        Raises:
            ConfigError: no valid expression in ``max_tries`` draws (operators undefined on the domain?).
        """
        for _ in range(self.max_tries):
            n_ops = int(rng.integers(self.n_ops[0], self.n_ops[1] + 1))
            labels = self._label(rng, self.sample_shape(rng, n_ops))
            if self._valid(labels, rng):
                return _tokens(labels)
        raise ConfigError(
            f"ExpressionGenerator: no valid expression in {self.max_tries} draws; "
            f"widen the domain {self.domain} or change the operators"
        )

    def sample(self, rng: np.random.Generator) -> sympy.Expr:
        """One valid expression as sympy builds it (its automatic simplification applied).

        Raises:
            ConfigError: as :meth:`sample_tokens`.
        """
        for _ in range(self.max_tries):
            tokens = self.sample_tokens(rng)
            try:
                return from_prefix(tokens)
            except EquationError:
                # Exact arithmetic found it undefined where floats did not: log(sin(pi)) is log(1.2e-16)
                # in floats but log(0) = zoo in sympy. About 1 draw in 4000 with pi leaves; the
                # token stream (tokens=True) keeps such a draw, this one draws again.
                continue
        raise ConfigError(f"ExpressionGenerator: no valid expression in {self.max_tries} draws")

    def generate(self, count: int, *, seed: int = 0, start: int = 0, tokens: bool = False) -> list:
        """Expressions ``start .. start+count-1`` of the stream for ``seed``.

        Expression ``j`` uses its own generator seeded by ``(seed, j)``, so it does not depend on how the
        stream is split across calls or processes.

        Args:
            count: Number of expressions; ``seed``, ``start``: position in the stream.
            tokens: Return prefix token lists (fast, as drawn) instead of sympy expressions.
        """
        draw = self.sample_tokens if tokens else self.sample
        return [draw(np.random.default_rng([seed, j])) for j in range(start, start + count)]


def _weights(kind: str, weights: Mapping[str, float], known: Mapping) -> tuple[float, list[str], list[float]]:
    for name, w in weights.items():
        if name not in known:
            raise ConfigError(
                f"ExpressionGenerator: unknown {kind} operator {name!r}{did_you_mean(name, known)}"
            )
        if not w >= 0:
            raise ConfigError(f"ExpressionGenerator: weight of {name!r} must be >= 0, got {w}")
    names = [n for n, w in weights.items() if w > 0]
    w = np.array([weights[n] for n in names], dtype=float)
    total = float(w.sum())
    return total, names, (np.cumsum(w) / total).tolist() if total > 0 else []


def _pick(cdf: list[float], u: float) -> int:
    return min(bisect.bisect_right(cdf, u), len(cdf) - 1)


def _num(c: int | str) -> float:
    return float(np.pi) if c == "pi" else float(c)


def _tokens(labels: list) -> list[str]:
    """Prefix tokens of a labelled tree (built right to left, like :func:`_fold`)."""
    stack: list[list[str]] = []
    for t in reversed(labels):
        if isinstance(t, tuple):
            c = t[1]
            if t[0] == "var" or c == "pi":
                stack.append([c])
            else:
                stack.append(["INT-" if c < 0 else "INT+", *str(abs(c))])
        elif t in _NP_BINARY:
            a = stack.pop()
            stack.append([t, *a, *stack.pop()])
        elif t in ("pow2", "pow3"):  # generator sugar, written with prefix notation's own operators
            stack.append(["pow", *stack.pop(), "INT+", t[-1]])
        elif t == "inv":
            stack.append(["div", "INT+", "1", *stack.pop()])
        else:
            stack.append([t, *stack.pop()])
    return stack[0]


def _fold(labels: list, leaf: Callable[[tuple], np.ndarray], limit: float) -> np.ndarray | None:
    """Evaluate a labelled prefix list right to left with a stack of numpy arrays.

    Returns None as soon as any node (not only the root) is non-finite or above ``limit``: 1/(2/log(1) - y)
    is finite in floating point but undefined, and sympy turns it into ``zoo``.
    """
    stack: list[np.ndarray] = []
    for t in reversed(labels):
        if isinstance(t, tuple):
            stack.append(leaf(t))
            continue
        if t in _NP_BINARY:
            a = stack.pop()
            r = _NP_BINARY[t](a, stack.pop())
        else:
            r = _NP_UNARY[t](stack.pop())
        if not np.all(np.abs(r) <= limit):  # also False for NaN
            return None
        stack.append(r)
    return stack[0]
