"""Structured logs: one JSON object a line, correlated with traces, without personal data.

Fields every line of a request carries (its request id, the prediction it made) are bound with
:func:`bind_request_fields`. They live in one dict per request, in one context variable:
structlog's own ``contextvars`` helpers keep a variable per field, and their merge walks every
context variable of the thread on every line: a third of a request's log cycle (bind, line,
clear) in a tight loop.

A call to log runs only the processors that need its moment (the request's fields, the time,
the current span, the exception being handled) and queues the line. Services have a writer
thread render, redact and write what has queued every 0.1 s (:class:`_LineWriter`).

:func:`log_later` logs a line from the telemetry batch (:mod:`app.telemetry.batch`) instead,
as of the call: the request's fields and span are made current again, and the time of the call
rides along as a float ``timestamp``. The request hooks log each request's line so; a flush
applies the batch first.
"""

from __future__ import annotations

import atexit
import functools
import hashlib
import logging
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from contextvars import ContextVar
from pathlib import Path
from typing import IO, Any, BinaryIO

import orjson
import structlog
from opentelemetry import trace
from structlog.tracebacks import ExceptionDictTransformer
from structlog.typing import EventDict, Processor, WrappedLogger

from app.telemetry import batch

REDACTED = "[REDACTED]"

#: Applicant inputs and customer history: personal data that must never reach a log line.
PERSONAL_FIELDS = frozenset(
    {
        "income",
        "age",
        "debt_ratio",
        "loan_amount",
        "employment_years",
        "credit_utilization",
        "late_payments",
    }
)

#: A key containing any of these (case-insensitive) holds a credential.
SECRET_MARKERS = ("authorization", "token", "password", "secret", "cookie")

_CUSTOMER_ID_SALT = b"obslab/customer_id/v1:"

_SCALARS = frozenset({str, int, float, bool, type(None)})

#: How many distinct keys a Redactor remembers the verdict of.
_MAX_KEYS = 1024

#: Queued lines that wake a batching writer before its time.
_WAKE_AT_QUEUED = 1024

#: Queued lines past which the logging thread writes them itself.
_MOST_QUEUED = 4096

#: The writer of the current configuration, closed when it is replaced.
_writer: _LineWriter | None = None


#: The current request's fields; None outside a request.
_REQUEST_FIELDS: ContextVar[dict[str, Any] | None] = ContextVar(
    "obslab_request_fields", default=None
)


def begin_request_fields(**fields: Any) -> None:
    """Start the current request's fields afresh with ``fields``, dropping any left over."""
    _REQUEST_FIELDS.set(fields)


def bind_request_fields(**fields: Any) -> None:
    """Add ``fields`` to every line logged in the current request from now on.

    Outside a request (before :func:`begin_request_fields`, or after
    :func:`end_request_fields`) they bind to the current context until the next of those.
    """
    bound = _REQUEST_FIELDS.get()
    if bound is None:
        _REQUEST_FIELDS.set(fields)
    else:
        bound.update(fields)


def end_request_fields() -> None:
    """Drop the current request's fields."""
    _REQUEST_FIELDS.set(None)


#: Where a line logged later (:func:`log_later`) carries its moment's request fields and span,
#: for the processors that would otherwise read them from the current context.
_AS_OF_FIELDS = "_obslab_as_of_fields"
_AS_OF_SPAN = "_obslab_as_of_span"
_NOW = object()


