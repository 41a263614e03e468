"""The benchmark table: one row per figure, whichever benchmark measured it.

Every benchmark returns ``Row``s; the runner prefixes each with the benchmark's title, so
figures of different kinds (a time to detect, a throughput ratio) share one table, each with
the goal it is held to.
"""

from __future__ import annotations

import platform
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

COLUMNS = ("benchmark", "case", "measure", "value", "goal", "met")


@dataclass(frozen=True)
class Row:
    case: str
    measure: str
    value: str
    goal: str = ""
    #: Whether ``value`` meets ``goal``; None when the row has no goal.
    met: bool | None = None


def render(sections: Sequence[tuple[str, Sequence[Row]]], *, when: datetime | None = None) -> str:
    """A Markdown document: where and when it ran, then one table of every section's rows."""
    when = when or datetime.now(UTC)
    cells = [
        (title, row.case, row.measure, row.value, row.goal, _verdict(row.met))
        for title, rows in sections
        for row in rows
    ]
    widths = [max(len(c) for c in column) for column in zip(COLUMNS, *cells, strict=True)]

    def line(values: Sequence[str]) -> str:
        return "| " + " | ".join(v.ljust(w) for v, w in zip(values, widths, strict=True)) + " |"

    header = (
        f"obslab benchmarks, {when:%Y-%m-%d %H:%M} UTC, {platform.node()}: "
        f"{platform.processor() or platform.machine()}, Python {platform.python_version()}"
    )
    table = [line(COLUMNS), line(["-" * w for w in widths]), *map(line, cells)]
    return "\n".join([header, "", *table, ""])


def write(text: str, directory: Path, *, when: datetime) -> Path:
    """Save ``text`` as ``<directory>/<UTC time>.md`` and ``latest.md``; return the former."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{when:%Y%m%dT%H%M%SZ}.md"
    path.write_text(text, encoding="utf-8")
    (directory / "latest.md").write_text(text, encoding="utf-8")
    return path


def _verdict(met: bool | None) -> str:
    return "" if met is None else "yes" if met else "NO"
