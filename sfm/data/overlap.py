"""Train/eval overlap (contamination): which trajectories two field data sets share, and by what evidence.

Every trajectory gets two fingerprints, computed for a whole data set at once (vectorized over rows) and
cached beside it in ``overlap_fingerprints.npz``:

* a **provenance key**, from what the rows record about where they came from:
  ``simulator:<hash of name, version, parameters>:<trajectory seed>`` for generated data (row ``j`` of a data
  set generated with seed ``s`` is solved from a seed that depends only on ``(s, j)``, so two data sets of the
  same simulator settings and seed share their first rows whatever their sizes), or
  ``file:<file digest>:<index in the file>`` for imported data. The file digest (taken at import time,
  ``field_meta.json`` ``extra.file_digests``) is a SHA-256 of the file's size and its first and last MiB,
  not of its path and modification time: a PDEBench file copied to another folder or downloaded again is the
  same data under another path and mtime, and a full hash of a multi-GB file would cost more than the import
  of a few trajectories. Data sets built before provenance was recorded have no key: only their content is
  compared;
* a **content fingerprint**, robust to float noise and dtype: frames 0 and last of each field, 8 points per
  spatial axis, divided by the trajectory's standard deviation and quantized to :data:`QUANTUM`. Two
  trajectories match when their codes differ by at most one quantum everywhere (so a value that rounds the
  other way in a float32 copy still matches); different trajectories differ by order-one amounts.

    report = overlap("data/pdebench-burgers", "data/burgers-192-3f2a")   # or FieldDataset objects
    report.leaks()        # held-out trajectories of one that are in the other's train split
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from sfm.physics.metadata import FILENAME, SPLITS

FINGERPRINT_VERSION = 1
CACHE_FILE = "overlap_fingerprints.npz"
POINTS_PER_AXIS = 8
# Values are divided by the trajectory's std first, so 1e-3 is a thousandth of the field's spread: far above
# float32 rounding (~1e-7) and far below what tells two trajectories apart (order one).
QUANTUM = 1e-3
KINDS = ("simulator", "file", "content")
HELD_OUT = ("validation", "test")
_DIGEST_BYTES = 1 << 20
_BATCH_BYTES = 64 * 2**20
_VERIFY_CHUNK = 1 << 16


@dataclass
class Fingerprints:
    """Fingerprints of some trajectories (rows of one split).

    Attributes:
        keys: ``[n]`` provenance keys (``""`` where the row records none).
        codes: ``[n, k]`` int32 content codes.
        layout: Fields and shapes the codes were taken from: codes of different layouts are not compared.
    """

    keys: np.ndarray
    codes: np.ndarray
    layout: str

    def __len__(self) -> int:
        return len(self.keys)

    def take(self, rows: Any) -> Fingerprints:
        """The fingerprints of rows ``rows`` (indices or a slice)."""
        return Fingerprints(self.keys[rows], self.codes[rows], self.layout)


@dataclass
class SplitOverlap:
    """Trajectories one split of A shares with one split of B.

    Attributes:
        a, b: The two splits. n_a, n_b: Their sizes.
        by_kind: Per kind of evidence (:data:`KINDS`), how many of ``a``'s trajectories it matches.
        a_rows, b_rows: Matched row pairs (row in ``a``'s split, row in ``b``'s split), any kind.
    """

    a: str
    b: str
    n_a: int
    n_b: int
    by_kind: dict[str, int] = field(default_factory=dict)
    a_rows: list[int] = field(default_factory=list)
    b_rows: list[int] = field(default_factory=list)

    @property
    def overlapping(self) -> int:
        """Trajectories of ``a``'s split found in ``b``'s split."""
        return len(set(self.a_rows))

    @property
    def leak(self) -> bool:
        """A held-out trajectory of one data set is in the train split of the other."""
        held = (self.a == "train" and self.b in HELD_OUT) or (self.b == "train" and self.a in HELD_OUT)
        return held and self.overlapping > 0


@dataclass
class OverlapReport:
    """What :func:`overlap` found: one :class:`SplitOverlap` per pair of splits compared, and notes."""

    a: str
    b: str
    pairs: list[SplitOverlap]
    notes: list[str] = field(default_factory=list)

    @property
    def counts(self) -> dict[str, int]:
        """Per kind, matched trajectories of A summed over split pairs; ``any`` counts each pair's union."""
        out = {k: sum(p.by_kind.get(k, 0) for p in self.pairs) for k in KINDS}
        out["any"] = sum(p.overlapping for p in self.pairs)
        return out

    def leaks(self) -> list[SplitOverlap]:
        """The split pairs where a validation or test trajectory of one is in the other's train split."""
        return [p for p in self.pairs if p.leak]

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready data."""
        pairs = [
            {"a": p.a, "b": p.b, "n_a": p.n_a, "n_b": p.n_b, "overlapping": p.overlapping, "leak": p.leak}
            | {"by_kind": p.by_kind, "a_rows": p.a_rows, "b_rows": p.b_rows}
            for p in self.pairs
        ]
        return {"a": self.a, "b": self.b, "counts": self.counts, "pairs": pairs, "notes": self.notes}


# -- fingerprints -------------------------------------------------------------------------------------


def file_digest(path: str | Path) -> str:
    """``sha256:<hex>`` of a file's size and its first and last MiB (see the module docstring for why)."""
    path = Path(path)
    size = path.stat().st_size
    h = hashlib.sha256(str(size).encode())
    with open(path, "rb") as fh:
        h.update(fh.read(_DIGEST_BYTES))
        if size > _DIGEST_BYTES:
            fh.seek(max(_DIGEST_BYTES, size - _DIGEST_BYTES))
            h.update(fh.read(_DIGEST_BYTES))
    return f"sha256:{h.hexdigest()[:32]}"


