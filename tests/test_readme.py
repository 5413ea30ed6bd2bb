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


def _subcommands() -> dict:
    from sfm.cli import build_parser

    parser = build_parser()
    return next(a for a in parser._actions if a.dest == "command").choices


def _readme_command_lines() -> list[str]:
    """Lines of the README's code blocks that run ``sfm``."""
    blocks = README.split("```")[1::2]
    lines = [line.strip().removeprefix("$ ") for block in blocks for line in block.splitlines()]
    return [line for line in lines if line.startswith("sfm ")]


def test_every_command_is_documented():
    """Derived from the parser: a new command without a README line fails here."""
    missing = [name for name in _subcommands() if f"sfm {name}" not in README]
    assert not missing, f"README does not document sfm {', sfm '.join(missing)}"


def test_every_documented_command_exists():
    commands = _subcommands()
    lines = _readme_command_lines()
    assert lines
    # "sfm quickstart: done" is output the README quotes, not a command.
    unknown = [
        line for line in lines if line.split()[1] not in commands and not line.split()[1].endswith(":")
    ]
    assert not unknown, f"README runs commands sfm does not have: {unknown}"
