"""Deploys of scoring in the native stack: rolling, canary, promote and rollback.

A deploy changes processes, never a flag: each new instance is a gunicorn process started with
the new release's build settings, so it reports its own ``app_build_info`` and
``app_deploy_timestamp_seconds``, and the alert rules see a new version appear. One instance is
replaced at a time: start the new one, wait until it is healthy, publish (nginx upstreams and
Prometheus file_sd targets), wait until nginx has let go of the old one, stop it (gunicorn's
SIGTERM drains its in-flight requests). No request is dropped on the way.

During a canary ``stack.json`` records the service's release as the old one; the canary is the
instance that runs another. Each step is saved to ``stack.json`` before the next, so an
interrupted deploy leaves a topology naming every running instance, which ``promote`` or
``rollback`` then completes or undoes. One deploy at a time: ``<state>/deploy.lock``.
"""

from __future__ import annotations

import fcntl
import hashlib
import math
import os
import re
import sys
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import replace

from app import releases
from app.model.versions import MODELS
from app.settings import state_dir
from obslab import stack as native
from obslab.errors import ObslabError
from obslab.history import DeployHistory, DeployRecord, Kind, current_user, history_file
from obslab.layout import StateLayout
from obslab.stackconfig import StackConfig, load_stack
from obslab.topology import Instance, Release, Topology, read_topology, write_topology

SERVICE = "scoring"
_COMMIT = re.compile(r"^[0-9a-f]{7,40}$")


def default_commit(version: str) -> str:
    """A stable stand-in commit for a catalogue version, so every alert has one to name."""
    return hashlib.sha1(version.encode()).hexdigest()[:7]


def canary_weights(percent: int, old_instances: int) -> tuple[int, int]:
    """nginx weights (the canary's, each old instance's) giving the canary ``percent``%."""
    canary, old = percent * old_instances, 100 - percent
    divisor = math.gcd(canary, old)
    return canary // divisor, old // divisor


def deploy(
    version: str,
    *,
    model: str | None = None,
    commit: str | None = None,
    canary: int | None = None,
    expect_shift: bool = False,
) -> DeployRecord | None:
    """Deploy ``version`` of scoring, rolling or (with ``canary`` percent) beside the old one.

    ``expect_shift`` declares that the new release means to move its scores (a retrained
    model): its instances export ``app_expected_score_shift 1``, and DeployPredictionShift
    raises a ticket for it instead of a page. Only this release carries it: a later deploy
    declares its own. Returns the history record, or None when that release already runs.
    """
    release = releases.RELEASES.get(version)
    if release is None:
        raise ObslabError(f"unknown release {version!r}; known: {', '.join(releases.RELEASES)}")
    model = model or release.model_version
    if model not in MODELS:
        raise ObslabError(f"unknown model {model!r}; known: {', '.join(MODELS)}")
    if commit is not None and not _COMMIT.match(commit):
        raise ObslabError(f"--commit: expected 7 to 40 lowercase hex digits, got {commit!r}")
    if canary is not None and not 1 <= canary <= 99:
        raise ObslabError(f"--canary: expected a percentage from 1 to 99, got {canary}")
    with _Scoring.locked(f"deploy {version}") as scoring:
        scoring.require_settled()
        current = scoring.release
        if (version, model) == (current.version, current.model_version) and commit in (
            None,
            current.commit,
        ):
            note = ""
            if expect_shift and not current.expected_score_shift:
                note = "; --expect-shift declares the shift of a deploy that starts a release"
            print(f"{SERVICE} already runs {version} (model {model}); nothing to deploy{note}")
            return None
        new = Release(
            version,
            commit or default_commit(version),
            model,
            deployed_at=time.time(),
            previous_version=current.version,
            expected_score_shift=expect_shift,
        )
        if canary is None:
            scoring.roll(new)
            return scoring.finish(new, new, "rolling")
        scoring.start_canary(new, canary)
        return scoring.finish(new, current, "canary")


