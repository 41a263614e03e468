"""``obslab releases``, ``obslab deploy`` and ``obslab deployments``: the release commands."""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from datetime import UTC, datetime

from obslab.commands import Commands
from obslab.errors import ObslabError

_ACTIONS = ("promote", "rollback")


def register(commands: Commands) -> None:
    """Add the release commands to the ``obslab`` command line."""
    listing = commands.add_parser("releases", help="list the scoring releases one can deploy")
    listing.add_argument("--json", action="store_true", help="print a JSON list")
    listing.set_defaults(run=run_releases)

    deploy = commands.add_parser(
        "deploy",
        help="deploy a scoring release (rolling or canary), promote or roll back",
        description="Deploy VERSION (see `obslab releases`) instance by instance, or with "
        "--canary beside the running one; `deploy promote` rolls the canary out, "
        "`deploy rollback` removes it or, after a full deploy, deploys the previous version.",
    )
    deploy.add_argument("target", metavar="VERSION|promote|rollback")
    deploy.add_argument("--model", help="the model version to ship (default: the release's)")
    deploy.add_argument("--commit", help="the commit to report (default: derived from VERSION)")
    deploy.add_argument(
        "--canary",
        type=int,
        metavar="PERCENT",
        help="start one instance beside the old ones, taking PERCENT%% of the requests",
    )
    deploy.add_argument(
        "--expect-shift",
        action="store_true",
        help="declare that this release means to move its scores: a ticket, not a page, if they do",
    )
    deploy.set_defaults(run=run_deploy)

    history = commands.add_parser("deployments", help="list the deploy history, newest first")
    history.add_argument("--json", action="store_true", help="print a JSON list")
    history.set_defaults(run=run_deployments)


def run_releases(args: argparse.Namespace) -> int:
    from app.releases import RELEASES

    entries = [release.to_json() for release in RELEASES.values()]
    if args.json:
        print(json.dumps(entries, indent=2))
        return 0
    rows = [("VERSION", "MODEL", "BEHAVIOUR", "CHANGE")]
    rows += [
        (str(e["version"]), str(e["model_version"]), str(e["behaviour"]), str(e["change"]))
        for e in entries
    ]
    _print_table(rows)
    return 0


def run_deploy(args: argparse.Namespace) -> int:
    from obslab import deploy

    if args.target in _ACTIONS:
        given = [
            f"--{name.replace('_', '-')}"
            for name in ("model", "commit", "canary", "expect_shift")
            if getattr(args, name)
        ]
        if given:
            raise ObslabError(f"{' and '.join(given)}: only for a deploy of a VERSION")
        (deploy.promote if args.target == "promote" else deploy.rollback)()
        return 0
    deploy.deploy(
        args.target,
        model=args.model,
        commit=args.commit,
        canary=args.canary,
        expect_shift=args.expect_shift,
    )
    return 0


def run_deployments(args: argparse.Namespace) -> int:
    from obslab.history import DeployHistory, history_file

    entries = [record.to_json() for record in reversed(DeployHistory(history_file()).records())]
    if args.json:
        print(json.dumps(entries, indent=2))
        return 0
    if not entries:
        print("no deploys yet")
        return 0
    rows = [("TIME (UTC)", "KIND", "VERSION", "PREVIOUS", "COMMIT", "MODEL", "WHO")]
    rows += [
        (
            datetime.fromtimestamp(float(e["time"]), UTC).strftime("%Y-%m-%d %H:%M:%S"),
            str(e["kind"]),
            str(e["version"]),
            str(e["previous_version"] or "-"),
            str(e["commit"]),
            str(e["model_version"]),
            str(e["who"]),
        )
        for e in entries
    ]
    _print_table(rows)
    return 0


def _print_table(rows: Sequence[tuple[str, ...]]) -> None:
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
    for row in rows:
        cells = (cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        print("  ".join(cells).rstrip())
