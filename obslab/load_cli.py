"""``obslab load profile …`` and ``obslab load rate N``: steer the running load generator.

Both rewrite the profile file (``<state>/load/profile.json``); Locust's users re-read it, so
the traffic changes within a second or two, without a restart.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from obslab.commands import Commands
from obslab.errors import ObslabError


def register(commands: Commands) -> None:
    load = commands.add_parser("load", help="change the load generator's profile or rate")
    actions = load.add_subparsers(dest="action", required=True, metavar="ACTION")

    profile = actions.add_parser(
        "profile",
        help="normal | drift FEATURE SHIFT | unit-change FEATURE FACTOR | "
        "missing FEATURE RATE | concept-drift",
    )
    profile.add_argument("words", nargs="+", metavar="WORD")
    profile.set_defaults(run=run_profile)

    rate = actions.add_parser("rate", help="requests a second, shared by every Locust user")
    rate.add_argument("rate", metavar="N")
    rate.set_defaults(run=run_rate)

    show = actions.add_parser("show", help="print the active profile and rate")
    show.set_defaults(run=run_show)


def run_profile(args: argparse.Namespace) -> int:
    from loadgen.profile import Profile, ProfileError

    path = profile_path()
    try:
        profile = Profile.parse(args.words, rate=Profile.load(path).rate)
    except ProfileError as exc:
        raise ObslabError(str(exc)) from None
    profile.save(path)
    print(f"load profile: {profile.describe()}")
    return 0


def run_rate(args: argparse.Namespace) -> int:
    from loadgen.profile import Profile, ProfileError

    path = profile_path()
    try:
        profile = Profile.load(path).with_rate(float(args.rate))
    except ValueError as exc:
        # ProfileError is a ValueError; so is float("abc").
        message = str(exc) if isinstance(exc, ProfileError) else f"{args.rate!r} is not a number"
        raise ObslabError(message) from None
    profile.save(path)
    print(f"load profile: {profile.describe()}")
    return 0


def run_show(args: argparse.Namespace) -> int:
    from loadgen.profile import Profile

    print(f"load profile: {Profile.load(profile_path()).describe()}")
    return 0


def profile_path() -> Path:
    from app.settings import state_dir

    return state_dir() / "load" / "profile.json"
