"""Evaluate a sympy expression on numpy arrays by walking its tree (no ``lambdify``, no generated code).

``sympy.lambdify`` writes Python source from the expression and ``exec``-s it; walking the tree is as fast for
the small formulas of symbolic regression (one vectorized numpy call per node) and keeps sfm free of any code
generation. Values outside a function's real domain (``log(-1)``, ``sqrt(-1)``, ``(-8)**(1/3)``) give NaN,
the same convention as sympy's principal branch restricted to the reals.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import sympy
from numpy.typing import ArrayLike

from sfm.errors import did_you_mean
from sfm.physics.equations.parser import EquationError

_UFUNCS = {
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


def evaluate(expr: sympy.Basic, values: Mapping[str, ArrayLike]) -> np.ndarray:
    """Values of ``expr`` (float64) with each symbol replaced by the array of the same name.

    Args:
        expr: An expression of the formula language.
        values: Arrays by variable name; they are broadcast together, and the result has their shape
            (a constant expression is broadcast to it too).

    Raises:
        EquationError: a symbol has no values, or the expression holds something the evaluator cannot
            compute (an ``Eq``, an unknown function).
    """
    arrays = {k: np.asarray(v, dtype=np.float64) for k, v in values.items()}
    shape = np.broadcast_shapes(*(a.shape for a in arrays.values())) if arrays else ()
    with np.errstate(all="ignore"):  # NaN/inf are the answer outside the domain, not a reason to warn
        out = _eval(expr, arrays)
    return np.broadcast_to(np.asarray(out, dtype=np.float64), shape).copy()


def _eval(e: sympy.Basic, values: Mapping[str, np.ndarray]) -> np.ndarray | float:
    if e.is_Symbol:
        try:
            return values[e.name]
        except KeyError:
            raise EquationError(
                f"no values given for variable {e.name!r}{did_you_mean(e.name, values)}"
            ) from None
    if e.is_Number or e.is_NumberSymbol:
        return float(e)
    if e.is_Add:
        out = _eval(e.args[0], values)
        for a in e.args[1:]:
            out = out + _eval(a, values)
        return out
    if e.is_Mul:
        out = _eval(e.args[0], values)
        for a in e.args[1:]:
            out = out * _eval(a, values)
        return out
    if e.is_Pow:
        base, exp = e.args
        if exp == sympy.S.Half:
            return np.sqrt(_eval(base, values))
        return np.power(_eval(base, values), _eval(exp, values))
    func = _UFUNCS.get(type(e))
    if func is not None and len(e.args) == 1:
        return func(_eval(e.args[0], values))
    raise EquationError(f"cannot evaluate {type(e).__name__} ({e}) numerically")
