"""Fit every curve of a sweep's results table, the joint law, and the derived answers, in one call.

:func:`fit_results` is what ``sfm scaling fit`` runs. It returns a plain dict: the settings, one entry per
curve (its :class:`~sfm.scaling.fit.PowerLawFit` under ``"fit"`` plus the answers derived from it), the joint
fits, the pretrained-vs-scratch efficiency, and the curves or fits that were skipped with the reason.
:func:`sfm.scaling.report.write_report` turns it into ``fit.json``, ``fit.csv`` and plots.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from typing import Any

import numpy as np

import sfm
from sfm.errors import DataError, UnknownNameError, did_you_mean
from sfm.scaling import _robust
from sfm.scaling.derived import compute_optimal, crossing, data_efficiency, reference_gains, x_for_target
from sfm.scaling.fit import fit_joint, fit_power_law
from sfm.scaling.table import (
    AXES,
    DEFAULT_GROUP_BY,
    JOINT_DATA,
    ResultsTable,
    check_arms,
    curve_id,
    group_rows,
    load_table,
)
from sfm.utils.provenance import git_hash, now_iso

# Columns that vary along a joint fit's (N, D) plane, so they cannot split its points into groups.
_JOINT_AXES = ("params", "data_size", "tokens", "steps", "compute", "model", "lora_rank")
# Columns that may differ between a pretrained curve and the scratch curve it is compared with (a LoRA
# model trains 1M parameters, the same architecture from scratch all of them).
_MODEL_COLUMNS = ("params", "lora_rank", "model")


def fit_results(
    table: Any,
    x: str = "data_size",
    metric: str = "nrmse",
    group_by: Sequence[str] | None = None,
    *,
    target_error: float | Sequence[float] | None = None,
    budget: float | Sequence[float] | None = None,
    joint_data: str = "tokens",
    n_bootstrap: int = 200,
    seed: int = 0,
    ci: float = 0.95,
    huber_delta: float = _robust.HUBER_DELTA,
    skip_degenerate: bool = False,
    reference: str | None = None,
) -> dict[str, Any]:
    """Fit ``metric = E_inf + A * x^-alpha`` per curve, the joint ``L(N, D)``, and the derived answers.

    Args:
        table: A CSV path, a sweep folder with ``cells.csv``, a column mapping, a list of row dicts, or a
            :class:`~sfm.scaling.table.ResultsTable`.
        x: The axis: ``data_size``, ``params``, ``compute`` (``6 * params * tokens``), ``steps`` or ``tokens``.
        metric: The error column (positive, lower is better).
        group_by: Columns whose values identify one curve; default: those held fixed along ``x``
            (:data:`~sfm.scaling.table.DEFAULT_GROUP_BY`).
        target_error: Error(s) to solve each curve for (the x needed to reach them).
        budget: FLOP budget(s) to split compute-optimally with each joint fit; requires one.
        joint_data: The D of the joint law: ``tokens`` (what ``C = 6 N D`` counts) or ``data_size``.
        n_bootstrap, seed, ci, huber_delta: Fitting settings (see :func:`~sfm.scaling.fit.fit_power_law`);
            each curve resamples with its own seed ``[seed, crc32(curve id)]``, stored with it.
        skip_degenerate: Record curves that cannot be fitted (too few points, flat) under ``"skipped"``
            instead of raising.
        reference: A reference arm (``fno``): every other arm's curve gets its efficiency and accuracy gains
            over it (:func:`~sfm.scaling.derived.reference_gains`) and their crossing point, under
            ``"reference"``. Arms other than ``pretrained``/``scratch`` are refused unless named here.

    Raises:
        SfmError: Unknown axis/metric/group column (with the closest name), bad values (naming the rows),
            a degenerate curve (unless ``skip_degenerate``), or a budget without any joint fit.
    """
    t = load_table(table)
    _check_names(t, x, metric, group_by, joint_data)
    check_arms(t, extra=(reference,) if reference else ())
    if reference and reference not in set(t.column("arm")):
        raise DataError(f"{t.source}: --reference {reference!r}: no rows of that arm")
    by = list(group_by) if group_by is not None else _default_group_by(t, x)
    xs, ys = t.positive(x, what="x column"), t.positive(metric, what="metric column")
    targets, budgets = _as_list(target_error), _as_list(budget)
    settings = {"x": x, "metric": metric, "group_by": by, "target_error": targets, "budget": budgets}
    settings |= {"joint_data": joint_data, "n_bootstrap": n_bootstrap, "seed": seed, "ci": ci}
    settings |= {"huber_delta": huber_delta, "source": t.source, "reference": reference}
    out: dict[str, Any] = {"settings": settings, "curves": [], "joint": [], "efficiency": [], "skipped": []}
    out["reference"] = []
    out["provenance"] = {"sfm_version": sfm.__version__, "git": git_hash(), "date": now_iso()}
    kw = {"n_bootstrap": n_bootstrap, "ci": ci, "huber_delta": huber_delta}
    for group, idx in group_rows(t, by):
        cid = curve_id(group)
        cseed = [int(seed), zlib.crc32(cid.encode())]
        try:
            fit = fit_power_law(xs[idx], ys[idx], seed=cseed, label=f"curve {cid}", x_name=x, **kw)
        except DataError as exc:
            if not skip_degenerate:
                raise
            out["skipped"].append({"what": "curve", "id": cid, "reason": str(exc)})
            continue
        rows = [t.rows[i] for i in idx]
        derived = [x_for_target(fit, e) for e in targets]
        out["curves"].append(
            {
                "id": cid,
                "group": group,
                "seed": cseed,
                "rows": rows,
                "fit": fit,
                "targets": derived,
                "baselines": _baselines(t, idx, metric),
            }
        )
    if not out["curves"]:
        raise DataError(
            f"{t.source}: no curve could be fitted: " + "; ".join(s["reason"] for s in out["skipped"])
        )
    out["efficiency"], unpaired = _efficiency(out["curves"], x)
    out["skipped"] += unpaired
    if reference:
        out["reference"], unmatched = _against_reference(out["curves"], reference, x)
        out["skipped"] += unmatched
    out["joint"] = _joint_fits(t, ys, by, joint_data, budgets, seed, out["skipped"], kw)
    return out


def _check_names(
    t: ResultsTable, x: str, metric: str, group_by: Sequence[str] | None, joint_data: str
) -> None:
    if x not in AXES:
        raise UnknownNameError(f"unknown x axis {x!r}{did_you_mean(x, AXES)}; known: {', '.join(AXES)}")
    if joint_data not in JOINT_DATA:
        raise UnknownNameError(
            f"unknown joint data axis {joint_data!r}{did_you_mean(joint_data, JOINT_DATA)}; "
            f"known: {', '.join(JOINT_DATA)}"
        )
    t.column(metric, what="metric column")
    t.column(x, what="x column")
    for c in group_by or ():
        t.column(c, what="group-by column")
        if c in (x, metric):
            raise DataError(
                f"group-by column {c!r} is the x axis or the metric; a curve cannot be split by it"
            )


def _default_group_by(t: ResultsTable, x: str) -> list[str]:
    # Columns absent or empty in every row (lora_rank of a sweep without LoRA) split nothing: leave them out.
    return [c for c in DEFAULT_GROUP_BY[x] if c in t.columns and any(_key_present(v) for v in t.columns[c])]


def _key_present(v: Any) -> bool:
    return not (v == "" or (isinstance(v, float) and np.isnan(v)))


def _as_list(v: float | Sequence[float] | None) -> list[float]:
    if v is None:
        return []
    return [float(e) for e in v] if isinstance(v, Sequence) and not isinstance(v, str) else [float(v)]


def _efficiency(curves: list[dict[str, Any]], x: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Pair each pretrained curve with the scratch curve of the same task and settings; compare them.

    The gain is in units of ``x``: with ``x = data_size`` it is the data efficiency of pretraining.
    """
    scratch = [c for c in curves if c["group"].get("arm") == "scratch"]
    pairs, notes = [], []
    for pre in (c for c in curves if c["group"].get("arm") == "pretrained"):
        match = _same(pre, scratch, drop=("arm",)) or _same(pre, scratch, drop=("arm", *_MODEL_COLUMNS))
        if len(match) != 1:
            why = (
                "no scratch curve"
                if not match
                else f"{len(match)} scratch curves ({', '.join(m['id'] for m in match)})"
            )
            notes.append({"what": "efficiency", "id": pre["id"], "reason": f"{why} to compare with"})
            continue
        scr = match[0]
        points = data_efficiency(pre["fit"], scr["fit"])
        pairs.append({"pretrained": pre["id"], "scratch": scr["id"], "x": x, "points": points})
    return pairs, notes


