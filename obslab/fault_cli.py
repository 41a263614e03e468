"""``obslab fault list|inject|clear`` and ``obslab drill start|answer|reveal|schedule|scores``."""

from __future__ import annotations

import argparse
import json

from obslab.commands import Commands
from obslab.errors import ObslabError


def register(commands: Commands) -> None:
    fault = commands.add_parser("fault", help="list, inject and clear faults")
    actions = fault.add_subparsers(dest="action", required=True, metavar="ACTION")

    listing = actions.add_parser("list", help="the catalogue, with what is active now")
    listing.add_argument("--json", action="store_true", help="print a JSON list")
    listing.set_defaults(run=run_list)

    inject = actions.add_parser("inject", help="inject a fault into the running stack")
    inject.add_argument("name", metavar="NAME")
    inject.add_argument("params", nargs="*", metavar="KEY=VALUE", help="override a parameter")
    inject.add_argument(
        "--for", dest="duration", metavar="DURATION", help="end by itself after 90s, 5m, 1h"
    )
    inject.set_defaults(run=run_inject)

    clear = actions.add_parser("clear", help="end one fault, or every fault")
    clear.add_argument("name", nargs="?", metavar="NAME")
    clear.set_defaults(run=run_clear)

    drill = commands.add_parser("drill", help="seeded drills: a hidden fault to diagnose")
    steps = drill.add_subparsers(dest="action", required=True, metavar="ACTION")
    start = steps.add_parser("start", help="start a drill: something will go wrong")
    start.add_argument("--seed", type=int, help="the same seed gives the same drill")
    start.add_argument("--difficulty", choices=("easy", "medium", "hard"))
    start.set_defaults(run=run_drill_start)
    answer = steps.add_parser("answer", help="name the fault you diagnosed")
    answer.add_argument("fault", metavar="FAULT")
    answer.add_argument("--target", help="what it hits: a service, a feature or a release")
    answer.add_argument("--student", default=_user(), help="name on the scoreboard")
    answer.set_defaults(run=run_drill_answer)
    reveal = steps.add_parser("reveal", help="end the drill and show the truth")
    reveal.add_argument("--student", default=_user(), help="name on the scoreboard")
    reveal.set_defaults(run=run_drill_reveal)
    plan = steps.add_parser("schedule", help="an instructor's seeded series of drills")
    plan.add_argument("--seed", type=int, required=True)
    plan.add_argument("--count", type=int, required=True)
    plan.add_argument("--difficulty", choices=("easy", "medium", "hard"))
    plan.set_defaults(run=run_drill_schedule)
    scores = steps.add_parser("scores", help="the scoreboard")
    scores.add_argument("--json", action="store_true", help="print a JSON list")
    scores.set_defaults(run=run_drill_scores)


def run_list(args: argparse.Namespace) -> int:
    from obslab import faults

    entries = faults.listing()
    if args.json:
        print(json.dumps(entries, indent=2))
        return 0
    for entry in entries:
        params = " ".join(
            f"{key}={value:g}" if isinstance(value, float) else f"{key}={value}"
            for key, value in entry["params"].items()
        )
        mark = "*" if entry["active"] else " "
        print(f"{mark} {entry['name']:<17} {entry['summary']}")
        print(f"    params: {params or '-'}    alerts: {', '.join(entry['alerts'])}")
    return 0


def run_inject(args: argparse.Namespace) -> int:
    from obslab import faults

    given = {}
    for word in args.params:
        key, sep, value = word.partition("=")
        if not sep or not key:
            raise ObslabError(f"parameter {word!r} is not KEY=VALUE")
        given[key] = value
    duration = faults.parse_duration(args.duration) if args.duration else None
    params = faults.inject(args.name, given, duration=duration)
    until = f" for {args.duration}" if args.duration else " until `obslab fault clear`"
    shown = " ".join(f"{key}={value}" for key, value in params.items())
    print(f"injected {args.name} {shown}{until}".rstrip())
    return 0


def run_clear(args: argparse.Namespace) -> int:
    from obslab import faults

    ended = faults.clear(args.name)
    print(f"cleared {', '.join(ended)}" if ended else "no fault was active")
    return 0


def _user() -> str:
    import getpass

    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "student"


def run_drill_start(args: argparse.Namespace) -> int:
    from obslab import drills

    drill = drills.start(args.seed, args.difficulty)
    print(f"drill {drill.seed} started: something will go wrong soon. Find out what, then")
    print("  obslab drill answer FAULT [--target X]    (`obslab fault list` names the faults)")
    return 0


def run_drill_answer(args: argparse.Namespace) -> int:
    from obslab import drills

    result = drills.answer(args.fault, args.target, args.student)
    if not result.right:
        print(f"not it ({result.seconds_to_diagnosis:.0f}s in); keep looking")
        return 1
    print(
        f"right: {result.truth} on {result.target}, diagnosed in {result.seconds_to_diagnosis:.0f}s"
    )
    print(result.explanation)
    return 0


def run_drill_reveal(args: argparse.Namespace) -> int:
    from obslab import drills

    truth = drills.reveal(args.student)
    print(f"drill {truth['seed']} was {truth['fault']} on {truth['target']}")
    print(truth["root_cause"])
    return 0


def run_drill_schedule(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from obslab import drills

    series = drills.schedule(args.seed, args.count, args.difficulty)
    path = drills.drill_dir() / "schedule.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps([asdict(drill) for drill in series], indent=2) + "\n")
    for number, drill in enumerate(series, start=1):
        level = f" --difficulty {args.difficulty}" if args.difficulty else ""
        print(f"{number:>3}. obslab drill start --seed {drill.seed}{level}")
    print(f"written to {path}")
    return 0


def run_drill_scores(args: argparse.Namespace) -> int:
    from obslab import drills

    rows = drills.scoreboard()
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    for row in rows:
        verdict = {None: "revealed", 1: "right", 0: "wrong"}[row["right"]]
        seconds = f"{row['seconds']:.0f}s" if row["seconds"] is not None else "-"
        print(f"{row['student']:<16} seed {row['seed']:<11} {verdict:<9} {seconds}")
    return 0
