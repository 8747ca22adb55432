"""The gallery commands through a real subprocess: enrol with worker processes, identify,
manage people, export/import, and the JSON shapes of the contract. The lfw_dev tests need
../shared; the others use the public-domain faces shipped in tests/data/faces."""

from __future__ import annotations

import base64
import json

import numpy as np
import pytest

from faceprint.gallery import Gallery
from tests.conftest import default_model_id, face_image, shared
from tests.integration.test_cli import faceprint, one_json

PEOPLE = ("Tony_Blair", "Hugo_Chavez", "Laura_Bush")
REASONS = {"no_face", "multiple_faces", "face_too_small", "low_quality", "duplicate_image", "invalid_image"}


@pytest.fixture()
def people_dir(tmp_path):
    """Three lfw_dev people, four photos each (as symlinks: the data is not copied)."""
    root = shared("lfw_dev", "images")
    folder = tmp_path / "people"
    for person in PEOPLE:
        (folder / person).mkdir(parents=True)
        for i in range(1, 5):
            name = f"{person}_{i:04d}.jpg"
            (folder / person / name).symlink_to(root / person / name)
    return folder


def _embeddings(export: dict) -> dict[str, np.ndarray]:
    return {
        face["source"]: np.frombuffer(base64.b64decode(face["embedding"]), dtype="<f4")
        for subject in export["subjects"] for face in subject["faces"]
    }


def test_enrol_folders_with_workers_equals_in_process(people_dir, tmp_path, analyzer):
    db = tmp_path / "cli.db"
    proc = faceprint("--gallery", str(db), "enroll", "--folders", str(people_dir), "--jobs", "2", "--json")
    assert proc.returncode in (0, 1), proc.stderr  # 1: some image was rejected (reasons below)
    doc = one_json(proc)
    assert set(doc) == {"enrolled", "rejected"}
    assert len(doc["enrolled"]) + len(doc["rejected"]) == 12 and len(doc["enrolled"]) >= 9
    assert {e["subject"] for e in doc["enrolled"]} == set(PEOPLE)
    assert all(e["path"].startswith(str(people_dir / e["subject"])) for e in doc["enrolled"])
    assert all(r["reason"]["code"] in REASONS and r["reason"]["message"] for r in doc["rejected"])
    assert (proc.returncode == 1) == bool(doc["rejected"])

    # The same images enrolled one by one in this process: the same decisions, the same vectors.
    with Gallery.open(tmp_path / "lib.db", analyzer=analyzer) as g:
        report = g.enroll_folders(people_dir)
        assert [e.path for e in report.enrolled] == [e["path"] for e in doc["enrolled"]]
        assert {r.path: r.code for r in report.rejected} == {r["path"]: r["reason"]["code"] for r in doc["rejected"]}
        g.export(tmp_path / "lib.json")
    out = one_json(faceprint("--gallery", str(db), "gallery", "export", str(tmp_path / "cli.json"), "--json"))
    assert out["faces"] == len(doc["enrolled"]) and out["model"] == default_model_id()
    cli_vectors = _embeddings(json.loads((tmp_path / "cli.json").read_text()))
    lib_vectors = _embeddings(json.loads((tmp_path / "lib.json").read_text()))
    assert cli_vectors.keys() == lib_vectors.keys()
    for path, vector in cli_vectors.items():
        np.testing.assert_allclose(vector, lib_vectors[path], atol=1e-5)


