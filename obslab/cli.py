"""The ``obslab`` command line.

Each subcommand is a parser entry in ``build_parser`` and one ``run_<command>(args) -> int``
function that imports what it needs, so a new command is a few lines in each place. Expected
failures (``ObslabError``) print one line to stderr and exit 1; a traceback means a bug.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import shutil
import sys
from collections.abc import Sequence

from obslab.errors import ObslabError

#: Command groups that live beside the code they drive: each module has
#: ``register(commands)``, adding its subparsers with ``set_defaults(run=...)``.
COMMAND_GROUPS: tuple[str, ...] = (
    "obslab.fault_cli",
    "obslab.load_cli",
    "obslab.inspect",
    "obslab.releases_cli",
    "obslab.grafana_cli",
)


#: What ``up`` suggests once the stack answers: three things to try, each an obslab command
#: and what it shows (``{obslab}`` is how to call obslab). The tutorial takes it from there.
NEXT_STEPS: tuple[tuple[str, str], ...] = (
    (
        "fault inject slow-dependency --for 5m",
        "break something: `{obslab} pages` shows its pages within a minute or two",
    ),
    (
        "exemplars --route /predict",
        "the slowest requests: `{obslab} trace ID`, then `{obslab} logs --trace-id ID`",
    ),
    (
        "drill start --seed 2 --difficulty easy",
        "a hidden fault to find: `{obslab} drill answer FAULT --target X` grades you",
    ),
)
TUTORIAL = "docs/tutorial.md"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="obslab",
        description="An observability lab for a machine-learning service.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    up = commands.add_parser("up", help="start the native stack (idempotent)")
    up.add_argument(
        "--profile",
        choices=("demo", "test"),
        default="demo",
        help="timings: demo (5 s scrapes, minute-long alert windows) or test (1 s, seconds)",
    )
    up.add_argument("--load", action="store_true", help="also run Locust traffic, headless")
    up.set_defaults(run=run_up)

    down = commands.add_parser("down", help="stop every process `up` started")
    down.set_defaults(run=run_down)

    status = commands.add_parser("status", help="show each process of the stack and its health")
    status.add_argument("--json", action="store_true", help="print a JSON list")
    status.set_defaults(run=run_status)

    pages = commands.add_parser("pages", help="list the pages the oncall receiver got")
    pages.add_argument("--json", action="store_true", help="print a JSON list")
    pages.add_argument("--alertname", help="only pages of this alert")
    pages.add_argument(
        "--status", choices=("firing", "resolved"), help="only notifications that said this"
    )
    pages.add_argument(
        "--kind", choices=("page", "ticket"), help="only pages (interrupt now) or tickets (a queue)"
    )
    pages.add_argument(
        "--state",
        choices=("firing", "held_back", "silenced", "resolved", "expired"),
        help="only alerts in this state now (expired: gone without a resolve)",
    )
    pages.set_defaults(run=run_pages)

    render = commands.add_parser("render", help="write the lab's manifests for another platform")
    targets = render.add_subparsers(dest="target", required=True, metavar="TARGET")
    k8s = targets.add_parser("k8s", help="Kubernetes manifests under deploy/k8s/ (kustomize)")
    importlib.import_module("obslab.k8s.__main__").add_render_arguments(k8s)
    k8s.set_defaults(run=run_render_k8s)

    for module in COMMAND_GROUPS:
        importlib.import_module(module).register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:
        # argparse has printed its message (or --help); hand back its code instead of exiting.
        return int(exit_.code or 0)
    try:
        return args.run(args)
    except ObslabError as exc:
        print(f"obslab {args.command}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def run_up(args: argparse.Namespace) -> int:
    from obslab import stack

    stack.up(args.profile, load=args.load)
    print(next_steps(_program()), flush=True)
    return 0


def next_steps(program: str) -> str:
    """The lines ``up`` ends with: ``NEXT_STEPS`` as ``program`` runs them, and the tutorial."""
    lines = ["Try next:"]
    for number, (command, what) in enumerate(NEXT_STEPS, 1):
        lines += [f"  {number}. {program} {command}", f"     {what.format(obslab=program)}"]
    lines.append(f"A student's first hour, step by step: {TUTORIAL}")
    return "\n".join(lines)


def _program() -> str:
    """How to call obslab from here: its name when it is on PATH, else the venv's script
    (``make up`` runs ``.venv/bin/obslab`` without activating the venv)."""
    if shutil.which("obslab"):
        return "obslab"
    return os.path.relpath(os.path.join(os.path.dirname(sys.executable), "obslab"))


def run_down(args: argparse.Namespace) -> int:
    from obslab import stack

    if not stack.down():
        print("nothing was running")
    return 0


def run_status(args: argparse.Namespace) -> int:
    from obslab import stack

    entries = stack.status()
    if args.json:
        print(json.dumps(entries, indent=2))
        return 0
    rows = [("NAME", "PID", "PORT", "HEALTHY", "URL")]
    rows += [
        (
            str(entry["name"]),
            str(entry["pid"] or "-"),
            str(entry["port"] or "-"),
            "yes" if entry["healthy"] else "no",
            str(entry["url"] or "-"),
        )
        for entry in entries
    ]
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
    for row in rows:
        print(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        )
    return 0


def run_pages(args: argparse.Namespace) -> int:
    import requests

    from obslab import stack
    from obslab.oncall.client import fetch_held_back, fetch_pages, format_pages

    url = stack.urls()["oncall"]
    try:
        pages = fetch_pages(
            url, alertname=args.alertname, status=args.status, kind=args.kind, state=args.state
        )
    except requests.ConnectionError:
        raise ObslabError(f"nothing answers at {url}; is the stack up (`obslab up`)?") from None
    except requests.RequestException as exc:
        raise ObslabError(f"cannot read pages from {url}: {exc}") from None
    if args.json:
        print(json.dumps(pages, indent=2))
        return 0
    # Held-back alerts are no pages of their own: shown beside the list, unfiltered.
    held_back: list[dict] | None = None
    note = ""
    try:
        held_back = [
            alert
            for alert in fetch_held_back(url)
            if args.alertname in (None, alert.get("alertname"))
            and args.kind in (None, alert.get("kind"))
            and args.state in (None, "held_back")
            and args.status is None
        ]
    except requests.RequestException as exc:
        note = f"\n(held-back alerts unknown: {exc})"
    print(format_pages(pages, held_back) + note)
    return 0


def run_render_k8s(args: argparse.Namespace) -> int:
    from obslab.k8s.__main__ import render

    return render(args)


if __name__ == "__main__":
    sys.exit(main())
