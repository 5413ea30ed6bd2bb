"""Fuzzing the equation readers: infix text (``parser.parse``) and prefix tokens (``prefix.from_prefix``).

Formulas come from data files and from model generations, so the readers see hostile text. Allowed outcomes:
a sympy object, or one :class:`~sfm.errors.SfmError` (``EquationError``) with a one-line message. Never a
``RecursionError`` (the nesting depth is capped well below Python's limit), never a huge exact power, and never
Python ``eval``: the readers build sympy objects with constructors only, which the source check below holds.
"""

from __future__ import annotations

import ast
import os
from pathlib import Path

import pytest
import sympy
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sfm.errors import SfmError
from sfm.physics.equations import parser, prefix
from sfm.physics.equations.parser import MAX_LENGTH, EquationError, parse
from sfm.physics.equations.prefix import from_prefix, prefix_vocabulary

# SFM_FUZZ_EXAMPLES raises the count for a long local hunt; CI keeps the derandomized default.
FUZZ = settings(
    max_examples=int(os.environ.get("SFM_FUZZ_EXAMPLES", "300")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


def _one_line_error_or(call, expected=sympy.Basic) -> None:
    try:
        result = call()
    except SfmError as exc:
        message = str(exc)
        assert message.strip() and "\n" not in message, repr(message)
        return
    assert isinstance(result, expected), type(result)


# Pieces a formula is made of, so random strings are often nearly valid (deep in the grammar), mixed with
# raw characters that must be refused.
PIECES = [
    "x",
    "y",
    "u_t",
    "u_xx",
    "pi",
    "e",
    "E",
    "1",
    "0",
    "2",
    "9",
    "0.5",
    "1e308",
    "1e-320",
    "6.674e-11",
    "+",
    "-",
    "*",
    "/",
    "**",
    "^",
    "=",
    "==",
    "(",
    ")",
    " ",
    "sin(",
    "exp(",
    "log(",
    "sqrt(",
    "abs(",
    "ln(",
    "foo(",
    "__import__",
    "os.system",
    ",",
    "[",
    "'",
    ";",
    ":",
    "\\",
    "\x00",
    "٣",
    "\u00a0",
]
formula_like = st.lists(st.sampled_from(PIECES), max_size=40).map("".join)


@FUZZ
@given(text=st.one_of(formula_like, st.text(max_size=60)))
def test_parse_random_text(text: str) -> None:
    _one_line_error_or(lambda: parse(text))


@FUZZ
@given(raw=st.binary(max_size=60), codec=st.sampled_from(["latin-1", "utf-8"]))
def test_parse_random_bytes(raw: bytes, codec: str) -> None:
    """Bytes read from a file, decoded leniently (a reader may hand over replacement characters)."""
    _one_line_error_or(lambda: parse(raw.decode(codec, errors="replace")))
    _one_line_error_or(lambda: parse(raw))  # not even a string: refused, not crashed


@pytest.mark.parametrize(
    "text",
    [
        "(" * 4999 + "x" + ")" * 4999,  # deep parentheses, under the length cap
        "x" + "**x" * 3000,  # a right-associative tower
        "-" * 9000 + "x",  # unary signs nest too
        "sin(" * 2000 + "x" + ")" * 2000,
        "2^" * 3000 + "2",
        "(" * (MAX_LENGTH + 1),  # over the length cap
        "9**9**9",
        "(2*x)**10**9",
        "1" * 400,
    ],
    ids=[
        "parens",
        "power-tower",
        "signs",
        "functions",
        "caret-tower",
        "too-long",
        "huge-power",
        "huge-distrib",
        "long-number",
    ],
)
def test_hostile_formulas_are_refused_in_one_line(text: str) -> None:
    with pytest.raises(EquationError) as info:
        parse(text)
    assert "\n" not in str(info.value)


VOCAB = prefix_vocabulary(["x", "y"])
NUMBER_TOKENS = [
    "<+>",
    "<->",
    "<N1000>",
    "<N9999>",
    "<N0000>",
    "<E0>",
    "<E-5>",
    "<E308>",
    "<E-400>",
    "<E99999>",
]
prefix_tokens = st.lists(
    st.one_of(st.sampled_from(VOCAB + NUMBER_TOKENS), st.text(max_size=6)), min_size=0, max_size=30
)


@FUZZ
@given(tokens=prefix_tokens)
def test_from_prefix_random_tokens(tokens: list[str]) -> None:
    _one_line_error_or(lambda: from_prefix(tokens))


@pytest.mark.parametrize(
    "tokens",
    [
        ["neg"] * 20000 + ["x"],
        ["sin"] * 3000 + ["x"],
        ["add"] * 5000 + ["x"] * 5001,
        ["pow"] * 2000 + ["x"] * 2001,
        ["pow", "INT+", "9", "pow", "INT+", "9", "INT+", "9"],
        ["INT+"] + ["9"] * 400,
    ],
    ids=["neg-chain", "sin-chain", "long-sum", "pow-tower", "huge-power", "long-integer"],
)
def test_deep_prefix_sequences_do_not_crash(tokens: list[str]) -> None:
    _one_line_error_or(lambda: from_prefix(tokens))


@pytest.mark.parametrize("module", [parser, prefix])
def test_readers_never_call_eval(module) -> None:
    """No ``eval``/``exec``/``sympify``/``parse_expr`` call in the reader source: text is never executed."""
    tree = ast.parse(Path(module.__file__).read_text(encoding="utf-8"))
    # Bare calls, and methods of the same names (sympy.sympify, builtins.eval); re.compile is not one.
    bare = {"eval", "exec", "compile", "sympify", "parse_expr", "S", "__import__"}
    methods = {"eval", "exec", "sympify", "parse_expr", "S"}
    calls = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in bare:
            calls.add(node.func.id)
        elif (
            isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in methods
        ):
            calls.add(node.func.attr)
    assert not calls, calls
