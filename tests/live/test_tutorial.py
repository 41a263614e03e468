"""docs/tutorial.md, run: every command of its ``console`` blocks, in order, against the live
stack, and what each step says you will see, checked.

The tutorial is written for a student's `make up` (default ports); a step is a ``console``
block, whose ``$`` lines are its commands and whose other lines are sample output for the
reader. The HTML comment after a block says what the output must hold, invisible on the
rendered page: ``<!-- check {"expect": [regex, ...], "within": seconds} -->``. A step with
``within`` only reads (pages, logs), so it is rerun until its output holds or time is up.
``sh`` blocks (`make up`, `obslab down`) are the reader's alone: the live stack is already up.

The commands run with bash from the repository's root, with this test's venv on PATH and the
stack's ``OBSLAB_HOME`` and ``OBSLAB_PORT_OFFSET``; a URL to one of the stack's default ports
is moved by the offset. ``NAME=$(command)`` keeps the command's output for later steps, as the
reader's shell would.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from obslab.cli import build_parser, main
from obslab.stackconfig import REPO_ROOT, load_stack
from tests.live.conftest import LiveStack

TUTORIAL = REPO_ROOT / "docs" / "tutorial.md"
COMMAND_TIMEOUT = 180.0
_STEP = re.compile(
    r"^```console\n(?P<body>.*?)^```\n(?:<!-- check (?P<check>\{.*?\}) -->\n)?", re.M | re.S
)
_ASSIGNMENT = re.compile(r"^(?P<name>[A-Z_][A-Z0-9_]*)=\$\((?P<command>.*)\)$")
_LOCAL_URL = re.compile(r"127\.0\.0\.1:(?P<port>\d+)")


@dataclass(frozen=True)
class Step:
    line: int  # where the block starts in the tutorial, for failure messages
    commands: tuple[str, ...]
    expect: tuple[str, ...] = ()
    within: float = 0.0

    def __str__(self) -> str:
        return f"docs/tutorial.md:{self.line} ({self.commands[0]!r})"


def tutorial_steps(text: str) -> list[Step]:
    steps = []
    for match in _STEP.finditer(text):
        commands = tuple(line[2:] for line in match["body"].splitlines() if line.startswith("$ "))
        check = json.loads(match["check"]) if match["check"] else {}
        assert commands, f"docs/tutorial.md: a console block without a `$` line: {match[0]!r}"
        steps.append(
            Step(
                line=text.count("\n", 0, match.start()) + 1,
                commands=commands,
                expect=tuple(check.get("expect", ())),
                within=float(check.get("within", 0)),
            )
        )
    return steps


@dataclass
class Shell:
    """The reader's terminal: the stack's environment and the variables set so far."""

    env: dict[str, str]
    ports: dict[int, int]
    variables: dict[str, str] = field(default_factory=dict)

    def run(self, command: str) -> tuple[int, str]:
        command = _LOCAL_URL.sub(self._moved, command)
        assignment = _ASSIGNMENT.match(command)
        result = subprocess.run(
            ["bash", "-o", "pipefail", "-c", assignment["command"] if assignment else command],
            cwd=REPO_ROOT,
            env=self.env | self.variables,
            capture_output=True,
            text=True,
            timeout=COMMAND_TIMEOUT,
        )
        output = result.stdout + result.stderr
        if assignment and result.returncode == 0:
            value = result.stdout.strip()
            if not value:
                return 1, f"{assignment['name']} would be empty: {output}"
            self.variables[assignment["name"]] = value
        return result.returncode, output

    def _moved(self, match: re.Match[str]) -> str:
        port = int(match["port"])
        return f"127.0.0.1:{self.ports.get(port, port)}"


def _run(shell: Shell, step: Step) -> None:
    deadline = time.monotonic() + step.within
    while True:
        outputs, failure = [], None
        for command in step.commands:
            code, output = shell.run(command)
            outputs.append(output)
            if code != 0:
                failure = f"`{command}` exited {code}"
                break
        output = "".join(outputs)
        missing = [pattern for pattern in step.expect if not re.search(pattern, output, re.M)]
        if failure is None and not missing:
            return
        if time.monotonic() >= deadline:
            problem = failure or f"no match for {missing}"
            pytest.fail(f"{step}: {problem} (waited {step.within:.0f}s); output:\n{output}")
        time.sleep(2)


def test_every_obslab_command_of_the_tutorial_parses() -> None:
    """Without a stack: a renamed command or flag fails here first."""
    parser = build_parser()
    steps = tutorial_steps(TUTORIAL.read_text())

    assert len(steps) >= 15
    for step in steps:
        for command in step.commands:
            assignment = _ASSIGNMENT.match(command)
            for part in re.split(r"\s*\|\s*", assignment["command"] if assignment else command):
                argv = shlex.split(part)
                if argv[0] == "obslab":
                    # A shell variable stands for a value kept by an earlier step.
                    parser.parse_args(["0" if arg.startswith("$") else arg for arg in argv[1:]])


def test_every_obslab_command_of_the_readme_parses() -> None:
    """The README's tour is not run (the tutorial is), but its commands must still exist."""
    parser = build_parser()
    readme = (REPO_ROOT / "README.md").read_text()
    blocks = re.findall(r"^```sh\n(.*?)^```", readme, re.M | re.S)
    commands = [
        line.split("#", 1)[0].strip()
        for block in blocks
        for line in block.splitlines()
        if line.startswith("obslab ")
    ]

    assert len(commands) >= 10
    for command in commands:
        parser.parse_args(shlex.split(command)[1:])


@pytest.mark.live
def test_the_tutorial_runs_as_written(stack: LiveStack) -> None:
    steps = tutorial_steps(TUTORIAL.read_text())
    defaults, live = load_stack(), load_stack(port_offset=stack.port_offset)
    shell = Shell(
        env=os.environ
        | {
            "OBSLAB_HOME": str(stack.home),
            "OBSLAB_PORT_OFFSET": str(stack.port_offset),
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        },
        ports={
            port: moved
            for (_, port), (_, moved) in zip(defaults.ports(), live.ports(), strict=True)
        },
    )

    try:
        for step in steps:
            _run(shell, step)
    finally:
        # A step that failed may leave its fault injected; the modules after this one need
        # the stack healthy, so the failure stays this test's own.
        shell.run("obslab fault clear")


@pytest.mark.live
def test_up_on_the_running_stack_ends_with_the_next_three_steps(
    stack: LiveStack, capsys: pytest.CaptureFixture[str]
) -> None:
    with stack.environment():
        assert main(["up", "--profile", "test"]) == 0

    out = capsys.readouterr().out
    assert "Try next:" in out
    assert out.rstrip().endswith("docs/tutorial.md")
    assert len(re.findall(r"^  \d\. \S*obslab ", out, re.M)) == 3
