"""Equation data sets for symbolic regression: formulas with sampled points, as a ``datasets.DatasetDict``.

There is no field data here: a row is one formula and a table of points on which it was evaluated::

    id         "gen-0-17" or a Feynman id ("I.6.2a")
    expr       the formula in infix (exact: ``parse(expr)`` gives back the same sympy expression)
    prefix     the formula in prefix notation (space-separated, floats as 4-digit sme tokens; for reading)
    variables  input variable names, in column order
    low, high  per variable, the interval its points are drawn from (uniformly)
    X          the points, flattened row-major: ``num_points x len(variables)`` float64
    y          the formula's values at the points, ``num_points`` float64

Two sources, both seeded (the same :class:`EquationSpec` always gives the same rows):

* ``generated``: random formulas of :class:`~sfm.physics.equations.ExpressionGenerator` (Lample & Charton
  2019). Formulas that sympy writes identically are kept once, *before* the split, so no formula of the test
  split is ever trained on.
* ``feynman``: the AI Feynman equations (optionally a subset by id or by number of variables), each sampled
  on its benchmark ranges.

    spec = EquationSpec(source="generated", num_equations=2000, variables=["x_1", "x_2"])
    dd = ensure_equation_dataset(spec)          # built once under $SFM_HOME/data, then read back
    dd["train"][0]["expr"]
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from sfm.config import from_dict, sfm_home
from sfm.data.splits import SPLIT_FRACTIONS, split_indices
from sfm.errors import ConfigError, DataError
from sfm.utils.io import atomic_dir, atomic_write_json, read_json

# sympy (behind sfm.physics.equations, ~1 s), datasets and accelerate are imported where rows are made or
# read: sfm.training.recipe imports EquationSpec from here, and reading a recipe must stay fast.

SPEC_FILE = "equation_spec.json"
# Points per formula are drawn again this many times when one lands outside the formula's domain (a NaN) or
# above max_abs; a formula still undefined after that is dropped (the generator already checked 32 points).
_POINT_TRIES = 8


@dataclass
class EquationSpec:
    """What an equation data set holds (the recipe/eval-task mapping; every key is checked).

    Attributes:
        source: ``generated`` (random formulas) or ``feynman`` (the AI Feynman set).
        num_equations: Generated formulas before duplicates are removed.
        num_points: Points per formula.
        seed: Seeds formulas, points and the split.
        variables: Generated: the input variables (every formula's table has all of them as columns).
        n_ops: Generated: ``[low, high]`` operators per formula.
        unary: Generated: unary operator weights (None: the generator's defaults).
        binary: Generated: binary operator weights (None: the generator's defaults).
        domain: Generated: the interval every variable is drawn from.
        max_abs: Generated: largest ``|y|`` allowed at any point.
        ids: Feynman: only these equations (empty: all).
        max_variables: Feynman: only equations with at most this many variables.
        split_fractions: Train, validation, test fractions.
    """

    source: Literal["generated", "feynman"] = "generated"
    num_equations: int = 256
    num_points: int = 64
    seed: int = 0
    variables: list[str] = field(default_factory=lambda: ["x_1"])
    n_ops: list[int] = field(default_factory=lambda: [1, 5])
    unary: dict[str, float] | None = None
    binary: dict[str, float] | None = None
    domain: list[float] = field(default_factory=lambda: [0.1, 10.0])
    max_abs: float = 1e8
    ids: list[str] = field(default_factory=list)
    max_variables: int | None = None
    split_fractions: list[float] = field(default_factory=lambda: list(SPLIT_FRACTIONS))

    def __post_init__(self) -> None:
        if self.num_points < 1 or self.num_equations < 1:
            raise ValueError(
                f"num_points and num_equations must be >= 1, got {self.num_points}, {self.num_equations}"
            )
        if len(self.n_ops) != 2 or len(self.domain) != 2:
            raise ValueError(f"n_ops and domain must be [low, high], got {self.n_ops} and {self.domain}")
        if self.max_variables is not None and self.max_variables < 1:
            raise ValueError(f"max_variables must be >= 1, got {self.max_variables}")


def spec_from_dict(data: dict[str, Any], *, where: str = "equations") -> EquationSpec:
    """Build an :class:`EquationSpec` from plain data (YAML), strictly: unknown keys name the closest."""
    return from_dict(EquationSpec, data, where=where)


# ---- rows ---------------------------------------------------------------------------------------------------
def row_table(row: dict[str, Any]) -> tuple[list[str], np.ndarray, np.ndarray]:
    """``(variables, X [n, d], y [n])`` of a row, whatever the data set's output format (lists or numpy)."""
    names = [str(v) for v in row["variables"]]
    y = np.asarray(row["y"], dtype=np.float64).reshape(-1)
    X = np.asarray(row["X"], dtype=np.float64).reshape(y.size, len(names))
    return names, X, y


def _row(
    eq_id: str, expr: Any, names: list[str], low: np.ndarray, high: np.ndarray, X: np.ndarray, y: np.ndarray
) -> dict[str, Any]:
    from sfm.physics.equations import to_infix, to_prefix

    return {
        "id": eq_id, "expr": to_infix(expr), "prefix": " ".join(to_prefix(expr)), "variables": list(names),
        "low": low.tolist(), "high": high.tolist(), "X": X.reshape(-1).tolist(), "y": y.tolist(),
    }  # fmt: skip


def sample_table(
    expr: Any,
    names: list[str],
    low: np.ndarray,
    high: np.ndarray,
    n: int,
    rng: np.random.Generator,
    max_abs: float = np.inf,
) -> tuple[np.ndarray, np.ndarray] | None:
    """``n`` points drawn uniformly in ``[low, high]`` per variable and the formula's values there.

    Points where the formula is undefined or above ``max_abs`` are drawn again (up to a few rounds); returns
    None if some remain, so a formula that is undefined on much of its box is not kept.
    """
    from sfm.physics.equations import evaluate

    X = rng.uniform(low, high, size=(n, len(names)))
    y = evaluate(expr, {v: X[:, j] for j, v in enumerate(names)})
    for _ in range(_POINT_TRIES):
        bad = ~(np.abs(y) <= max_abs)  # also True for NaN
        if not bad.any():
            return X, y
        X[bad] = rng.uniform(low, high, size=(int(bad.sum()), len(names)))
        y[bad] = evaluate(expr, {v: X[bad, j] for j, v in enumerate(names)})
    return (X, y) if np.all(np.abs(y) <= max_abs) else None


def generated_rows(spec: EquationSpec) -> list[dict[str, Any]]:
    """Rows of ``spec.num_equations`` generated formulas, duplicates (same sympy expression) removed."""
    from sfm.physics.equations import ExpressionGenerator, to_prefix

    lo, hi = spec.domain
    gen = ExpressionGenerator(
        variables=tuple(spec.variables),
        n_ops=(spec.n_ops[0], spec.n_ops[1]),
        unary=spec.unary,
        binary=spec.binary,
        domain=(lo, hi),
        max_abs=spec.max_abs,
    )
    low, high = np.full(len(spec.variables), float(lo)), np.full(len(spec.variables), float(hi))
    seen: set[str] = set()
    rows = []
    for j, expr in enumerate(gen.generate(spec.num_equations, seed=spec.seed)):
        key = " ".join(to_prefix(expr))
        if key in seen:
            continue
        table = sample_table(
            expr,
            spec.variables,
            low,
            high,
            spec.num_points,
            np.random.default_rng([spec.seed, j, 1]),
            spec.max_abs,
        )
        if table is None:
            continue
        seen.add(key)
        rows.append(_row(f"gen-{spec.seed}-{j}", expr, spec.variables, low, high, *table))
    return rows


def feynman_rows(spec: EquationSpec) -> list[dict[str, Any]]:
    """Rows of the Feynman equations selected by ``spec.ids`` / ``spec.max_variables``, in benchmark order.

    Raises:
        UnknownNameError: an id that is not a Feynman equation (naming the closest ids).
    """
    from sfm.physics.equations import get_feynman, load_feynman

    eqs = [get_feynman(i) for i in spec.ids] if spec.ids else load_feynman()
    if spec.max_variables is not None:
        eqs = [e for e in eqs if len(e.variables) <= spec.max_variables]
    if not eqs:
        raise ConfigError(f"equations: no Feynman equation has at most {spec.max_variables} variables")
    rows = []
    for j, eq in enumerate(eqs):
        low = np.array([v[1] for v in eq.variables])
        high = np.array([v[2] for v in eq.variables])
        table = sample_table(
            eq.expr, list(eq.names), low, high, spec.num_points, np.random.default_rng([spec.seed, j, 1])
        )
        if table is None:
            raise DataError(f"Feynman {eq.id}: undefined at points of its own sampling ranges")
        rows.append(_row(eq.id, eq.expr, list(eq.names), low, high, *table))
    return rows


def equation_rows(spec: EquationSpec) -> list[dict[str, Any]]:
    """Every row of ``spec`` (all splits), in a fixed order."""
    return generated_rows(spec) if spec.source == "generated" else feynman_rows(spec)


# ---- data sets on disk --------------------------------------------------------------------------------------
def _features() -> Any:
    import datasets

    floats = datasets.Sequence(datasets.Value("float64"))
    return datasets.Features({
        "id": datasets.Value("string"), "expr": datasets.Value("string"), "prefix": datasets.Value("string"),
        "variables": datasets.Sequence(datasets.Value("string")), "low": floats, "high": floats,
        "X": floats, "y": floats,
    })  # fmt: skip


def build_equation_dataset(spec: EquationSpec, out: str | Path, *, overwrite: bool = False) -> Path:
    """Write the rows of ``spec`` as a ``DatasetDict`` (train/validation/test) into ``out``, atomically.

    Rows are split by a seeded permutation (:func:`sfm.data.splits.split_indices`); ``equation_spec.json``
    beside the data records the spec.

    Raises:
        ConfigError: fewer than 3 distinct formulas (every split needs one), or a bad spec.
        FileExistsError: ``out`` exists and is not empty, and ``overwrite`` is false.
    """
    import datasets

    from sfm.data.builder import progress_bars  # imports datasets

    rows = equation_rows(spec)
    if len(rows) < 3:
        raise ConfigError(f"equations: only {len(rows)} distinct formulas; raise num_equations or n_ops")
    idx = split_indices(len(rows), spec.seed, spec.split_fractions)
    features = _features()
    dd = datasets.DatasetDict(
        {s: datasets.Dataset.from_list([rows[i] for i in ids], features=features) for s, ids in idx.items()}
    )
    with atomic_dir(out, overwrite=overwrite) as tmp, progress_bars(False):
        dd.save_to_disk(str(tmp))
        atomic_write_json(tmp / SPEC_FILE, asdict(spec))
    return Path(out)


def load_equation_dataset(path: str | Path) -> Any:
    """Read a data set written by :func:`build_equation_dataset` (a ``datasets.DatasetDict``).

    Raises:
        DataError: the folder is missing or is not an equation data set.
    """
    import datasets

    path = Path(path)
    if not (path / SPEC_FILE).is_file():
        raise DataError(f"{path}: not an equation data set (no {SPEC_FILE})")
    try:
        dd = datasets.load_from_disk(str(path))
    except (FileNotFoundError, ValueError, OSError) as exc:
        raise DataError(f"{path}: cannot read the Arrow data ({str(exc).splitlines()[0]})") from None
    missing = [c for c in _features() if c not in dd["train"].column_names]
    if missing:
        raise DataError(f"{path}: not an equation data set (missing columns {', '.join(missing)})")
    return dd


def equation_dataset_path(spec: EquationSpec) -> Path:
    """The cache folder of ``spec``: ``$SFM_HOME/data/equations-<source>-<hash of the spec>``."""
    digest = hashlib.sha256(json.dumps(asdict(spec), sort_keys=True).encode()).hexdigest()[:10]
    return sfm_home() / "data" / f"equations-{spec.source}-{digest}"


def ensure_equation_dataset(spec: EquationSpec, path: str | Path | None = None) -> Any:
    """The data set of ``spec`` at ``path`` (default: its cache folder), built there first if missing.

    Under ``accelerate launch`` only the main process builds; the others wait, then read.

    Raises:
        DataError: ``path`` holds an equation data set built from another spec.
    """
    from accelerate import PartialState

    path = Path(path) if path is not None else equation_dataset_path(spec)
    state = PartialState()
    with state.main_process_first():
        if state.is_main_process and not (path / SPEC_FILE).is_file():
            try:
                build_equation_dataset(spec, path)
            except FileExistsError:
                raise DataError(f"{path}: exists and is not an equation data set (no {SPEC_FILE})") from None
    if read_json(path / SPEC_FILE) != json.loads(json.dumps(asdict(spec))):
        raise DataError(f"{path}: holds an equation data set of another spec ({SPEC_FILE} differs)")
    return load_equation_dataset(path)
