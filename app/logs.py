"""Structured logs for every obslab process: one JSON object a line, without personal data.

structlog's documented chain, configured once per process by :func:`configure_logging`:
fields bound with ``structlog.contextvars``, the level, an ISO 8601 UTC timestamp, the service
and its version, the ids of the current span, exceptions as data, redaction, and orjson
rendering to a bytes logger.

This module loads the OpenTelemetry API only (to read the current span), never the SDK, so a
process without traces (the oncall receiver, the CLI) logs the same way.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import sys
from collections.abc import Iterable, Mapping
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

#: Add fields to every later line of the current request (or of the current context).
bind_request_fields = structlog.contextvars.bind_contextvars


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


def add_trace_context(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    """Add ``trace_id`` and ``span_id`` of the current span, so a log line links to its trace."""
    context = trace.get_current_span().get_span_context()
    if context.is_valid:
        event_dict["trace_id"] = trace.format_trace_id(context.trace_id)
        event_dict["span_id"] = trace.format_span_id(context.span_id)
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

    def __call__(self, _: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
        for key, value in event_dict.items():
            event_dict[key] = self._redact(key, value)
        return event_dict

    def _classify(self, key: object) -> int:
        lowered = str(key).lower()
        if lowered == "customer_id":
            return self._HASH
        if lowered in self._personal or any(marker in lowered for marker in self._markers):
            return self._REDACT
        return self._KEEP

    def _redact(self, key: object, value: Any) -> Any:
        verdict = self._verdict(key)
        if verdict == self._REDACT:
            return REDACTED
        if verdict == self._HASH:
            return value if value is None else hash_customer_id(value)
        return self._walk(value)

    def _walk(self, value: Any) -> Any:
        if type(value) in _SCALARS:
            return value
        # Copies, never mutates: nested values belong to the caller.
        if isinstance(value, Mapping):
            return {key: self._redact(key, item) for key, item in value.items()}
        if isinstance(value, list | tuple):
            return [self._walk(item) for item in value]
        return value


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
    (binary, or text with a ``buffer``; ``sys.stdout`` by default) when there is no log file.

    One output, not both: the native stack already keeps each process's stdout in a file of
    its own. Call it before creating the Flask app. Loggers are cached on first use, so take
    them after this call (``structlog.get_logger()`` where they are used); a log file opened
    here stays open for the life of the process, as stdout does.
    """
    if log_file is not None:
        log_file.parent.mkdir(parents=True, exist_ok=True)
        # Append: instances restarted by a deploy continue the file.
        output: BinaryIO = open(log_file, "ab")  # noqa: SIM115 - the process's log, kept open
    else:
        output = _binary(stream or sys.stdout)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            ServiceFields(service, version),
            add_trace_context,
            # Frame locals would carry request payloads and tokens straight into the logs.
            structlog.processors.ExceptionRenderer(ExceptionDictTransformer(show_locals=False)),
            Redactor(),
            # A dict with keys that are not text still renders, rather than failing the caller.
            structlog.processors.JSONRenderer(
                serializer=orjson.dumps, option=orjson.OPT_NON_STR_KEYS
            ),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.INFO),
        logger_factory=structlog.BytesLoggerFactory(output),
        cache_logger_on_first_use=True,
    )