def merge_request_fields(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    """Add the current request's fields (or those of the moment the line was logged as of);
    a field given to the line itself wins."""
    bound = event_dict.pop(_AS_OF_FIELDS, _NOW)
    if bound is _NOW:
        bound = _REQUEST_FIELDS.get()
    if bound:
        for key, value in bound.items():
            event_dict.setdefault(key, value)
    return event_dict


def hash_customer_id(customer_id: object) -> str:
    """The stable pseudonym logs carry instead of a customer id; search logs with it."""
    digest = hashlib.sha256(_CUSTOMER_ID_SALT + str(customer_id).encode())
    return digest.hexdigest()[:16]


class ServiceFields:
    """Stamp every line with the emitting service and its version."""

    def __init__(self, service: str, version: str) -> None:
        self._fields = {"service": service, "version": version}

    def __call__(self, _: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
        event_dict.update(self._fields)
        return event_dict


class UtcTimestamp:
    """Stamp ``timestamp`` in ISO 8601 UTC with microseconds, e.g. ``2026-01-02T03:04:05.678901Z``:
    the time of the call, or the unix time (a float) the line already carries as its timestamp,
    when it is logged after the moment it describes.

    structlog's ``TimeStamper(fmt="iso")`` builds a datetime and formats all of it on every
    line; the date and time of day change once a second, so they are formatted once a second.
    """

    def __init__(self) -> None:
        # One tuple, replaced whole: threads never see one second's prefix with another's.
        self._cached = (-1, "")

    def __call__(self, _: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
        given = event_dict.get("timestamp")
        now = given if type(given) is float else time.time()
        second = int(now)
        cached_second, prefix = self._cached
        if second != cached_second:
            prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
            self._cached = (second, prefix)
        event_dict["timestamp"] = f"{prefix}.{int((now - second) * 1e6):06d}Z"
        return event_dict


def add_trace_context(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    """Add ``trace_id`` and ``span_id`` of the current span (or of the span the line was logged
    as of), so a log line links to its trace."""
    span = event_dict.pop(_AS_OF_SPAN, None) or trace.get_current_span()
    # A SpanContext is a tuple: unpacked, its fields cost no property call apiece.
    trace_id, span_id, _, _, _, valid = span.get_span_context()
    if valid:
        event_dict["trace_id"] = format(trace_id, "032x")
        event_dict["span_id"] = format(span_id, "016x")
    return event_dict


class Redactor:
    """Pseudonymise customer ids and redact credentials and applicant data, at any depth."""

    _KEEP, _HASH, _REDACT = range(3)

    def __init__(
        self,
        personal_fields: Iterable[str] = PERSONAL_FIELDS,
        secret_markers: Iterable[str] = SECRET_MARKERS,
    ) -> None:
        self._personal = frozenset(field.lower() for field in personal_fields)
        self._markers = tuple(marker.lower() for marker in secret_markers)
        # Keys repeat on every line; payloads logged by mistake must not grow it without bound.
        self._verdict = functools.lru_cache(maxsize=_MAX_KEYS)(self._classify)
        # The keys seen and kept, for set operations in C: replaced whole, never mutated, so
        # a thread reading it never sees it change. A key two threads race to add may be
        # lost; it is then judged through the cache on every line, which is only slower.
        self._kept: frozenset[object] = frozenset()

    def __call__(self, _: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
        if not _SCALARS.issuperset(map(type, event_dict.values())):
            for key, value in event_dict.items():
                event_dict[key] = self._redact(key, value)
            return event_dict
        # The common line: scalars only, and all but a key or two (customer_id) known as kept.
        for key in event_dict.keys() - self._kept:
            if self._verdict(key) != self._KEEP:
                event_dict[key] = self._redact(key, event_dict[key])
        return event_dict

    def _classify(self, key: object) -> int:
        lowered = str(key).lower()
        if lowered == "customer_id":
            return self._HASH
        if lowered in self._personal or any(marker in lowered for marker in self._markers):
            return self._REDACT
        if len(self._kept) < _MAX_KEYS:
            self._kept = self._kept | {key}
        return self._KEEP

    def _redact(self, key: object, value: Any) -> Any:
        verdict = self._verdict(key)
        if verdict == self._REDACT:
            return REDACTED
        if verdict == self._HASH:
            return value if value is None else hash_customer_id(value)
        return self._walk(value)

    def _walk(self, value: Any) -> Any:
        # Nearly every value is a scalar; the ABC check below costs more than the rest.
        if type(value) in _SCALARS:
            return value
        # Copies, never mutates: nested values belong to the caller.
        if isinstance(value, Mapping):
            return {key: self._redact(key, item) for key, item in value.items()}
        if isinstance(value, list | tuple):
            return [self._walk(item) for item in value]
        return value


class _LineWriter:
    """structlog's logger and logger factory at once: renders each line's event dict and
    writes it to the log file if there is one, else to the stream.

    One output, not both: a second copy of every line is a second write(2), and the native
    stack already keeps each process's stdout in a file of its own.

    With ``batch_seconds`` the lines wait in a queue, and a thread of the writer's own renders
    and writes what has queued every ``batch_seconds``, in one write(2). A request then only
    queues its line: rendered one at a time between requests, with the CPU's caches full of
    everything else, a line cost three times what it costs in a batch.
    """

    def __init__(
        self,
        stream: BinaryIO,
        log_file: Path | None,
        render: Callable[[EventDict], bytes],
        batch_seconds: float = 0.0,
    ) -> None:
        self._file: BinaryIO | None = None
        if log_file is not None:
            log_file.parent.mkdir(parents=True, exist_ok=True)
            # Unbuffered append: each batch is one write(2), so nothing a reader sees ends in
            # half a line.
            self._file = open(log_file, "ab", buffering=0)  # noqa: SIM115 - closed in close()
        self._output = self._file or stream
        self._render = render
        self._batch_seconds = batch_seconds
        self._queue: deque[EventDict] = deque()
        self._writing = threading.Lock()
        self._wake = threading.Event()
        self._closed = False
        self._thread_forks = -1  # no thread yet
        atexit.register(self._flush_at_exit)

    def __call__(self, *_names: Any) -> _LineWriter:
        return self

    def msg(self, event_dict: EventDict) -> None:
        queue = self._queue
        queue.append(event_dict)
        if not self._batch_seconds or len(queue) >= _MOST_QUEUED:
            # Unbatched; or the writer is that far behind (its output blocks), and the caller
            # writes, waiting for the output as an unbatched caller would, rather than the
            # queue growing without bound.
            self.flush()
        elif self._thread_forks != batch.forks():
            # Started at the first line, in the process that logs it: a thread started
            # before a fork does not run in the child.
            self._start_thread()
        elif len(queue) >= _WAKE_AT_QUEUED:
            self._wake.set()

    log = debug = info = warn = warning = msg
    err = error = critical = exception = fatal = failure = msg

    def flush(self) -> None:
        """Render and write every line queued so far."""
        with self._writing:
            lines = []
            queue = self._queue
            while queue:
                lines.append(self._render_line(queue.popleft()))
            if not lines:
                return
            try:
                self._output.write(b"".join(lines))
                self._output.flush()
            except (OSError, ValueError):
                # A closed stream (a test's captured stdout at exit) or a full disk: the
                # lines are lost, and the service goes on serving.
                if self._batch_seconds:
                    return
                raise

    def close(self) -> None:
        """Write what is queued, stop the thread and close the log file."""
        self._closed = True
        self._wake.set()
        atexit.unregister(self._flush_at_exit)
        self._flush_at_exit()
        if self._file is not None:
            self._file.close()

    def _flush_at_exit(self) -> None:
        # Request lines wait in the telemetry batch before they reach the queue.
        batch.apply()
        self.flush()

    @property
    def batched(self) -> bool:
        return bool(self._batch_seconds)

    def _render_line(self, event_dict: EventDict) -> bytes:
        try:
            return self._render(event_dict) + b"\n"
        except Exception as error:  # one bad line must not stop the writer
            stand_in = {
                "event": "log line not rendered",
                "level": "error",
                "error": type(error).__name__,
                "logged_event": str(event_dict.get("event")),
                "timestamp": event_dict.get("timestamp"),
            }
            return orjson.dumps(stand_in) + b"\n"

    def _start_thread(self) -> None:
        self._thread_forks = batch.forks()
        thread = threading.Thread(target=self._run, name="obslab-log-writer", daemon=True)
        thread.start()

    def _run(self) -> None:
        while not self._closed:
            self._wake.wait(self._batch_seconds)
            self._wake.clear()
            self.flush()


def _binary(stream: IO[Any]) -> BinaryIO:
    return getattr(stream, "buffer", stream)


def configure_logging(
    service: str,
    version: str,
    *,
    log_file: Path | None = None,
    stream: IO[Any] | None = None,
    batch_seconds: float = 0.0,
) -> None:
    """Configure structlog for the process: JSON lines to ``log_file``, or to ``stream``
    when there is no log file.

    ``stream`` is binary or a text stream with a ``buffer`` (the default, ``sys.stdout``).
    With ``batch_seconds``, lines are rendered and written together at most that long after
    they were logged (and at exit, or on :func:`flush_logs`); without, as they are logged.
    A batched line shows its values as they are when it is written: log a copy of a dict or
    list the caller goes on changing.

    Call it before creating the Flask app. Calling it again replaces the previous
    configuration, after writing what it still holds and closing the log file it opened.
    """
    global _writer
    close_logs()
    # The processors take what only the moment of the call knows; the writer renders the rest.
    _writer = _LineWriter(
        _binary(stream or sys.stdout),
        log_file,
        _chain(
            # Frame locals would carry request payloads and tokens straight into the logs.
            structlog.processors.ExceptionRenderer(ExceptionDictTransformer(show_locals=False)),
            Redactor(),
            structlog.processors.JSONRenderer(serializer=orjson.dumps),
        ),
        batch_seconds=batch_seconds,
    )
    structlog.configure(
        processors=[
            merge_request_fields,
            structlog.processors.add_log_level,
            UtcTimestamp(),
            ServiceFields(service, version),
            add_trace_context,
            capture_exc_info,
            _to_writer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.INFO),
        logger_factory=_writer,
        # Tests reconfigure and capture logs; cached loggers would keep the old pipeline.
        cache_logger_on_first_use=False,
    )


def flush_logs() -> None:
    """Write every line logged so far, when logs are written in batches."""
    if _writer is not None:
        batch.apply()
        _writer.flush()


def log_later(log: Any, level: str, event: str, **fields: Any) -> None:
    """``log.<level>(event, **fields)``, called from the telemetry batch as of now: with this
    moment's time, request fields and span. Only when lines are written in batches, a moment
    after they are logged anyway; otherwise the line is logged now."""
    if _writer is None or not _writer.batched:
        getattr(log, level)(event, **fields)
        return
    fields["timestamp"] = time.time()
    bound = _REQUEST_FIELDS.get()
    # A copy: the request may bind more after this line, which must not show on it.
    fields[_AS_OF_FIELDS] = dict(bound) if bound else None
    fields[_AS_OF_SPAN] = trace.get_current_span()
    batch.later(_log_as_of, log, level, event, fields)


def _log_as_of(log: Any, level: str, event: str, fields: dict[str, Any]) -> None:
    # The moment rides in the fields (merge_request_fields, add_trace_context): the thread
    # applying the batch may be serving a request of its own, whose context is not this one.
    getattr(log, level)(event, **fields)


def close_logs() -> None:
    """Write every line logged so far, then stop the writer and close the log file."""
    global _writer
    if _writer is not None:
        _writer.close()
        _writer = None


def capture_exc_info(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    """Turn ``exc_info=True`` (what ``.exception()`` passes) into the exception handled now:
    the line is rendered later, maybe on another thread, where it would be gone."""
    exc_info = event_dict.get("exc_info")
    if exc_info and not isinstance(exc_info, BaseException | tuple):
        event_dict["exc_info"] = sys.exc_info()
    return event_dict


def _to_writer(_: WrappedLogger, __: str, event_dict: EventDict) -> tuple[tuple[Any], dict]:
    # A tuple from the last processor is the logger call's (args, kwargs).
    return (event_dict,), {}


def _chain(*processors: Processor) -> Callable[[EventDict], bytes]:
    def render(event_dict: EventDict) -> bytes:
        rendered: Any = event_dict
        for processor in processors:
            rendered = processor(None, "", rendered)
        return rendered

    return render
