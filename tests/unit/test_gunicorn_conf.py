"""Every service runs under gunicorn with app/gunicorn_conf.py, and the config does its job."""

from __future__ import annotations

import gc
import subprocess
import sys

from app import gunicorn_conf
from obslab.stack import gunicorn_argv
from obslab.stackconfig import load_stack


def test_every_service_is_started_with_the_shared_config() -> None:
    stack = load_stack()
    for service in (stack.scoring, stack.features, stack.oncall):
        assert "--config=python:app.gunicorn_conf" in gunicorn_argv(service, 8100)


def test_gunicorn_loads_the_config_and_its_hook() -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "--config=python:app.gunicorn_conf",
            "--print-config",
            "app.features:create_app()",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    settings = dict(
        (part.strip() for part in line.split("=", 1)) for line in result.stdout.splitlines()
    )
    # gunicorn's own default prints as <PostWorkerInit.post_worker_init()>.
    assert settings["post_worker_init"] == "<post_worker_init()>"


def test_the_worker_hook_freezes_what_the_app_loaded() -> None:
    assert gc.get_freeze_count() == 0
    try:
        gunicorn_conf.post_worker_init(worker=None)
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
