"""Symbolic regression: recover formulas from points, scored beside baselines.

Examples come from ``options.equations``: ``feynman`` or ``generated``, or a mapping (or a list of them) of
:class:`~sfm.data.equations.EquationSpec` keys plus ``split`` -- Feynman equations default to every selected
equation (``split: all``; they are never trained on), generated ones to the ``test`` split of the cached
data set, whose formulas no training split holds. A prompt shows a formula's first ``num_points`` points;
the metrics are computed on ``num_eval_points`` held-out points drawn from the same ranges (seeded by
``eval_seed``, so every run scores the same points):

* ``r2``, ``r2_acc_099``, ``r2_acc_0999``, ``point_accuracy`` on the held-out points;
* ``symbolic_equiv`` (numeric checks on each formula's own ranges) and ``tree_edit_distance``.

A completion that does not read back as a formula scores as a failure everywhere (R² 0, distance 1), and
validity is the fraction that read back. Baselines fit the prompt's points, so they see what the model sees:
``constant`` (the mean of y) and ``linear_regression`` (least squares ``y ~ a + sum_j b_j x_j``); both are
sympy formulas, so every metric applies to them too.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from sfm.errors import ConfigError
from sfm.harness.compat import check_format
from sfm.harness.context import EvalContext
from sfm.harness.results import TaskResult
from sfm.harness.scoring import new_result, scores_of, sharded
from sfm.registry import BASELINES, FAMILIES

if TYPE_CHECKING:
    from sfm.harness.tasks import EvalTask

POINT_METRICS = ("r2", "r2_acc_099", "r2_acc_0999", "point_accuracy")
FORMULA_METRICS = ("symbolic_equiv", "tree_edit_distance")


@BASELINES.register("constant", family="symbolic_regression", description="the mean of the prompt's y")
def constant(X: np.ndarray, y: np.ndarray, names: list[str]) -> Any:
    """The formula ``mean(y)``."""
    import sympy

    return sympy.Float(float(np.mean(y)))


@BASELINES.register(
    "linear_regression", family="symbolic_regression", description="least-squares y ~ a + sum_j b_j x_j"
)
def linear_regression(X: np.ndarray, y: np.ndarray, names: list[str]) -> Any:
    """The least-squares affine formula ``a + sum_j b_j x_j`` of the prompt's points (``numpy.linalg.lstsq``:
    minimum-norm coefficients when columns are collinear)."""
    import sympy

    A = np.concatenate([np.ones((X.shape[0], 1)), X], axis=1)
    coef = np.linalg.lstsq(A, y, rcond=None)[0]
    return sympy.Float(float(coef[0])) + sum(
        (sympy.Float(float(b)) * sympy.Symbol(n) for b, n in zip(coef[1:], names)), sympy.Integer(0)
    )


@dataclass
class SymbolicOptions:
    """``options`` of a symbolic_regression task.

    Attributes:
        equations: ``feynman``, ``generated``, or mappings of :class:`~sfm.data.equations.EquationSpec`
            keys plus ``split`` (``all``, ``train``, ``validation``, ``test``).
        num_eval_points: Held-out points per formula for the point metrics.
        eval_seed: Seeds the held-out points.
        timeout: Seconds sympy may spend per formula in ``symbolic_equiv`` and ``tree_edit_distance``.
    """

    equations: Any = "feynman"
    num_eval_points: int = 256
    eval_seed: int = 1
    timeout: float = 2.0


@dataclass
class SymbolicSet:
    """Formulas to recover: the prompt's points and the held-out points of each.

    Attributes:
        ids, names, exprs: Per formula, its id, variable names and true sympy expression.
        X, y: Prompt points ``[num_points, d]`` and values. X_eval, y_eval: Held-out points and values.
        fingerprint: Identifies the formulas and points (the spec they came from).
    """

    ids: list[str]
    names: list[list[str]]
    exprs: list[Any]
    X: list[np.ndarray]
    y: list[np.ndarray]
    X_eval: list[np.ndarray]
    y_eval: np.ndarray
    bounds: list[dict[str, tuple[float, float]]] = field(default_factory=list)
    fingerprint: str = ""

    def __len__(self) -> int:
        return len(self.ids)


def options_of(task: EvalTask) -> tuple[SymbolicOptions, list[tuple[Any, str]]]:
    """The task's options, checked, and its equation sources as ``(EquationSpec, split)`` pairs."""
    from sfm.config import from_dict
    from sfm.data.equations import spec_from_dict

    where = f"{task.task}: options"
    opts = from_dict(SymbolicOptions, task.options, where=where)
    raw = opts.equations if isinstance(opts.equations, list) else [opts.equations]
    sources = []
    for i, item in enumerate(raw):
        item = {"source": item} if isinstance(item, str) else dict(item) if isinstance(item, dict) else None
        if item is None:
            raise ConfigError(f"{where}.equations[{i}]: expected 'feynman', 'generated' or a mapping")
        split = item.pop("split", "all" if item.get("source") == "feynman" else "test")
        if split not in ("all", "train", "validation", "test"):
            raise ConfigError(
                f"{where}.equations[{i}].split: expected all, train, validation or test, got {split!r}"
            )
        sources.append((spec_from_dict(item, where=f"{where}.equations[{i}]"), split))
    if opts.num_eval_points < 2:
        raise ConfigError(f"{where}.num_eval_points must be >= 2, got {opts.num_eval_points}")
    return opts, sources


