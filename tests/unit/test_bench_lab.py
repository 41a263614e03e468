"""The benchmark's own stacks: where their ports go, and a clear error when they cannot."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest

from bench.lab import PORT_SHIFT, ephemeral_ports, native_lab, shifted_port_offset
from obslab.stackconfig import ConfigError

#: Linux's default ephemeral range, 32768-60999.
LINUX_EPHEMERAL = range(32768, 61000)


def test_benchmark_stacks_run_beside_the_users_ports(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OBSLAB_PORT_OFFSET", "1000")
    assert shifted_port_offset(LINUX_EPHEMERAL) == 1000 + PORT_SHIFT


def test_an_offset_pushed_past_the_port_range_names_both_parts(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("OBSLAB_PORT_OFFSET", "45000")
    # Where native_lab makes its state directory (tempfile caches $TMPDIR on first use).
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    with pytest.raises(ConfigError) as raised, native_lab("test", load_rate=None):
        pytest.fail("the stack must not start")
    message = str(raised.value)
    assert f"{PORT_SHIFT} above OBSLAB_PORT_OFFSET (45000)" in message
    assert "outside 1-65535" in message
    # Nothing was created before the check.
    assert list(tmp_path.iterdir()) == []


def test_an_offset_reaching_the_ephemeral_ports_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # 5000 + the shift puts the instance ports (8000 and up) at 35000: an outgoing connection
    # may already hold any of them, and a stack would fail to start at random.
    monkeypatch.setenv("OBSLAB_PORT_OFFSET", "5000")
    with pytest.raises(ConfigError) as raised:
        shifted_port_offset(LINUX_EPHEMERAL)
    message = str(raised.value)
    assert "OBSLAB_PORT_OFFSET (5000)" in message
    assert "ephemeral ports 32768-60999" in message
    assert "services." in message and "on port 3" in message


def test_the_default_offset_stays_below_the_ephemeral_ports(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("OBSLAB_PORT_OFFSET", raising=False)
    assert shifted_port_offset(LINUX_EPHEMERAL) == PORT_SHIFT


def test_the_ephemeral_range_is_read_from_the_kernel() -> None:
    ports = ephemeral_ports()
    low, high = map(int, Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())
    assert (ports.start, ports.stop) == (low, high + 1)
