"""Read one profile of ``alerts/thresholds.yaml``, with errors that name the file and the key.

A profile is the file's ``defaults`` with ``profiles.<name>`` laid over it, key by key. Keys are
addressed with dots (``slo.fast.for``); every value remembers where in the file it came from, so
an error names the key to fix, and a key no rule reads (a typo) is an error too.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from pathlib import Path

import yaml

THRESHOLDS_FILE = Path(__file__).with_name("thresholds.yaml")

_DURATION = re.compile(
    r"(?:(\d+)y)?(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?(?:(\d+)ms)?"
)
_UNIT_SECONDS = (365 * 86400, 7 * 86400, 86400, 3600, 60, 1, 0.001)


class ThresholdsError(ValueError):
    """The thresholds file cannot be read, or lacks or misstates a key."""


class Profile:
    """One profile's settings; each accessor checks the value's type and range."""

    def __init__(self, name: str, path: Path, settings: Mapping[str, tuple[object, str]]) -> None:
        self.name = name
        self.path = path
        self._settings = settings
        self._read: set[str] = set()

    def text(self, key: str) -> str:
        value = self._get(key)
        if not isinstance(value, str) or not value.strip():
            self._reject(key, "a non-empty string")
        return value

    def choice(self, key: str, options: tuple[str, ...]) -> str:
        """One of ``options``, as written."""
        value = self._get(key)
        if value not in options:
            self._reject(key, "one of " + ", ".join(options))
        return value

    def names(self, key: str) -> list[str]:
        """A non-empty list of distinct names, such as Prometheus job names."""
        value = self._get(key)
        if (
            not isinstance(value, list)
            or not value
            or not all(isinstance(name, str) and name.strip() for name in value)
            or len(set(value)) != len(value)
        ):
            self._reject(key, "a list of distinct non-empty names")
        return list(value)

    def number(self, key: str) -> float:
        """A finite number, zero or more."""
        value = self._get(key)
        if isinstance(value, bool) or not isinstance(value, int | float):
            self._reject(key, "a number")
        if not math.isfinite(value) or value < 0:
            self._reject(key, "a finite number, zero or more")
        return value

    def fraction(self, key: str) -> float:
        """A number strictly between 0 and 1."""
        value = self.number(key)
        if not 0 < value < 1:
            self._reject(key, "a number between 0 and 1")
        return value

    def duration(self, key: str) -> str:
        """A Prometheus duration such as ``30s`` or ``1h30m``, as written."""
        value = self._get(key)
        if not isinstance(value, str) or not value or not _DURATION.fullmatch(value):
            self._reject(key, "a Prometheus duration such as 30s or 5m")
        return value

    def seconds(self, key: str) -> float:
        return duration_seconds(self.duration(key))

    def overridden(self, key: str, value: object, origin: str) -> Profile:
        """This profile with ``key`` set to ``value``; errors about it name ``origin``.

        For a setting that belongs to the running stack rather than to the thresholds, such as
        the address the runbook is served at.
        """
        self._get(key)
        return Profile(self.name, self.path, {**self._settings, key: (value, origin)})

    def ensure_all_read(self) -> None:
        """Fail on keys nothing read: a misspelt key would otherwise be ignored silently."""
        unread = sorted(
            origin for key, (_, origin) in self._settings.items() if key not in self._read
        )
        if unread:
            raise ThresholdsError(f"{self.path}: unknown key {unread[0]!r}")

    def _get(self, key: str) -> object:
        self._read.add(key)
        if key not in self._settings:
            raise ThresholdsError(
                f"{self.path}: profile {self.name!r} has no key {key!r} "
                f"(set defaults.{key} or profiles.{self.name}.{key})"
            )
        return self._settings[key][0]

    def _reject(self, key: str, expected: str) -> None:
        value, origin = self._settings[key]
        raise ThresholdsError(f"{self.path}: {origin}: expected {expected}, got {value!r}")


def duration_seconds(duration: str) -> float:
    """Seconds in a Prometheus duration such as ``1h30m``; ValueError if it is not one."""
    match = _DURATION.fullmatch(duration)
    if not duration or match is None:
        raise ValueError(f"not a Prometheus duration: {duration!r}")
    return sum(int(n) * unit for n, unit in zip(match.groups(), _UNIT_SECONDS, strict=True) if n)


def load_profile(name: str, path: Path = THRESHOLDS_FILE) -> Profile:
    """The settings of profile ``name``; raises ThresholdsError naming the file and key."""
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as error:
        raise ThresholdsError(f"{path}: cannot read thresholds: {error}") from error
    if not isinstance(document, dict):
        raise ThresholdsError(f"{path}: expected a mapping with keys 'defaults' and 'profiles'")
    profiles = _section(document, "profiles", path)
    if name not in profiles:
        known = ", ".join(sorted(map(str, profiles)))
        raise ThresholdsError(f"{path}: unknown profile {name!r} (profiles: {known})")
    settings = _flatten(_section(document, "defaults", path), "defaults", path)
    settings.update(_flatten(_section(profiles, name, path, "profiles."), f"profiles.{name}", path))
    return Profile(name, path, settings)


def _section(mapping: dict, key: str, path: Path, prefix: str = "") -> dict:
    value = mapping.get(key)
    if not isinstance(value, dict):
        raise ThresholdsError(f"{path}: {prefix}{key}: expected a mapping, got {value!r}")
    return value


def _flatten(mapping: dict, origin: str, path: Path) -> dict[str, tuple[object, str]]:
    """``{"slo": {"fast": {"for": "2m"}}}`` -> ``{"slo.fast.for": ("2m", "<origin>.slo...")}``."""
    flat: dict[str, tuple[object, str]] = {}
    for key, value in mapping.items():
        if not isinstance(key, str):
            raise ThresholdsError(f"{path}: {origin}: key {key!r} is not a string")
        if isinstance(value, dict):
            flat.update(
                {f"{key}.{k}": v for k, v in _flatten(value, f"{origin}.{key}", path).items()}
            )
        else:
            flat[key] = (value, f"{origin}.{key}")
    return flat