def promote() -> DeployRecord:
    """Replace every old instance with the canary's release."""
    with _Scoring.locked("deploy promote") as scoring:
        canary = scoring.canary()
        if canary is None:
            raise ObslabError(
                f"no canary to promote: every {SERVICE} instance runs {scoring.release.version}"
            )
        scoring.reweigh_all(1)
        scoring.roll(canary)
        # The instances keep the canary's deploy time: the version went live then.
        return scoring.finish(replace(canary, deployed_at=time.time()), canary, "promote")


def rollback() -> DeployRecord:
    """Remove the canary; without one, deploy the version the current one replaced."""
    with _Scoring.locked("deploy rollback") as scoring:
        current = scoring.release
        canary = scoring.canary()
        if canary is not None:
            scoring.remove_canary()
            back = replace(current, deployed_at=time.time(), previous_version=canary.version)
            return scoring.finish(back, current, "rollback")
        if not current.previous_version:
            raise ObslabError(
                f"nothing to roll back to: {SERVICE} {current.version} is the first release "
                "this stack ran"
            )
        back = scoring.release_of(current.previous_version, replacing=current)
        scoring.roll(back)
        return scoring.finish(back, back, "rollback")


def annotate(record: DeployRecord) -> None:
    """Mark the deploy in Grafana when ``GRAFANA_URL`` and ``GRAFANA_TOKEN`` are set.

    The deploy has happened whatever Grafana answers, so a failure is a warning only;
    ``obslab grafana sync`` posts the marks Grafana missed.
    """
    url, token = os.environ.get("GRAFANA_URL"), os.environ.get("GRAFANA_TOKEN")
    if not (url and token):
        return
    from obslab.grafana import post_deploy_annotation

    try:
        posted = post_deploy_annotation(url, token, record.to_json())
    except ObslabError as exc:
        print(f"warning: deploy not annotated in Grafana: {exc}", file=sys.stderr)
        return
    if posted:
        print(f"annotated the deploy in Grafana at {url}")