def file_digests(source: Any) -> dict[str, str]:
    """Digest of every input file of an importer's row source, keyed by its ``source_file`` name."""
    return {
        info.name: file_digest(info.path)
        for info in getattr(source, "files", [])
        if Path(info.path).is_file()
    }


def content_codes(fields: dict[str, np.ndarray], ndim: int) -> np.ndarray:
    """Content codes of trajectories: ``[n, k]`` int32 from each field's ``[n, T, *space(, components)]``.

    Args:
        fields: Field name -> values (any float dtype), in a fixed order.
        ndim: Spatial axes after the time axis.
    """
    parts = []
    for values in fields.values():
        x = np.asarray(values)
        n = x.shape[0]
        flat = x.reshape(n, -1).astype(np.float64)
        scale = flat.std(axis=1)
        peak = np.abs(flat).max(axis=1) if flat.size else np.zeros(n)
        scale = np.where(scale > 0, scale, np.where(peak > 0, peak, 1.0))  # a constant field: by its size
        frames = x[:, [0, -1]]
        for axis in range(2, 2 + ndim):
            size = frames.shape[axis]
            pick = np.unique(np.linspace(0, size - 1, min(POINTS_PER_AXIS, size)).round().astype(int))
            frames = np.take(frames, pick, axis=axis)
        v = frames.reshape(n, -1).astype(np.float64) / scale[:, None] / QUANTUM
        parts.append(np.clip(np.nan_to_num(np.rint(v)), -(2**31) + 1, 2**31 - 1))
    if not parts:
        return np.zeros((0, 0), np.int32)
    return np.concatenate(parts, axis=1).astype(np.int32)


def _key_prefix(meta: Any) -> str:
    src = meta.source
    ident = {"simulator": src.get("name"), "version": src.get("version"), "params": src.get("params")}
    return hashlib.sha256(json.dumps(ident, sort_keys=True, default=str).encode()).hexdigest()[:16]


def provenance_keys(ds: Any, split: str) -> np.ndarray:
    """The provenance key of every row of one split (``""`` where the data set records none)."""
    meta, part = ds.meta, ds.split(split)
    cols = part.column_names
    if meta.source.get("kind") == "generator" and "seed" in cols:
        seeds = ds.column(split, "seed").astype(np.int64).astype(str)
        return np.char.add(f"simulator:{_key_prefix(meta)}:", seeds)
    digests = meta.extra.get("file_digests") or {}
    if digests and "source_file" in cols and "source_index" in cols:
        names, inverse = np.unique(ds.column(split, "source_file").astype(str), return_inverse=True)
        digest = np.array([digests.get(n, "") for n in names], dtype=str)[inverse]
        index = ds.column(split, "source_index").astype(np.int64).astype(str)
        keys = np.char.add(np.char.add(np.char.add("file:", digest), ":"), index)
        return np.where(digest == "", "", keys)
    return np.full(len(part), "", dtype=str)


