"""Telemetry work from the request path, applied in batches: metric updates, the finished
copies of spans (:class:`app.telemetry.spans.DeferredEnds`) and log lines such as each
request's (:func:`app.telemetry.logging.log_later`).

A request hands each update (count this request, observe that score, finish that span) to
:func:`later`, which queues it: one append. A thread applies what has queued every 0.1 s, and
every read of a registry the metrics were made in (a scrape of ``/metrics``,
``get_sample_value``) applies it first, so a reader never sees a count behind a request
already answered. An exemplar's timestamp is taken when its update is applied: at most about
0.1 s late. What updates count (a request, a bin of a feature) they hand to :func:`count`,
which adds to each counter once a batch.

Why: applied one at a time between requests, with the CPU's caches full of everything else,
an update cost several times what it costs in a batch. In one scoring process, batching its
metric updates, its spans' ends and its request line cut what telemetry adds to a prediction
from about 340 to 230 µs of CPU (README, Performance).
"""

from __future__ import annotations

import collections
import logging
import os
import threading
import weakref
from collections.abc import Callable, Iterable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Metric
from prometheus_client.registry import Collector

_logger = logging.getLogger(__name__)

#: Queued updates that wake the thread before its time.
_WAKE_AT_QUEUED = 1024

#: Queued updates past which the caller applies them itself: the thread is that far behind.
_MOST_QUEUED = 8192

_forks = 0


def forks() -> int:
    """How many forks separate this process from the one that imported this module.

    A thread does not run in a forked child, so work that needs one starts it when this has
    moved. Cheaper than comparing ``os.getpid()``, a system call, on every update.
    """
    return _forks


def _count_fork() -> None:
    global _forks
    _forks += 1


os.register_at_fork(after_in_child=_count_fork)


class UpdateBatch(Collector):
    """A queue of updates and the thread that applies them; as a collector, it applies them
    when the registry it is registered in is read."""

    def __init__(self, interval: float = 0.1) -> None:
        self._interval = interval
        self._queue: collections.deque[tuple[Callable[..., None], tuple[Any, ...]]] = (
            collections.deque()
        )
        self._counted: list[Counter] = []
        self._applying = threading.Lock()
        self._wake = threading.Event()
        self._thread_forks = -1  # no thread yet
        self._attached: weakref.WeakSet[CollectorRegistry] = weakref.WeakSet()

    def later(self, update: Callable[..., None], *args: Any) -> None:
        """Call ``update(*args)`` with the next batch. Pass values the caller will not change."""
        queue = self._queue
        queue.append((update, args))
        queued = len(queue)
        if queued >= _MOST_QUEUED:
            self.apply()
        elif self._thread_forks != _forks:
            # Started at the first update, in the process that makes it: a thread started
            # before a fork does not run in the child.
            self._start_thread()
        elif queued >= _WAKE_AT_QUEUED:
            self._wake.set()

    def count(self, counters: Iterable[Counter]) -> None:
        """Add one to each of ``counters``, labelled children (one may come more than once),
        as this batch ends. For updates, which run under the batch's lock.

        A batch counts the same few children many times, and one ``inc(n)`` costs what each
        ``inc()`` did: about five calls, and a lock.
        """
        self._counted.extend(counters)

    def apply(self) -> None:
        """Apply every update queued so far, in the order they came."""
        with self._applying:
            queue = self._queue
            while queue:
                update, args = queue.popleft()
                try:
                    update(*args)
                except Exception:  # one bad update must not lose the rest
                    _logger.exception("telemetry update %r failed", update)
            if self._counted:
                counted = collections.Counter(self._counted)
                self._counted.clear()
                for counter, times in counted.items():
                    counter.inc(times)

    def attach(self, registry: CollectorRegistry) -> None:
        """Apply the queue whenever ``registry`` is read. Call it before making the metrics
        in ``registry``: a registry reads its collectors in the order they came."""
        if registry not in self._attached:
            registry.register(self)
            self._attached.add(registry)

    def collect(self) -> Iterable[Metric]:
        self.apply()
        return ()

    def describe(self) -> Iterable[Metric]:
        return ()

    def _start_thread(self) -> None:
        self._thread_forks = _forks
        thread = threading.Thread(target=self._run, name="obslab-telemetry-batch", daemon=True)
        thread.start()

    def _run(self) -> None:
        while True:
            self._wake.wait(self._interval)
            self._wake.clear()
            self.apply()


#: The process's batch: every service's metrics, spans and request lines use it.
BATCH = UpdateBatch()

# Its methods, bound once: a request hands the batch about ten updates, and a function that
# passed each one on would cost a call of its own apiece. (A test that replaces the batch
# replaces these with it.)

#: Call ``update(*args)`` with the process's next batch.
later = BATCH.later

#: Add one to each of ``counters`` as the process's batch ends; for its updates.
count = BATCH.count

#: Apply the process's batch whenever ``registry`` is read; before making its metrics.
attach = BATCH.attach

#: Apply everything the process's batch holds.
apply = BATCH.apply