def test_identify_manage_and_forget_from_the_command_line(people_dir, tmp_path, monkeypatch):
    db = tmp_path / "people.db"
    monkeypatch.setenv("FACEPRINT_GALLERY", str(db))  # the environment variable chooses the file
    enrolled = one_json(faceprint("enroll", "--folders", str(people_dir), "--json"))["enrolled"]
    assert db.is_file() and enrolled
    probe = shared("lfw_dev", "images", "Tony_Blair", "Tony_Blair_0010.jpg")
    given = str(probe)
    doc = one_json(faceprint("identify", given, "--top-k", "2", "--json"))
    (result,) = doc["results"]
    assert result["path"] == given and result["error"] is None
    centre = min(result["faces"], key=lambda f: abs((f["box"][0] + f["box"][2]) / 2 - 125))
    assert set(centre) >= {"box", "identity", "similarity", "threshold", "candidates"}
    assert centre["identity"] == "Tony_Blair" and centre["similarity"] >= centre["threshold"]
    top = centre["candidates"][0]
    assert len(centre["candidates"]) == 2 and top["subject"] == "Tony_Blair" and top["similarity"] == centre["similarity"]

    listed = one_json(faceprint("people", "list", "--json"))["subjects"]
    assert sorted(s["name"] for s in listed) == sorted(PEOPLE)
    assert all(s["face_count"] >= 1 for s in listed)
    shown = one_json(faceprint("people", "show", "Laura_Bush", "--json"))
    assert shown["name"] == "Laura_Bush" and len(shown["faces"]) == shown["face_count"]
    assert one_json(faceprint("people", "rename", "Laura_Bush", "Laura", "--json"))["name"] == "Laura"
    merged = one_json(faceprint("people", "merge", "Hugo_Chavez", "Laura", "--json"))
    assert merged["name"] == "Laura" and merged["face_count"] == shown["face_count"] + next(
        s["face_count"] for s in listed if s["name"] == "Hugo_Chavez")
    missing = faceprint("people", "show", "Hugo_Chavez", "--json")
    assert missing.returncode == 1 and one_json(missing)["error"]["code"] == "subject_not_found"

    stats = one_json(faceprint("gallery", "stats", "--json"))
    assert stats["subjects"] == 2 and stats["faces"] == len(enrolled)
    forgot = one_json(faceprint("people", "forget", "Tony_Blair", "--yes", "--json"))
    assert forgot == {"forgotten": "Tony_Blair", "faces_removed": next(
        s["face_count"] for s in listed if s["name"] == "Tony_Blair")}
    after = one_json(faceprint("identify", given, "--top-k", "5", "--json"))["results"][0]["faces"]
    assert all(f["identity"] != "Tony_Blair" for f in after)
    assert all(c["subject"] != "Tony_Blair" for f in after for c in f["candidates"])

    # Export, then import into a new gallery: the same people and faces.
    export = tmp_path / "people.json.gz"
    assert one_json(faceprint("gallery", "export", str(export), "--json"))["faces"] == stats["faces"] - forgot["faces_removed"]
    other = tmp_path / "other.db"
    counts = one_json(faceprint("--gallery", str(other), "gallery", "import", str(export), "--json"))
    assert counts == {"added": stats["faces"] - forgot["faces_removed"], "skipped_duplicates": 0}
    again = one_json(faceprint("--gallery", str(other), "gallery", "import", str(export), "--json"))
    assert again["added"] == 0 and again["skipped_duplicates"] == counts["added"]


def test_enrol_rejections_exit_1_with_reasons(tmp_path):
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    group = face_image("two_people.jpg")
    one = face_image("collins.jpg")
    proc = faceprint("--gallery", str(tmp_path / "g.db"), "enroll", "Collins", str(one), str(group), str(broken), "--json")
    assert proc.returncode == 1
    doc = one_json(proc)
    assert [e["subject"] for e in doc["enrolled"]] == ["Collins"]
    assert {r["path"]: r["reason"]["code"] for r in doc["rejected"]} == {
        str(group): "multiple_faces", str(broken): "invalid_image"}
    bad = faceprint("--gallery", str(tmp_path / "g.db"), "enroll", "--json")
    assert bad.returncode == 2 and one_json(bad)["error"]["code"] == "invalid_argument"  # a usage error


def test_enrol_identify_and_manage_with_the_shipped_faces(tmp_path):
    """The gallery commands end to end without ../shared: two people, a group photo, a stranger."""
    db = str(tmp_path / "shipped.db")
    for name, image in (("Collins", "collins.jpg"), ("Hopper", "hopper.jpg")):
        doc = one_json(faceprint("--gallery", db, "enroll", name, str(face_image(image)), "--json"))
        assert [e["subject"] for e in doc["enrolled"]] == [name] and doc["rejected"] == []

    group, probe, nobody = face_image("two_people.jpg"), face_image("collins_2.jpg"), face_image("no_face.png")
    doc = one_json(faceprint("--gallery", db, "identify", str(group), str(probe), str(nobody), "--json"))
    by_path = {r["path"]: r for r in doc["results"]}
    assert list(by_path) == [str(group), str(probe), str(nobody)]
    assert sorted(f["identity"] for f in by_path[str(group)]["faces"]) == ["Collins", "Hopper"]
    (face,) = by_path[str(probe)]["faces"]
    assert face["identity"] == "Collins" and face["similarity"] >= face["threshold"]
    assert by_path[str(nobody)] == {"path": str(nobody), "faces": [], "error": None}

    table = faceprint("--gallery", db, "people", "list")
    assert table.returncode == 0 and "Collins" in table.stdout and "2 people" in table.stdout
    assert one_json(faceprint("--gallery", db, "people", "rename", "Hopper", "Grace", "--json"))["name"] == "Grace"
    stats = one_json(faceprint("--gallery", db, "gallery", "stats", "--json"))
    assert stats["subjects"] == 2 and stats["faces"] == 2
    assert one_json(faceprint("--gallery", db, "people", "forget", "Grace", "--yes", "--json")) == {"forgotten": "Grace", "faces_removed": 1}
    missing = faceprint("--gallery", db, "people", "show", "Grace")
    assert missing.returncode == 1 and missing.stdout == "" and "subject_not_found" in missing.stderr
