"""Evaluate a sympy expression on numpy arrays by walking its tree (no ``lambdify``, no generated code).

One evaluator for the formula language (``sfm.physics.equations.evaluate``) and the symbolic-regression
metrics (``sfm.metrics``), which sit side by side in the layer order and so cannot import each other; each
wraps :class:`Unevaluable` into its own error. Values outside a function's real domain (``log(-1)``,
``sqrt(-1)``) give NaN, sympy's principal branch restricted to the reals.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np


class Unevaluable(ValueError):
    """``expr`` cannot be computed: ``symbol`` has no values, or ``node`` is not a supported operation."""

    def __init__(self, symbol: str | None = None, node: Any = None) -> None:
        self.symbol, self.node = symbol, node
        super().__init__(f"no values for {symbol!r}" if symbol else f"cannot evaluate {type(node).__name__}")


def _ufuncs() -> dict[Any, Any]:
    import sympy  # lazy: core stays importable without paying for sympy

    return {
        sympy.sin: np.sin,
        sympy.cos: np.cos,
        sympy.tan: np.tan,
        sympy.asin: np.arcsin,
        sympy.acos: np.arccos,
        sympy.atan: np.arctan,
        sympy.sinh: np.sinh,
        sympy.cosh: np.cosh,
        sympy.tanh: np.tanh,
        sympy.exp: np.exp,
        sympy.log: np.log,
        sympy.Abs: np.abs,
    }


def evaluate(expr: Any, values: Mapping[str, Any]) -> np.ndarray:
    """Values of ``expr`` (float64), each symbol replaced by the array of the same name, broadcast together.

    Raises:
        Unevaluable: a symbol without values, or a node (an ``Eq``, an unknown function) it cannot compute.
    """
    arrays = {k: np.asarray(v, dtype=np.float64) for k, v in values.items()}
    shape = np.broadcast_shapes(*(a.shape for a in arrays.values())) if arrays else ()
    with np.errstate(all="ignore"):  # NaN/inf are the answer outside the domain, not a reason to warn
        out = _walk(expr, arrays, _ufuncs())
    return np.broadcast_to(np.asarray(out, dtype=np.float64), shape).copy()


def _walk(e: Any, values: Mapping[str, np.ndarray], ufuncs: dict[Any, Any]) -> np.ndarray | float:
    import sympy

    if e.is_Symbol:
        if e.name not in values:
            raise Unevaluable(symbol=e.name)
        return values[e.name]
    if e.is_Number or e.is_NumberSymbol:
        return float(e)
    args = [_walk(a, values, ufuncs) for a in e.args]
    if e.is_Add or e.is_Mul:
        out = args[0]
        for a in args[1:]:
            out = out + a if e.is_Add else out * a
        return out
    if e.is_Pow:
        return np.sqrt(args[0]) if e.args[1] == sympy.S.Half else np.power(args[0], args[1])
    func = ufuncs.get(type(e))
    if func is not None and len(args) == 1:
        return func(args[0])
    raise Unevaluable(node=e)