def _equation_rows(spec: Any, split: str) -> list[dict[str, Any]]:
    from sfm.data.equations import ensure_equation_dataset, equation_rows

    if split == "all":
        return equation_rows(spec)
    ds = ensure_equation_dataset(spec)[split]
    return [ds[i] for i in range(len(ds))]


def build_symbolic_set(
    sources: list[tuple[Any, str]],
    fmt: Any,
    *,
    num_eval_points: int,
    eval_seed: int,
    limit: int | None = None,
) -> SymbolicSet:
    """The formulas of ``sources`` (in order, at most ``limit``) with prompt and held-out points."""
    from sfm.data.equations import sample_table
    from sfm.errors import DataError
    from sfm.physics.equations import parse

    rows = [r for spec, split in sources for r in _equation_rows(spec, split)][
        : limit if limit is not None else None
    ]
    if not rows:
        raise ConfigError("symbolic_regression: no formulas to evaluate")
    out = SymbolicSet([], [], [], [], [], [], np.zeros((len(rows), num_eval_points)))
    for i, row in enumerate(rows):
        names, X, y = fmt.table(row)
        expr = parse(str(row["expr"]), variables=names)
        low, high = np.asarray(row["low"], dtype=float), np.asarray(row["high"], dtype=float)
        held = sample_table(
            expr, names, low, high, num_eval_points, np.random.default_rng([eval_seed, i]), 1e300
        )
        if held is None:
            raise DataError(
                f"symbolic_regression: formula {row['id']} is undefined at held-out points of its ranges"
            )
        out.ids.append(str(row["id"]))
        out.names.append(names)
        out.exprs.append(expr)
        out.X.append(X[: fmt.num_points])
        out.y.append(y[: fmt.num_points])
        out.X_eval.append(held[0])
        out.y_eval[i] = held[1]
        out.bounds.append({n: (float(a), float(b)) for n, a, b in zip(names, low, high)})
    out.fingerprint = hashlib.sha256(
        json.dumps([[asdict(s), sp] for s, sp in sources] + [limit, num_eval_points, eval_seed]).encode()
    ).hexdigest()[:16]
    return out


def model_formulas(
    loaded: Any, fmt: Any, sset: SymbolicSet, *, batch_size: int, state: Any = None
) -> list[Any]:
    """The model's completions read back (:class:`~sfm.tasks.symbolic_regression.ParsedFormula` each)."""
    from sfm.harness import generate as gen  # attribute access: tests replace gen.generate

    sci = loaded.sci
    prompts = [fmt.prompt(n, X, y, sci) for n, X, y in zip(sset.names, sset.X, sset.y)]

    def part(idx: np.ndarray) -> list[list[int]]:
        mine = [prompts[i] for i in idx]
        return gen.generate(loaded, mine, max_new_tokens=fmt.max_answer_tokens, batch_size=batch_size)

    outs = sharded(part, len(prompts), state)
    return [fmt.parse(o, n, sci) for o, n in zip(outs, sset.names)]


def predicted_values(exprs: list[Any], sset: SymbolicSet) -> np.ndarray:
    """Each formula's values at its held-out points ``[n, num_eval_points]`` (NaN rows for None)."""
    from sfm.physics.equations import EquationError, evaluate

    out = np.full(sset.y_eval.shape, np.nan)
    for i, (e, X, names) in enumerate(zip(exprs, sset.X_eval, sset.names)):
        if e is None:
            continue
        # something evaluate() cannot compute counts as undefined everywhere (the row stays NaN)
        with contextlib.suppress(EquationError):
            out[i] = evaluate(e, {n: X[:, j] for j, n in enumerate(names)})
    return out


# Two formulas whose values differ by more than this (relative to max(|y|, max |y|, 1)) at a held-out point
# are different functions: evaluation round-off is ~1e-12, so 1e-3 never rejects an equivalent formula, and
# the decision skips sympy.simplify (seconds per formula) for the usual, clearly wrong, prediction.
_DIFFERENT = 1e-3


def _clearly_different(values: np.ndarray, sset: SymbolicSet) -> np.ndarray:
    """Per formula, True when its held-out values already show it is not the true function."""
    y = sset.y_eval
    scale = np.maximum(np.abs(y), np.maximum(1.0, np.abs(y).max(axis=1, keepdims=True)))
    with np.errstate(invalid="ignore"):
        off = ~(np.abs(values - y) <= _DIFFERENT * scale)  # NaN/inf predictions where y is finite count
    return off.any(axis=1)


