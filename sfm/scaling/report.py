"""Write the results of :func:`~sfm.scaling.results.fit_results`: ``fit.json``, ``fit.csv``, PNG plots.

``fit.json`` holds everything: settings, provenance, every parameter with its interval per curve and per
joint fit, goodness of fit, the points with their log residuals, and every derived answer. Infinite numbers
are written as ``null`` (JSON has no infinity): a ``null`` value comes with ``"reachable": false`` (the
target lies below the fitted floor), a ``null`` interval end means some bootstrap replicates never reach the
target (their share is ``reachable_fraction``). ``fit.csv`` has one row per curve for spreadsheets. The folder is written
atomically: an interrupted run leaves no half-written report.
"""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path
from typing import Any

import numpy as np

from sfm.scaling.fit import JointFit, PowerLawFit
from sfm.utils.io import atomic_dir, atomic_write_json, atomic_write_text

FIT_JSON = "fit.json"
FIT_CSV = "fit.csv"


def to_json(results: dict[str, Any]) -> dict[str, Any]:
    """The JSON form of :func:`~sfm.scaling.results.fit_results` (fit objects replaced by their numbers)."""
    x = results["settings"]["x"]
    return {
        "provenance": results["provenance"],
        "settings": results["settings"],
        "curves": [_curve_json(c, x) for c in results["curves"]],
        "joint": [_joint_json(j) for j in results["joint"]],
        "efficiency": results["efficiency"],
        "reference": results.get("reference", []),
        "skipped": results["skipped"],
    }


def _params_json(fit: PowerLawFit | JointFit) -> dict[str, Any]:
    return {k: {"value": v, "interval": list(fit.intervals[k])} for k, v in fit.params.items()}


def _fit_quality(fit: PowerLawFit | JointFit) -> dict[str, Any]:
    return {
        "r2_log": fit.r2_log,
        "rmse_log": float(np.sqrt(np.mean(fit.residuals_log**2))),
        "loss": fit.loss,
        "n_bootstrap": len(fit.boot),
        "ci": fit.ci,
    }


def _curve_json(c: dict[str, Any], x: str) -> dict[str, Any]:
    f: PowerLawFit = c["fit"]
    points = [
        {"row": r, x: float(xi), "error": float(yi), "residual_log": float(ri)}
        for r, xi, yi, ri in zip(c["rows"], f.x, f.y, f.residuals_log)
    ]
    return {
        "id": c["id"],
        "group": c["group"],
        "seed": c["seed"],
        "law": f"error = E_inf + A * {x}^-alpha",
        "n_points": len(f.x),
        "x_range": list(f.x_range),
        "params": _params_json(f),
        **_fit_quality(f),
        "targets": c["targets"],
        "baselines": c.get("baselines", {}),
        "points": points,
    }


def _joint_json(j: dict[str, Any]) -> dict[str, Any]:
    f: JointFit = j["fit"]
    return {
        "id": j["id"],
        "group": j["group"],
        "seed": j["seed"],
        "law": "error = E + A / N^alpha + B / D^beta",
        "n_points": len(f.y),
        "N_range": list(f.N_range),
        "D_range": list(f.D_range),
        "params": _params_json(f),
        **_fit_quality(f),
        "compute_optimal": j["compute_optimal"],
    }


def to_csv(results: dict[str, Any]) -> str:
    """One row per curve: group columns, range, every parameter with its interval, fit quality, targets."""
    by = results["settings"]["group_by"]
    rows = []
    for c in results["curves"]:
        f: PowerLawFit = c["fit"]
        row: dict[str, Any] = {"curve": c["id"], **{k: c["group"].get(k) for k in by}}
        row |= {"n_points": len(f.x), "x_min": f.x_range[0], "x_max": f.x_range[1]}
        for k, v in f.params.items():
            row |= {k: v, f"{k}_lo": f.intervals[k][0], f"{k}_hi": f.intervals[k][1]}
        row["r2_log"] = f.r2_log
        for t in c["targets"]:
            key = f"x_for_{t['target']:g}"
            row |= {key: t["value"], f"{key}_lo": t["interval"][0], f"{key}_hi": t["interval"][1]}
            row[f"{key}_extrapolated"] = t["extrapolated"]
        rows.append(row)
    fields = list(dict.fromkeys(k for r in rows for k in r))
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    for r in rows:
        writer.writerow({k: _cell(v) for k, v in r.items()})
    return buf.getvalue()


def _cell(v: Any) -> Any:
    if isinstance(v, float):
        return "inf" if v == np.inf else repr(v)
    return "" if v is None else v


def write_report(
    results: dict[str, Any], out: str | Path, *, overwrite: bool = False, plots: bool = True
) -> Path:
    """Write ``fit.json``, ``fit.csv`` and (with ``plots``) one PNG and SVG per task.

    Plots: ``curves_<id>.png`` / ``.svg`` put the curves that differ only in arm (pretrained, scratch, a
    reference arm) on the same axes, and ``joint_<id>.png`` shows each joint fit.

    Args:
        results: The output of :func:`~sfm.scaling.results.fit_results`.
        out: The report folder (created; an existing non-empty one needs ``overwrite``).
        overwrite: Replace an existing report.
        plots: Also draw the PNG plots.

    Returns:
        The report folder.
    """
    out = Path(out)
    with atomic_dir(out, overwrite=overwrite) as tmp:
        atomic_write_json(tmp / FIT_JSON, to_json(results))
        atomic_write_text(tmp / FIT_CSV, to_csv(results))
        if plots:
            _write_plots(results, tmp)
    return out


