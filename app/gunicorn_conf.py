"""gunicorn settings every obslab service runs with: ``gunicorn -c python:app.gunicorn_conf``.

Command-line flags (bind, workers, threads) stay on the command line; this module holds what
flags cannot say, and the settings other parts of the lab read (``graceful_timeout``).
"""

from __future__ import annotations

import gc
from typing import Any

#: Seconds a stopping worker finishes its in-flight requests before it is killed. While it
#: drains it still answers scrapes: config/stack.yaml's symptom_group_wait outlasts it.
graceful_timeout = 5

#: Net allocations of tracked objects between two collections of the youngest generation;
#: CPython's default is 700.
YOUNG_GENERATION_THRESHOLD = 10_000


def post_worker_init(worker: Any) -> None:
    """Once the app is loaded, move its objects out of the cyclic collector's sight, and let
    the youngest generation grow before it is collected.

    A loaded service holds over a hundred thousand long-lived objects (modules, Flask, the
    model, the telemetry SDKs), which every full collection would walk again while it stops
    every thread; frozen objects are never collected, which is right for objects that live as
    long as the process. Spans waiting in the export queue live for seconds, long enough to
    be promoted by young collections, so these run less often too.
    """
    gc.freeze()
    _, middle, oldest = gc.get_threshold()
    gc.set_threshold(YOUNG_GENERATION_THRESHOLD, middle, oldest)
