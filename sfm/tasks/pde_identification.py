"""``pde_identification``: a few frames of a trajectory -> the PDE family and its coefficients, as text.

Prompt (text, then field tokens; no coefficient is shown, only the grid the frames live on)::

    identify pde: dt=0.1 dx=0.03125 frames 4: <|scale|> s <|frame|> v v v ... <|frame|> v v v ...

Completion: `` burgers nu=0.0123`` and EOS -- plain text in the backbone's own tokens, coefficients sorted
by name and written with :func:`~sfm.tasks.base.fmt_number` (``digits`` significant digits). The answer is
read back with a tolerant regular expression (:func:`parse_answer`): spacing, ``,``/``;`` separators, ``:``
for ``=`` and the order of coefficients may vary; anything else makes the answer invalid, never an error.

Families are told apart by ``meta.family`` of each data set, so training on several families is a *mixture*
of field data sets (:func:`sfm.training.examples.build_mixture_examples`), each row formatted with its own
data set's metadata. One field codec encodes every data set, so the data sets of a mixture must have the
same fields (the 1D scalar families ``burgers``, ``heat``, ``advection``, ``kdv``, ``diffusion_reaction``
all have ``u``); their grids may differ, because the prompt states ``dt`` and ``dx`` and the answer is text,
never decoded as a field.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sfm.errors import ConfigError, DataError
from sfm.physics.metadata import FieldMeta
from sfm.registry import TASK_FORMATS
from sfm.tasks.base import Encoded, as_channels, fmt_number
from sfm.tokenize.vocab import ScienceTokenizer

_WORD = r"[A-Za-z_][A-Za-z0-9_]*"
_NUMBER = r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?"
_PAIR = re.compile(rf"\s*({_WORD})\s*[=:]\s*({_NUMBER})\s*")
_HEAD = re.compile(rf"\s*({_WORD})\s*")
_SEPARATOR = re.compile(r"[\s,;]*")


@dataclass
class Identified:
    """An answer read back from text.

    Attributes:
        family: The family named (lower case), or None when the answer did not parse.
        coefficients: Coefficient name -> value (empty when the answer did not parse).
        valid: The whole answer parsed.
        text: The text that was parsed (first line of the decoded completion).
    """

    family: str | None
    coefficients: dict[str, float] = field(default_factory=dict)
    valid: bool = False
    text: str = ""


def answer_text(family: str, coefficients: dict[str, float], digits: int = 4) -> str:
    """The completion text of an answer: ``" burgers nu=0.0123"`` (leading space, coefficients by name)."""
    parts = [family] + [f"{k}={fmt_number(v, digits)}" for k, v in sorted(coefficients.items())]
    return " " + " ".join(parts)


def parse_answer(text: str) -> Identified:
    """Read ``family name=value ...`` from generated text; never raises.

    Only the first line counts (a model that runs on past its answer is judged by its answer). The line
    must be a family name followed by zero or more ``name=value`` pairs (``:`` also assigns; spaces,
    commas and semicolons separate; a trailing ``.`` is ignored). A repeated coefficient, a non-finite
    value or any other text makes the answer invalid: ``Identified(None, {}, False)``.
    """
    line = text.strip().split("\n", 1)[0].strip().rstrip(".").strip()
    bad = Identified(None, {}, False, line)
    head = _HEAD.match(line)
    if head is None:
        return bad
    coefficients: dict[str, float] = {}
    pos = head.end()
    while pos < len(line):
        pos = _SEPARATOR.match(line, pos).end()  # type: ignore[union-attr]  # always matches (may be empty)
        if pos >= len(line):
            break
        pair = _PAIR.match(line, pos)
        if pair is None or pair.group(1) in coefficients:
            return bad
        value = float(pair.group(2))
        if not math.isfinite(value):
            return bad
        coefficients[pair.group(1)] = value
        pos = pair.end()
    return Identified(head.group(1).lower(), coefficients, True, line)


@TASK_FORMATS.register(
    "pde_identification", description="a few frames of a trajectory -> PDE family + coefficients"
)
@dataclass
class PdeIdentification:
    """Name the PDE and its coefficients from a few frames of a trajectory.

    Args:
        frames: Frames shown in the prompt.
        time_stride: Keep every n-th stored frame (the prompt states the resulting ``dt``).
        space_stride: Keep every n-th grid point along each spatial axis (the prompt states ``dx``).
        windows_per_trajectory: Training examples per trajectory, each from a start frame drawn at random
            (evaluation always shows the first ``frames`` frames, so examples do not depend on a seed).
        digits: Significant digits of the coefficients in the answer.
        max_answer_tokens: Generation budget for the answer.
    """

    frames: int = 4
    time_stride: int = 1
    space_stride: int = 1
    windows_per_trajectory: int = 1
    digits: int = 4
    max_answer_tokens: int = 32

    name = "pde_identification"

    def __post_init__(self) -> None:
        for key in ("frames", "time_stride", "space_stride", "windows_per_trajectory", "max_answer_tokens"):
            if getattr(self, key) < 1:
                raise ConfigError(f"pde_identification: {key} must be >= 1, got {getattr(self, key)}")
        if not 1 <= self.digits <= 17:
            raise ConfigError(f"pde_identification: digits must be in [1, 17], got {self.digits}")

    # ---- data ---------------------------------------------------------------------------------------------
    def trajectory(self, row: dict[str, Any], meta: FieldMeta) -> np.ndarray:
        """A row's fields subsampled as ``[T', C, *space']``."""
        if meta.steady:
            raise DataError(f"pde_identification needs a time-dependent data set; {meta.family} is steady")
        traj = as_channels(row, meta.fields)
        space = (slice(None, None, self.space_stride),) * (traj.ndim - 2)
        traj = traj[(slice(None, None, self.time_stride), slice(None), *space)]
        if traj.shape[0] < self.frames:
            raise ConfigError(
                f"pde_identification: {meta.family} trajectories have {traj.shape[0]} frames after "
                f"time_stride={self.time_stride}, fewer than frames={self.frames}"
            )
        return traj

    def coefficients(self, row: dict[str, Any], meta: FieldMeta) -> dict[str, float]:
        """The true coefficients of a row: the data set's fixed numeric ones plus the row's varying ones."""
        out = {k: float(v) for k, v in meta.coefficients.items() if isinstance(v, int | float)}
        out.update({k: float(np.asarray(row[k])) for k in meta.varying if k in row})
        return out

    def starts(self, n_frames: int, rng: np.random.Generator) -> np.ndarray:
        """Training start frames: ``windows_per_trajectory`` distinct ones drawn with ``rng``."""
        last = n_frames - self.frames
        count = min(self.windows_per_trajectory, last + 1)
        return np.sort(rng.choice(last + 1, size=count, replace=False))

    # ---- tokens -------------------------------------------------------------------------------------------
    def prompt_text(self, meta: FieldMeta) -> str:
        """``identify pde: dt=0.1 dx=0.03125 frames 4:`` (the grid, never a coefficient)."""
        grid = [f"dt={fmt_number(float(meta.dt or 0.0) * self.time_stride)}"]
        grid += [f"d{a}={fmt_number(meta.spacing(a) * self.space_stride)}" for a in meta.spatial_axes]
        return f"identify pde: {' '.join(grid)} frames {self.frames}:"

    def prompt(self, frames: np.ndarray, meta: FieldMeta, sci: ScienceTokenizer) -> list[int]:
        """Prompt ids for frames ``[frames, C, *space]`` (header with the frames' own scales, then frames)."""
        local, _ = sci.codec.encode_block(frames)
        return sci.text(self.prompt_text(meta) + " ") + sci.to_global(local).tolist()

    def answer(self, family: str, coefficients: dict[str, float]) -> str:
        """The completion text of the true answer."""
        return answer_text(family, coefficients, self.digits)

    def completion(self, family: str, coefficients: dict[str, float], sci: ScienceTokenizer) -> list[int]:
        """Completion ids: the answer text, then EOS."""
        return [*sci.text(self.answer(family, coefficients)), sci.eos_id]

    def eval_frames(self, row: dict[str, Any], meta: FieldMeta) -> np.ndarray:
        """The frames an evaluation prompt shows: the first ``frames`` of the subsampled trajectory."""
        return self.trajectory(row, meta)[: self.frames]

    def training_examples(
        self, row: dict[str, Any], meta: FieldMeta, sci: ScienceTokenizer, rng: np.random.Generator
    ) -> list[Encoded]:
        """``windows_per_trajectory`` examples of one trajectory, at start frames drawn with ``rng``."""
        traj = self.trajectory(row, meta)
        coefficients = self.coefficients(row, meta)
        completion = self.completion(meta.family, coefficients, sci)
        return [
            Encoded(self.prompt(traj[s : s + self.frames], meta, sci), completion, {"start": int(s)})
            for s in self.starts(traj.shape[0], rng)
        ]

    def texts(self, row: dict[str, Any], meta: FieldMeta) -> list[str]:
        """Prompt and answer text of a row (to train a tiny backbone's tokenizer)."""
        return [self.prompt_text(meta), self.answer(meta.family, self.coefficients(row, meta))]

    # ---- answers ------------------------------------------------------------------------------------------
    def decode(self, completion: list[int] | np.ndarray, sci: ScienceTokenizer) -> str:
        """The text of generated ids, up to the first EOS."""
        ids = [int(i) for i in np.asarray(completion, dtype=np.int64).reshape(-1)]
        if sci.eos_id in ids:
            ids = ids[: ids.index(sci.eos_id)]
        return sci.tokenizer.decode(ids, skip_special_tokens=True)

    def parse(
        self, completion: list[int] | np.ndarray | str, sci: ScienceTokenizer | None = None
    ) -> Identified:
        """Read an answer from generated ids (or text); malformed output is ``valid=False``, never an error."""
        if isinstance(completion, str):
            return parse_answer(completion)
        if sci is None:
            raise ConfigError("pde_identification.parse: token ids need the science tokenizer to decode")
        return parse_answer(self.decode(completion, sci))
