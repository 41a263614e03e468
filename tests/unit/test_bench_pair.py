"""bench.pair: the CPU a service's processes used, counted with their workers."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import psutil
import pytest

from bench.pair import tree_cpu_seconds

# A parent that starts a worker, as gunicorn's master does; the worker burns some CPU, says
# so, and both wait until the test ends them.
PARENT = """
import subprocess, sys
worker = "sum(range(5_000_000)); print('burnt', flush=True); import time; time.sleep(600)"
subprocess.run([sys.executable, "-c", worker])
"""


def _own(process: psutil.Process) -> float:
    times = process.cpu_times()
    return times.user + times.system


def test_a_process_tree_counts_its_workers_cpu() -> None:
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT], stdout=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        assert parent.stdout is not None
        assert parent.stdout.readline().strip() == "burnt"
        (worker,) = psutil.Process(parent.pid).children(recursive=True)

        used = tree_cpu_seconds(parent.pid)

        assert _own(worker) > 0
        assert used == pytest.approx(_own(psutil.Process(parent.pid)) + _own(worker), abs=0.02)
    finally:
        os.killpg(parent.pid, signal.SIGKILL)
        parent.wait()
