"""Structured logs: one JSON object a line, correlated with traces, without personal data.

Fields every line of a request carries (its request id, the prediction it made) are bound with
:func:`bind_request_fields`. They live in one dict per request, in one context variable:
structlog's own ``contextvars`` helpers keep a variable per field, and their merge walks every
context variable of the thread on every line: a third of a request's log cycle (bind, line,
clear) in a tight loop.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import sys
import time
from collections.abc import Iterable, Mapping
from contextvars import ContextVar
from pathlib import Path
from typing import IO, Any, BinaryIO

import orjson
import structlog
from opentelemetry import trace
from structlog.tracebacks import ExceptionDictTransformer
from structlog.typing import EventDict, WrappedLogger

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


def merge_request_fields(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    """Add the current request's fields; a field given to the line itself wins."""
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
    """Stamp ``timestamp`` in ISO 8601 UTC with microseconds, e.g. ``2026-01-02T03:04:05.678901Z``.

    structlog's ``TimeStamper(fmt="iso")`` builds a datetime and formats all of it on every
    line; the date and time of day change once a second, so they are formatted once a second.
    """

    def __init__(self) -> None:
        # One tuple, replaced whole: threads never see one second's prefix with another's.
        self._cached = (-1, "")

    def __call__(self, _: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
        now = time.time()
        second = int(now)
        cached_second, prefix = self._cached
        if second != cached_second:
            prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
            self._cached = (second, prefix)
        event_dict["timestamp"] = f"{prefix}.{int((now - second) * 1e6):06d}Z"
        return event_dict


def add_trace_context(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    """Add ``trace_id`` and ``span_id`` of the current span, so a log line links to its trace."""
    context = trace.get_current_span().get_span_context()
    if context.is_valid:
        event_dict["trace_id"] = format(context.trace_id, "032x")
        event_dict["span_id"] = format(context.span_id, "016x")
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


class _JsonLines:
    """structlog's logger and logger factory at once: writes each rendered line to the log
    file if there is one, else to the stream.

    One output, not both: a second copy of every line is a second write(2) on the request
    path, and the native stack already keeps each process's stdout in a file of its own.
    """

    def __init__(self, stream: BinaryIO, log_file: Path | None) -> None:
        self._file: BinaryIO | None = None
        if log_file is not None:
            log_file.parent.mkdir(parents=True, exist_ok=True)
            # Unbuffered append: each line is one write(2), so instances sharing the file
            # never interleave halves of lines.
            self._file = open(log_file, "ab", buffering=0)  # noqa: SIM115 - closed in close()
        self._output = self._file or stream

    def __call__(self, *_names: Any) -> _JsonLines:
        return self

    def msg(self, line: bytes) -> None:
        self._output.write(line + b"\n")
        self._output.flush()

    log = debug = info = warn = warning = msg
    err = error = critical = exception = fatal = failure = msg

    def close(self) -> None:
        if self._file is not None:
            self._file.close()


def _binary(stream: IO[Any]) -> BinaryIO:
    return getattr(stream, "buffer", stream)


def configure_logging(
    service: str,
    version: str,
    *,
    log_file: Path | None = None,
    stream: IO[Any] | None = None,
) -> None:
    """Configure structlog for the process: JSON lines to ``log_file``, or to ``stream``
    when there is no log file.

    ``stream`` is binary or a text stream with a ``buffer`` (the default, ``sys.stdout``).

    Call it before creating the Flask app. Calling it again replaces the previous
    configuration and closes the log file it opened.
    """
    previous = structlog.get_config()["logger_factory"]
    if isinstance(previous, _JsonLines):
        previous.close()
    structlog.configure(
        processors=[
            merge_request_fields,
            structlog.processors.add_log_level,
            UtcTimestamp(),
            ServiceFields(service, version),
            add_trace_context,
            # Frame locals would carry request payloads and tokens straight into the logs.
            structlog.processors.ExceptionRenderer(ExceptionDictTransformer(show_locals=False)),
            Redactor(),
            structlog.processors.JSONRenderer(serializer=orjson.dumps),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.INFO),
        logger_factory=_JsonLines(_binary(stream or sys.stdout), log_file),
        # Tests reconfigure and capture logs; cached loggers would keep the old pipeline.
        cache_logger_on_first_use=False,
    )
