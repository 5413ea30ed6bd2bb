"""Where a result came from: sfm version, git commit, content fingerprints, timestamps."""

from __future__ import annotations

import datetime as _dt
import hashlib
import subprocess
from functools import lru_cache
from pathlib import Path

import sfm


@lru_cache(maxsize=1)
def git_hash() -> str | None:
    """The commit of the sfm checkout in use (with ``-dirty`` if modified), or None outside git."""
    root = Path(sfm.__file__).resolve().parents[1]
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=5, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return sha + ("-dirty" if dirty else "") if sha else None


def now_iso() -> str:
    """The current UTC time as ISO 8601 with seconds."""
    return _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat()


def fingerprint_files(paths: list[Path], *, chunk: int = 1 << 20) -> str:
    """SHA-256 over the names and bytes of ``paths`` (sorted), as 16 hex digits."""
    h = hashlib.sha256()
    for p in sorted(Path(p) for p in paths):
        h.update(p.name.encode())
        with open(p, "rb") as fh:
            while block := fh.read(chunk):
                h.update(block)
    return h.hexdigest()[:16]


def fingerprint_dir(
    path: str | Path, patterns: tuple[str, ...] = ("*.safetensors", "*.json", "*.arrow")
) -> str:
    """Fingerprint the files under ``path`` that match ``patterns`` (weights, configs, data shards)."""
    path = Path(path)
    files = sorted({f for pat in patterns for f in path.rglob(pat) if f.is_file()})
    return fingerprint_files(files)


#: The files that identify a trained run's weights and encoding (top level and the tiny base, never checkpoints).
MODEL_FILES = (
    "adapter_model.safetensors",
    "model*.safetensors",
    "sfm_encoding.json",
    "base/model*.safetensors",
)


def model_fingerprint(run_dir: str | Path) -> str:
    """Fingerprint of a run folder's weights and encoding (checkpoints excluded, so rotating them is harmless)."""
    run_dir = Path(run_dir)
    files = sorted({f for pat in MODEL_FILES for f in run_dir.glob(pat) if f.is_file()})
    return fingerprint_files(files)
