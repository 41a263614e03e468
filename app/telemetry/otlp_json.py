"""Spans as OTLP-JSON lines: the trace store of the native run mode, written and read back.

Each line is one ``ExportTraceServiceRequest`` in the OTLP/JSON encoding, so the file can be
replayed into any OTLP backend (e.g. the collector's ``otlpjsonfile`` receiver).
"""

from __future__ import annotations

import base64
import functools
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TypedDict

import orjson
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import SpanContext, SpanKind, StatusCode

from app.telemetry.spans import FinishedSpan, SpanFields

_logger = logging.getLogger(__name__)

_KINDS = ("unspecified", "internal", "server", "client", "producer", "consumer")
_STATUSES = ("unset", "ok", "error")

# SpanFlags of the OTLP proto: whether the parent (or linked) context is known to be remote.
_FLAG_HAS_IS_REMOTE = 0x100
_FLAG_IS_REMOTE = 0x200


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
    """``spans`` as one OTLP/JSON ``ExportTraceServiceRequest``.

    The SDK's protobuf encoder plus ``json_format`` costs about ten times as much, which on
    the request-serving process's GIL is throughput lost; tests check both agree. Obslab's own
    spans (:class:`FinishedSpan`) hand over their fields as they are; any other span's are
    read through its properties.
    """
    # Grouped by identity first: the spans of one tracer share its Resource and scope
    # objects, and hashing a Resource serialises all its attributes. Then scopes by equality:
    # steps (``app.telemetry.spans``) carry a scope equal to, but not the same as, their
    # tracer's, and a few groups cost less to compare than every span.
    batches: dict[tuple[int, int], tuple[SpanFields, list[dict[str, Any]]]] = {}
    for span in spans:
        fields = span.fields if isinstance(span, FinishedSpan) else SpanFields.of(span)
        key = (id(fields.resource), id(fields.scope))
        batch = batches.get(key)
        if batch is None:
            batches[key] = (fields, [_span(fields)])
        else:
            batch[1].append(_span(fields))
    resources: dict[int, tuple[Resource, dict[Any, list[dict[str, Any]]]]] = {}
    for first, encoded in batches.values():
        _, scopes = resources.setdefault(id(first.resource), (first.resource, {}))
        scopes.setdefault(first.scope, []).extend(encoded)
    return orjson.dumps(
        {
            "resourceSpans": [
                {
                    "resource": {"attributes": _key_values(resource.attributes)},
                    "scopeSpans": [
                        _scope_spans(scope, encoded) for scope, encoded in scopes.items()
                    ],
                    "schemaUrl": resource.schema_url,
                }
                for resource, scopes in resources.values()
            ]
        }
    )


def _scope_spans(scope: InstrumentationScope | None, spans: list[dict[str, Any]]) -> dict[str, Any]:
    if scope is None:
        return {"spans": spans}
    encoded = {"name": scope.name, "version": scope.version or ""}
    if scope.attributes:
        encoded["attributes"] = _key_values(scope.attributes)
    return {"scope": encoded, "spans": spans, "schemaUrl": scope.schema_url or ""}


# The API counts kinds from INTERNAL, OTLP from UNSPECIFIED. Looked up rather than read
# through each member's ``value``, a property.
_KIND_CODES = {kind: kind.value + 1 for kind in SpanKind}
_STATUS_CODES = {code: code.value for code in StatusCode}

# A SpanContext is a tuple (trace_id, span_id, is_remote, trace_flags, trace_state, is_valid),
# as its class declares; indexed or unpacked, its fields cost no property call apiece.
_SPAN_ID = 1
_IS_REMOTE = 2


def _span(fields: SpanFields) -> dict[str, Any]:
    trace_id, span_id, _, _, trace_state, _ = fields.context
    parent = fields.parent
    status = fields.status
    status_code = status.status_code
    encoded: dict[str, Any] = {
        "traceId": f"{trace_id:032x}",
        "spanId": f"{span_id:016x}",
        "name": fields.name,
        "kind": _KIND_CODES[fields.kind],
        "startTimeUnixNano": str(fields.start_time),
        "endTimeUnixNano": str(fields.end_time),
        "attributes": _key_values(fields.attributes),
        "status": {"code": _STATUS_CODES[status_code]},
        "flags": _flags(parent),
    }
    if parent is not None:
        encoded["parentSpanId"] = f"{parent[_SPAN_ID]:016x}"
    if trace_state:
        encoded["traceState"] = trace_state.to_header()
    if status_code is not StatusCode.UNSET and status.description:
        encoded["status"]["message"] = status.description
    events = fields.events
    if events:
        encoded["events"] = [
            {
                "timeUnixNano": str(event.timestamp),
                "name": event.name,
                "attributes": _key_values(event.attributes),
                "droppedAttributesCount": event.dropped_attributes,
            }
            for event in events
        ]
    links = fields.links
    if links:
        encoded["links"] = [
            {
                "traceId": f"{link.context.trace_id:032x}",
                "spanId": f"{link.context.span_id:016x}",
                "attributes": _key_values(link.attributes),
                "droppedAttributesCount": link.dropped_attributes,
                "flags": _flags(link.context),
            }
            for link in links
        ]
    for key, count in (
        ("droppedAttributesCount", fields.dropped_attributes),
        ("droppedEventsCount", fields.dropped_events),
        ("droppedLinksCount", fields.dropped_links),
    ):
        if count:
            encoded[key] = count
    return encoded


def _flags(context: SpanContext | None) -> int:
    if context is not None and context[_IS_REMOTE]:
        return _FLAG_HAS_IS_REMOTE | _FLAG_IS_REMOTE
    return _FLAG_HAS_IS_REMOTE


_SCALARS = frozenset({str, bool, int, float})


def _key_values(attributes: Mapping[str, Any] | None) -> list[Any]:
    if not attributes:
        return []
    return [
        _scalar_key_value(key, value)
        if type(value) in _SCALARS
        else {"key": key, "value": _value(value)}
        for key, value in attributes.items()
    ]


# Spans repeat the same few attributes (method, route, status, model version) on every
# request: each pair is encoded once and reused. typed=True keeps True apart from 1.
@functools.lru_cache(maxsize=4096, typed=True)
def _scalar_key_value(key: str, value: str | bool | int | float) -> orjson.Fragment:
    return orjson.Fragment(orjson.dumps({"key": key, "value": _value(value)}))


def _value(value: Any) -> dict[str, Any]:
    # bool before int: bool is an int. int64 is a decimal string in ProtoJSON.
    if isinstance(value, str):
        return {"stringValue": value}
    if isinstance(value, bool):
        return {"boolValue": value}
    if isinstance(value, int):
        return {"intValue": str(value)}
    if isinstance(value, float):
        return {"doubleValue": value}
    if isinstance(value, bytes):
        return {"bytesValue": base64.b64encode(value).decode()}
    if isinstance(value, Mapping):
        return {"kvlistValue": {"values": _key_values(value)}}
    if isinstance(value, Sequence):
        return {"arrayValue": {"values": [_value(item) for item in value]}}
    return {}


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
