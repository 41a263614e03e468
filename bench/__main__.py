"""``python -m bench`` (``make bench``): run every benchmark, print one table, save it.

A benchmark is a module with ``TITLE: str`` and ``run() -> list[Row]``; add its dotted name to
``BENCHMARKS``. The table is also written to ``<state>/bench/`` (see ``bench.report``).
"""

from __future__ import annotations

import importlib
import sys
from datetime import UTC, datetime

from app.settings import state_dir
from bench.report import render, write

BENCHMARKS: tuple[str, ...] = (
    "bench.drift",
    "bench.overhead",
    "bench.scrape",
    "bench.detect",
    "bench.attribution",
    "bench.capacity",
    "bench.soak",
    "bench.scaling",
)


def main() -> int:
    when = datetime.now(UTC)
    sections = []
    for name in BENCHMARKS:
        module = importlib.import_module(name)
        print(f"running {module.TITLE} ...", file=sys.stderr, flush=True)
        sections.append((module.TITLE, module.run()))
    text = render(sections, when=when)
    print(text)
    print(f"saved {write(text, state_dir() / 'bench', when=when)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
