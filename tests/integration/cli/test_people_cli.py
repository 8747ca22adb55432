"""`faceprint cluster` and the `people` corrections through a real subprocess, on the
public-domain faces shipped in tests/data/faces (no ../shared needed): Collins in three photos,
Hopper in three (one photo shows both)."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import FACES
from tests.integration.test_cli import faceprint, one_json


def _people(db: str) -> dict[str, dict]:
    """The clustered people, keyed by the first photo of each (collins.jpg / hopper.jpg)."""
    found = one_json(faceprint("--gallery", db, "people", "clusters", "--json"))["people"]
    return {sorted(Path(f["path"]).name for f in p["faces"])[0]: p for p in found}


def test_cluster_name_merge_into_an_enrolled_subject_and_correct(tmp_path):
    db = str(tmp_path / "people.db")
    doc = one_json(faceprint("--gallery", db, "cluster", str(FACES), "--json"))
    assert doc["photos_added"] == 6 and doc["faces_added"] == 6 and doc["errors"] == []
    people = _people(db)
    assert set(people) == {"collins.jpg", "hopper.jpg"}
    collins, hopper = people["collins.jpg"], people["hopper.jpg"]
    assert len(collins["faces"]) == 3 and len(hopper["faces"]) == 3

    named = one_json(faceprint("--gallery", db, "people", "name", f"#{collins['person_id']}", "Ada", "--json"))
    assert named["name"] == "Ada" and named["person_id"] == collins["person_id"]
    enrolled = one_json(faceprint("--gallery", db, "enroll", "Bob", str(FACES / "hopper_2.jpg"), "--json"))["enrolled"]
    assert [e["subject"] for e in enrolled] == ["Bob"]

    # A named clustered person merged into an enrolled subject never clustered (issue 11, bug 4):
    # the subject keeps its name, gains the person's faces, and the person is now called Bob.
    merged = one_json(faceprint("--gallery", db, "people", "merge", "Ada", "Bob", "--json"))
    assert merged["name"] == "Bob" and merged["face_count"] == 1 + len(collins["faces"])
    subjects = one_json(faceprint("--gallery", db, "people", "list", "--json"))["subjects"]
    assert [s["name"] for s in subjects] == ["Bob"]
    assert _people(db)["collins.jpg"]["name"] == "Bob"

    # Corrections: a face out of a person (`none`), then "not this person" for another.
    face = hopper["faces"][0]["face_id"]
    moved = one_json(faceprint("--gallery", db, "people", "move", str(face), "none", "--json"))
    assert moved["face_id"] == face and moved["person_id"] is None
    other = hopper["faces"][1]["face_id"]
    rejected = one_json(faceprint("--gallery", db, "people", "not", str(other), f"#{hopper['person_id']}", "--json"))
    assert rejected["face_id"] == other and rejected["person_id"] != hopper["person_id"]
    assert isinstance(one_json(faceprint("--gallery", db, "people", "suggest", "--json"))["questions"], list)

    gone = one_json(faceprint("--gallery", db, "people", "forget", f"#{hopper['person_id']}", "--yes", "--json"))
    assert gone["forgotten"] == f"#{hopper['person_id']}"
    assert "hopper.jpg" not in _people(db)
    missing = faceprint("--gallery", db, "people", "merge", "Nobody", "Bob", "--json")
    assert missing.returncode == 1 and one_json(missing)["error"]["code"] == "subject_not_found"