class _Scoring:
    """The running stack's scoring instances, changed one saved step at a time."""

    def __init__(self, layout: StateLayout, stack: StackConfig, topology: Topology) -> None:
        self.layout = layout
        self.stack = stack
        self.topology = topology

    @classmethod
    @contextmanager
    def locked(cls, what: str) -> Iterator[_Scoring]:
        """The scoring of the stack in ``state_dir()``, held against any other deploy."""
        layout = StateLayout(state_dir())
        with _lock(layout, what):
            topology = read_topology(layout.stack_file)
            if topology is None or not topology.instances_of(SERVICE):
                raise ObslabError(
                    f"no stack runs from {layout.root}; start it with `obslab up` first"
                )
            yield cls(layout, load_stack(port_offset=topology.port_offset), topology)

    @property
    def release(self) -> Release:
        """The service's release; during a canary, the one the canary is compared with."""
        return self.topology.releases[SERVICE]

    @property
    def instances(self) -> list[Instance]:
        return self.topology.instances_of(SERVICE)

    def canary(self) -> Release | None:
        """The newest release of the instances that do not run the service's release, if any."""
        others = [i.release for i in self.instances if i.release != self.release]
        return max(others, key=lambda release: release.deployed_at, default=None)

    def require_settled(self) -> None:
        canary = self.canary()
        if canary is not None:
            raise ObslabError(
                f"{SERVICE} runs {canary.version} beside {self.release.version} (a canary or an "
                "interrupted deploy); `obslab deploy promote` or `obslab deploy rollback` first"
            )

    def release_of(self, version: str, *, replacing: Release) -> Release:
        """``version`` as it last ran (commit, model, declared shift) other than ``replacing``
        runs it, deployed now in its place: after a model-only deploy, the same version with the
        model before. ``replacing``'s declared shift is never carried over."""
        last = DeployHistory(history_file(self.layout.root)).latest(
            version, other_than=(replacing.commit, replacing.model_version)
        )
        initial = self.stack.scoring.release
        shift = False
        if last is not None:
            commit, model, shift = last.commit, last.model_version, last.expected_score_shift
        elif initial is not None and initial.version == version:
            commit, model = initial.commit, initial.model_version
        else:
            commit, model = default_commit(version), releases.get(version).model_version
        return Release(
            version,
            commit,
            model,
            time.time(),
            previous_version=replacing.version,
            expected_score_shift=shift,
        )

    def roll(self, release: Release) -> None:
        """Replace each instance that runs another release, one at a time."""
        for old in [i for i in self.instances if i.release != release]:
            self._start(release, weight=1)
            self._stop(old)

    def start_canary(self, release: Release, percent: int) -> None:
        old = self.instances
        canary_weight, old_weight = canary_weights(percent, len(old))
        self.reweigh_all(old_weight, publish=False)
        self._start(release, weight=canary_weight)

    def remove_canary(self) -> None:
        for instance in [i for i in self.instances if i.release != self.release]:
            self._stop(instance)

    def reweigh_all(self, weight: int, *, publish: bool = True) -> None:
        self._save(self._with(replace(i, weight=weight) for i in self.instances))
        if publish:
            native.publish_and_settle(self.stack, self.topology, self.layout)

    def finish(self, record_release: Release, service_release: Release, kind: Kind) -> DeployRecord:
        """Record the deploy, save ``service_release`` as the service's release, tell the user."""
        releases_ = {**self.topology.releases, SERVICE: service_release}
        self._save(replace(self.topology, releases=releases_))
        record = DeployRecord(
            version=record_release.version,
            previous_version=record_release.previous_version,
            commit=record_release.commit,
            model_version=record_release.model_version,
            time=record_release.deployed_at,
            who=current_user(),
            kind=kind,
            expected_score_shift=record_release.expected_score_shift,
        )
        DeployHistory(history_file(self.layout.root)).record(record)
        shift = ", an intended score shift" if record.expected_score_shift else ""
        print(
            f"{kind} {SERVICE} {record.version} (commit {record.commit}, model "
            f"{record.model_version}{shift}) replacing {record.previous_version or 'nothing'}: "
            "done"
        )
        annotate(record)
        return record

    def _start(self, release: Release, *, weight: int) -> None:
        index = self._free_index()
        port = self.stack.scoring.instance_port + index
        instance = Instance(SERVICE, index, port, release, weight)
        self._save(replace(self.topology, instances=(*self.topology.instances, instance)))
        try:
            native.start_instance(self.stack, self.topology, self.layout, instance)
        except BaseException:
            self._save(self._without(instance))
            raise
        native.publish_and_settle(self.stack, self.topology, self.layout)

    def _stop(self, instance: Instance) -> None:
        self._save(self._without(instance))
        native.publish_and_settle(self.stack, self.topology, self.layout)
        native.stop_instance(self.layout, instance)

    def _free_index(self) -> int:
        """The lowest index no running instance has, so ports stay in a small range."""
        used = {i.index for i in self.instances}
        return next(index for index in range(len(used) + 1) if index not in used)

    def _with(self, scoring: Iterable[Instance]) -> Topology:
        others = tuple(i for i in self.topology.instances if i.service != SERVICE)
        return replace(self.topology, instances=(*others, *scoring))

    def _without(self, instance: Instance) -> Topology:
        return self._with(i for i in self.instances if i.name != instance.name)

    def _save(self, topology: Topology) -> None:
        self.topology = topology
        write_topology(self.layout.stack_file, topology)


@contextmanager
def _lock(layout: StateLayout, what: str) -> Iterator[None]:
    """Hold ``<state>/deploy.lock``; the kernel frees it when the holder exits, even killed."""
    path = layout.root / "deploy.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a+") as file:
        try:
            fcntl.flock(file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            file.seek(0)
            holder = file.read().strip() or "another process"
            raise ObslabError(
                f"another deploy is in progress ({holder}); wait for it to finish"
            ) from None
        file.truncate(0)
        file.write(f"{what}, pid {os.getpid()}, by {current_user()}\n")
        file.flush()
        try:
            yield
        finally:
            file.truncate(0)
