"""The leaderboard's scaling section: fitted exponents and plots of ``sfm scaling fit`` report folders.

Read defensively: a missing or odd ``fit.json`` is a warning on the page, never an error, because a scaling
report is an optional extra beside the ranking.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sfm.utils.io import read_json

HEADER = ["fit", "law", "points", "alpha", "beta", "other parameters", "R² (log)"]


@dataclass
class ScalingReport:
    """What the page shows of one ``sfm scaling fit`` folder: a table of fitted exponents and its PNGs."""

    folder: str
    header: list[str] = field(default_factory=list)
    rows: list[list[str]] = field(default_factory=list)
    pngs: list[tuple[str, bytes]] = field(default_factory=list)


def _param(p: Any) -> str:
    if not isinstance(p, dict) or not isinstance(p.get("value"), int | float):
        return "n/a"
    iv = p.get("interval")
    ok = isinstance(iv, list | tuple) and len(iv) == 2 and all(isinstance(v, int | float) for v in iv)
    return f"{p['value']:.3g} [{iv[0]:.3g}, {iv[1]:.3g}]" if ok else f"{p['value']:.3g}"


def _fit_row(kind: str, fit: dict[str, Any]) -> list[str]:
    params = fit.get("params") if isinstance(fit.get("params"), dict) else {}
    others = "; ".join(f"{k} = {_param(v)}" for k, v in params.items() if k not in ("alpha", "beta"))
    r2 = fit.get("r2_log")
    return [
        f"{kind} {fit.get('id', '?')}",
        str(fit.get("law", "-")),
        str(fit.get("n_points", "-")),
        _param(params["alpha"]) if "alpha" in params else "-",
        _param(params["beta"]) if "beta" in params else "-",
        others or "-",
        f"{r2:.3f}" if isinstance(r2, int | float) else "-",
    ]


def _fit_rows(fit: Any) -> list[list[str]]:
    rows = []
    for kind, key in (("curve", "curves"), ("joint", "joint")):
        items = fit.get(key, []) if isinstance(fit, dict) else []
        if isinstance(items, list):
            rows += [_fit_row(kind, c) for c in items if isinstance(c, dict)]
    refs = fit.get("reference", []) if isinstance(fit, dict) else []
    if isinstance(refs, list):
        rows += [_gain_row(r) for r in refs if isinstance(r, dict) and isinstance(r.get("points"), list)]
    return rows


def _arm(curve: Any) -> str:
    text = str(curve)
    return text.split("arm=")[1].split(",")[0] if "arm=" in text else text


def _eg(p: dict[str, Any]) -> str:
    if p.get("reachable") is False:  # JSON has no infinity: the reference's fitted floor is above this error
        return f"inf (the reference's floor is above {p.get('error', 0):.3g})"
    return _param(p.get("eg"))


def _gain_row(r: dict[str, Any]) -> list[str]:
    """An arm's efficiency gain (EG) and accuracy gain (AG) over the reference arm, per data size, in the
    exponent table's columns (points: the sizes compared; other parameters: the gains and the crossing)."""
    arm, ref = _arm(r.get("arm")), _arm(r.get("reference"))
    pts = [p for p in r["points"] if isinstance(p, dict)]
    gains = "; ".join(
        f"n={p.get('x', '?'):g}: EG {_eg(p)}, AG {_param(p.get('ag'))}"
        f"{' (extrapolated)' if p.get('extrapolated') else ''}"
        for p in pts
        if isinstance(p.get("x"), int | float)
    )
    c = r.get("crossing") if isinstance(r.get("crossing"), dict) else {}
    if c.get("crosses") and isinstance(c.get("x"), int | float):
        tag = ", extrapolated" if c.get("extrapolated") else ""
        gains += f"; crosses {ref} at n={c['x']:.3g}{tag} ({c.get('lower_below')} lower below)"
    elif c:
        gains += f"; no crossing with {ref}"
    law = f"EG = n_{ref}(E_{arm}(n)) / n; AG = E_{ref}(n) / E_{arm}(n)"
    return [f"gains {arm} vs {ref}", law, str(len(pts)), "-", "-", gains or "-", "-"]


def load_scaling(folders: list[str | Path]) -> tuple[list[ScalingReport], list[str]]:
    """Read ``sfm scaling fit`` folders defensively: a missing or odd ``fit.json`` is a warning, not an error.

    Returns:
        One report per folder (its exponent table and PNGs) and the warnings.
    """
    reports, warnings = [], []
    for folder in map(Path, folders):
        if not folder.is_dir():
            warnings.append(f"--scaling {folder}: no such folder")
            continue
        rep = ScalingReport(str(folder), list(HEADER))
        try:
            fit = read_json(folder / "fit.json")
        except (OSError, ValueError) as exc:
            warnings.append(f"--scaling {folder}: no readable fit.json ({exc}); showing its plots only")
            fit = {}
        rep.rows = _fit_rows(fit)
        rep.pngs = [(p.name, p.read_bytes()) for p in sorted(folder.glob("*.png"))]
        if fit and not rep.rows:
            warnings.append(f"--scaling {folder}: fit.json has no 'curves' or 'joint' fits")
        reports.append(rep)
    return reports, warnings
