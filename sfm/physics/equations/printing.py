"""One canonical binary tree for every sympy expression, and the infix printer built on it.

sympy stores ``x - y`` as ``Add(x, Mul(-1, y))`` and ``x/y`` as ``Mul(x, Pow(y, -1))``, with n-ary ``Add`` and
``Mul``. Both printers (infix here, prefix in :mod:`.prefix`) first rewrite an expression into the same small
binary tree, so they agree on every choice:

* n-ary ``Add``/``Mul`` become left-nested binary nodes; negative terms become ``sub``, factors with a
  negative numeric exponent (and the denominator of a rational coefficient) go under one ``div``;
* a negative coefficient becomes ``neg`` (``-2*x`` -> ``neg(mul(2, x))``), ``x**(1/2)`` becomes ``sqrt``;
* numbers are leaves: ``("int", n)``, ``("float", f)`` (sign included) and ``("pi",)``; a rational is
  ``div(int p, int q)``; ``E`` (Euler's number) is ``exp(1)``.

Reading such a tree back with sympy's constructors (what :func:`~.parser.parse` and
:func:`~.prefix.from_prefix` do) gives back an expression ``==`` to the original; the property tests check
this on random expressions and on every Feynman equation.
"""

from __future__ import annotations

import sympy

from sfm.physics.equations.parser import FUNCTIONS, EquationError, _is_double

# A node is (label, *children) for operators/functions, or a leaf: ("sym", name), ("int", n), ("float", f),
# ("pi",). Plain tuples keep the tree cheap to build and trivially comparable in tests.
Node = tuple
# sympy's function classes -> our names. sqrt is absent: sympy has no sqrt class (it is Pow(x, 1/2)).
_FUNC_OF_CLASS = {f: name for name, f in FUNCTIONS.items() if isinstance(f, type)}
_HALF = sympy.Rational(1, 2)

BINARY_OPS = ("add", "sub", "mul", "div", "pow")
UNARY_OPS = ("neg",)  # besides the functions


def canonical_tree(expr: sympy.Basic | int | float) -> Node:
    """Rewrite a sympy expression as the canonical binary tree described in the module docstring.

    Raises:
        EquationError: for sympy objects outside the formula language (``I``, ``oo``, ``Integral``, ...).
    """
    if isinstance(expr, int):
        expr = sympy.Integer(expr)
    elif isinstance(expr, float):
        expr = sympy.Float(expr)
    if isinstance(expr, sympy.Equality):
        return ("eq", canonical_tree(expr.lhs), canonical_tree(expr.rhs))
    return _tree(expr)


def _tree(e: sympy.Basic) -> Node:
    if e.is_Symbol:
        return ("sym", e.name)
    if e.is_Integer:
        return ("int", int(e))
    if e.is_Rational:
        p, q = int(e.p), int(e.q)
        node = ("div", ("int", abs(p)), ("int", q))
        return ("neg", node) if p < 0 else node
    if e.is_Float:
        if not _is_double(e):
            raise EquationError(f"cannot represent {e} as a double-precision number")
        return ("float", float(e))
    if e is sympy.pi:
        return ("pi",)
    if e is sympy.E:
        return ("exp", ("int", 1))
    if e.is_Add:
        return _add(e)
    if e.is_Mul:
        return _mul(e)
    if e.is_Pow:
        return _pow(e)
    name = _FUNC_OF_CLASS.get(type(e))
    if name is not None and len(e.args) == 1:
        return (name, _tree(e.args[0]))
    raise EquationError(f"cannot represent {type(e).__name__} ({e}) in the formula language")


def _negative(term: sympy.Expr) -> bool:
    coeff, _ = term.as_coeff_Mul()
    return bool(coeff.is_negative)


def _add(e: sympy.Add) -> Node:
    terms = list(e.as_ordered_terms())
    # Start with a positive term when there is one, so x - y prints as "x - y", not "-y + x".
    first = next((i for i, t in enumerate(terms) if not _negative(t)), 0)
    terms.insert(0, terms.pop(first))
    node = _tree(terms[0])
    for t in terms[1:]:
        node = ("sub", node, _tree(-t)) if _negative(t) else ("add", node, _tree(t))
    return node


def _mul(e: sympy.Mul) -> Node:
    coeff, rest = e.as_coeff_Mul()
    if coeff.is_negative:
        return ("neg", _tree(-e))  # -e has a positive coefficient, so this recurses once
    num: list[sympy.Expr] = []
    den: list[sympy.Expr] = []
    for f in sympy.Mul.make_args(rest):
        if f.is_Pow and f.exp.is_Number and f.exp.is_negative:
            den.append(sympy.Pow(f.base, -f.exp))
        else:
            num.append(f)
    if coeff.is_Rational:
        p = None if coeff.p == 1 else ("int", int(coeff.p))
        q = None if coeff.q == 1 else ("int", int(coeff.q))
    else:
        p, q = _tree(coeff), None
    # sympy distributes a number over a lone sum (2*(x + y) -> 2*x + 2*y), so a coefficient may join a
    # factor group only when that group is not a single Add; otherwise it is applied last, outside the
    # group: 5*(y - 4)/y**2 is mul(5, div(y - 4, y**2)), which reads back as Mul(5, y - 4, y**-2).
    late_p = p is not None and len(num) == 1 and num[0].is_Add
    late_q = q is not None and len(den) == 1 and den[0].is_Add
    top = _group(num, None if late_p else p)
    bottom = _group(den, None if late_q else q)
    node = top if bottom is None else ("div", top or ("int", 1), bottom)
    node = node or ("int", 1)
    if late_p:
        node = ("mul", p, node)
    if late_q:
        node = ("div", node, q)
    return node


