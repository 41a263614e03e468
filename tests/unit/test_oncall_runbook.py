"""``GET /runbook``: alerts/runbook.md as HTML, every alert's section at its ``runbook_url``
anchor, raw HTML shown as text, and the file found in an installed package too."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import zipfile
from html.parser import HTMLParser
from pathlib import Path

import pytest

from alerts.rules import build_rules
from obslab.oncall import create_app, deadman
from obslab.oncall.runbook import render
from tests.unit.oncall_payloads import TOKEN

REPO_ROOT = Path(__file__).resolve().parents[2]
UV = str(REPO_ROOT / "scripts" / "uv.sh")


class _Ids(HTMLParser):
    """The id of every element, and the text of each heading by its id."""

    def __init__(self) -> None:
        super().__init__()
        self.ids: set[str] = set()
        self.headings: dict[str, str] = {}
        self._heading: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs).get("id")
        if found:
            self.ids.add(found)
            if re.fullmatch(r"h[1-6]", tag):
                self._heading = found
                self.headings[found] = ""

    def handle_data(self, data: str) -> None:
        if self._heading:
            self.headings[self._heading] += data

    def handle_endtag(self, tag: str) -> None:
        if re.fullmatch(r"h[1-6]", tag):
            self._heading = None


@pytest.fixture
def runbook_html(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("OBSLAB_HOME", str(tmp_path / "home"))
    app = create_app({"ONCALL_TOKEN": TOKEN, "ONCALL_DB": str(tmp_path / "pages.db")})
    # Documentation: no token asked.
    response = app.test_client().get("/runbook")
    assert response.status_code == 200
    assert response.mimetype == "text/html"
    return response.get_data(as_text=True)


def test_every_alert_lands_on_its_own_section(runbook_html: str) -> None:
    parsed = _Ids()
    parsed.feed(runbook_html)
    names = {
        rule["alert"]
        for group in build_rules("demo")["groups"]
        for rule in group["rules"]
        if "alert" in rule
    }

    for name in names:
        anchor = name.lower()
        assert anchor in parsed.headings, f"no section #{anchor} for {name}"
        assert parsed.headings[anchor].strip() == name


def test_the_dead_mans_page_links_to_a_section(runbook_html: str) -> None:
    parsed = _Ids()
    parsed.feed(runbook_html)

    assert deadman.RUNBOOK_URL.removeprefix("/runbook#") in parsed.headings


def test_raw_html_in_the_markdown_is_shown_as_text() -> None:
    html = render(
        "## Safe <b>heading</b>\n\n<script>alert(1)</script>\n\n"
        '<img src=x onerror="alert(2)">\n\n[link](javascript:alert(3))\n'
    )

    assert "<script>" not in html and "&lt;script&gt;" in html
    assert "<img" not in html and "&lt;img" in html
    assert 'href="javascript:' not in html
    assert "<b>" not in html


def test_markdown_becomes_html() -> None:
    html = render("# Title\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n`code` and **bold**\n")

    assert '<h1 id="title">Title</h1>' in html
    assert "<table>" in html and "<td>2</td>" in html
    assert "<code>code</code>" in html and "<strong>bold</strong>" in html


def test_an_installed_package_serves_the_runbook(tmp_path: Path) -> None:
    """Built as the image's `uv sync` builds it (offline, from the cache `make setup` filled)
    and run from the wheel alone, not from this checkout."""
    built = tmp_path / "dist"
    subprocess.run(
        [UV, "build", "--wheel", "--offline", "--quiet", "--out-dir", str(built), str(REPO_ROOT)],
        check=True,
        capture_output=True,
    )
    [wheel] = built.glob("obslab-*.whl")
    site = tmp_path / "site"
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(site)
    probe = (
        "from importlib.resources import files\n"
        "from obslab.oncall.runbook import RUNBOOK_PACKAGE, render, runbook_markdown\n"
        "print(files(RUNBOOK_PACKAGE))\n"
        "print('id=\"targetdown\"' in render(runbook_markdown()))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(site)}

    result = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=tmp_path,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )

    where, rendered = result.stdout.split()
    assert Path(where).is_relative_to(site)
    assert rendered == "True"
    assert (site / "obslab" / "oncall" / "templates" / "runbook.html").is_file()
