"""The admin API: inject, list and clear a service's faults, behind a bearer token.

Off unless ``ADMIN_ENABLED``; refused outright in the ``prod`` profile. The fault's name
travels in the body of ``POST /admin/faults``, so neither the route label of the request
metrics nor the request log line says which fault a drill injected.

- ``GET /admin/faults``: the visible active faults.
- ``POST /admin/faults`` ``{"name", "params": {...}, "duration_seconds", "hidden"}``: inject.
- ``DELETE /admin/faults``: clear every fault (hidden ones too);
  ``DELETE /admin/faults/<name>``: clear one.
"""

from __future__ import annotations

import hmac

from flask import Blueprint, Flask, jsonify, request

from app.errors import RequestError
from app.faults import ActiveFault, FaultState

#: Longest fault a request may ask for: a forgotten fault still ends within the day.
MAX_DURATION_SECONDS = 86_400.0


def init_app(app: Flask, state: FaultState) -> None:
    """Serve the admin API for ``state`` when ``ADMIN_ENABLED``; check its settings first."""
    if not _enabled(app.config["ADMIN_ENABLED"]):
        return
    if app.config.get("PROFILE") == "prod":
        raise ValueError(
            "OBSLAB_ADMIN_ENABLED (config key ADMIN_ENABLED) must be off in the prod profile "
            "(OBSLAB_PROFILE): the admin API injects faults"
        )
    token = str(app.config["ADMIN_TOKEN"])
    if not token:
        raise ValueError(
            "OBSLAB_ADMIN_TOKEN (config key ADMIN_TOKEN) must be set when the admin API is on"
        )
    app.register_blueprint(_blueprint(state, token.encode()))


def _enabled(value: object) -> bool:
    # from_prefixed_env parses JSON, so "true"/"false" arrive as booleans.
    switch = {"true": True, "false": False, "on": True, "off": False, "1": True, "0": False}
    found = switch.get(str(value).lower())
    if found is None:
        raise ValueError(
            f"OBSLAB_ADMIN_ENABLED (config key ADMIN_ENABLED) must be true or false; got {value!r}"
        )
    return found


def _blueprint(state: FaultState, token: bytes) -> Blueprint:
    admin = Blueprint("admin", __name__, url_prefix="/admin")

    @admin.before_request
    def authorize():
        scheme, _, given = request.headers.get("Authorization", "").partition(" ")
        # Constant time: a timing difference must not reveal how much of a guess was right.
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.encode(), token):
            response = jsonify(error="missing or wrong bearer token", field="Authorization")
            response.headers["WWW-Authenticate"] = 'Bearer realm="obslab admin"'
            return response, 401
        return None

    @admin.get("/faults")
    def list_faults():
        return jsonify(faults=[_describe(state, fault) for fault in state.active()])

    @admin.post("/faults")
    def inject():
        body = request.get_json(silent=True)
        if not isinstance(body, dict):
            raise RequestError(400, "must be a JSON object", field="body")
        name = body.get("name")
        if not isinstance(name, str):
            raise RequestError(400, "must be a fault name", field="name")
        params = body.get("params", {})
        if not isinstance(params, dict):
            raise RequestError(400, "must be an object", field="params")
        duration = body.get("duration_seconds")
        if duration is not None and (
            isinstance(duration, bool)
            or not isinstance(duration, int | float)
            or not 0 < duration <= MAX_DURATION_SECONDS
        ):
            raise RequestError(
                400,
                f"must be a number of seconds in (0, {MAX_DURATION_SECONDS:g}]",
                field="duration_seconds",
            )
        hidden = body.get("hidden", False)
        if not isinstance(hidden, bool):
            raise RequestError(400, "must be true or false", field="hidden")
        fault = state.inject(name, params, duration=duration, hidden=hidden)
        if hidden:
            return jsonify(status="injected"), 201
        return jsonify(_describe(state, fault)), 201

    @admin.delete("/faults")
    def clear_all():
        return jsonify(cleared=state.clear())

    @admin.delete("/faults/<name>")
    def clear(name: str):
        if name not in state.specs:
            raise RequestError(404, f"{state.service} has no fault {name!r}", field="name")
        return jsonify(cleared=state.clear(name))

    return admin


def _describe(state: FaultState, fault: ActiveFault) -> dict[str, object]:
    return {
        "name": fault.name,
        "service": state.service,
        "params": fault.params,
        "remaining_seconds": state.remaining(fault),
        "injected_at": fault.injected_at,
    }
