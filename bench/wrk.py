"""HTTP load at fixed concurrency with ``wrk``: a C load tool that stays far from the bottleneck.

A Lua script cycles through prepared ``POST /predict`` bodies and, when the run is done,
prints one machine-readable line, so no figure depends on parsing wrk's human summary.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import orjson

from app.model.data import CUSTOMERS
from loadgen.profile import Profile
from obslab.errors import ObslabError

RESULT_MARKER = "OBSLAB_WRK "

_DONE = """
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '%s{"requests":%d,"duration_us":%d,"connect":%d,"read":%d,"write":%d,'
    .. '"status":%d,"timeout":%d,"p50_us":%d,"p99_us":%d}\\n',
    marker, summary.requests, summary.duration, e.connect, e.read, e.write,
    e.status, e.timeout, latency:percentile(50), latency:percentile(99)))
end
"""


@dataclass(frozen=True)
class WrkResult:
    """One wrk run; ``errors`` counts socket errors, timeouts and non-2xx/3xx answers."""

    requests: int
    seconds: float
    errors: int
    p50: float
    p99: float

    @property
    def rate(self) -> float:
        """Completed requests per second."""
        return self.requests / self.seconds


def applicant_bodies(n: int, seed: int = 7) -> list[bytes]:
    """``n`` valid ``/predict`` bodies from the load generator's normal population."""
    rng = np.random.default_rng(seed)
    customers = rng.integers(1, CUSTOMERS + 1, size=n)
    return [
        orjson.dumps({"customer_id": int(customer), **sent})
        for customer, (sent, _) in zip(customers, Profile().applicants(rng, n), strict=True)
    ]


def predict_script(bodies: Sequence[bytes]) -> str:
    """A wrk Lua script posting ``bodies`` in turn to ``/predict``."""
    # Long brackets quote JSON verbatim: it never contains "]=]".
    table = ",\n".join(f"[=[{body.decode()}]=]" for body in bodies)
    return f"""
marker = "{RESULT_MARKER}"
local bodies = {{
{table}
}}
local headers = {{["Content-Type"] = "application/json"}}
local i = 0
request = function()
  i = i % #bodies + 1
  return wrk.format("POST", "/predict", headers, bodies[i])
end
{_DONE}"""


def parse(output: str) -> WrkResult:
    """The result line the script's ``done`` printed; raises ``ValueError`` when absent."""
    for line in output.splitlines():
        if line.startswith(RESULT_MARKER):
            fields = json.loads(line.removeprefix(RESULT_MARKER))
            errors = sum(fields[key] for key in ("connect", "read", "write", "status", "timeout"))
            return WrkResult(
                requests=fields["requests"],
                seconds=fields["duration_us"] / 1e6,
                errors=errors,
                p50=fields["p50_us"] / 1e6,
                p99=fields["p99_us"] / 1e6,
            )
    raise ValueError(f"no {RESULT_MARKER.strip()} line in wrk's output:\n{output}")


def run(url: str, script: Path, *, connections: int, seconds: float) -> WrkResult:
    """Load ``url`` for ``seconds`` with ``connections`` open connections on one thread."""
    wrk = shutil.which("wrk")
    if wrk is None:
        raise ObslabError("wrk is not on PATH; `make setup` installs it (Debian package wrk)")
    # One thread: a single wrk thread drives thousands of requests a second, and the
    # services under test need the other core more than wrk does.
    argv = [wrk, "-t1", f"-c{connections}", f"-d{seconds:g}s", "-s", str(script), url]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60)
    if done.returncode != 0:
        raise ObslabError(f"wrk failed ({done.returncode}): {done.stderr.strip()}")
    return parse(done.stdout)
