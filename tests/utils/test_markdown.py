"""The one Markdown table builder: cells escaped so every row keeps its columns."""

from sfm.utils.markdown import markdown_table


def _cells(line: str) -> list[str]:
    """Split a table row on unescaped pipes (how a Markdown renderer reads it)."""
    parts, cur, i = [], "", 1
    while i < len(line) - 1:
        if line[i] == "\\" and line[i + 1] == "|":
            cur, i = cur + "|", i + 2
            continue
        if line[i] == "|":
            parts.append(cur.strip())
            cur = ""
        else:
            cur += line[i]
        i += 1
    return [*parts, cur.strip()]


def test_a_table_round_trips_its_cells():
    header = ["name", "value"]
    rows = [["a|b", 1.5], ["line\nbreak", None], ["", "x"]]
    text = markdown_table(header, rows)
    lines = text.split("\n")
    assert lines[:2] == ["| name | value |", "|---|---|"]
    assert [_cells(line) for line in lines[2:]] == [["a|b", "1.5"], ["line break", "None"], ["", "x"]]
    assert len(lines) == 2 + len(rows) and not text.endswith("\n")


def test_no_rows_is_a_header_only_table():
    assert markdown_table(["a"], []) == "| a |\n|---|"
