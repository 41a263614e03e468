"""``python -m obslab.k8s``: render ``deploy/k8s/`` (as ``obslab render k8s``), or print the
patch that rolls out a release (``python -m obslab.k8s rollout ...``)."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from obslab.errors import ObslabError
from obslab.k8s.options import DEPLOY_DIR, RenderOptions
from obslab.k8s.workloads import rollout_patch
from obslab.stackconfig import REPO_ROOT


def add_render_arguments(parser: argparse.ArgumentParser) -> None:
    defaults = RenderOptions()
    parser.add_argument(
        "--out", type=Path, default=DEPLOY_DIR, help=f"where to write (default {DEPLOY_DIR})"
    )
    parser.add_argument(
        "--students",
        type=int,
        default=defaults.students,
        help=f"namespaces in overlays/class (default {defaults.students})",
    )
    parser.add_argument(
        "--deployed-at",
        default=str(defaults.deployed_at),
        help="unix seconds, or `now`: the deploy time of the initial release",
    )
    parser.add_argument(
        "--remote-write-url",
        help="also send every sample to this Mimir- or Thanos-compatible push URL",
    )
    parser.add_argument(
        "--cluster", help="the `cluster` external label, to tell clusters apart remotely"
    )


def render(args: argparse.Namespace) -> int:
    deployed_at = time.time() if args.deployed_at == "now" else float(args.deployed_at)
    options = RenderOptions(
        students=args.students,
        deployed_at=int(deployed_at),
        remote_write_url=args.remote_write_url,
        cluster=args.cluster,
    )
    try:
        from obslab.k8s.layout import write_files
    except ModuleNotFoundError as exc:
        raise ObslabError(
            f"rendering builds the dashboards, which need the grafana extra and a checkout's "
            f"dashboards/ ({exc.name} is missing): run it from a `make setup` checkout"
        ) from None
    out = args.out.resolve()
    for path in write_files(out, options):
        shown = path.relative_to(REPO_ROOT) if path.is_relative_to(REPO_ROOT) else path
        print(f"{'wrote' if path.exists() else 'removed'} {shown}")
    return 0


def rollout(args: argparse.Namespace) -> int:
    patch = rollout_patch(
        args.version,
        args.commit,
        args.model_version,
        args.previous_version,
        int(time.time()),
        expected_score_shift=args.expect_shift,
    )
    print(json.dumps(patch))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m obslab.k8s", description=__doc__)
    add_render_arguments(parser)
    commands = parser.add_subparsers(dest="command")
    patch = commands.add_parser(
        "rollout",
        help="print the patch that deploys a release: "
        'kubectl patch deployment scoring -p "$(python -m obslab.k8s rollout ...)"',
    )
    patch.add_argument("--version", required=True)
    patch.add_argument("--commit", required=True)
    patch.add_argument("--model-version", required=True)
    patch.add_argument("--previous-version", required=True, help="the version it replaces")
    patch.add_argument(
        "--expect-shift",
        action="store_true",
        help="declare that this release means to move its scores: a ticket, not a page, if they do",
    )
    args = parser.parse_args(argv)
    try:
        return rollout(args) if args.command == "rollout" else render(args)
    except (ValueError, ObslabError) as error:
        print(f"python -m obslab.k8s: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
