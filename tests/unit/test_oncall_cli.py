"""``obslab pages`` against a receiver under gunicorn and a real Alertmanager: pages and
tickets in their sections, held-back alerts after them, and the filters."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from obslab.cli import main
from obslab.stackconfig import load_stack
from tests.unit import oncall_stack
from tests.unit.processes import ALERTMANAGER

pytestmark = pytest.mark.skipif(ALERTMANAGER is None, reason="needs the Alertmanager binary")


@pytest.fixture(scope="module")
def receiver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """The receiver's port; it holds a page and a ticket, and Alertmanager holds back one."""
    workdir = tmp_path_factory.mktemp("oncall-cli")
    with ExitStack() as running:
        am_url, alertmanager = oncall_stack.start_alertmanager(workdir, oncall_stack.config())
        running.callback(alertmanager.kill)
        base_url, process = oncall_stack.start_receiver(workdir, ALERTMANAGER_URL=am_url)
        running.callback(process.kill)
        oncall_stack.hold_back(am_url)
        oncall_stack.deliver(base_url, am_url, "TargetDown", "FeatureDrift")
        yield urlsplit(base_url).port


@pytest.fixture
def pages(
    receiver: int,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> Callable[..., str]:
    """Runs ``obslab pages`` with the stack's oncall port shifted onto the receiver's."""
    monkeypatch.setenv("OBSLAB_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("OBSLAB_PORT_OFFSET", str(receiver - load_stack().oncall.port))

    def run(*args: str) -> str:
        assert main(["pages", *args]) == 0
        return capsys.readouterr().out

    return run


def test_pages_tickets_and_held_back_alerts_in_their_sections(pages: Callable[..., str]) -> None:
    blocks = pages().split("\n\n")

    assert [block.split(":")[0] for block in blocks] == ["PAGES", "TICKETS", "HELD BACK"]
    assert "TargetDown" in blocks[0] and "FeatureDrift" not in blocks[0]
    assert "FeatureDrift" in blocks[1]
    assert "HighErrorRate" in blocks[2] and "TargetDown" in blocks[2]


def test_kind_keeps_one_section(pages: Callable[..., str]) -> None:
    text = pages("--kind", "ticket")

    assert text.startswith("TICKETS")
    assert "TargetDown" not in text and "HighErrorRate" not in text


def test_json_lists_pages_with_kind_and_state(pages: Callable[..., str]) -> None:
    listed = json.loads(pages("--json"))

    assert {(page["alertname"], page["kind"], page["state"]) for page in listed} == {
        ("TargetDown", "page", "firing"),
        ("FeatureDrift", "ticket", "firing"),
    }
    assert json.loads(pages("--json", "--state", "expired")) == []
