"""The one Jinja environment of :mod:`sfm.publish`: every page and card is a template in ``templates/``.

Python builds *context* (numbers, names, tables as header + rows); the templates hold the prose. Undefined
variables are errors (``StrictUndefined``), so a template asking for something the code does not supply fails
loudly instead of printing an empty string. HTML templates are autoescaped, Markdown ones are not; shared prose
lives in macros (``*_prose.j2``) that both import.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import jinja2
import jinja2.meta

from sfm.utils.markdown import markdown_table

TEMPLATES = Path(__file__).with_name("templates")


def _md_table(table: tuple[list[str], list[list[str]]] | list[Any]) -> str:
    header, rows = table
    return markdown_table(header, rows)


def _unwrap(text: str) -> str:
    # Templates wrap their prose at a readable width; the page gets one line per paragraph, as a writer would.
    return " ".join(str(text).split())


def _plain(text: str) -> str:
    # A macro called from an autoescaped page returns Markup without having escaped its own variables (the
    # prose macros live in an unescaped file, shared with the Markdown page). Prose is plain text, so turning
    # it back into str lets the page escape all of it, names included.
    return str(text)


@functools.cache
def environment() -> jinja2.Environment:
    """The environment loading ``templates/``.

    Filters: ``md_table`` turns ``(header, rows)`` into a Markdown table; ``unwrap`` joins a wrapped
    paragraph into one line (``{% filter unwrap %}...{% endfilter %}``); ``plain`` marks a shared prose
    macro's text as plain text, so an HTML page escapes it (``{{ prose.intro(x) | plain }}``).
    """
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=jinja2.select_autoescape(["html"], default_for_string=False, default=False),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["md_table"] = _md_table
    env.filters["unwrap"] = _unwrap
    env.filters["plain"] = _plain
    return env


def render(name: str, **context: Any) -> str:
    """Render the template ``templates/<name>`` with ``context``."""
    return environment().get_template(name).render(**context)


def macro(name: str, macro_name: str) -> Any:
    """The macro ``macro_name`` of the template ``templates/<name>`` (call it with keyword arguments)."""
    return getattr(environment().get_template(name).module, macro_name)


def variables(name: str) -> set[str]:
    """The top-level variables the template ``templates/<name>`` reads (for tests that every one is given)."""
    source = (TEMPLATES / name).read_text(encoding="utf-8")
    return jinja2.meta.find_undeclared_variables(environment().parse(source))
