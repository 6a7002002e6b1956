"""The people directory (kit.people): loaded and validated once, teams and known owners."""
import os
import time

import pytest

from kit.errors import Invalid
from kit.people import Directory, DirectoryError, directory


def write(path, text):
    path.write_text(text, encoding="utf-8")
    return path


def test_teams_members_and_known_people(tmp_path):
    people = Directory.load(write(tmp_path / "p.yml", """
people:
  mia: {name: Mia, team: dach, approval_level: 2}
  ann: {name: Ann, team: dach, manager: mia, skills: [billing], capacity: 20}
  old: {name: Old, team: dach, active: false}
"""))
    assert people.team_of("ann") == "dach" and people.team_of("nobody") is None
    assert sorted(people.members("dach")) == ["ann", "mia", "old"]
    assert people.get("ann")["skills"] == ["billing"] and people.get("mia")["approval_level"] == 2
    assert people.knows("ann") and not people.knows("old") and not people.knows("zed")
    with pytest.raises(Invalid) as refused:
        people.require_known("zed")
    assert refused.value.extra["errors"] == {"owner_id": ["Unknown person."]}


@pytest.mark.parametrize("case, text", [
    ("no people", "nobody: here\n"),
    ("a person without a name", "people:\n  ann: {team: dach}\n"),
    ("an unknown attribute", "people:\n  ann: {name: Ann, salary: 1}\n"),
    ("a bad e-mail", "people:\n  ann: {name: Ann, email: not-an-address}\n"),
    ("not YAML", "people: [\n"),
])
def test_a_malformed_directory_is_refused(tmp_path, case, text):
    with pytest.raises(DirectoryError):
        Directory.load(write(tmp_path / "p.yml", text))


def test_a_missing_directory_is_refused(tmp_path):
    with pytest.raises(DirectoryError, match="No people directory"):
        Directory.load(tmp_path / "absent.yml")


def test_a_changed_file_is_read_again(tmp_path):
    path = write(tmp_path / "p.yml", "people:\n  ann: {name: Ann, team: dach}\n")
    config = {"PEOPLE": {"file": str(path), "reload_seconds": 0}}
    assert directory(config).team_of("ann") == "dach"
    write(path, "people:\n  ann: {name: Ann, team: east}\n")
    later = time.time() + 5
    os.utime(path, (later, later))
    assert directory(config).team_of("ann") == "east"
