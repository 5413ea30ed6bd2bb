"""The README stays true: its two commands exist in the Makefile and CI, and its name tables match the
registries (the registries are the only lists of names)."""

from pathlib import Path

import pytest

from sfm.registry import BASELINES, ENCODINGS, IMPORTERS, SIMULATORS

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def test_two_commands_first():
    quick = README.split("## Quick start", 1)[1]
    block = quick.split("```", 2)[1]
    assert "make quickstart" in block and "make test" in block
    makefile = (ROOT / "Makefile").read_text()
    assert "\nquickstart:" in makefile and "\ntest:" in makefile
    assert "make test" in (ROOT / ".ci" / "run").read_text()


@pytest.mark.parametrize("registry", [SIMULATORS, ENCODINGS, BASELINES, IMPORTERS], ids=lambda r: r.kind)
def test_every_registered_name_is_documented(registry):
    missing = [n for n in registry.names() if f"`{n}`" not in README]
    assert not missing, f"README does not mention {registry.kind}s {missing}"


def test_documented_simulators_exist():
    table = README.split("| simulator | PDE |", 1)[1].split("\n\n", 1)[0]
    names = [line.split("`")[1] for line in table.splitlines() if line.startswith("| `")]
    assert sorted(names) == SIMULATORS.names()


def test_commands_in_readme_exist():
    from sfm.cli import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    for command in ("data", "validate", "eval", "card", "quickstart", "scaling", "merge", "list"):
        assert command in sub.choices
        assert f"sfm {command}" in README