def per_sample_scores(
    exprs: list[Any], sset: SymbolicSet, metrics: list[str], *, timeout: float
) -> dict[str, np.ndarray]:
    """Per-sample values of each metric for one predictor's formulas (None: not a formula)."""
    from sfm.metrics import get_metric

    out: dict[str, np.ndarray] = {}
    values = predicted_values(exprs, sset)
    for m in metrics:
        fn = get_metric(m)
        if m in POINT_METRICS:
            out[m] = np.asarray(fn(values, sset.y_eval), dtype=float)
        elif m == "symbolic_equiv":  # numeric checks on each formula's own ranges, not a generic box
            skip = _clearly_different(values, sset)
            out[m] = np.array(
                [
                    0.0 if no or e is None else fn([e], [t], timeout=timeout, domain=b)[0]
                    for e, t, b, no in zip(exprs, sset.exprs, sset.bounds, skip)
                ]
            )
        else:
            out[m] = np.asarray(fn(exprs, sset.exprs, timeout=timeout), dtype=float)
    return out


def _format(task: EvalTask) -> Any:
    """The task's format, checked to be a symbolic_regression one that scores only this family's metrics."""
    from sfm.tasks import get_task_format
    from sfm.tasks.symbolic_regression import SymbolicRegression

    fmt = get_task_format(task.task_format, **task.format)
    if not isinstance(fmt, SymbolicRegression):
        raise ConfigError(f"{task.task}: a symbolic_regression task needs task_format: symbolic_regression")
    unknown = [m for m in task.metrics if m not in POINT_METRICS + FORMULA_METRICS]
    if unknown:
        raise ConfigError(
            f"{task.task}: symbolic_regression scores {', '.join(POINT_METRICS + FORMULA_METRICS)}; "
            f"not {unknown}"
        )
    return fmt


@FAMILIES.register(
    "symbolic_regression",
    answers="symbolic_regression",
    needs_data=False,
    description="recover a formula from a table of its points",
)
def run(
    task: EvalTask, loaded: Any, ctx: EvalContext
) -> tuple[TaskResult, list[dict[str, Any]], dict[str, np.ndarray]]:
    """Run a symbolic_regression task: its result, per-sample rows, and no example arrays (see below)."""
    fmt = _format(task)
    check_format(task, loaded, fmt)
    opts, sources = options_of(task)
    sset = build_symbolic_set(
        sources,
        fmt,
        num_eval_points=opts.num_eval_points,
        eval_seed=opts.eval_seed,
        limit=ctx.limit_for(task),
    )
    formulas: dict[str, list[Any]] = {}
    parsed = []
    if loaded is not None:
        parsed = model_formulas(loaded, fmt, sset, batch_size=ctx.batch_size, state=ctx.state)
        formulas["model"] = [p.expr for p in parsed]
    for b in task.baselines:
        fn = BASELINES.get(b)
        formulas[b] = [fn(X, y, n) for X, y, n in zip(sset.X, sset.y, sset.names)]
    result = new_result(task, n_examples=len(sset), data_fingerprint=sset.fingerprint)
    per = {p: per_sample_scores(f, sset, task.metrics, timeout=opts.timeout) for p, f in formulas.items()}
    for p, vals in per.items():
        if p == "model":
            result.model = scores_of(vals, task.bootstrap, ctx.seed)
            result.validity = float(np.mean([x.valid for x in parsed]))
            result.validity_note = "fraction of the model's completions that read back as a formula"
        else:
            result.baselines[p] = scores_of(vals, task.bootstrap, ctx.seed)
    # No example arrays: the leaderboard plots predicted against true *fields*; a formula's values at its
    # held-out points are in the per-sample rows' metrics, its text in ``<predictor>_expr``.
    return result, _sample_rows(sset, formulas, parsed, per), {}


def _sample_rows(
    sset: SymbolicSet,
    formulas: dict[str, list[Any]],
    parsed: list[Any],
    per: dict[str, dict[str, np.ndarray]],
) -> list[dict[str, Any]]:
    from sfm.physics.equations import to_infix

    rows = []
    for i in range(len(sset)):
        row: dict[str, Any] = {"example": i, "id": sset.ids[i], "expr": to_infix(sset.exprs[i])}
        if parsed:
            row["model_words"] = " ".join(parsed[i].words)
            row["model_valid"] = parsed[i].valid
        for p, f in formulas.items():
            row[f"{p}_expr"] = to_infix(f[i]) if f[i] is not None else None
            row.update({f"{p}_{m}": float(v[i]) for m, v in per[p].items()})
        rows.append(row)
    return rows
