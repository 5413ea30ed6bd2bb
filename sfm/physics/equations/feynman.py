"""The AI Feynman symbolic-regression benchmark: 100 physics formulas with sampling ranges.

The equations, ids (``I.6.20a`` is the Feynman Lectures volume I, chapter 6, equation 20a) and the uniform
sampling range of each variable are those of the AI Feynman benchmark (Udrescu & Tegmark, *Science Advances*
2020), which SRSD (Matsubara et al. 2022) re-uses with physically motivated ranges. They are kept in
``sfm/physics/equations/feynman.csv`` (written for sfm; formulas are facts), one row per equation::

    id,output,formula,variables
    I.10.7,m,m_0/sqrt(1-v**2/c**2),m_0:1:5 v:1:2 c:3:10

Formulas are read with the safe parser (:func:`.parser.parse`), restricted to the listed variables.
"""

from __future__ import annotations

import csv
import functools
import io
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
import sympy

from sfm.errors import DataError, UnknownNameError, did_you_mean
from sfm.physics.equations.numeric import evaluate
from sfm.physics.equations.parser import EquationError, parse

_COLUMNS = ["id", "output", "formula", "variables"]


@dataclass(frozen=True)
class FeynmanEquation:
    """One benchmark equation ``output = expr(variables)``.

    Attributes:
        id: Benchmark id, e.g. ``"I.6.2a"``.
        output: Name of the computed quantity (``"f"``, ``"F"``, ``"E_n"``...).
        formula: The formula text as the benchmark writes it.
        expr: The formula parsed to sympy.
        variables: ``(name, low, high)`` per input variable, in the benchmark's column order.
    """

    id: str
    output: str
    formula: str
    expr: sympy.Expr
    variables: tuple[tuple[str, float, float], ...]

    @property
    def names(self) -> tuple[str, ...]:
        """Variable names in column order."""
        return tuple(v[0] for v in self.variables)


def load_feynman(path: str | Path | None = None) -> list[FeynmanEquation]:
    """The Feynman equations, from the packaged CSV or from ``path`` (same columns).

    Raises:
        DataError: a malformed row (names the file and line).
    """
    if path is None:
        return list(_load_packaged())
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise DataError(f"cannot read Feynman equation file {path}: {err.strerror}") from None
    return _parse_csv(text, str(path))


def get_feynman(equation_id: str) -> FeynmanEquation:
    """The packaged equation with this id; an unknown id names the closest ones."""
    table = {eq.id: eq for eq in _load_packaged()}
    if equation_id not in table:
        raise UnknownNameError(f"unknown Feynman equation {equation_id!r}{did_you_mean(equation_id, table)}")
    return table[equation_id]


@functools.lru_cache(maxsize=1)
def _load_packaged() -> tuple[FeynmanEquation, ...]:
    # importlib.resources finds the file inside an installed wheel as well as in a source checkout. It sits
    # beside this module, not in a data/ folder: the repository's .gitignore ignores every "data/" folder,
    # and hatch leaves git-ignored files out of the wheel.
    ref = resources.files("sfm.physics.equations").joinpath("feynman.csv")
    return tuple(_parse_csv(ref.read_text(encoding="utf-8"), "sfm/physics/equations/feynman.csv"))


def _parse_csv(text: str, source: str) -> list[FeynmanEquation]:
    lines = [
        (i, line) for i, line in enumerate(text.splitlines(), 1) if line.strip() and not line.startswith("#")
    ]
    if not lines:
        raise DataError(f"{source}: no equations")
    header_no, header = lines[0]
    if next(csv.reader([header])) != _COLUMNS:
        raise DataError(f"{source}:{header_no}: header must be {','.join(_COLUMNS)}, got {header!r}")
    out: list[FeynmanEquation] = []
    seen: set[str] = set()
    for no, line in lines[1:]:
        row = next(csv.reader(io.StringIO(line)))
        if len(row) != len(_COLUMNS):
            raise DataError(f"{source}:{no}: expected {len(_COLUMNS)} columns, got {len(row)}")
        eq = _row(row, f"{source}:{no}")
        if eq.id in seen:
            raise DataError(f"{source}:{no}: duplicate equation id {eq.id!r}")
        seen.add(eq.id)
        out.append(eq)
    return out


def _row(row: list[str], where: str) -> FeynmanEquation:
    eq_id, output, formula, spec = (c.strip() for c in row)
    variables = []
    for item in spec.split():
        parts = item.split(":")
        try:
            name, low, high = parts[0], float(parts[1]), float(parts[2])
        except (IndexError, ValueError):
            raise DataError(f"{where}: variable {item!r} of {eq_id} is not name:low:high") from None
        if len(parts) != 3 or not low < high:
            raise DataError(f"{where}: variable {item!r} of {eq_id} needs name:low:high with low < high")
        variables.append((name, low, high))
    names = [v[0] for v in variables]
    try:
        expr = parse(formula, variables=names)
    except EquationError as err:
        raise DataError(f"{where}: formula of {eq_id}: {err}") from None
    unused = sorted(set(names) - {s.name for s in expr.free_symbols})
    if unused:
        raise DataError(f"{where}: {eq_id} lists variables its formula does not use: {', '.join(unused)}")
    return FeynmanEquation(eq_id, output, formula, expr, tuple(variables))


def sample_points(
    eq: FeynmanEquation, n: int, rng: np.random.Generator | int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Draw ``n`` inputs uniformly from the equation's ranges (as AI Feynman does) and compute the output.

    Args:
        eq: The equation.
        n: Number of points.
        rng: A numpy Generator or a seed.

    Returns:
        ``X`` of shape ``[n, len(eq.variables)]`` (columns in ``eq.names`` order) and ``y`` of shape ``[n]``,
        both float64.
    """
    if n < 1:
        raise DataError(f"sample_points: n must be >= 1, got {n}")
    rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    low = np.array([v[1] for v in eq.variables])
    high = np.array([v[2] for v in eq.variables])
    x = rng.uniform(low, high, size=(n, len(low)))
    y = evaluate(eq.expr, {name: x[:, j] for j, name in enumerate(eq.names)})
    return x, y
