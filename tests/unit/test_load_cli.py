"""``obslab load profile|rate|show`` rewrite the profile file the load generator reads."""

from __future__ import annotations

import pytest

from loadgen.profile import Profile
from obslab import cli


@pytest.fixture
def path(tmp_path, monkeypatch):
    monkeypatch.setenv("OBSLAB_HOME", str(tmp_path))
    return tmp_path / "load" / "profile.json"


def test_profile_keeps_the_rate_and_rate_keeps_the_profile(path):
    assert cli.main(["load", "rate", "25"]) == 0
    assert cli.main(["load", "profile", "drift", "age", "1.5"]) == 0
    assert Profile.load(path) == Profile("drift", "age", 1.5, 25.0)
    assert cli.main(["load", "rate", "5"]) == 0
    assert Profile.load(path) == Profile("drift", "age", 1.5, 5.0)


@pytest.mark.parametrize(
    "argv",
    [["profile", "sideways"], ["profile", "drift", "height", "1"], ["rate", "0"], ["rate", "x"]],
)
def test_bad_arguments_fail_with_a_message_and_change_nothing(path, argv, capsys):
    assert cli.main(["load", *argv]) == 1
    assert capsys.readouterr().err.startswith("obslab load:")
    assert not path.exists()
