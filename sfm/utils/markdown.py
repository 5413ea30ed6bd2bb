"""The one Markdown table builder of sfm (dataset cards, model cards, the leaderboard, reports)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence


def _cell(value: object) -> str:
    # A "|" would end the cell early and a newline would end the row: both break the table's columns.
    return str(value).replace("|", "\\|").replace("\r\n", " ").replace("\n", " ")


def markdown_table(header: Sequence[object], rows: Iterable[Sequence[object]]) -> str:
    """A GitHub-flavoured Markdown table, every cell as ``str`` with ``|`` escaped and newlines flattened.

    Args:
        header: The column names.
        rows: One sequence of cells per row (any objects; ``str`` is applied).

    Returns:
        The table, header and ``---`` separator first, without a trailing newline.

    Example:
        >>> print(markdown_table(["a", "b"], [[1, "x|y"]]))
        | a | b |
        |---|---|
        | 1 | x\\|y |
    """
    lines = ["| " + " | ".join(map(_cell, header)) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(map(_cell, row)) + " |" for row in rows]
    return "\n".join(lines)
