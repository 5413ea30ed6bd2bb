"""What each leaderboard row is: an untrained baseline, the oracle, or a trained model of one of three kinds.

Results files record ``model.kind`` (:class:`sfm.harness.results.ModelInfo`): ``"token"``, ``"continuous"`` or
``"operator"`` for trained models, ``"baseline"`` for an evaluation of a baseline alone; files written before
the three model kinds say ``"model"``, and every model then was a token model. Baselines inside a result are
computed per task and carry no kind, so which of them is an oracle is decided here, by name.

The training budget (``ModelInfo.budget``: ``steps``, ``examples_seen``, ``train_seconds``) is read with
defaults, so results written before it existed still load and show "–".
"""

from __future__ import annotations

import math
from typing import Any

BASELINE = "baseline"
ORACLE = "oracle"
TOKEN, CONTINUOUS, OPERATOR = "token", "continuous", "operator"
UNTRAINED = (BASELINE, ORACLE)
TRAINED = (TOKEN, CONTINUOUS, OPERATOR)
KIND_ORDER = (*UNTRAINED, *TRAINED)  # the order the page explains them in
LEGACY_KINDS = {"model": TOKEN}  # before the three kinds, every sfm model wrote fields as number tokens
# Baselines that are given the physics: coarse_solver restarts the data set's own simulator, with the true
# PDE and coefficients, from the last context frame. Every other baseline sees only the context frames.
ORACLE_BASELINES = frozenset({"coarse_solver"})
BUDGET_KEYS = ("steps", "examples_seen", "train_seconds")
MISSING = "–"  # shown for a budget number the results file does not carry


def model_kind(info: Any) -> str:
    """The kind of the evaluated model of a results file (``info``: its ``ModelInfo``)."""
    kind = str(getattr(info, "kind", None) or "model")
    return LEGACY_KINDS.get(kind, kind)


def baseline_kind(name: str) -> str:
    """``"oracle"`` for a baseline given the PDE and its coefficients, else ``"baseline"``.

    ``name`` may carry a ``" [source]"`` suffix (a baseline that disagrees across files).
    """
    return ORACLE if name.split(" [", 1)[0] in ORACLE_BASELINES else BASELINE


def is_trained(kind: str) -> bool:
    """True for any kind but the untrained baseline and the oracle (an unknown kind counts as trained)."""
    return kind not in UNTRAINED


def budget(info: Any) -> dict[str, float | int | None]:
    """``{steps, examples_seen, train_seconds}`` of ``info.budget``; a missing or non-numeric one is None."""
    raw = getattr(info, "budget", None)
    raw = raw if isinstance(raw, dict) else {}
    out: dict[str, float | int | None] = {}
    for key in BUDGET_KEYS:
        v = raw.get(key)
        ok = isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
        out[key] = v if ok else None
    return out


def budget_cell(value: float | int | None) -> str:
    """A budget number as shown on the page: ``12,000`` steps, ``95.3`` CPU-seconds, or "–"."""
    if value is None:
        return MISSING
    if isinstance(value, int) or float(value).is_integer():
        return f"{int(value):,}"
    return f"{value:,.1f}" if value >= 10 else f"{value:.3g}"