def _group(factors: list[sympy.Expr], coeff: Node | None) -> Node | None:
    """Product of ``factors`` with the coefficient in front, as one binary chain (None if empty)."""
    nodes = [_tree(f) for f in factors]
    if not nodes:
        return coeff
    chain = _chain("mul", nodes)
    # mul(coeff, chain), not a chain starting with coeff: the pair (coeff, first factor) must never be
    # built alone, since the first factor may be a sum.
    return chain if coeff is None else ("mul", coeff, chain)


def _pow(e: sympy.Pow) -> Node:
    base, exp = e.args
    if exp.is_Number and exp.is_negative:
        return ("div", ("int", 1), _tree(sympy.Pow(base, -exp)))
    if exp == _HALF:
        return ("sqrt", _tree(base))
    return ("pow", _tree(base), _tree(exp))


def _chain(op: str, nodes: list[Node]) -> Node:
    node = nodes[0]
    for n in nodes[1:]:
        node = (op, node, n)
    return node


# -- infix --------------------------------------------------------------------------------------------------
# Binding strength of each printed form; a child binding less tightly than its slot needs parentheses.
_PREC = {"eq": 0, "add": 1, "sub": 1, "mul": 2, "div": 2, "neg": 3, "pow": 4}
_SYMBOL = {"add": "+", "sub": "-", "mul": "*", "div": "/", "pow": "**"}
_ATOM = 5


def _prec(node: Node) -> int:
    label = node[0]
    if label in ("int", "float"):
        return _PREC["neg"] if node[1] < 0 else _ATOM  # a signed number reads like a negation
    return _PREC.get(label, _ATOM)


def to_infix(expr: sympy.Basic | int | float) -> str:
    """Print an expression as infix text that :func:`~.parser.parse` reads back to an equal expression.

    Floats print with Python's shortest round-trip ``repr``, so ``parse(to_infix(e)) == e`` holds exactly
    for double-precision floats.

    Example:
        >>> import sympy
        >>> x, y = sympy.symbols("x y")
        >>> to_infix(x - 2*y/3 + sympy.sqrt(x))
        'sqrt(x) + x - 2*y/3'
    """
    return _infix(canonical_tree(expr))


def _infix(node: Node) -> str:
    label = node[0]
    if label == "sym":
        return node[1]
    if label == "int":
        return str(node[1])
    if label == "float":
        return repr(node[1])
    if label == "pi":
        return "pi"
    if label == "eq":
        return f"{_infix(node[1])} = {_infix(node[2])}"
    if label == "neg":
        child = node[1]
        inner = _infix(child)
        return f"-({inner})" if _neg_needs_parens(child) else f"-{inner}"
    if label in _SYMBOL:
        return _infix_binary(label, node[1], node[2])
    return f"{label}({_infix(node[1])})"


def _neg_needs_parens(child: Node) -> bool:
    """Whether "-" + child must wrap child: a sign binds only to the first operand of a product."""
    if _prec(child) <= _PREC["add"] or _prec(child) == _PREC["neg"]:
        return True
    # "-(a + b)/c" would read as (-(a + b))/c, and sympy distributes the sign over a + b: wrap the product
    # when its leftmost operand is a parenthesized sum.
    while child[0] in ("mul", "div"):
        child = child[1]
    return _prec(child) <= _PREC["add"]


def _infix_binary(label: str, left: Node, right: Node) -> str:
    prec = _PREC[label]
    if label == "pow":
        # Right-associative: (a**b)**c needs parentheses on the left; a negative base must be wrapped too.
        ls = _wrap(left, _prec(left) <= prec)
        rs = _wrap(right, _prec(right) < _ATOM)  # exponents other than atoms are wrapped for readability
        return f"{ls}**{rs}"
    # A left-nested chain (a + b - c + ..., a*b/c*...) is walked iteratively: a sum of thousands of terms
    # must not hit the recursion limit.
    parts = [(label, right)]
    while left[0] in _SYMBOL and left[0] != "pow" and _PREC[left[0]] == prec:
        parts.append((left[0], left[2]))
        left = left[1]
    text = _wrap(left, _prec(left) < prec)
    for op, operand in reversed(parts):
        rp = _prec(operand)
        # The right operand of - and / needs parentheses at equal binding (a - (b + c), a/(b*c)); a signed
        # operand is always wrapped, because "a*-b" and "a - -1" read badly.
        wrap = rp < prec or (rp == prec and op in ("sub", "div")) or rp == _PREC["neg"]
        sep = f" {_SYMBOL[op]} " if prec == _PREC["add"] else _SYMBOL[op]
        text += sep + _wrap(operand, wrap)
    return text


def _wrap(node: Node, parens: bool) -> str:
    text = _infix(node)
    return f"({text})" if parens else text
