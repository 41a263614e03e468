"""The benchmark's own stacks: where their ports go, and a clear error when they cannot."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest

from bench.lab import PORT_SHIFT, native_lab, shifted_port_offset
from obslab.stackconfig import ConfigError


def test_benchmark_stacks_run_beside_the_users_ports(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OBSLAB_PORT_OFFSET", "15000")
    assert shifted_port_offset() == 15000 + PORT_SHIFT


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
