"""Publishing a run and its card to the Hugging Face Hub (the only part of publish that needs the network)."""

from __future__ import annotations

import fnmatch
import os
from pathlib import Path

from sfm.errors import SfmError
from sfm.publish.cards.records import run_name

FIGURES_DIR = "figures"
# Top-level entries of a run folder not published: optimizer state and logs are large and private,
# training_args.bin is a pickle, dot-files are temporaries; README.md and figures/ come from the card.
PUSH_IGNORE = ("checkpoint-*", "logs", "training_args.bin", ".*", "README.md", FIGURES_DIR)


def _operations(run_dir: Path, card: Path) -> list:
    from huggingface_hub import CommitOperationAdd

    ops = [CommitOperationAdd(path_in_repo="README.md", path_or_fileobj=str(card))]
    ops += [
        CommitOperationAdd(path_in_repo=f"{FIGURES_DIR}/{f.name}", path_or_fileobj=str(f))
        for f in sorted((card.parent / FIGURES_DIR).glob("*.png"))
    ]
    for f in sorted(p for p in run_dir.rglob("*") if p.is_file()):
        rel = f.relative_to(run_dir)
        if not any(fnmatch.fnmatch(rel.parts[0], pat) for pat in PUSH_IGNORE):
            ops.append(CommitOperationAdd(path_in_repo=rel.as_posix(), path_or_fileobj=str(f)))
    return ops


def push_to_hub(
    run_dir: str | Path,
    card: str | Path,
    repo_id: str,
    *,
    token: str | None = None,
    private: bool | None = None,
) -> str:
    """Upload the run (adapter, tokenizer, records; not checkpoints or logs) with its card as ``README.md``.

    Returns:
        The commit's URL.

    Raises:
        SfmError: offline mode, or any Hub error, as one line.
    """
    from huggingface_hub import HfApi, constants
    from huggingface_hub import errors as hub_errors

    flag = os.environ.get("HF_HUB_OFFLINE", "").strip().upper() in {"1", "ON", "YES", "TRUE"}
    if constants.HF_HUB_OFFLINE or flag:
        raise SfmError(
            f"--push-to-hub {repo_id}: HF_HUB_OFFLINE is set, so nothing can be uploaded; "
            "unset it and log in (`hf auth login`) to push"
        )
    run_dir, card = Path(run_dir), Path(card)
    ops = _operations(run_dir, card)
    transport = getattr(
        hub_errors, "HTTPError", OSError
    )  # the HTTP client's base error (dropped connections)
    try:
        api = HfApi(token=token)
        api.create_repo(repo_id, exist_ok=True, private=private)
        info = api.create_commit(repo_id, ops, commit_message=f"sfm card: {run_name(run_dir)}")
    except (
        hub_errors.HfHubHTTPError,
        hub_errors.OfflineModeIsEnabled,
        transport,
        OSError,
        ValueError,
    ) as exc:
        raise SfmError(f"--push-to-hub {repo_id}: {str(exc).splitlines()[0]}") from None
    return str(getattr(info, "commit_url", info))
