"""``symbolic_regression``: a table of points -> the formula, in prefix notation.

Prompt (text, then one ``<|frame|>`` group per point: the variables' values, then f's, in sme tokens)::

    symbolic regression: f(x_1, x_2) at 32 points: <|frame|> <+> <N1234> <E-3> ... <+> <N5000> <E-4> <|frame|> ...

(The value is not named ``y``: a Feynman formula, II.6.15a, has an input called ``y``.)

Completion: the formula in prefix notation (:func:`~sfm.physics.equations.to_prefix`) as space-separated
text, then EOS, e.g. `` add mul <+> <N1500> <E-3> x_1 sin x_2``. Operators, functions, variable names and
integers are plain words that the backbone tokenizes with its own vocabulary (it already knows ``sin`` and
``x``; adding them as tokens would split ordinary words such as "address" around an added ``add``), while
float constants are the sme tokens the codec added. Reading a completion back walks the ids: codec ids
become their token strings, every run of other ids is decoded and split on whitespace, and the words go to
:func:`~sfm.physics.equations.from_prefix` (only the prompt's variables allowed). Anything that does not
read back is ``valid=False``, never an error.

The number encoding must be ``sme``: its tokens write the table and the completion's constants alike, so a
constant the model reads in the table is one it can write in the formula.

Rows come from an equation data set (:mod:`sfm.data.equations`); ``meta`` is unused (there is no field data).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial
from typing import Any

import numpy as np

from sfm.data.equations import row_table
from sfm.errors import ConfigError, DataError
from sfm.registry import TASK_FORMATS
from sfm.tasks.base import Encoded
from sfm.tokenize.vocab import ScienceTokenizer

# sfm.physics.equations (sympy, ~1 s) is imported inside the methods that parse or print formulas: sfm.tasks
# imports every task format, and the field tasks should not pay for sympy.


@dataclass
class ParsedFormula:
    """A completion read back.

    Attributes:
        expr: The sympy expression, or None when the words are not a well-formed formula.
        words: The prefix words the completion held.
        valid: ``expr`` is not None.
        error: Why it did not parse (empty when valid).
    """

    expr: Any
    words: list[str] = field(default_factory=list)
    valid: bool = False
    error: str = ""


def _sme(sci: ScienceTokenizer) -> Any:
    enc = sci.codec.encoding
    if enc.name != "sme":
        raise ConfigError(
            f"symbolic_regression writes numbers as sme tokens; the tokenizer's encoding is {enc.name!r} "
            "(set data.encoding: sme)"
        )
    if sci.codec.n_fields != 1:
        raise ConfigError(f"symbolic_regression needs a one-field codec, got fields {sci.codec.fields}")
    return enc


@TASK_FORMATS.register(
    "symbolic_regression", description="a table of points -> the formula in prefix notation"
)
@dataclass
class SymbolicRegression:
    """Recover a formula from points.

    Args:
        num_points: Points shown in the prompt (rows must hold at least this many).
        examples_per_equation: Training examples per formula: the first shows the row's first
            ``num_points`` points (as evaluation does), the others random subsets of the row's points.
        max_answer_tokens: Generation budget for the formula.
    """

    num_points: int = 32
    examples_per_equation: int = 1
    max_answer_tokens: int = 128

    name = "symbolic_regression"

    def __post_init__(self) -> None:
        for key in ("num_points", "examples_per_equation", "max_answer_tokens"):
            if getattr(self, key) < 1:
                raise ConfigError(f"symbolic_regression: {key} must be >= 1, got {getattr(self, key)}")

    # ---- data ---------------------------------------------------------------------------------------------
    def table(self, row: dict[str, Any]) -> tuple[list[str], np.ndarray, np.ndarray]:
        """``(variables, X [n, d], y [n])`` of a row, checked: enough points, all finite."""
        names, X, y = row_table(row)
        if y.size < self.num_points:
            raise DataError(
                f"symbolic_regression: formula {row.get('id', '?')} has {y.size} points, fewer than "
                f"num_points={self.num_points}"
            )
        if not (np.isfinite(X).all() and np.isfinite(y).all()):
            raise DataError(f"symbolic_regression: formula {row.get('id', '?')} has non-finite points")
        return names, X, y

    def target_words(self, row: dict[str, Any], sci: ScienceTokenizer) -> list[str]:
        """The true formula of a row in prefix words, constants at the codec's sme precision."""
        from sfm.physics.equations import parse, to_prefix
        from sfm.physics.equations.sme import sme_tokens

        digits = _sme(sci).digits
        return to_prefix(
            parse(str(row["expr"]), variables=[str(v) for v in row["variables"]]),
            number_tokens=partial(sme_tokens, digits=digits),
        )

    # ---- tokens -------------------------------------------------------------------------------------------
    def prompt_text(self, names: list[str]) -> str:
        """``symbolic regression: f(x_1, x_2) at 32 points:``."""
        return f"symbolic regression: f({', '.join(names)}) at {self.num_points} points:"

    def prompt(self, names: list[str], X: np.ndarray, y: np.ndarray, sci: ScienceTokenizer) -> list[int]:
        """Prompt ids for ``num_points`` points: text, then per point ``<|frame|>`` and its d+1 values."""
        _sme(sci)
        if X.shape != (self.num_points, len(names)) or y.shape != (self.num_points,):
            raise DataError(
                f"symbolic_regression: expected {self.num_points} points of {len(names)} variables, got X "
                f"{X.shape} and y {y.shape}"
            )
        table = np.concatenate([X, y[:, None]], axis=1)[:, None, :]  # [points, 1 field, d + 1 values]
        ids = sci.codec.encode_frames(table, np.ones(1))
        return sci.text(self.prompt_text(names) + " ") + sci.to_global(ids).tolist()

    def completion(self, words: list[str], sci: ScienceTokenizer) -> list[int]:
        """Completion ids: the prefix words as text (sme tokens come out as the codec's ids), then EOS."""
        return [*sci.text(" " + " ".join(words)), sci.eos_id]

    def encode(self, row: dict[str, Any], points: np.ndarray, sci: ScienceTokenizer) -> Encoded:
        """One example showing the row's points ``points`` (indices)."""
        names, X, y = self.table(row)
        prompt = self.prompt(names, X[points], y[points], sci)
        return Encoded(prompt, self.completion(self.target_words(row, sci), sci), {"start": int(points[0])})

    def training_examples(
        self, row: dict[str, Any], meta: Any, sci: ScienceTokenizer, rng: np.random.Generator
    ) -> list[Encoded]:
        """``examples_per_equation`` examples of one formula (the first on its first points)."""
        n = self.table(row)[2].size
        subsets = [np.arange(self.num_points)]
        subsets += [
            np.sort(rng.choice(n, self.num_points, replace=False))
            for _ in range(self.examples_per_equation - 1)
        ]
        return [self.encode(row, s, sci) for s in subsets]

    def texts(self, row: dict[str, Any], meta: Any = None) -> list[str]:
        """Prompt text and the formula's words without sme tokens (to train a tiny backbone's tokenizer)."""
        words = [w for w in str(row["prefix"]).split() if not w.startswith("<")]
        return [self.prompt_text([str(v) for v in row["variables"]]), " ".join(words)]

    # ---- answers ------------------------------------------------------------------------------------------
    def words(self, completion: list[int] | np.ndarray, sci: ScienceTokenizer) -> list[str]:
        """The words of generated ids up to the first EOS: codec ids as token strings, other runs decoded."""
        ids = np.asarray(completion, dtype=np.int64).reshape(-1)
        eos = np.flatnonzero(ids == sci.eos_id)
        ids = ids[: eos[0]] if eos.size else ids
        local = sci.to_local(ids)
        out: list[str] = []
        run: list[int] = []
        for gid, lid in zip(ids.tolist(), local.tolist()):
            if lid < 0:
                run.append(gid)
                continue
            if run:
                out += sci.tokenizer.decode(run, skip_special_tokens=True).split()
                run = []
            out.append(sci.codec.tokens[lid])
        if run:
            out += sci.tokenizer.decode(run, skip_special_tokens=True).split()
        return out

    def parse(
        self,
        completion: list[int] | np.ndarray | list[str],
        names: list[str],
        sci: ScienceTokenizer | None = None,
    ) -> ParsedFormula:
        """Read a formula from generated ids (or words); only the prompt's variables ``names`` are allowed."""
        from sfm.physics.equations import EquationError, from_prefix

        if len(completion) and isinstance(completion[0], str):
            words = [str(w) for w in completion]
        elif sci is None:
            raise ConfigError("symbolic_regression.parse: token ids need the science tokenizer to decode")
        else:
            words = self.words(completion, sci)
        try:
            return ParsedFormula(from_prefix(words, variables=names), words, True)
        except EquationError as exc:
            return ParsedFormula(None, words, False, str(exc))
        except (RecursionError, OverflowError, ValueError, ZeroDivisionError) as exc:  # sympy on odd input
            return ParsedFormula(None, words, False, f"{type(exc).__name__}: {exc}")
