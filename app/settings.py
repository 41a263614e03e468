"""Where runtime state lives, and the settings every service reads.

Services read their settings from the environment with the ``OBSLAB_`` prefix
(:func:`from_prefixed_env`: JSON values, except that a setting whose default is text is taken
as written); the standard ``OTEL_*`` variables are left to OpenTelemetry.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from flask import Config, Flask

#: Defaults shared by both services; each key is overridden by ``OBSLAB_<KEY>``.
SERVICE_DEFAULTS: dict[str, object] = {
    "SERVICE_VERSION": "1.0.0",
    "COMMIT": "unknown",
    "MODEL_VERSION": "",
    "PREVIOUS_VERSION": "",
    "ENVIRONMENT": "native",
    "INSTANCE": "",
    "DEPLOYED_AT": 0.0,
    "EXPECTED_SCORE_SHIFT": False,
    "TELEMETRY": "on",
    "ADMIN_ENABLED": False,
    "ADMIN_TOKEN": "",
    "MAX_CONTENT_LENGTH": 16 * 1024,
}


def state_dir() -> Path:
    """The lab's runtime state: ``$OBSLAB_HOME``, else ``.obslab`` in the working directory."""
    return Path(os.environ.get("OBSLAB_HOME") or ".obslab").resolve()


def from_prefixed_env(config: Config, prefix: str) -> None:
    """``config.from_prefixed_env(prefix)``, except that a setting whose value is text so far
    is taken as written: Flask decodes every value as JSON, which turns version 1.10 into the
    number 1.1, a commit 4e12345 into infinity and a token 1e3 into 1000.0."""
    text = [key for key, value in config.items() if isinstance(value, str)]
    config.from_prefixed_env(prefix)
    for key in text:
        if (raw := os.environ.get(f"{prefix}_{key}")) is not None:
            config[key] = raw


def load_config(
    app: Flask,
    service: str,
    defaults: Mapping[str, object],
    overrides: Mapping[str, object] | None,
) -> None:
    """Fill ``app.config``: shared defaults, the service's own, ``OBSLAB_*``, then ``overrides``.

    ``LOG_FILE`` defaults to ``<state>/logs/<instance or service>.jsonl``; set it to an empty
    string to log to stdout instead (as under docker compose, where stdout is collected).
    """
    app.config.from_mapping(SERVICE_DEFAULTS)
    app.config.from_mapping(defaults)
    from_prefixed_env(app.config, "OBSLAB")
    app.config.from_mapping(overrides or {})
    if app.config.get("LOG_FILE") is None:
        name = app.config["INSTANCE"] or service
        app.config["LOG_FILE"] = str(state_dir() / "logs" / f"{name}.jsonl")


def log_file(app: Flask) -> Path | None:
    return Path(app.config["LOG_FILE"]) if app.config["LOG_FILE"] else None
