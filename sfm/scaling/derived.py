"""Answers read off fitted laws: the x needed for a target error, a compute-optimal split, a data-efficiency gain.

Each answer is a plain dict (ready for JSON) with a point value from the fit, a percentile interval from the
bootstrap replicates (the same computation applied to every replicate), and ``"extrapolated": true`` when
the answer lies outside the range of x that was measured: a law fitted on 10-1000 trajectories says little
for certain about 10^6, and a reader must not mistake one for the other.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from sfm.errors import DataError
from sfm.scaling import _robust
from sfm.scaling.fit import JointFit, PowerLawFit


def x_for_target(fit: PowerLawFit, target: float) -> dict[str, Any]:
    """The x (data, parameters, compute...) at which the fitted curve reaches error ``target``.

    Solves ``E_inf + A x^-alpha = target``: ``x = (A / (target - E_inf))^(1/alpha)``. A target at or below the
    fitted floor ``E_inf`` is never reached: the value is then ``inf`` and ``reachable`` is false.

    Returns:
        ``{"target", "value", "interval", "reachable", "reachable_fraction", "extrapolated", "note"}``;
        ``reachable_fraction`` is the share of bootstrap replicates whose floor lies below the target.
    """
    target = _positive(target, "target error")
    value = float(fit.inverse(target))
    samples = fit.inverse_samples(target)
    reachable = bool(np.isfinite(value))
    out = {
        "target": target,
        "value": value,
        "interval": _interval(samples, fit.ci),
        "reachable": reachable,
        "reachable_fraction": float(np.isfinite(samples).mean()),
        "extrapolated": bool(fit.extrapolated(value)) if reachable else True,
    }
    out["note"] = _target_note(out, fit)
    return out


def _target_note(out: dict[str, Any], fit: PowerLawFit) -> str:
    if not out["reachable"]:
        return (
            f"unreachable: the target {out['target']:.4g} is at or below the fitted floor E_inf = {fit.E_inf:.4g}; "
            "more x alone does not get there"
        )
    lo, hi = fit.x_range
    if out["extrapolated"]:
        return f"extrapolated: outside the measured range [{lo:.4g}, {hi:.4g}]"
    return "within the measured range"


def compute_optimal(joint: JointFit, budget: float) -> dict[str, Any]:
    """Split a compute budget ``C = 6 N D`` FLOPs between model size N and data D to minimize ``L(N, D)``.

    Substituting ``D = C / (6N)`` and setting ``dL/dN = 0`` gives ``alpha A N^-alpha = beta B D^-beta``, so

        N_opt = G (C/6)^(beta/(alpha+beta)),   D_opt = G^-1 (C/6)^(alpha/(alpha+beta)),
        G = (alpha A / (beta B))^(1/(alpha+beta))

    (Hoffmann et al. 2022, eq. 4). D must count what the 6 FLOPs per parameter are spent on: training tokens.

    Returns:
        ``{"budget", "N_opt", "D_opt", "loss", "tokens_per_param"}`` each (but the budget) as
        ``{"value", "interval"}``, plus ``"extrapolated"`` (N_opt or D_opt outside the fitted range) and
        per-axis flags.
    """
    budget = _positive(budget, "budget")
    b = joint.boot
    params = np.log([joint.E, joint.A, joint.B])
    logN, logD = _optimum(params[1], joint.alpha, params[2], joint.beta, budget)
    logN_s, logD_s = _optimum(b[:, 1], b[:, 2], b[:, 3], b[:, 4], budget)
    loss_s = np.exp(
        np.logaddexp(b[:, 0], np.logaddexp(b[:, 1] - b[:, 2] * logN_s, b[:, 3] - b[:, 4] * logD_s))
    )
    N, D = float(np.exp(logN)), float(np.exp(logD))
    n_out = not joint.N_range[0] <= N <= joint.N_range[1]
    d_out = not joint.D_range[0] <= D <= joint.D_range[1]
    ci = joint.ci
    return {
        "budget": budget,
        "N_opt": {"value": N, "interval": _interval(np.exp(logN_s), ci)},
        "D_opt": {"value": D, "interval": _interval(np.exp(logD_s), ci)},
        "loss": {"value": float(joint.predict(N, D)), "interval": _interval(loss_s, ci)},
        "tokens_per_param": {"value": D / N, "interval": _interval(np.exp(logD_s - logN_s), ci)},
        "extrapolated": bool(n_out or d_out),
        "N_extrapolated": bool(n_out),
        "D_extrapolated": bool(d_out),
    }


def _optimum(logA: Any, alpha: Any, logB: Any, beta: Any, budget: float) -> tuple[Any, Any]:
    # In logs: log G = (log alpha + log A - log beta - log B) / (alpha + beta); no overflow for C ~ 1e25.
    with np.errstate(divide="ignore", invalid="ignore"):
        logG = (np.log(alpha) + logA - np.log(beta) - logB) / (alpha + beta)
    logC6 = np.log(budget / 6.0)
    return logG + beta / (alpha + beta) * logC6, -logG + alpha / (alpha + beta) * logC6


def data_efficiency(
    pretrained: PowerLawFit, scratch: PowerLawFit, x_points: Sequence[float] | np.ndarray | None = None
) -> list[dict[str, Any]]:
    """How many times more x (samples) training from scratch needs to match the pretrained arm's error.

    For each pretrained sample count ``x_p``, the pretrained curve's error ``E_p(x_p)`` is the target and the
    scratch curve is solved for it: ``gain = E_s^-1(E_p(x_p)) / x_p``. The interval pairs the i-th bootstrap
    replicate of one arm with the i-th of the other (the arms are independent data, so the pairs are draws
    from the joint sampling distribution). Where the pretrained error lies below the scratch floor, the gain
    is infinite: scratch training never gets there.

    Args:
        pretrained: Fit of the pretrained (fine-tuned) arm.
        scratch: Fit of the arm trained from scratch, over the same x.
        x_points: Pretrained sample counts; defaults to the distinct measured ones.

    Returns:
        One dict per point: ``{"x", "error", "x_scratch", "gain": {"value", "interval"}, "reachable",
        "extrapolated"}``; ``extrapolated`` when ``x`` or ``x_scratch`` lies outside its arm's measured range.
    """
    xs = np.unique(pretrained.x) if x_points is None else np.asarray(x_points, dtype=float).ravel()
    if xs.size == 0 or not np.all(np.isfinite(xs) & (xs > 0)):
        raise DataError("data_efficiency: x_points must be finite and > 0")
    n = min(len(pretrained.boot), len(scratch.boot))
    err = pretrained.predict(xs)
    err_s = pretrained.predict_samples(xs)[:n]  # (n, len(xs))
    b = scratch.boot[:n, :, None]
    need = scratch.inverse(err)
    need_s = _inverse_rows(b, err_s)
    out = []
    for i, x in enumerate(xs):
        reachable = bool(np.isfinite(need[i]))
        out.append(
            {
                "x": float(x),
                "error": float(err[i]),
                "x_scratch": float(need[i]),
                "gain": {"value": float(need[i] / x), "interval": _interval(need_s[:, i] / x, pretrained.ci)},
                "reachable": reachable,
                "extrapolated": bool(
                    pretrained.extrapolated(x) or not reachable or scratch.extrapolated(need[i])
                ),
            }
        )
    return out


def _inverse_rows(b: np.ndarray, target: np.ndarray) -> np.ndarray:
    # Replicate i of the scratch law solved for replicate i's pretrained error (rows: replicates).
    gap = target - np.exp(b[:, 0])
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        x = np.exp((b[:, 1] - np.log(np.where(gap > 0, gap, 1.0))) / b[:, 2])
    return np.where(gap > 0, x, np.inf)


def _interval(samples: np.ndarray, ci: float) -> list[float]:
    samples = np.asarray(samples, dtype=float)
    samples = samples[~np.isnan(samples)]
    if samples.size == 0:
        return [float("nan"), float("nan")]
    lo, hi = _robust.percentile_interval(samples, ci)
    return [float(lo), float(hi)]


def _positive(value: float, name: str) -> float:
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise DataError(f"{name} must be a number, got {value!r}") from None
    if not (np.isfinite(value) and value > 0):
        raise DataError(f"{name} must be finite and > 0, got {value!r}")
    return value


def reference_gains(
    arm: PowerLawFit, reference: PowerLawFit, x_points: Sequence[float] | np.ndarray | None = None
) -> list[dict[str, Any]]:
    """An arm's efficiency gain (EG) and accuracy gain (AG) over a reference arm, Poseidon-style.

    At each sample count ``n`` of the arm: ``EG = E_ref^-1(E_arm(n)) / n`` (how many times more samples the
    reference needs for the arm's error; > 1: the arm is more data-efficient) and ``AG = E_ref(n) / E_arm(n)``
    (how many times lower the arm's error is at the same n; > 1: the arm is more accurate). Intervals pair
    the i-th bootstrap replicate of one fit with the i-th of the other, as :func:`data_efficiency` does. An
    EG of 1 or below, or an AG at or below 1, is a transfer that did not pay — reported as it is.

    Args:
        arm: Fit of the arm compared (pretrained, scratch...).
        reference: Fit of the reference arm (an FNO trained from scratch), over the same x.
        x_points: Sample counts; defaults to the arm's distinct measured ones.

    Returns:
        One dict per point: ``{"x", "error", "error_reference", "x_reference", "eg": {"value", "interval"},
        "ag": {"value", "interval"}, "reachable", "extrapolated"}``.
    """
    eff = data_efficiency(arm, reference, x_points)
    xs = np.array([p["x"] for p in eff])
    n = min(len(arm.boot), len(reference.boot))
    ag = reference.predict(xs) / arm.predict(xs)
    ag_s = reference.predict_samples(xs)[:n] / arm.predict_samples(xs)[:n]
    out = []
    for i, p in enumerate(eff):
        out.append(
            {
                "x": p["x"],
                "error": p["error"],
                "error_reference": float(reference.predict(xs[i])),
                "x_reference": p["x_scratch"],
                "eg": p["gain"],
                "ag": {"value": float(ag[i]), "interval": _interval(ag_s[:, i], arm.ci)},
                "reachable": p["reachable"],
                "extrapolated": p["extrapolated"],
            }
        )
    return out


def crossing(a: PowerLawFit, b: PowerLawFit, *, extend: float = 10.0, points: int = 400) -> dict[str, Any]:
    """Where two fitted curves cross: the x at which the lower curve changes, searched on a log grid.

    The search spans the measured range of both fits widened ``extend`` times each way; crossings outside
    the measured range are flagged ``extrapolated``. The interval is over the bootstrap replicate pairs that
    cross once within the span (their share is ``fraction``; the rest do not cross there).

    Returns:
        ``{"crosses", "x", "interval", "fraction", "extrapolated", "lower_below", "lower_above"}``:
        ``lower_below`` names which curve (``"a"`` or ``"b"``) is lower left of the (first) crossing.
    """
    lo = min(a.x_range[0], b.x_range[0]) / extend
    hi = max(a.x_range[1], b.x_range[1]) * extend
    grid = np.geomspace(lo, hi, points)
    x0, lower = _first_crossing(np.log(a.predict(grid)) - np.log(b.predict(grid)), grid)
    n = min(len(a.boot), len(b.boot))
    diff = np.log(a.predict_samples(grid)[:n]) - np.log(b.predict_samples(grid)[:n])
    xs = np.array([_first_crossing(d, grid)[0] for d in diff])
    hit = np.isfinite(xs)
    measured = max(a.x_range[0], b.x_range[0]) <= x0 <= min(a.x_range[1], b.x_range[1])
    crosses = bool(np.isfinite(x0))
    return {
        "crosses": crosses,
        "x": float(x0) if crosses else None,
        "interval": _interval(xs[hit], a.ci) if hit.any() else [float("nan"), float("nan")],
        "fraction": float(hit.mean()) if n else 0.0,
        "extrapolated": bool(crosses and not measured),
        "lower_below": lower,
        "lower_above": None if lower is None else ("b" if lower == "a" else "a"),
        "span": [float(lo), float(hi)],
    }


def _first_crossing(diff: np.ndarray, grid: np.ndarray) -> tuple[float, str | None]:
    """First sign change of ``log E_a - log E_b`` on ``grid`` (log-linear interpolation), and which is lower
    left of it; ``(nan, None)`` when the curves do not cross on the grid."""
    sign = np.sign(diff)
    idx = np.flatnonzero(sign[:-1] * sign[1:] < 0)
    if idx.size == 0:
        return float("nan"), None
    i = idx[0]
    t = diff[i] / (diff[i] - diff[i + 1])
    x = float(np.exp(np.log(grid[i]) + t * (np.log(grid[i + 1]) - np.log(grid[i]))))
    return x, "a" if diff[i] < 0 else "b"
