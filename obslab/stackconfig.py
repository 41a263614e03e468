"""``config/stack.yaml`` read and checked: the services, ports and profiles of the native stack.

Every problem is reported as ``<file>: <dotted.key>: <what is wrong>``, so a typo in the YAML
points at itself.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

import yaml

from alerts.thresholds import duration_seconds
from app import gunicorn_conf
from obslab.errors import ObslabError

REPO_ROOT = Path(__file__).resolve().parents[1]
STACK_FILE = REPO_ROOT / "config" / "stack.yaml"
PORT_OFFSET_VAR = "OBSLAB_PORT_OFFSET"

_DURATION = re.compile(r"^(\d+(ms|s|m|h|d|w|y))+$")


class ConfigError(ObslabError):
    """stack.yaml (or the environment) holds a key or value the runner cannot use."""


@dataclass(frozen=True)
class InitialRelease:
    """The release a service starts with when nothing has been deployed yet."""

    version: str
    commit: str
    model_version: str


@dataclass(frozen=True)
class AppService:
    """A Flask app run by gunicorn; with ``instances`` it runs behind nginx on ``port``."""

    name: str
    app: str
    port: int
    threads: int
    health: str
    instance_port: int | None = None
    instances: int = 1
    release: InitialRelease | None = None


@dataclass(frozen=True)
class LoadConfig:
    port: int
    users: int
    spawn_rate: float


@dataclass(frozen=True)
class AlertmanagerTiming:
    """Alertmanager's timing: ``repeat_interval`` is the pages'; tickets repeat after
    ``ticket_repeat_interval``; the Watchdog reaches oncall every ``watchdog_repeat_interval``
    (checked every ``watchdog_group_interval``); a symptom a cause may explain waits
    ``symptom_group_wait`` for that cause before its first notification."""

    group_wait: str
    group_interval: str
    repeat_interval: str
    resolve_timeout: str
    ticket_repeat_interval: str
    watchdog_group_interval: str
    watchdog_repeat_interval: str
    symptom_group_wait: str


@dataclass(frozen=True)
class Profile:
    name: str
    scrape_interval: str
    evaluation_interval: str
    admin: bool
    alertmanager: AlertmanagerTiming


@dataclass(frozen=True)
class StackConfig:
    """The whole stack, with every port already shifted by the port offset."""

    path: Path
    features: AppService
    scoring: AppService
    oncall: AppService
    prometheus_port: int
    alertmanager_port: int
    locust: LoadConfig
    profiles: Mapping[str, Profile]

    def ports(self) -> list[tuple[str, int]]:
        """Every port the stack listens on, each beside the stack.yaml key that sets it."""
        claims = []
        for service in (self.scoring, self.features):
            claims.append((f"services.{service.name}.port", service.port))
            claims.extend(
                (f"services.{service.name}.instance_port", service.instance_port + index)
                for index in range(service.instances)
            )
        return [
            *claims,
            ("services.oncall.port", self.oncall.port),
            ("services.prometheus.port", self.prometheus_port),
            ("services.alertmanager.port", self.alertmanager_port),
            ("services.locust.port", self.locust.port),
        ]

    def profile(self, name: str) -> Profile:
        try:
            return self.profiles[name]
        except KeyError:
            known = ", ".join(sorted(self.profiles))
            raise ConfigError(
                f"{self.path}: profiles.{name}: no such profile (known: {known})"
            ) from None


def port_offset_from_env() -> int:
    """The integer in ``$OBSLAB_PORT_OFFSET`` (0 when unset)."""
    raw = os.environ.get(PORT_OFFSET_VAR, "").strip()
    if not raw:
        return 0
    try:
        return int(raw)
    except ValueError:
        raise ConfigError(f"{PORT_OFFSET_VAR}: expected an integer, got {raw!r}") from None


def load_stack(path: Path = STACK_FILE, *, port_offset: int = 0) -> StackConfig:
    """Read and check stack.yaml, adding ``port_offset`` to every port."""
    try:
        document = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    return _Reader(path, port_offset).stack(document)


class _Reader:
    """Checks one stack.yaml document; each method takes the dotted key of what it reads."""

    def __init__(self, path: Path, port_offset: int) -> None:
        self.path = path
        self.port_offset = port_offset

    def error(self, key: str, problem: str) -> ConfigError:
        return ConfigError(f"{self.path}: {key}: {problem}")

    def mapping(self, key: str, value: object, fields: set[str] | None) -> dict[str, object]:
        """A mapping holding exactly ``fields`` (or any keys when ``fields`` is None)."""
        if not isinstance(value, dict) or not value:
            raise self.error(key or "(top level)", f"expected a mapping, got {value!r}")
        if fields is None:
            return value
        prefix = f"{key}." if key else ""
        for name in value:
            if name not in fields:
                raise self.error(f"{prefix}{name}", "unknown key")
        for name in sorted(fields - set(value)):
            raise self.error(f"{prefix}{name}", "missing")
        return value

    def string(self, key: str, value: object) -> str:
        if not isinstance(value, str) or not value:
            raise self.error(key, f"expected a non-empty string, got {value!r}")
        return value

    def integer(self, key: str, value: object, *, minimum: int) -> int:
        # bool is an int in Python; `instances: yes` must not read as 1.
        if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
            raise self.error(key, f"expected an integer >= {minimum}, got {value!r}")
        return value

    def number(self, key: str, value: object) -> float:
        if not isinstance(value, int | float) or isinstance(value, bool) or value <= 0:
            raise self.error(key, f"expected a positive number, got {value!r}")
        return float(value)

    def boolean(self, key: str, value: object) -> bool:
        if not isinstance(value, bool):
            raise self.error(key, f"expected true or false, got {value!r}")
        return value

    def duration(self, key: str, value: object) -> str:
        if not isinstance(value, str) or not _DURATION.match(value):
            raise self.error(key, f"expected a duration such as 5s or 1h, got {value!r}")
        return value

    def port(self, key: str, value: object) -> int:
        shifted = self.integer(key, value, minimum=1) + self.port_offset
        if not 1 <= shifted <= 65535:
            raise self.error(
                key, f"port {value} + {PORT_OFFSET_VAR} {self.port_offset} is outside 1-65535"
            )
        return shifted

    def stack(self, document: object) -> StackConfig:
        top = self.mapping("", document, {"services", "profiles"})
        services = self.mapping(
            "services",
            top["services"],
            {"features", "scoring", "oncall", "prometheus", "alertmanager", "locust"},
        )
        profiles = self.mapping("profiles", top["profiles"], None)
        stack = StackConfig(
            path=self.path,
            features=self.balanced_app("features", services["features"]),
            scoring=self.balanced_app("scoring", services["scoring"]),
            oncall=self.app("oncall", services["oncall"]),
            prometheus_port=self.port_only("prometheus", services["prometheus"]),
            alertmanager_port=self.port_only("alertmanager", services["alertmanager"]),
            locust=self.load(services["locust"]),
            profiles={name: self.profile(str(name), body) for name, body in profiles.items()},
        )
        self.check_ports_distinct(stack)
        return stack

    def check_ports_distinct(self, stack: StackConfig) -> None:
        owners: dict[int, str] = {}
        for key, port in stack.ports():
            if port in owners:
                raise self.error(key, f"port {port} is also used by {owners[port]}")
            owners[port] = key

    def app(self, name: str, value: object) -> AppService:
        key = f"services.{name}"
        body = self.mapping(key, value, {"app", "port", "threads", "health"})
        return self.app_fields(name, body)

    def app_fields(self, name: str, body: dict[str, object]) -> AppService:
        key = f"services.{name}"
        health = self.string(f"{key}.health", body["health"])
        if not health.startswith("/"):
            raise self.error(f"{key}.health", f"expected a path starting with /, got {health!r}")
        return AppService(
            name=name,
            app=self.string(f"{key}.app", body["app"]),
            port=self.port(f"{key}.port", body["port"]),
            threads=self.integer(f"{key}.threads", body["threads"], minimum=1),
            health=health,
        )

    def balanced_app(self, name: str, value: object) -> AppService:
        key = f"services.{name}"
        body = self.mapping(
            key,
            value,
            {"app", "port", "threads", "health", "instance_port", "instances", "release"},
        )
        release = self.mapping(
            f"{key}.release", body["release"], {"version", "commit", "model_version"}
        )
        return replace(
            self.app_fields(name, body),
            instance_port=self.port(f"{key}.instance_port", body["instance_port"]),
            instances=self.integer(f"{key}.instances", body["instances"], minimum=1),
            release=InitialRelease(
                **{
                    field: self.string(f"{key}.release.{field}", release[field])
                    for field in ("version", "commit", "model_version")
                }
            ),
        )

    def port_only(self, name: str, value: object) -> int:
        body = self.mapping(f"services.{name}", value, {"port"})
        return self.port(f"services.{name}.port", body["port"])

    def load(self, value: object) -> LoadConfig:
        key = "services.locust"
        body = self.mapping(key, value, {"port", "users", "spawn_rate"})
        return LoadConfig(
            port=self.port(f"{key}.port", body["port"]),
            users=self.integer(f"{key}.users", body["users"], minimum=1),
            spawn_rate=self.number(f"{key}.spawn_rate", body["spawn_rate"]),
        )

    def profile(self, name: str, value: object) -> Profile:
        key = f"profiles.{name}"
        body = self.mapping(
            key,
            value,
            {"scrape_interval", "evaluation_interval", "admin", "alertmanager"},
        )
        timing_key = f"{key}.alertmanager"
        fields = (
            "group_wait",
            "group_interval",
            "repeat_interval",
            "resolve_timeout",
            "ticket_repeat_interval",
            "watchdog_group_interval",
            "watchdog_repeat_interval",
            "symptom_group_wait",
        )
        timing = self.mapping(timing_key, body["alertmanager"], set(fields))
        profile = Profile(
            name=name,
            scrape_interval=self.duration(f"{key}.scrape_interval", body["scrape_interval"]),
            evaluation_interval=self.duration(
                f"{key}.evaluation_interval", body["evaluation_interval"]
            ),
            admin=self.boolean(f"{key}.admin", body["admin"]),
            alertmanager=AlertmanagerTiming(
                **{field: self.duration(f"{timing_key}.{field}", timing[field]) for field in fields}
            ),
        )
        self.check_symptoms_wait_for_causes(profile)
        return profile

    def check_symptoms_wait_for_causes(self, profile: Profile) -> None:
        """A symptom must wait out its cause's head start: an instance stopping gracefully
        answers scrapes while it drains, as its callers' requests already fail, and
        Prometheus sees it down one scrape and one evaluation after that."""
        timing = profile.alertmanager
        head_start = (
            gunicorn_conf.graceful_timeout
            + duration_seconds(profile.scrape_interval)
            + duration_seconds(profile.evaluation_interval)
        )
        if duration_seconds(timing.symptom_group_wait) < head_start:
            raise self.error(
                f"profiles.{profile.name}.alertmanager.symptom_group_wait",
                f"{timing.symptom_group_wait} is shorter than a cause may arrive after its "
                f"symptom: gunicorn's graceful_timeout ({gunicorn_conf.graceful_timeout}s, "
                f"app/gunicorn_conf.py), a scrape and an evaluation ({head_start:g}s in all)",
            )