def _write_plots(results: dict[str, Any], folder: Path) -> None:
    import matplotlib.pyplot as plt

    from sfm.scaling.plots import plot_curves, plot_joint

    s = results["settings"]
    for panel in _panels(results):
        # A pair is named by what its curves share; a pair may differ in model columns (LoRA vs full).
        shared = {k: v for k, v in panel[0]["group"].items() if all(c["group"].get(k) == v for c in panel)}
        name = ",".join(f"{k}={v}" for k, v in shared.items()) or "all"
        title = "\n".join(c["id"] for c in panel) if len(panel) > 1 else name
        fig = plot_curves(panel, x_name=s["x"], metric=s["metric"], title=title, targets=s["target_error"])
        fig.savefig(folder / f"curves_{_slug(name)}.png", dpi=120)
        # SVG without a date or random ids, so a refit of the same cells writes the same bytes.
        plt.rcParams["svg.hashsalt"] = "sfm"
        fig.savefig(folder / f"curves_{_slug(name)}.svg", metadata={"Date": None})
        plt.close(fig)
    for j in results["joint"]:
        fig = plot_joint(j["fit"], D_name=s["joint_data"], metric=s["metric"], title=f"joint fit {j['id']}")
        fig.savefig(folder / f"joint_{_slug(j['id'])}.png", dpi=120)
        plt.close(fig)


def _panels(results: dict[str, Any]) -> list[list[dict[str, Any]]]:
    """Curves that differ only in their arm (and model columns: a LoRA arm against a full one) share a plot;
    the pretrained/scratch pairs of ``efficiency`` decide the pairing where model columns differ."""
    by_id = {c["id"]: c for c in results["curves"]}
    panels = [[by_id[p["pretrained"]], by_id[p["scratch"]]] for p in results["efficiency"]]
    for r in results.get("reference", []):
        ref = by_id[r["reference"]]
        home = next((p for p in panels if by_id[r["arm"]] in p), None)
        if home is None:
            home = [by_id[r["arm"]]]
            panels.append(home)
        for c in (by_id[r["arm"]], ref):
            if c not in home:
                home.append(c)
    placed = {c["id"] for panel in panels for c in panel}
    return panels + [[c] for c in results["curves"] if c["id"] not in placed]


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9.=-]+", "_", name).replace("=", "-").strip("_") or "all"


def _arm_name(curve: str) -> str:
    """The arm of a curve id (``task=burgers,arm=fno,...`` -> ``fno``)."""
    return curve.split("arm=")[-1].split(",")[0] if "arm=" in curve else curve


def summary(results: dict[str, Any]) -> str:
    """A short text table of the fits and answers, for the terminal."""
    x = results["settings"]["x"]
    lines = [f"{'curve':<44} {'alpha':>22} {'E_inf':>10} {'R2(log)':>8}"]
    for c in results["curves"]:
        f: PowerLawFit = c["fit"]
        lo, hi = f.intervals["alpha"]
        lines.append(f"{c['id']:<44} {f.alpha:>8.3g} [{lo:.3g}, {hi:.3g}] {f.E_inf:>10.3g} {f.r2_log:>8.3f}")
        for t in c["targets"]:
            what = (
                f"{x} = {t['value']:.4g} [{t['interval'][0]:.4g}, {t['interval'][1]:.4g}]"
                if t["reachable"]
                else ""
            )
            lines.append(f"    target {t['target']:g}: {what} {t['note']}".rstrip())
    for p in results["efficiency"]:
        gains = ", ".join(
            f"{q['gain']['value']:.3g}x@{q['x']:g}{'*' if q['extrapolated'] else ''}" for q in p["points"]
        )
        lines.append(f"efficiency {p['pretrained']} vs scratch: {gains}  (* extrapolated)")
    for r in results.get("reference", []):
        gains = ", ".join(
            f"EG {q['eg']['value']:.3g} AG {q['ag']['value']:.3g} @{q['x']:g}{'*' if q['extrapolated'] else ''}"
            for q in r["points"]
        )
        lines.append(f"{_arm_name(r['arm'])} vs {_arm_name(r['reference'])}: {gains}")
        c = r["crossing"]
        if c["crosses"]:
            tag = " (extrapolated)" if c["extrapolated"] else ""
            lines.append(
                f"    crossing at {x} = {c['x']:.3g}{tag}: {c['lower_below']} lower below, {c['lower_above']} above"
            )
        else:
            lines.append(f"    no crossing in {x} {c['span'][0]:.3g}..{c['span'][1]:.3g}")
    for j in results["joint"]:
        q = j["fit"].params
        lines.append(f"joint {j['id']}: alpha={q['alpha']:.3g} beta={q['beta']:.3g} E={q['E']:.3g}")
        for o in j["compute_optimal"]:
            tag = " (extrapolated)" if o["extrapolated"] else ""
            lines.append(
                f"    budget {o['budget']:.3g} FLOPs: N_opt={o['N_opt']['value']:.3g} D_opt={o['D_opt']['value']:.3g}{tag}"
            )
    lines += [f"skipped {s['what']} {s['id']}: {s['reason']}" for s in results["skipped"]]
    return "\n".join(lines)
