"""Where runtime state lives, and the settings every service reads.

Services read their settings from the environment with the ``OBSLAB_`` prefix
(``app.config.from_prefixed_env``); the standard ``OTEL_*`` variables are left to
OpenTelemetry.
"""

from __future__ import annotations

import os
from pathlib import Path

#: Defaults shared by both services; each key is overridden by ``OBSLAB_<KEY>``.
SERVICE_DEFAULTS: dict[str, object] = {
    "SERVICE_VERSION": "1.0.0",
    "COMMIT": "unknown",
    "MODEL_VERSION": "m1",
    "PREVIOUS_VERSION": "",
    "ENVIRONMENT": "native",
    "INSTANCE": "",
    "DEPLOYED_AT": 0.0,
    "TELEMETRY": "on",
    "ADMIN_ENABLED": False,
    "ADMIN_TOKEN": "",
    "MAX_CONTENT_LENGTH": 16 * 1024,
}


def state_dir() -> Path:
    """The lab's runtime state: ``$OBSLAB_HOME``, else ``.obslab`` in the working directory."""
    return Path(os.environ.get("OBSLAB_HOME") or ".obslab").resolve()
