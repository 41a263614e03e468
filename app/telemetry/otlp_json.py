"""Spans as OTLP-JSON lines: the trace store of the native run mode, written and read back.

Each line is one ``ExportTraceServiceRequest`` in the OTLP/JSON encoding, so the file can be
replayed into any OTLP backend (e.g. the collector's ``otlpjsonfile`` receiver). The request
is the SDK's own OTLP encoding (``encode_spans``), turned into JSON by protobuf's
``json_format``; OTLP/JSON differs from plain ProtoJSON only in writing trace and span ids as
hex rather than base64.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TypedDict

import orjson
from google.protobuf import json_format
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

_logger = logging.getLogger(__name__)

_KINDS = ("unspecified", "internal", "server", "client", "producer", "consumer")
_STATUSES = ("unset", "ok", "error")

#: The fields of spans and links that hold ids, bytes in the protobuf message.
_ID_FIELDS = ("traceId", "spanId", "parentSpanId")


class OtlpJsonFileExporter(SpanExporter):
    """Append one OTLP-JSON ``ExportTraceServiceRequest`` a line per export to ``path``."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        line = encode_request(spans) + b"\n"
        try:
            # Unbuffered append: the whole line is one write(2), so instances of a service
            # sharing the file never interleave.
            with self.path.open("ab", buffering=0) as file:
                file.write(line)
        except OSError:
            _logger.exception("cannot append spans to %s", self.path)
            return SpanExportResult.FAILURE
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        """Nothing to release: the file is opened per export."""


def encode_request(spans: Sequence[ReadableSpan]) -> bytes:
    """``spans`` as one OTLP/JSON ``ExportTraceServiceRequest``."""
    request = json_format.MessageToDict(encode_spans(spans), use_integers_for_enums=True)
    for resource_spans in request.get("resourceSpans", ()):
        for scope_spans in resource_spans.get("scopeSpans", ()):
            for span in scope_spans.get("spans", ()):
                _hex_ids(span)
                for link in span.get("links", ()):
                    _hex_ids(link)
    return orjson.dumps(request)


def _hex_ids(message: dict[str, Any]) -> None:
    for key in _ID_FIELDS:
        if key in message:
            message[key] = base64.b64decode(message[key]).hex()


class SpanRecord(TypedDict):
    """One span, flattened for lookup and display."""

    trace_id: str
    span_id: str
    parent_span_id: str | None
    name: str
    kind: str
    service: str
    start_ns: int
    end_ns: int
    status: str
    attributes: dict[str, Any]


def read_spans(path: Path) -> list[SpanRecord]:
    """Every span in an OTLP-JSON lines file, in file order.

    Raises ``ValueError`` naming the file and line when a line is not OTLP-JSON.
    """
    records: list[SpanRecord] = []
    with path.open("rb") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                records.extend(_records(orjson.loads(line)))
            except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, IndexError) as exc:
                raise ValueError(
                    f"{path}:{number}: not an OTLP-JSON trace request: {exc!r}"
                ) from exc
    return records


def _records(request: dict[str, Any]) -> list[SpanRecord]:
    records: list[SpanRecord] = []
    for resource_spans in request.get("resourceSpans", ()):
        resource = _attributes(resource_spans.get("resource", {}).get("attributes", ()))
        service = str(resource.get("service.name", ""))
        for scope_spans in resource_spans.get("scopeSpans", ()):
            for span in scope_spans.get("spans", ()):
                records.append(
                    SpanRecord(
                        trace_id=span["traceId"],
                        span_id=span["spanId"],
                        parent_span_id=span.get("parentSpanId") or None,
                        name=span["name"],
                        kind=_KINDS[span.get("kind", 0)],
                        service=service,
                        start_ns=int(span["startTimeUnixNano"]),
                        end_ns=int(span["endTimeUnixNano"]),
                        status=_STATUSES[span.get("status", {}).get("code", 0)],
                        attributes=_attributes(span.get("attributes", ())),
                    )
                )
    return records


def _attributes(key_values: Sequence[dict[str, Any]]) -> dict[str, Any]:
    return {item["key"]: _any_value(item.get("value", {})) for item in key_values}


def _any_value(value: dict[str, Any]) -> Any:
    if "stringValue" in value:
        return value["stringValue"]
    if "boolValue" in value:
        return value["boolValue"]
    if "intValue" in value:
        return int(value["intValue"])  # int64 is a decimal string in ProtoJSON
    if "doubleValue" in value:
        return float(value["doubleValue"])
    if "arrayValue" in value:
        return [_any_value(item) for item in value["arrayValue"].get("values", ())]
    if "kvlistValue" in value:
        return _attributes(value["kvlistValue"].get("values", ()))
    if "bytesValue" in value:
        return base64.b64decode(value["bytesValue"])
    return None
