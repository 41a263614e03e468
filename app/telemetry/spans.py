"""Spans for the steps inside a request: validation, a dependency call, inference.

A step has no child spans and writes no log line, so it need not become the current span.
``tracer.start_as_current_span`` would make it current anyway, through two generator-based
context managers and a context attach and detach; on the GIL-bound request path that costs
about a third as much again as the span itself.
"""

from __future__ import annotations

from types import TracebackType

from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode
from opentelemetry.util.types import Attributes


def step(
    tracer: trace.Tracer,
    name: str,
    *,
    kind: SpanKind = SpanKind.INTERNAL,
    attributes: Attributes = None,
) -> Step:
    """``with step(tracer, "inference") as span:`` times the block as a child of the current
    span. An exception leaving the block is recorded on the span and marks it as an error, as
    ``start_as_current_span`` does."""
    return Step(tracer.start_span(name, kind=kind, attributes=attributes))


class Step:
    """A started span, ended when the ``with`` block around it ends."""

    __slots__ = ("span",)

    def __init__(self, span: trace.Span) -> None:
        self.span = span

    def __enter__(self) -> trace.Span:
        return self.span

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        # Exceptions only, as the tracer's own: a BaseException (exit, interrupt) is no error.
        if isinstance(exc, Exception):
            self.span.record_exception(exc)
            self.span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}"))
        self.span.end()
