"""SRSD's normalized tree edit distance between a predicted and a true formula (Matsubara et al., 2022).

``tree_edit_distance`` (``kind="symbolic"``) takes sequences of sympy expressions, already parsed (see
:mod:`sfm.metrics.symbolic`); a ``None`` prediction scores 1. The distance is Zhang & Shasha's (1989) edit
distance with unit costs between SRSD's labelled trees of the two formulas.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from sfm.metrics._sympy import formula_pairs, guarded
from sfm.registry import METRICS

if TYPE_CHECKING:
    import sympy

Tree = tuple  # (label, child, child, ...)


def expression_tree(expr: sympy.Basic) -> Tree:
    """SRSD's labelled tree of a sympy expression: numbers are ``"Const"`` leaves, symbols their names,
    every other node its sympy class name (``Add``, ``Mul``, ``Pow``, ``sin``...) with sympy's n-ary args."""
    if expr.is_number:
        return ("Const",)
    if expr.is_Symbol:
        return (expr.name,)
    return (type(expr).__name__, *(expression_tree(a) for a in expr.args))


def _srsd_form(expr: sympy.Basic, simplify: bool, timeout: float | None) -> sympy.Basic:
    """The form SRSD compares: pi and every constant evaluated to floats, then factor + simplify."""
    import sympy

    expr = expr.xreplace({sympy.pi: sympy.Float(sympy.pi)}).evalf()
    if simplify:
        simplified = guarded(lambda e: sympy.factor(e).simplify(), expr, timeout, max_ops=500)
        expr = expr if simplified is None else simplified
    return expr.xreplace({sympy.Float(1.0): sympy.Integer(1)})  # 1.0*x -> x, as SRSD's subs(1.0, 1)


def _postorder(tree: Tree) -> tuple[list[str], list[int]]:
    """Labels in postorder and, per node, the postorder index of its leftmost leaf (0-based)."""
    labels: list[str] = []
    leftmost: list[int] = []

    def visit(node: Tree) -> int:
        first = None
        for child in node[1:]:
            lm = visit(child)
            first = lm if first is None else first
        labels.append(node[0])
        leftmost.append(len(labels) - 1 if first is None else first)
        return leftmost[-1]

    visit(tree)
    return labels, leftmost


def zhang_shasha(a: Tree, b: Tree) -> int:
    """Tree edit distance with unit costs (insert, delete, relabel) between ordered labelled trees.

    Zhang & Shasha (1989): dynamic programming over the "keyroots" (nodes with no left sibling path to
    their parent's leftmost leaf), O(|a| |b| min(depth, leaves)^2). Trees are ``(label, *children)``.
    """
    la, lma = _postorder(a)
    lb, lmb = _postorder(b)
    keys_a = _keyroots(lma)
    keys_b = _keyroots(lmb)
    td = np.zeros((len(la), len(lb)), dtype=np.int64)  # td[i, j]: distance of subtrees rooted at i and j
    for i in keys_a:
        for j in keys_b:
            _forest_distance(i, j, la, lma, lb, lmb, td)
    return int(td[-1, -1])


def _keyroots(leftmost: list[int]) -> list[int]:
    # The highest node (largest postorder index) for each distinct leftmost leaf, in increasing order.
    last = {lm: i for i, lm in enumerate(leftmost)}
    return sorted(last.values())


def _forest_distance(i, j, la, lma, lb, lmb, td) -> None:
    """Fill ``td`` for every subtree pair on the leftmost paths of keyroots ``i`` and ``j``."""
    i0, j0 = lma[i], lmb[j]
    m, n = i - i0 + 2, j - j0 + 2
    fd = np.zeros((m, n), dtype=np.int64)  # fd[x, y]: forest a[i0 .. i0+x-1] vs forest b[j0 .. j0+y-1]
    fd[:, 0] = np.arange(m)
    fd[0, :] = np.arange(n)
    for x in range(1, m):
        ai = i0 + x - 1
        for y in range(1, n):
            bj = j0 + y - 1
            delete, insert = fd[x - 1, y] + 1, fd[x, y - 1] + 1
            if lma[ai] == i0 and lmb[bj] == j0:  # both forests are whole trees: a relabel is possible
                relabel = fd[x - 1, y - 1] + (la[ai] != lb[bj])
                fd[x, y] = min(delete, insert, relabel)
                td[ai, bj] = fd[x, y]
            else:
                fd[x, y] = min(delete, insert, fd[lma[ai] - i0, lmb[bj] - j0] + td[ai, bj])


@METRICS.register(
    "tree_edit_distance",
    higher_is_better=False,
    aggregation="mean",
    kind="symbolic",
    description="SRSD normalized tree edit distance to the target formula (0 = same tree)",
    source="symbolic_regression",
)
def tree_edit_distance(
    pred: Sequence[Any], target: Sequence[Any], *, simplify: bool = True, timeout: float = 2.0
) -> np.ndarray:
    """Per-sample normalized tree edit distance of SRSD (Matsubara et al., 2022), in ``[0, 1]``.

    Both formulas are brought to SRSD's form (``pi`` and all numeric constants evaluated to floats, then
    ``factor`` + ``simplify`` under a ``timeout``-second guard, and ``1.0`` factors dropped), turned into
    labelled trees (:func:`expression_tree`: every number is one ``Const`` leaf, so fitted constants do not
    count), and compared with the Zhang-Shasha edit distance ``d`` (unit costs). The value is
    ``min(d, |target|) / |target|`` with ``|target|`` the target tree's node count; a missing or unreadable
    prediction scores 1.
    """
    out = np.ones(len(target))
    for i, (p, t) in enumerate(formula_pairs(pred, target, "tree_edit_distance")):
        if p is None:
            continue
        tree_t = expression_tree(_srsd_form(t, simplify, timeout))
        tree_p = expression_tree(_srsd_form(p, simplify, timeout))
        n_t = len(_postorder(tree_t)[0])
        out[i] = min(zhang_shasha(tree_p, tree_t), n_t) / n_t
    return out
