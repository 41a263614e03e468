"""gunicorn settings every obslab service runs with: ``gunicorn -c python:app.gunicorn_conf``.

Command-line flags (bind, workers, threads) stay on the command line; this module holds what
flags cannot say.
"""

from __future__ import annotations

import gc
from typing import Any


def post_worker_init(worker: Any) -> None:
    """Once the app is loaded, move its objects out of the cyclic collector's sight.

    A loaded service holds about 120 000 long-lived objects (modules, Flask, the model, the
    telemetry SDKs), and every full collection walked them all: with spans waiting in the
    export queue, survivors reach the oldest generation often enough that a full collection
    ran every thousand requests and stopped every thread for about 50 ms. Frozen objects are
    never collected, which is right for objects that live as long as the process.
    """
    gc.freeze()
