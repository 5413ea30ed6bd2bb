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
from sfm.utils.sympy_eval import Unevaluable
from sfm.utils.sympy_eval import evaluate as _evaluate


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
    try:
        return _evaluate(expr, values)
    except Unevaluable as exc:
        if exc.symbol is not None:
            raise EquationError(
                f"no values given for variable {exc.symbol!r}{did_you_mean(exc.symbol, values)}"
            ) from None
        raise EquationError(f"cannot evaluate {type(exc.node).__name__} ({exc.node}) numerically") from None
