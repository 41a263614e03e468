"""Every service runs under gunicorn with app/gunicorn_conf.py, and the config does its job."""

from __future__ import annotations

import gc
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from app import gunicorn_conf
from obslab.stack import gunicorn_argv
from obslab.stackconfig import load_stack


def test_every_service_is_started_with_the_shared_config() -> None:
    stack = load_stack()
    for service in (stack.scoring, stack.features, stack.oncall):
        argv = gunicorn_argv(service, 8100)
        assert argv[argv.index("-c") + 1] == "python:app.gunicorn_conf"


def test_gunicorn_loads_the_config_and_its_hook() -> None:
    settings = dict(
        (part.strip() for part in line.split("=", 1)) for line in _print_config().splitlines()
    )
    # gunicorn's own default prints as <PostWorkerInit.post_worker_init()>.
    assert settings["post_worker_init"] == "<post_worker_init()>"
    # Not gunicorn's default of 30 s: Alertmanager's symptom_group_wait outlasts this drain.
    assert settings["graceful_timeout"] == str(gunicorn_conf.graceful_timeout) != "30"


@pytest.fixture
def default_threshold() -> Iterator[tuple[int, int, int]]:
    """The collector's thresholds before the test; the worker hook's changes are undone after."""
    threshold = gc.get_threshold()
    try:
        yield threshold
    finally:
        gc.unfreeze()
        gc.set_threshold(*threshold)


def test_the_worker_hook_collects_the_young_generation_less_often(
    default_threshold: tuple[int, ...],
) -> None:
    collections = []

    def count(phase: str, info: dict[str, int]) -> None:
        if phase == "stop" and info["generation"] == 0:
            collections.append(info)

    gunicorn_conf.post_worker_init(worker=None)
    gc.callbacks.append(count)
    try:
        # Each cycle of two lists adds two tracked objects that survive until collected.
        for _ in range(gunicorn_conf.YOUNG_GENERATION_THRESHOLD // 4):
            first: list[object] = []
            first.append([first])
    finally:
        gc.callbacks.remove(count)
    assert collections == [], "collected before the new threshold was reached"
    assert gc.get_threshold()[1:] == default_threshold[1:]


def test_the_zero_code_agent_passes_the_command_line_through() -> None:
    """The overhead benchmark's variant c runs the same command under opentelemetry-instrument,
    whose own option parser must leave gunicorn's options alone."""
    agent = Path(sys.executable).with_name("opentelemetry-instrument")
    assert "<post_worker_init()>" in _print_config(str(agent), "--traces_exporter", "none")


def _print_config(*prefix: str) -> str:
    """The settings gunicorn prints for the stack's features command, run after ``prefix``."""
    argv = gunicorn_argv(load_stack().features, 8100)
    argv.insert(-1, "--print-config")
    result = subprocess.run(
        [*prefix, *argv], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    return result.stdout
