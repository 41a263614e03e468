"""The oncall receiver: keeps every Alertmanager notification as a page for the on-call engineer.

Run it with ``gunicorn 'obslab.oncall:create_app()'``; ``obslab.oncall.client`` reads the pages.

Endpoints: ``POST /webhook`` (notifications) and ``POST /watchdog`` (the dead-man's switch's
heartbeat), both with the bearer token; ``GET /`` (the page list as HTML), ``GET /pages``
(its JSON; filters ``alertname``, ``status``, ``kind``, ``state``), ``GET /held-back``,
``GET /runbook``, ``/healthz``, ``/readyz`` and ``/metrics``, without it.

Settings (environment): ``OBSLAB_ONCALL_TOKEN`` (required), ``OBSLAB_ONCALL_DB``,
``OBSLAB_ALERTMANAGER_URL`` (asked what each firing page is now; unset: pages are unchecked),
``OBSLAB_WATCHDOG_TIMEOUT_SECONDS`` (180), ``OBSLAB_LOG_FILE`` and
``OBSLAB_MAX_CONTENT_LENGTH``.
"""

from obslab.oncall.receiver import ConfigError, create_app

__all__ = ["ConfigError", "create_app"]
