"""The packages stack in layers: no import cycle between them, and what the CLI, the oncall
receiver and the services share loads no telemetry."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("app", "obslab", "alerts", "dashboards", "loadgen", "bench")


def imported_packages(path: Path) -> set[str]:
    """The project packages ``path`` imports, at the top or inside a function."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        else:
            continue
        found |= {name.split(".")[0] for name in names} & set(PACKAGES)
    return found


def package_graph() -> dict[str, set[str]]:
    return {
        package: set().union(*map(imported_packages, (REPO_ROOT / package).rglob("*.py")))
        - {package}
        for package in PACKAGES
    }


def test_no_package_imports_one_that_imports_it_back() -> None:
    graph = package_graph()

    def reaches(start: str) -> set[str]:
        seen: set[str] = set()
        todo = [start]
        while todo:
            for nxt in graph[todo.pop()] - seen:
                seen.add(nxt)
                todo.append(nxt)
        return seen

    assert {package for package in PACKAGES if package in reaches(package)} == set()
    assert "obslab" not in graph["dashboards"]


def modules_loaded_by(code: str) -> list[str]:
    """The modules a fresh interpreter has loaded after running ``code``."""
    printed = subprocess.run(
        [sys.executable, "-c", f"{code}\nimport sys\nprint('\\n'.join(sorted(sys.modules)))"],
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO_ROOT,
    ).stdout
    return printed.split()


@pytest.mark.parametrize(
    "code",
    [
        "import obslab.oncall.receiver",
        "from obslab.oncall import create_app",
        "from obslab import cli; cli.build_parser()",
    ],
    ids=["oncall receiver", "oncall app", "cli"],
)
def test_the_oncall_receiver_and_the_cli_load_no_opentelemetry_sdk(code: str) -> None:
    loaded = modules_loaded_by(code)

    assert [name for name in loaded if name.startswith("opentelemetry.sdk")] == []
    assert [name for name in loaded if name.startswith("app.telemetry")] == []


def test_what_services_share_with_the_cli_loads_no_telemetry() -> None:
    loaded = modules_loaded_by("import app.errors, app.settings, app.sqlite, app.routes")

    assert [name for name in loaded if name.startswith(("opentelemetry", "app.telemetry"))] == []
