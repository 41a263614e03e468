"""``alerts/runbook.md`` as HTML, so every alert's ``runbook_url`` lands on its section.

Each heading gets an id, the heading's GitHub-style slug: ``## TargetDown`` is
``#targetdown``, the anchor the rules put in ``runbook_url``. Raw HTML in the Markdown is
shown as text, never passed through. The file is read as package data, so an installed
obslab serves it as well as a checkout does.
"""

from __future__ import annotations

from importlib.resources import files

from markdown_it import MarkdownIt
from mdit_py_plugins.anchors import anchors_plugin

RUNBOOK_PACKAGE = "alerts"
RUNBOOK_FILE = "runbook.md"


def runbook_markdown() -> str:
    return files(RUNBOOK_PACKAGE).joinpath(RUNBOOK_FILE).read_text(encoding="utf-8")


def render(markdown: str) -> str:
    """The HTML body of ``markdown``: CommonMark with tables, raw HTML escaped."""
    parser = (
        MarkdownIt("commonmark", {"html": False})
        .enable("table")
        .use(anchors_plugin, min_level=1, max_level=3)
    )
    return parser.render(markdown)
