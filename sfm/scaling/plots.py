"""Log-log plots of fitted scaling curves: points, fit, bootstrap band, extrapolation dashed and labelled."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only: no display on clusters or CI

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from sfm.scaling.fit import JointFit, PowerLawFit

ARM_COLORS = {"pretrained": "tab:blue", "scratch": "tab:orange", "fno": "tab:green"}
_BASELINE_STYLES = {"persistence": ("0.25", "-."), "linear": ("tab:purple", ":")}
_EXTEND = 3.0  # draw the curves this factor beyond the measured range (dashed), so the reader sees the trend
_MAX_EXTEND = 1e3  # ... and at most this far to reach a target's solution


def plot_curves(
    curves: Sequence[dict[str, Any]],
    *,
    x_name: str,
    metric: str,
    title: str = "",
    targets: Sequence[float] = (),
) -> Figure:
    """Plot one or more curves (e.g. the pretrained and scratch arms of a task) on shared log-log axes.

    Args:
        curves: Entries of :func:`~sfm.scaling.results.fit_results` ``["curves"]`` (``"fit"``, ``"group"``,
            ``"id"``, ``"targets"``).
        x_name, metric: Axis labels.
        title: Figure title.
        targets: Target errors to draw as horizontal lines, with each curve's solution marked.

    Every measured cell is a point (seeds are separate points at the same x); each curve's baselines
    (``"baselines"``: persistence, linear extrapolation on the same test windows) are horizontal lines.
    """
    fig, ax = plt.subplots(figsize=(6.4, 4.6))
    for i, c in enumerate(curves):
        color = ARM_COLORS.get(c["group"].get("arm"), f"C{i + 2}")
        _draw_curve(ax, c["fit"], c.get("targets", []), color, _label(c, len(curves)))
    for t in targets:
        ax.axhline(t, color="0.4", lw=0.8, ls=":", label=f"target {t:g}")
    for name, value in _baselines(curves).items():
        color, ls = _BASELINE_STYLES.get(name, ("0.5", "-."))
        ax.axhline(value, color=color, lw=1.0, ls=ls, label=f"{name} baseline {value:.3g}")
    ax.set_xscale("log")
    ax.set_yscale("log")
    # Frame the measurements and the lines drawn across them: an extrapolated band far left of the data
    # can span decades and would flatten everything that was measured.
    ys = [v for c in curves for v in c["fit"].y] + [*targets, *_baselines(curves).values()]
    ax.set_ylim(min(ys) / 1.6, max(ys) * 1.6)
    ax.set_xlabel(x_name)
    ax.set_ylabel(metric)
    ax.set_title(title, fontsize=8)
    handles, _ = ax.get_legend_handles_labels()
    handles.append(Line2D([], [], color="0.3", ls="--", label="extrapolated (dashed)"))
    ax.legend(handles=handles, fontsize=7, loc="best")
    ax.grid(True, which="both", alpha=0.2)
    fig.tight_layout()
    return fig


def _baselines(curves: Sequence[dict[str, Any]]) -> dict[str, float]:
    """One value per baseline over the curves of a plot (they score the same test windows)."""
    vals: dict[str, list[float]] = {}
    for c in curves:
        for name, v in (c.get("baselines") or {}).items():
            vals.setdefault(name, []).append(v)
    return {name: float(np.mean(v)) for name, v in vals.items()}


def _label(c: dict[str, Any], n: int) -> str:
    name = c["group"].get("arm") or (c["id"] if n > 1 else "")
    f: PowerLawFit = c["fit"]
    lo, hi = f.intervals["alpha"]
    return f"{name}: α={f.alpha:.3g} [{lo:.3g}, {hi:.3g}], E∞={f.E_inf:.3g}".strip(": ")


def _draw_curve(ax: Any, f: PowerLawFit, targets: Sequence[dict[str, Any]], color: str, label: str) -> None:
    lo, hi = f.x_range
    reach = [t["value"] for t in targets if t["reachable"] and np.isfinite(t["value"])]
    right = min(max([hi * _EXTEND, *(1.5 * v for v in reach)]), hi * _MAX_EXTEND)
    left = max(min([lo / _EXTEND, *(v / 1.5 for v in reach)]), lo / _MAX_EXTEND)
    ax.scatter(f.x, f.y, color=color, s=18, zorder=3, label=f"{label.split(':')[0] or 'data'} (data)")
    inside = np.geomspace(lo, hi, 120)
    ax.plot(inside, f.predict(inside), color=color, lw=1.6, label=label)
    ax.fill_between(inside, *f.predict_band(inside), color=color, alpha=0.2, lw=0)
    for a, b in ((left, lo), (hi, right)):
        seg = np.geomspace(a, b, 60)
        ax.plot(seg, f.predict(seg), color=color, lw=1.2, ls="--")
        ax.fill_between(seg, *f.predict_band(seg), color=color, alpha=0.08, lw=0)
    for t in targets:
        if t["reachable"] and left <= t["value"] <= right:
            tag = " (extrapolated)" if t["extrapolated"] else ""
            ax.plot([t["value"]], [t["target"]], marker="x", color=color, ms=8, ls="none")
            ax.annotate(
                f"{t['value']:.3g}{tag}",
                (t["value"], t["target"]),
                fontsize=7,
                color=color,
                xytext=(4, 4),
                textcoords="offset points",
            )


def plot_joint(joint: JointFit, *, D_name: str, metric: str, title: str = "") -> Figure:
    """The joint law against D, one line per measured N, with the points; dashed beyond the measured D."""
    fig, ax = plt.subplots(figsize=(6.4, 4.6))
    lo, hi = joint.D_range
    d_in, d_out = np.geomspace(lo, hi, 100), np.geomspace(hi, hi * _EXTEND, 40)
    for i, n in enumerate(np.unique(joint.N)):
        color = f"C{i % 10}"
        sel = n == joint.N
        ax.scatter(joint.D[sel], joint.y[sel], color=color, s=16, zorder=3)
        ax.plot(d_in, joint.predict(n, d_in), color=color, lw=1.4, label=f"params={n:.3g}")
        ax.plot(d_out, joint.predict(n, d_out), color=color, lw=1.1, ls="--")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(D_name)
    ax.set_ylabel(metric)
    p = joint.params
    ax.set_title(
        f"{title}\nL = {p['E']:.3g} + {p['A']:.3g}/N^{p['alpha']:.3g} + {p['B']:.3g}/D^{p['beta']:.3g}",
        fontsize=9,
    )
    handles, _ = ax.get_legend_handles_labels()
    handles.append(Line2D([], [], color="0.3", ls="--", label="extrapolated (dashed)"))
    ax.legend(handles=handles, fontsize=7)
    ax.grid(True, which="both", alpha=0.2)
    fig.tight_layout()
    return fig
