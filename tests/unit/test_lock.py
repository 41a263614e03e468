"""uv.lock: make setup, CI and the image all install from it, so it must match pyproject.toml.

The checks run the pinned uv itself (scripts/uv.sh): a lock uv would rewrite is stale.
"""

from __future__ import annotations

import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from obslab.stackconfig import REPO_ROOT

UV = REPO_ROOT / "scripts" / "uv.sh"
PYPI = "https://pypi.org/simple"


def _uv_lock_check(project: Path, *options: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(UV), "--directory", str(project), "lock", "--check", *options],
        capture_output=True,
        text=True,
        check=False,
    )


def _pyproject() -> dict:
    return tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())


def _locked() -> dict[str, list[dict]]:
    packages: dict[str, list[dict]] = {}
    for package in tomllib.loads((REPO_ROOT / "uv.lock").read_text())["package"]:
        packages.setdefault(package["name"], []).append(package)
    return packages


def test_the_lock_matches_pyproject() -> None:
    # A lock that satisfies pyproject.toml is confirmed without a resolution, so offline.
    result = _uv_lock_check(REPO_ROOT, "--offline")
    assert result.returncode == 0, f"uv.lock is stale; run `make lock`:\n{result.stderr}"


def test_the_check_catches_a_changed_requirement(tmp_path: Path) -> None:
    # A narrower specifier that the locked pyyaml still satisfies: uv must still ask for a relock,
    # since the lock records what pyproject.toml asked for. Telling so takes a resolution, which
    # reads the package index (PyPI, as `make setup` does).
    for name in ("pyproject.toml", "uv.lock"):
        shutil.copy(REPO_ROOT / name, tmp_path / name)
    pyproject = tmp_path / "pyproject.toml"
    text = pyproject.read_text()
    assert '"pyyaml~=6.0"' in text
    pyproject.write_text(text.replace('"pyyaml~=6.0"', '"pyyaml~=6.0.1"'))
    result = _uv_lock_check(tmp_path)
    assert result.returncode != 0
    assert "needs to be updated" in result.stderr


def test_every_locked_package_comes_from_pypi() -> None:
    # This machine's pip also reads local wheel folders; a lock must install anywhere.
    for name, versions in _locked().items():
        for package in versions:
            source = package["source"]
            if name == "obslab":
                assert source == {"editable": "."}
                continue
            assert source == {"registry": PYPI}, f"{name}: {source}"
            artifacts = [package.get("sdist", {}), *package.get("wheels", [])]
            assert all(a.get("hash", "sha256:").startswith("sha256:") for a in artifacts), name
            assert any("hash" in a for a in artifacts), name


@pytest.mark.parametrize("name", ["opentelemetry-api", "opentelemetry-sdk"])
def test_the_opentelemetry_api_and_sdk_are_pinned_on_purpose(name: str) -> None:
    requirements = {
        Requirement(line).name: Requirement(line)
        for line in _pyproject()["project"]["dependencies"]
    }
    (specifier,) = requirements[name].specifier
    assert specifier.operator == "=="
    (locked,) = _locked()[name]
    assert locked["version"] == specifier.version


def test_dev_tools_and_dashboard_tooling_stay_out_of_the_runtime_dependencies() -> None:
    project = _pyproject()
    runtime = {Requirement(line).name for line in project["project"]["dependencies"]}
    grafana = {
        Requirement(line).name for line in project["project"]["optional-dependencies"]["grafana"]
    }
    dev = {Requirement(line).name for line in project["dependency-groups"]["dev"]}
    assert {"grafana-foundation-sdk", "grafana-client"} <= grafana
    assert {"pytest", "ruff"} <= dev
    assert not runtime & (grafana | dev)


def test_the_dockerfile_uses_the_pinned_uv() -> None:
    wanted = _pyproject()["tool"]["uv"]["required-version"].removeprefix("==")
    dockerfile = (REPO_ROOT / "Dockerfile").read_text()
    assert f"ARG UV_VERSION={wanted}\n" in dockerfile
