"""The Well's ``stats.yaml``: per-column reference statistics, and whether they can normalize the data.

The Well ships per-field ``mean``, ``std`` (and ``rms``, time-delta versions) in ``<name>/stats.yaml``;
some files lack keys for some fields (the_well #41). Normalization needs a ``mean`` and a ``std`` for every
column, so an import with any missing says which, once, and falls back to the statistics sfm computes over
the train split (``FieldMeta.stats``). The choice is recorded in ``extra.normalization``:
``{"source": "reference" | "train", "missing": [...]}``, and :func:`normalization_stats` reads it.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from sfm.errors import ConfigError, DataError, did_you_mean
from sfm.physics.metadata import FieldMeta

#: Where normalization statistics may come from: the source's own file, or sfm's train-split statistics.
NORMALIZATION_SOURCES = ("reference", "train")
_NEEDED = ("mean", "std")


class NormalizationWarning(UserWarning):
    """Reference normalization statistics were asked for but are incomplete; the train split's are used."""


def reference_stats(path: Path, components: dict[str, tuple[str, list[int]]]) -> dict[str, dict[str, float]]:
    """The Well's ``stats.yaml`` (per statistic, per field) regrouped per sfm column.

    Raises:
        DataError: the file cannot be read, is not a mapping, or a statistic does not fit its field.
    """
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise DataError(f"{path}: cannot read ({str(exc).splitlines()[0]})") from None
    if not isinstance(data, dict):
        raise DataError(f"{path}: expected a mapping of statistics (mean, std, ...)")
    out: dict[str, dict[str, float]] = {}
    for column, (field, comp) in components.items():
        for stat, per_field in data.items():
            if isinstance(per_field, dict) and field in per_field:
                try:
                    value = np.asarray(per_field[field], dtype=np.float64)
                    number = float(value[tuple(comp)] if comp else value)
                except (IndexError, TypeError, ValueError):
                    raise DataError(f"{path}: {stat}.{field} does not match the field's components") from None
                if not np.isfinite(number):
                    raise DataError(f"{path}: {stat}.{field} is not a finite number")
                out.setdefault(column, {})[str(stat)] = number
    return out


def choose_normalization(
    wanted: str | None, stats_path: Path | None, ref: dict[str, dict[str, float]], columns: list[str]
) -> dict[str, Any]:
    """The ``extra.normalization`` record: ``reference`` when possible (and not declined), else ``train``.

    ``wanted=None`` means reference statistics where a ``stats.yaml`` was found, the train split's where
    none was (silently: most data sets have none). A ``stats.yaml`` lacking a mean or std of some column,
    or ``wanted="reference"`` with no ``stats.yaml``, warns once, naming every missing ``stat.column``.

    Raises:
        ConfigError: ``wanted`` is not None nor one of :data:`NORMALIZATION_SOURCES`.
    """
    if wanted is not None and wanted not in NORMALIZATION_SOURCES:
        raise ConfigError(
            f"the-well: normalization must be one of {', '.join(NORMALIZATION_SOURCES)}, got {wanted!r}"
            f"{did_you_mean(str(wanted), NORMALIZATION_SOURCES)}"
        )
    if wanted == "train":
        return {"source": "train", "missing": []}
    if stats_path is None:
        if wanted is None:
            return {"source": "train", "missing": []}
        warnings.warn(
            "the-well: no stats.yaml found beside the data; normalizing with the train split's statistics",
            NormalizationWarning,
            stacklevel=3,
        )
        return {"source": "train", "missing": ["stats.yaml"]}
    missing = [f"{s}.{c}" for c in columns for s in _NEEDED if s not in ref.get(c, {})]
    if missing:
        shown = ", ".join(missing[:12]) + (f", ... ({len(missing)} in all)" if len(missing) > 12 else "")
        warnings.warn(
            f"{stats_path}: no {shown}; normalizing with the train split's statistics instead",
            NormalizationWarning,
            stacklevel=3,
        )
        return {"source": "train", "missing": missing}
    return {"source": "reference", "missing": []}


def normalization_stats(meta: FieldMeta) -> dict[str, dict[str, float]]:
    """Per column ``{"mean", "std"}`` to normalize with: the reference ones where ``extra.normalization``
    chose them, else ``meta.stats`` (the train split's, as for every data set)."""
    if meta.extra.get("normalization", {}).get("source") == "reference":
        ref = meta.extra["reference_stats"]
        return {f: {"mean": ref[f]["mean"], "std": ref[f]["std"]} for f in meta.fields}
    return {f: {"mean": meta.stats[f]["mean"], "std": meta.stats[f]["std"]} for f in meta.fields}
