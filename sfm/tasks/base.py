"""What every task format shares: the encoded-example record, number formatting in prompts, lookup."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sfm.config import from_dict
from sfm.registry import TASK_FORMATS


@dataclass
class Encoded:
    """One example as backbone token ids: the loss is on the completion only.

    Attributes:
        prompt: Prompt ids (no BOS; the collator adds it where the backbone uses one).
        completion: Completion ids, ending with EOS.
        meta: Small JSON-ready facts the scorer needs (trajectory index, start frame, scales).
    """

    prompt: list[int]
    completion: list[int]
    meta: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.prompt) + len(self.completion)


def fmt_number(x: float, digits: int = 4) -> str:
    """A coefficient as text in a prompt (``0.01234``, ``1.5e-05``): short, and readable by any backbone."""
    return f"{float(x):.{digits}g}"


def get_task_format(name: str, **options: Any) -> Any:
    """Build the task format registered as ``name``; options are checked strictly (unknown -> did-you-mean)."""
    cls = TASK_FORMATS.get(name)
    return from_dict(cls, options, where=f"task {name!r}")


def as_channels(row: dict[str, Any], fields: list[str]) -> np.ndarray:
    """Stack a data set row's field columns into ``[T, C, *space]`` float64."""
    return np.stack([np.asarray(row[f], dtype=np.float64) for f in fields], axis=1)