def _layout(meta: Any) -> str:
    return json.dumps({f: list(meta.field_shapes.get(f, [])) for f in meta.fields})


def _split_codes(ds: Any, split: str) -> np.ndarray:
    """Content codes of one split, read in batches of about :data:`_BATCH_BYTES`."""
    meta = ds.meta
    part = ds.split(split).select_columns(list(meta.fields))
    row_bytes = 4 * sum(int(np.prod(meta.field_shapes[f])) for f in meta.fields)
    batch = max(1, _BATCH_BYTES // max(row_bytes, 1))
    out = []
    for b in part.iter(batch_size=batch):
        n = len(b[meta.fields[0]])
        fields = {
            f: np.asarray(b[f], dtype=np.float32).reshape(n, *meta.field_shapes[f]) for f in meta.fields
        }
        out.append(content_codes(fields, meta.ndim))
    return np.concatenate(out) if out else np.zeros((0, 0), np.int32)


def _cache_key(path: Path) -> str:
    meta_bytes = (path / FILENAME).read_bytes()  # stats and creation time: a rebuilt data set differs
    params = f"{FINGERPRINT_VERSION}:{POINTS_PER_AXIS}:{QUANTUM}"
    return hashlib.sha256(params.encode() + meta_bytes).hexdigest()


def dataset_fingerprints(ds: Any, *, cache: bool = True) -> dict[str, Fingerprints]:
    """Fingerprints of every split of a :class:`~sfm.data.fieldset.FieldDataset` (or its folder).

    Read from ``overlap_fingerprints.npz`` beside the data when that was made for this very data set;
    otherwise computed, and cached there when ``cache`` (a read-only folder is simply not cached).
    """
    path = Path(ds) if isinstance(ds, str | Path) else Path(ds.path)
    key = _cache_key(path) if (path / FILENAME).is_file() else ""
    cached = _read_cache(path / CACHE_FILE, key) if cache and key else None
    if cached is not None:  # read before the Arrow data is opened: a cached check costs milliseconds
        return cached
    ds = _load(ds)
    layout = _layout(ds.meta)
    out = {s: Fingerprints(provenance_keys(ds, s), _split_codes(ds, s), layout) for s in SPLITS}
    if cache:
        _write_cache(path / CACHE_FILE, key, out)
    return out


def _read_cache(path: Path, key: str) -> dict[str, Fingerprints] | None:
    try:
        with np.load(path, allow_pickle=False) as z:
            if str(z["key"]) != key:
                return None
            layout = str(z["layout"])
            return {s: Fingerprints(z[f"{s}_keys"], z[f"{s}_codes"], layout) for s in SPLITS}
    except (OSError, KeyError, ValueError):  # missing, stale layout or damaged: recompute
        return None


def _write_cache(path: Path, key: str, fps: dict[str, Fingerprints]) -> None:
    arrays: dict[str, np.ndarray] = {
        "key": np.array(key),
        "layout": np.array(next(iter(fps.values())).layout),
    }
    for s, fp in fps.items():
        arrays[f"{s}_keys"], arrays[f"{s}_codes"] = fp.keys.astype(str), fp.codes
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as fh:
            np.savez(fh, **arrays)
        tmp.replace(path)
    except OSError:  # a read-only data folder: fingerprints are cheap to recompute
        with contextlib.suppress(OSError):
            tmp.unlink()


def _load(ds: Any) -> Any:
    if isinstance(ds, str | Path):
        from sfm.data.fieldset import load_field_dataset

        return load_field_dataset(ds)
    return ds


# -- matching -----------------------------------------------------------------------------------------


def _expand(lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """All pairs ``(i, p)`` with ``lo[i] <= p < hi[i]``, as two flat arrays."""
    counts = hi - lo
    i = np.repeat(np.arange(len(lo)), counts)
    offsets = np.arange(int(counts.sum())) - np.repeat(np.cumsum(counts) - counts, counts)
    return i, np.repeat(lo, counts) + offsets


def equal_keys(ka: np.ndarray, kb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Row pairs ``(i, j)`` with ``ka[i] == kb[j]`` (empty keys never match)."""
    if len(ka) == 0 or len(kb) == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    order = np.argsort(kb, kind="stable")
    sb = kb[order]
    lo, hi = np.searchsorted(sb, ka, "left"), np.searchsorted(sb, ka, "right")
    lo = np.where(ka == "", hi, lo)
    i, p = _expand(lo, hi)
    return i, order[p]


def close_codes(a: np.ndarray, b: np.ndarray, tol: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Row pairs ``(i, j)`` whose codes differ by at most ``tol`` everywhere.

    Candidates come from a fixed random projection (codes within ``tol`` everywhere project within
    ``tol * sum(w)``, so none is missed); each candidate is then checked in full.
    """
    if len(a) == 0 or len(b) == 0 or a.shape[1] != b.shape[1] or a.shape[1] == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    w = np.random.default_rng(0).uniform(0.5, 1.5, a.shape[1])
    pa, pb = a.astype(np.float64) @ w, b.astype(np.float64) @ w
    bound = tol * w.sum() * (1 + 1e-9) + 1e-6
    order = np.argsort(pb)
    sb = pb[order]
    i, p = _expand(np.searchsorted(sb, pa - bound, "left"), np.searchsorted(sb, pa + bound, "right"))
    j = order[p]
    keep = np.zeros(len(i), bool)
    for s in range(0, len(i), _VERIFY_CHUNK):
        sl = slice(s, s + _VERIFY_CHUNK)
        diff = np.abs(a[i[sl]].astype(np.int64) - b[j[sl]].astype(np.int64))
        keep[sl] = diff.max(axis=1) <= tol
    return i[keep], j[keep]


def match(fa: Fingerprints, fb: Fingerprints) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Matched row pairs per kind of evidence (:data:`KINDS`; content only when the layouts agree)."""
    ia, jb = equal_keys(fa.keys, fb.keys)
    kind = np.array([k.split(":", 1)[0] for k in fa.keys[ia]], dtype=str) if len(ia) else np.zeros(0, str)
    out = {k: (ia[kind == k], jb[kind == k]) for k in ("simulator", "file")}
    out["content"] = close_codes(fa.codes, fb.codes) if fa.layout == fb.layout else (ia[:0], jb[:0])
    return out


def compare(fa: Fingerprints, fb: Fingerprints, a: str = "a", b: str = "b") -> SplitOverlap:
    """The overlap of two sets of fingerprints (row pairs of every kind, counted once per row of ``a``)."""
    found = match(fa, fb)
    pairs = sorted({(int(i), int(j)) for ia, jb in found.values() for i, j in zip(ia, jb)})
    return SplitOverlap(
        a,
        b,
        len(fa),
        len(fb),
        by_kind={k: len(np.unique(ia)) for k, (ia, _) in found.items()},
        a_rows=[i for i, _ in pairs],
        b_rows=[j for _, j in pairs],
    )


def overlap(a: Any, b: Any, *, cache: bool = True) -> OverlapReport:
    """The trajectories two field data sets share, for every pair of their splits.

    Args:
        a, b: Field data set folders or loaded :class:`~sfm.data.fieldset.FieldDataset` objects.
        cache: Read and write ``overlap_fingerprints.npz`` beside each data set.

    Raises:
        DataError: either is not a readable field data set.
    """
    da, db = _load(a), _load(b)
    fa, fb = dataset_fingerprints(da, cache=cache), dataset_fingerprints(db, cache=cache)
    notes = []
    if _layout(da.meta) != _layout(db.meta):
        notes.append(
            f"fields or grids differ ({', '.join(da.meta.fields)} {da.meta.field_shapes} vs "
            f"{', '.join(db.meta.fields)} {db.meta.field_shapes}): content not compared, provenance only"
        )
    for ds in (da, db):
        if not any(((fa if ds is da else fb)[s].keys != "").any() for s in SPLITS):
            notes.append(
                f"{ds.path}: records no provenance (built before sfm kept it): content compared only"
            )
    pairs = [compare(fa[sa], fb[sb], sa, sb) for sa in SPLITS for sb in SPLITS]
    return OverlapReport(str(da.path), str(db.path), pairs, notes)
