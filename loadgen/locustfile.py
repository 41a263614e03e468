"""Locust traffic for the lab: applicants scored, and feedback sent back later.

Each user scores applicants drawn from the active profile (see ``loadgen.profile``), keeps a
share of its predictions, and sends their real outcome after a delay, drawn from the
ground-truth default probability (the drifted law under ``concept-drift``). The profile file
is re-read when it changes, so the profile and rate switch without a restart.

Run by ``obslab up --load``; by hand: ``locust -f loadgen/locustfile.py --host URL``.
Environment: ``OBSLAB_HOME`` (where the profile file lives), ``OBSLAB_FEEDBACK_SHARE``
(default 0.5) and ``OBSLAB_FEEDBACK_DELAY`` seconds (default 2 in the ``test`` profile, where
alerts judge accuracy within seconds, else 10).
"""

from __future__ import annotations

import collections
import os
import time

import numpy as np
from locust import FastHttpUser, task

from app.model.data import HISTORY_FEATURES, customer_history, default_probability
from app.settings import state_dir
from loadgen.profile import DEFAULT_FEEDBACK_DELAY, DEFAULT_FEEDBACK_SHARE, Profile, Row

PROFILE_PATH = state_dir() / "load" / "profile.json"
FEEDBACK_SHARE = float(os.environ.get("OBSLAB_FEEDBACK_SHARE", DEFAULT_FEEDBACK_SHARE))
FEEDBACK_DELAY = float(
    os.environ.get("OBSLAB_FEEDBACK_DELAY")
    or DEFAULT_FEEDBACK_DELAY["test" if os.environ.get("OBSLAB_PROFILE") == "test" else "demo"]
)
BATCH = 256


class _ProfileWatcher:
    """The current profile, re-read at most once a second when its file changes."""

    def __init__(self) -> None:
        self.profile, self._mtime, self._checked = Profile(), None, 0.0

    def current(self) -> Profile:
        now = time.monotonic()
        if now - self._checked >= 1.0:
            self._checked = now
            try:
                mtime = PROFILE_PATH.stat().st_mtime_ns
            except FileNotFoundError:
                mtime = None
            if mtime != self._mtime:
                self._mtime, self.profile = mtime, Profile.load(PROFILE_PATH)
        return self.profile


WATCHER = _ProfileWatcher()
HISTORY = customer_history()


class Applicant(FastHttpUser):
    """One client of the scoring API; all users together share the profile's request rate."""

    def on_start(self) -> None:
        self.rng = np.random.default_rng()
        self.pending: collections.deque[tuple[float, str, bool]] = collections.deque()
        self.queue: list[tuple[Row, Row]] = []
        self.queue_profile: Profile | None = None

    def wait_time(self) -> float:
        users = max(1, self.environment.runner.user_count if self.environment.runner else 1)
        return users / WATCHER.current().rate

    def _next_applicant(self, profile: Profile) -> tuple[Row, Row]:
        if profile != self.queue_profile or not self.queue:
            self.queue, self.queue_profile = profile.applicants(self.rng, BATCH), profile
        return self.queue.pop()

    @task
    def score(self) -> None:
        self._send_due_feedback()
        profile = WATCHER.current()
        sent, truth = self._next_applicant(profile)
        customer_id = int(self.rng.integers(1, len(HISTORY["customer_id"]) + 1))
        body = {"customer_id": customer_id, **sent}
        with self.client.post("/predict", json=body, catch_response=True) as response:
            if response.status_code != 200:
                response.failure(f"predict answered {response.status_code}")
                return
            prediction_id = response.json()["prediction_id"]
        if self.rng.random() < FEEDBACK_SHARE:
            self.pending.append(
                (
                    time.monotonic() + FEEDBACK_DELAY,
                    prediction_id,
                    self._defaults(customer_id, truth, profile),
                )
            )

    def _defaults(self, customer_id: int, truth: Row, profile: Profile) -> bool:
        """Whether this applicant really defaults, drawn from the ground truth."""
        row = customer_id - 1
        columns = {name: np.array([value]) for name, value in truth.items()}
        columns |= {name: HISTORY[name][row : row + 1] for name in HISTORY_FEATURES}
        p = default_probability(columns, concept_drift=profile.concept_drift)[0]
        return bool(self.rng.random() < p)

    def _send_due_feedback(self) -> None:
        now = time.monotonic()
        while self.pending and self.pending[0][0] <= now:
            _, prediction_id, defaulted = self.pending.popleft()
            self.client.post(
                "/feedback",
                json={"prediction_id": prediction_id, "defaulted": defaulted},
                name="/feedback",
            )
