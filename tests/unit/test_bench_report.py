"""The benchmark table: every benchmark's rows in one aligned Markdown table, saved twice."""

from __future__ import annotations

from datetime import UTC, datetime

from bench.report import Row, render, write

WHEN = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def test_rows_of_every_benchmark_share_one_aligned_table():
    text = render(
        [
            ("drift", [Row("10 req/s", "FeatureDrift firings", "0", "0 in 24 h", True)]),
            ("overhead", [Row("b/a", "throughput", "0.80", ">= 0.85", False), Row("x", "y", "z")]),
        ],
        when=WHEN,
    )
    header, blank, *table = text.splitlines()
    assert header.startswith("obslab benchmarks, 2026-01-02 03:04 UTC")
    assert blank == ""
    assert len({len(line) for line in table}) == 1
    cells = [[c.strip() for c in line.strip("|").split("|")] for line in table]
    assert cells[0] == ["benchmark", "case", "measure", "value", "goal", "met"]
    assert cells[2] == ["drift", "10 req/s", "FeatureDrift firings", "0", "0 in 24 h", "yes"]
    assert cells[3][0] == "overhead" and cells[3][-1] == "NO"
    assert cells[4] == ["overhead", "x", "y", "z", "", ""]


def test_the_table_is_saved_with_its_time_and_as_latest(tmp_path):
    path = write("table\n", tmp_path / "bench", when=WHEN)
    assert path.name == "20260102T030405Z.md"
    assert path.read_text() == (tmp_path / "bench" / "latest.md").read_text() == "table\n"