def _against_reference(
    curves: list[dict[str, Any]], reference: str, x: str
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Each non-reference curve against the reference arm's curve of the same task: EG, AG, crossing."""
    refs = [c for c in curves if c["group"].get("arm") == reference]
    out, notes = [], []
    for c in (c for c in curves if c["group"].get("arm") != reference):
        match = _same(c, refs, drop=("arm", *_MODEL_COLUMNS))
        if len(match) != 1:
            why = f"{len(match)} {reference} curves" if match else f"no {reference} curve"
            notes.append({"what": "reference", "id": c["id"], "reason": f"{why} to compare with"})
            continue
        ref = match[0]
        cross = crossing(c["fit"], ref["fit"])
        cross["lower_below"] = {"a": c["group"].get("arm"), "b": reference}.get(cross["lower_below"])
        cross["lower_above"] = {"a": c["group"].get("arm"), "b": reference}.get(cross["lower_above"])
        points = reference_gains(c["fit"], ref["fit"])
        out.append({"arm": c["id"], "reference": ref["id"], "x": x, "points": points, "crossing": cross})
    return out, notes


def _baselines(t: ResultsTable, idx: np.ndarray, metric: str) -> dict[str, float]:
    """Mean of each baseline's score (``<baseline>_<metric>`` columns of cells.csv) over a curve's rows:
    persistence and linear extrapolation are the floors a trained model has to beat."""
    out = {}
    for name in ("persistence", "linear"):
        col = f"{name}_{metric}"
        if col in t.columns:
            v = t.take(idx).numeric(col)
            if np.isfinite(v).any():
                out[name] = float(np.nanmean(v))
    return out


def _same(curve: dict[str, Any], others: list[dict[str, Any]], drop: tuple[str, ...]) -> list[dict[str, Any]]:
    key = {k: v for k, v in curve["group"].items() if k not in drop}
    return [o for o in others if {k: v for k, v in o["group"].items() if k not in drop} == key]


def _joint_fits(
    t: ResultsTable,
    ys: np.ndarray,
    by: list[str],
    joint_data: str,
    budgets: list[float],
    seed: int,
    skipped: list[dict[str, Any]],
    kw: dict[str, Any],
) -> list[dict[str, Any]]:
    """Fit ``L(N, D)`` per group of the non-axis columns (task, arm) where both N and D vary.

    A joint fit is attempted whenever the table allows one; when it cannot be made the reason is recorded,
    and it is an error only if a budget asked for it.
    """
    jby = [c for c in by if c not in _JOINT_AXES]
    fits = []
    for group, idx in group_rows(t, jby):
        gid = curve_id(group)
        jseed = [int(seed), zlib.crc32(f"joint:{gid}".encode())]
        if joint_data in t.columns and not np.isfinite(t.take(idx).numeric(joint_data)).any():
            why = f"no {joint_data} recorded (field models, continuous and operator, read no tokens)"
            if budgets:
                raise DataError(f"--budget needs a joint fit of params and {joint_data}, but {gid} has {why}")
            skipped.append({"what": "joint", "id": gid, "reason": why})
            continue
        try:
            N, D = t.take(idx).positive("params"), t.take(idx).positive(joint_data)
            joint = fit_joint(
                N, D, ys[idx], seed=jseed, label=f"joint fit {gid}", N_name="params", D_name=joint_data, **kw
            )
        except (DataError, UnknownNameError) as exc:
            if budgets:
                raise DataError(f"--budget needs a joint fit of params and {joint_data}, but {exc}") from None
            skipped.append({"what": "joint", "id": gid, "reason": str(exc)})
            continue
        optimal = [compute_optimal(joint, c) for c in budgets]
        if joint_data != "tokens":
            for o in optimal:  # C = 6 N D counts FLOPs per parameter per *token*
                o["note"] = (
                    f"D is {joint_data}, not tokens: the split assumes 6 FLOPs per parameter per unit of D"
                )
        fits.append({"id": gid, "group": group, "seed": jseed, "fit": joint, "compute_optimal": optimal})
    return fits
