"""A request's route as logs, metrics and spans name it: its URL rule template, never the raw
path, which carries customer ids."""

from __future__ import annotations

from flask import Request

#: The route of a request that matched no URL rule: one value, whatever the path.
UNMATCHED = "unmatched"


def route_of(request: Request) -> str:
    """The URL rule template ``request`` matched, else :data:`UNMATCHED`."""
    rule = request.url_rule
    return rule.rule if rule is not None else UNMATCHED
