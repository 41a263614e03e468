"""The fault catalogue, and how ``obslab fault inject|list|clear`` applies each fault.

Faults come from three places, as they do in the world:

- ``service``: the code of a running service misbehaves (its admin API, ``app.faults``);
  the service itself enforces ``--for``.
- ``deploy``: a bad release goes out (``obslab.deploy``), and rolling back ends it.
- ``load``: the traffic changes (the load profile file, ``loadgen.profile``); the services
  are untouched.

A deploy or load fault with ``--for`` is ended by a small detached process that sleeps, then
undoes the fault if it is still the one it was started for.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from app.faults import SERVICE_FAULTS
from app.settings import state_dir
from obslab.errors import ObslabError
from obslab.layout import StateLayout

if TYPE_CHECKING:  # loadgen imports numpy, which only the load faults need
    from loadgen.profile import Profile

_ADMIN_TIMEOUT = 5.0


@dataclass(frozen=True)
class Fault:
    """One entry of the catalogue.

    ``alerts`` must page (or ticket) while the fault is on; ``may_alert`` are consequences
    that may follow within the same minute (a fast SLO burn behind a high error rate).
    ``signals`` are the stops on the road from the page to the root cause.
    """

    name: str
    source: str  # service | deploy | load
    summary: str
    params: Mapping[str, Any]
    alerts: tuple[str, ...]
    may_alert: tuple[str, ...]
    signals: tuple[str, ...]
    root_cause: str
    difficulty: str  # easy | medium | hard

    @property
    def service(self) -> str | None:
        spec = SERVICE_FAULTS.get(self.name)
        return spec.service if spec else None

    def resolve(self, given: Mapping[str, str]) -> dict[str, Any]:
        """The defaults overlaid with ``given`` (``key=value`` strings), typed like them."""
        resolved = dict(self.params)
        for key, raw in given.items():
            if key not in self.params:
                raise ObslabError(
                    f"fault {self.name} has no parameter {key!r}; it takes "
                    f"{', '.join(self.params) or 'none'}"
                )
            default = self.params[key]
            if isinstance(default, str):
                resolved[key] = raw
                continue
            try:
                resolved[key] = float(raw)
            except ValueError:
                message = f"parameter {key} of {self.name}: {raw!r} is not a number"
                raise ObslabError(message) from None
        return resolved

    def target(self, params: Mapping[str, Any]) -> str:
        """What the fault hits: a service, a feature, or a release."""
        if self.source == "service":
            return str(self.service)
        if self.source == "deploy":
            return str(params["version"])
        return str(params.get("feature", "all"))


def _service_params(name: str) -> dict[str, float]:
    return {key: param.default for key, param in SERVICE_FAULTS[name].params.items()}


CATALOGUE: dict[str, Fault] = {
    fault.name: fault
    for fault in (
        Fault(
            "slow-dependency",
            "service",
            "features answers slowly; scoring's calls to it time out",
            _service_params("slow-dependency"),
            # Scoring's errors and latency are held back by DependencyFailing, their cause;
            # features' own latency has none and pages.
            alerts=("HighLatency", "DependencyFailing"),
            # Every lookup holds a features thread until scoring gives up on it, so
            # Prometheus's scrapes can queue behind them.
            may_alert=("HighErrorRate", "ErrorBudgetBurn", "LatencyBudgetBurn", "TargetDown"),
            signals=(
                "panel: Latency p95 by route (scoring /predict and features rise together)",
                "panel: Dependency calls by outcome (timeouts)",
                "span: feature_lookup lasts 2 s and ends in error; the features server span "
                "under it is the slow one",
                "log: scoring `request` lines on /predict with status 503 and duration_ms ~2000",
            ),
            root_cause=(
                "The features service waits before it answers. Scoring gives up after its 2 s "
                "read timeout and answers 503, so latency, errors and dependency failures rise "
                "together, and the trace shows the time spent inside features, not scoring. "
                "Each lookup holds a features thread until scoring hangs up, so even "
                "Prometheus's scrapes can wait in line and TargetDown on features can follow: "
                "a slow service can look like a dead one."
            ),
            difficulty="easy",
        ),
        Fault(
            "error-burst",
            "service",
            "a share of scoring's /predict requests fail with 500",
            _service_params("error-burst"),
            # HighErrorRate holds the budget burn back: it pages, if at all, once the outage
            # has ended and its short window is still hot.
            alerts=("HighErrorRate",),
            may_alert=("ErrorBudgetBurn",),
            signals=(
                "panel: Error ratio by route (only scoring /predict)",
                "span: the scoring server span of /predict ends in error before feature_lookup",
                "log: scoring `request` lines with status 500 on /predict",
            ),
            root_cause=(
                "Scoring's /predict fails on a share of requests before it does any work: "
                "no feature lookup and no inference in the failing traces, no deploy before "
                "it, and features stays healthy."
            ),
            difficulty="easy",
        ),
        Fault(
            "dependency-down",
            "service",
            "features answers 503 to every lookup",
            _service_params("dependency-down"),
            alerts=("DependencyFailing", "HighErrorRate"),
            may_alert=("ErrorBudgetBurn",),
            signals=(
                "panel: Dependency calls by outcome (errors, not timeouts)",
                "panel: Error ratio by job (features and scoring both)",
                "span: feature_lookup ends in error fast; the features span answers 503",
                "log: features `request` lines with status 503 on /customers/<id>/features",
            ),
            root_cause=(
                "The features service is up (its target is not down) but refuses every "
                "lookup; scoring retries once, then answers 503. The errors start in "
                "features: its own error ratio rises first."
            ),
            difficulty="easy",
        ),
        Fault(
            "bad-deploy",
            "deploy",
            "release 1.2.0 goes out: applicants with a debt ratio of 0.5 or more get a 500",
            {"version": "1.2.0"},
            alerts=("DeployErrorRegression", "HighErrorRate"),
            may_alert=("ErrorBudgetBurn",),
            signals=(
                "panel: Error ratio by version, with the deploy annotation just before the rise",
                "span: the scoring server span of /predict ends in error inside inference",
                "log: scoring `request` lines with status 500 and version 1.2.0, with the "
                "exception's stack",
                "deploy: `obslab status` / app_build_info shows 1.2.0 replaced 1.0.0",
            ),
            root_cause=(
                "Release 1.2.0 adds a debt-ratio band lookup whose table stops at 50 %: every "
                "applicant at or above it fails. Errors began with the deploy and only on the "
                "new version's series; rolling back ends them."
            ),
            difficulty="medium",
        ),
        Fault(
            "model-regression",
            "deploy",
            "release 1.4.0 goes out with model m3, miscalibrated",
            {"version": "1.4.0"},
            alerts=("DeployPredictionShift",),
            # m3's baseline is its own (shifted) training scores, so PSI against it stays low:
            # only the comparison with the previous version sees the shift.
            may_alert=("ModelAccuracyDrop", "ModelCalibrationDrift", "PredictionDrift"),
            signals=(
                "panel: Prediction score distribution by model version (shifted up)",
                "panel: Decisions by model version (declines jump)",
                "span: inference carries model.version m3",
                "deploy: app_build_info model_version m3 since the deploy",
            ),
            root_cause=(
                "Release 1.4.0 ships model m3, trained with balanced class weights: nothing "
                "fails, yet every score shifts up and far more applicants are declined. Only "
                "the model signals, compared with the previous version's, show it."
            ),
            difficulty="hard",
        ),
        Fault(
            "data-drift",
            "load",
            "the applicant population changes: one feature shifts by standard deviations",
            {"feature": "income", "shift": 2.0},
            alerts=("FeatureDrift",),
            may_alert=("PredictionDrift", "ModelAccuracyDrop"),
            signals=(
                "panel: Feature PSI by feature (one feature crosses the threshold)",
                "panel: Feature bins live vs training for that feature",
                "log: nothing fails: request lines stay 200",
            ),
            root_cause=(
                "The applicants themselves changed: one feature's live distribution departs "
                "from training. The service and the model are unchanged; the model now scores "
                "a population it was not trained on."
            ),
            difficulty="medium",
        ),
        Fault(
            "unit-change",
            "load",
            "an upstream sends one feature in another unit (income in thousands)",
            {"feature": "income", "factor": 0.001},
            alerts=("FeatureDrift",),
            # The truth still follows the real incomes: the model, reading tiny ones, predicts
            # more defaults than come, and its calibration pages once feedback shows it.
            may_alert=("PredictionDrift", "ModelAccuracyDrop", "ModelCalibrationDrift"),
            signals=(
                "panel: Feature bins live vs training (all of one feature in the lowest bin)",
                "panel: Feature PSI by feature",
                "log: nothing fails: request lines stay 200",
            ),
            root_cause=(
                "An upstream changed the unit of one feature: the values arrive scaled by a "
                "constant, so they pile up at one end of the training deciles. The truth did "
                "not change, only what is sent."
            ),
            difficulty="medium",
        ),
        Fault(
            "missing-features",
            "load",
            "one feature arrives missing (null) in a share of requests",
            {"feature": "employment_years", "rate": 0.5},
            alerts=("FeatureMissing",),
            may_alert=("FeatureDrift", "PredictionDrift"),
            signals=(
                "panel: Missing inputs by feature",
                "log: request lines stay 200: a null is valid input",
            ),
            root_cause=(
                "An upstream stopped filling one field: the requests stay valid (null means "
                "missing), so nothing fails, but the model imputes that feature for a large "
                "share of applicants."
            ),
            difficulty="easy",
        ),
        Fault(
            "memory-leak",
            "service",
            "a cache in scoring grows without bound",
            _service_params("memory-leak"),
            alerts=("MemoryGrowth",),
            may_alert=(),
            signals=(
                "panel: Resident memory by instance (a straight climb, both scoring instances)",
                "query: predict_linear(process_resident_memory_bytes[10m], 3600)",
            ),
            root_cause=(
                "Scoring keeps adding to an in-process cache and never evicts: resident memory "
                "climbs steadily while traffic and latency stay flat, so the process is on "
                "course for its memory limit."
            ),
            difficulty="medium",
        ),
        Fault(
            "cpu-hog",
            "service",
            "every prediction burns CPU in scoring's inference; requests queue for it",
            _service_params("cpu-hog"),
            alerts=("HighLatency",),
            may_alert=(),
            signals=(
                "panel: Latency p95 by route (scoring only; features stays fast)",
                "panel: CPU seconds by instance (scoring at one core an instance)",
                "span: inference holds most of a slow request and has no child span; "
                "feature_lookup stays fast",
                "exemplars: `obslab exemplars --route /predict` picks a slow trace",
            ),
            root_cause=(
                "Scoring's inference does CPU-bound work on every prediction (such as an "
                "explanation switched on at run time), with no deploy and no error: each "
                "instance sits at one core and its requests queue for the interpreter, so "
                "scoring's latency climbs while features and the error ratio stay normal."
            ),
            difficulty="hard",
        ),
        Fault(
            "concept-drift",
            "load",
            "the world changes: the same inputs now lead to different outcomes",
            {},
            alerts=("ModelAccuracyDrop",),
            # More defaults than the model predicts, too.
            may_alert=("ModelCalibrationDrift",),
            signals=(
                "panel: Accuracy from feedback vs baseline",
                "panel: Feature PSI stays low: the inputs look normal",
            ),
            root_cause=(
                "The relation between inputs and outcomes changed: the features look as in "
                "training, but the feedback says the model is wrong more often. Only delayed "
                "ground truth shows it; the model needs retraining."
            ),
            difficulty="hard",
        ),
    )
}


def get(name: str) -> Fault:
    try:
        return CATALOGUE[name]
    except KeyError:
        raise ObslabError(f"unknown fault {name!r}; known: {', '.join(CATALOGUE)}") from None


def inject(
    name: str,
    given: Mapping[str, str] | None = None,
    *,
    duration: float | None = None,
    hidden: bool = False,
) -> dict[str, Any]:
    """Apply fault ``name`` to the running stack; return its resolved parameters."""
    fault = get(name)
    params = fault.resolve(given or {})
    if fault.source == "service":
        _admin_post(fault, params, duration, hidden)
    elif fault.source == "load":
        _apply_profile(fault, params)
    else:
        _deploy(str(params["version"]))
    if fault.source != "service":
        marker = uuid.uuid4().hex
        if not hidden:
            _record(name, {"params": params, "marker": marker})
        if duration is not None:
            _expire_later(name, marker if not hidden else "", duration)
    return params


def clear(name: str | None = None) -> list[str]:
    """End fault ``name``, or every fault; return the names ended."""
    faults = [get(name)] if name is not None else list(CATALOGUE.values())
    ended: list[str] = []
    recorded = _recorded()
    if name is None:
        for service in sorted({f.service for f in faults if f.service}):
            ended += _admin("DELETE", service, "/admin/faults").get("cleared", [])
        if any(f.source == "load" for f in faults) and _load_is_faulty():
            _restore_profile()
        if any(CATALOGUE[n].source == "deploy" for n in recorded):
            _rollback()
        ended += list(recorded)
        _write_records({})
        return sorted(set(ended))
    fault = faults[0]
    if fault.source == "service":
        return _admin("DELETE", str(fault.service), f"/admin/faults/{fault.name}")["cleared"]
    if fault.source == "load":
        _restore_profile()
    elif name in recorded:
        _rollback()
    recorded.pop(name, None)
    _write_records(recorded)
    return [name]


def listing() -> list[dict[str, Any]]:
    """The catalogue with each fault's ``active`` state: what ``fault list --json`` prints.

    Hidden faults (drills) are never active here: the services do not list them and the
    record of deploy and load faults does not hold them.
    """
    active = set(_recorded())
    for service in sorted({f.service for f in CATALOGUE.values() if f.service}):
        try:
            listed = _admin("GET", service, "/admin/faults")
        except ObslabError:
            continue
        active |= {entry["name"] for entry in listed["faults"]}
    return [
        {
            "name": fault.name,
            "source": fault.source,
            "summary": fault.summary,
            "params": dict(fault.params),
            "alerts": list(fault.alerts),
            "may_alert": list(fault.may_alert),
            "signals": list(fault.signals),
            "root_cause": fault.root_cause,
            "active": fault.name in active,
        }
        for fault in CATALOGUE.values()
    ]


def parse_duration(text: str) -> float:
    """``90``, ``90s``, ``5m`` or ``1h`` as seconds."""
    units = {"s": 1, "m": 60, "h": 3600}
    number, unit = (text[:-1], units[text[-1]]) if text and text[-1] in units else (text, 1)
    try:
        seconds = float(number) * unit
    except ValueError:
        raise ObslabError(f"duration {text!r} is not like 90s, 5m or 1h") from None
    if not 0 < seconds <= 86_400:
        raise ObslabError(f"duration {text!r} must be more than 0 and at most a day")
    return seconds


# --- service faults: the admin API of every instance of the service ---------------------------


def _admin_post(fault: Fault, params: dict[str, Any], duration: float | None, hidden: bool) -> None:
    body: dict[str, Any] = {"name": fault.name, "params": params, "hidden": hidden}
    if duration is not None:
        body["duration_seconds"] = duration
    _admin("POST", str(fault.service), "/admin/faults", body)


def _admin(method: str, service: str, path: str, body: dict | None = None) -> dict[str, Any]:
    """Send one admin request to every instance of ``service``; return the first answer."""
    import requests

    from obslab.topology import read_topology

    layout = StateLayout(state_dir())
    topology = read_topology(layout.stack_file)
    if topology is None:
        raise ObslabError("the stack is not running; start it with `obslab up`")
    headers = {"Authorization": f"Bearer {_admin_token(layout)}"}
    answers = []
    for instance in topology.instances_of(service):
        url = f"http://127.0.0.1:{instance.port}{path}"
        try:
            response = requests.request(
                method, url, json=body, headers=headers, timeout=_ADMIN_TIMEOUT
            )
        except requests.RequestException as exc:
            raise ObslabError(f"cannot reach {instance.name} at {url}: {exc}") from None
        if response.status_code == 404 and path == "/admin/faults":
            raise ObslabError(f"{instance.name} has no admin API: is it on in this profile?")
        if response.status_code >= 400:
            raise ObslabError(f"{instance.name} refused: {_error_text(response)}")
        answers.append(response.json())
    if not answers:
        raise ObslabError(f"no instance of {service} is running")
    return answers[0]


def _admin_token(layout: StateLayout) -> str:
    token = os.environ.get("OBSLAB_ADMIN_TOKEN")
    if token:
        return token
    try:
        return layout.admin_token.read_text().strip()
    except FileNotFoundError:
        raise ObslabError(
            f"no admin token: set OBSLAB_ADMIN_TOKEN or start the stack (`obslab up` writes "
            f"{layout.admin_token})"
        ) from None


def _error_text(response: Any) -> str:
    try:
        body = response.json()
    except ValueError:
        return f"HTTP {response.status_code}"
    field = f" ({body['field']})" if body.get("field") else ""
    return f"{body.get('error', response.status_code)}{field}"


# --- load faults: the traffic profile ----------------------------------------------------------


def profile_path() -> Path:
    return state_dir() / "load" / "profile.json"


def traffic(name: str, params: Mapping[str, Any], *, rate: float) -> Profile:
    """The load profile that load fault ``name`` with resolved ``params`` puts in place, at
    ``rate`` requests a second; raises ``ObslabError`` naming the fault when the profile
    refuses a parameter."""
    from loadgen.profile import Profile, ProfileError

    words = {
        "data-drift": ["drift", str(params.get("feature")), str(params.get("shift"))],
        "unit-change": ["unit-change", str(params.get("feature")), str(params.get("factor"))],
        "missing-features": ["missing", str(params.get("feature")), str(params.get("rate"))],
        "concept-drift": ["concept-drift"],
    }[name]
    try:
        return Profile.parse(words, rate=rate)
    except ProfileError as exc:
        raise ObslabError(f"fault {name}: {exc}") from None


def _apply_profile(fault: Fault, params: Mapping[str, Any]) -> None:
    from loadgen.profile import Profile

    current = Profile.load(profile_path())
    traffic(fault.name, params, rate=current.rate).save(profile_path())


def _load_is_faulty() -> bool:
    from loadgen.profile import Profile

    return Profile.load(profile_path()).name != "normal"


def _restore_profile() -> None:
    from loadgen.profile import Profile

    Profile(rate=Profile.load(profile_path()).rate).save(profile_path())


# --- deploy faults -----------------------------------------------------------------------------


def _deploy(version: str) -> None:
    from obslab import deploy

    deploy.deploy(version)


def _rollback() -> None:
    from obslab import deploy

    deploy.rollback()


# --- the record of active deploy and load faults, and their expiry ----------------------------


def _records_path() -> Path:
    return state_dir() / "faults" / "active.json"


def _recorded() -> dict[str, dict[str, Any]]:
    try:
        return json.loads(_records_path().read_text())
    except FileNotFoundError:
        return {}


def _record(name: str, entry: dict[str, Any]) -> None:
    _write_records(_recorded() | {name: entry})


def _write_records(records: dict[str, dict[str, Any]]) -> None:
    path = _records_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    partial.write_text(json.dumps(records))
    os.replace(partial, path)


def _expire_later(name: str, marker: str, seconds: float) -> None:
    # Detached, so the fault still ends after this command (or the shell) exits.
    subprocess.Popen(
        [sys.executable, "-m", "obslab.faults", name, marker, repr(seconds)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def expire(name: str, marker: str, seconds: float) -> None:
    """Sleep ``seconds``, then end fault ``name`` if it is still the one ``marker`` names.

    An empty marker stands for a hidden fault (a drill's), which is never recorded.
    """
    time.sleep(seconds)
    entry = _recorded().get(name)
    if marker and (entry is None or entry.get("marker") != marker):
        return
    if marker:
        clear(name)
    else:
        undo_hidden(name)


def undo_hidden(name: str) -> None:
    """End a hidden deploy or load fault (a drill's), which no record holds."""
    if get(name).source == "load":
        _restore_profile()
    else:
        _rollback()


if __name__ == "__main__":
    expire(sys.argv[1], sys.argv[2], float(sys.argv[3]))
