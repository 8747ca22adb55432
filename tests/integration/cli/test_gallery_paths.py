"""A mistyped gallery path never becomes a new, empty gallery (issue 13).

Through a real subprocess: every command that only reads a gallery, or changes what is already
in it, fails with ``gallery_not_found`` (exit 2) and creates nothing, not even a folder; the
commands that add to a gallery (enroll, cluster, gallery import, keys create) create one and say
so on stderr, never in the --json document; impossible paths are typed errors, never
``internal_error``; usage errors exit 2 and name the flags. Shipped faces only (no ../shared).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from tests.conftest import face_image
from tests.integration.test_cli import faceprint, one_json

COLLINS = str(face_image("collins.jpg"))

#: Every command that needs the gallery to exist (see `faceprint --help` and each group's).
NEEDS_A_GALLERY = [
    ["identify", COLLINS],
    ["people", "list"],
    ["people", "show", "Ada"],
    ["people", "rename", "Ada", "Bea"],
    ["people", "merge", "Ada", "Bea"],
    ["people", "forget", "Ada"],
    ["people", "delete-face", "1"],
    ["people", "clusters"],
    ["people", "suggest"],
    ["people", "name", "#1", "Ada"],
    ["people", "move", "1", "none"],
    ["people", "not", "1", "#1"],
    ["gallery", "stats"],
    ["gallery", "export", "{tmp}/out.json"],
    ["gallery", "migrate", "--to", "dlib-resnet34"],
    ["gallery", "encryption"],
    ["gallery", "encrypt", "--key-file", "{tmp}/master.key"],
    ["gallery", "rotate-key", "--key-file", "{tmp}/master.key"],
    ["keys", "list"],
    ["keys", "revoke", "0123abcd"],
    ["serve", "--port", "0"],  # a service on a new gallery would have no API key: it never creates one
]
#: Each command that may create a gallery, and what the message tells to run otherwise.
CREATES = {"keys": "keys create", "serve": "keys create"}


def _args(command: list[str], tmp_path: Path) -> list[str]:
    return [a.replace("{tmp}", str(tmp_path)) for a in command]


def _created_line(path: Path | str) -> str:
    return f"created a new gallery at {path}"


@pytest.mark.parametrize("command", NEEDS_A_GALLERY, ids=" ".join)
def test_a_missing_gallery_is_an_error_and_nothing_is_created(tmp_path, command):
    gallery = tmp_path / "work" / "typo.db"
    json_flag = [] if command[0] == "serve" else ["--json"]
    proc = faceprint("--gallery", str(gallery), *_args(command, tmp_path), *json_flag)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    if json_flag:
        error = one_json(proc)["error"]
    else:
        assert proc.stdout == "" and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
        error = {"code": proc.stderr.split("(")[1].split(")")[0], "message": proc.stderr}
    assert error["code"] == "gallery_not_found"
    assert str(gallery) in error["message"] and "nothing was created" in error["message"]
    assert CREATES.get(command[0], "enroll") in error["message"]  # says how to make one
    assert "Traceback" not in proc.stderr and "created a new gallery" not in proc.stderr
    assert not (tmp_path / "work").exists()  # no file and no folder
    assert not (tmp_path / "out.json").exists() and not (tmp_path / "master.key").exists()


def test_the_default_gallery_missing_says_it_is_the_default(tmp_path, monkeypatch):
    monkeypatch.delenv("FACEPRINT_GALLERY", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))  # platformdirs' user data folder
    proc = faceprint("people", "list", "--json")
    assert proc.returncode == 2
    error = one_json(proc)["error"]
    assert error["code"] == "gallery_not_found" and "the default" in error["message"] and "--gallery" in error["message"]
    assert not (tmp_path / "data").exists()


def test_each_writing_command_creates_a_gallery_and_says_so_on_stderr(tmp_path):
    enrolled = tmp_path / "new" / "deeper" / "enrol.db"  # missing folders are made for a new gallery
    proc = faceprint("--gallery", str(enrolled), "enroll", "Collins", COLLINS, "--json")
    assert proc.returncode == 0, proc.stderr
    assert [e["subject"] for e in one_json(proc)["enrolled"]] == ["Collins"]  # stdout: the document alone
    assert _created_line(enrolled) in proc.stderr and enrolled.is_file()
    again = faceprint("--gallery", str(enrolled), "enroll", "Collins", str(face_image("collins_2.jpg")), "--json")
    assert again.returncode == 0 and "created" not in again.stderr  # only a new gallery is announced

    clustered = tmp_path / "cluster.db"
    proc = faceprint("--gallery", str(clustered), "cluster", COLLINS, "--json")
    assert proc.returncode == 0, proc.stderr
    assert one_json(proc)["photos_added"] == 1 and _created_line(clustered) in proc.stderr

    keyed = tmp_path / "keys.db"
    proc = faceprint("--gallery", str(keyed), "keys", "create", "--scope", "recognize", "--json")
    assert proc.returncode == 0, proc.stderr
    assert one_json(proc)["scopes"] == ["recognize"] and _created_line(keyed.resolve()) in proc.stderr

    export = tmp_path / "export.json"
    assert faceprint("--gallery", str(enrolled), "gallery", "export", str(export), "--json").returncode == 0
    imported = tmp_path / "imported.db"
    proc = faceprint("--gallery", str(imported), "gallery", "import", str(export), "--json")
    assert proc.returncode == 0, proc.stderr
    assert one_json(proc)["added"] == 2 and _created_line(imported) in proc.stderr
    listed = one_json(faceprint("--gallery", str(imported), "people", "list", "--json"))["subjects"]
    assert [(s["name"], s["face_count"]) for s in listed] == [("Collins", 2)]


def test_writing_commands_check_their_input_before_creating_a_gallery(tmp_path):
    gallery = tmp_path / "g" / "new.db"
    cases = [
        (["gallery", "import", str(tmp_path / "missing.json")], "missing.json"),
        (["gallery", "import", str(tmp_path)], str(tmp_path)),  # a folder is not an export file
        (["keys", "create", "--scope", "bogus"], "bogus"),
        (["enroll"], "NAME"),
        (["enroll", "Ada", str(tmp_path / "nothing-here")], "nothing-here"),
        (["cluster", str(tmp_path / "nothing-here")], "nothing-here"),
    ]
    for args, named in cases:
        proc = faceprint("--gallery", str(gallery), *args, "--json")
        assert proc.returncode == 2, (args, proc.stdout, proc.stderr)
        error = one_json(proc)["error"]
        assert error["code"] == "invalid_argument" and named in error["message"], (args, error)
        assert not (tmp_path / "g").exists(), args


@pytest.mark.parametrize("command", [["people", "list"], ["enroll", "Ada", COLLINS], ["keys", "create", "--scope", "manage"]],
                         ids=" ".join)
def test_impossible_gallery_paths_are_typed_errors(tmp_path, command):
    folder = tmp_path / "a-folder"
    folder.mkdir()
    photo = tmp_path / "photo.jpg"
    photo.write_bytes(Path(COLLINS).read_bytes())
    before = hashlib.sha256(photo.read_bytes()).hexdigest()
    writes = command[0] != "people"
    for gallery, code, words in [
        ("/proc/nope/x.db", "gallery_unavailable" if writes else "gallery_not_found",
         "cannot create a gallery" if writes else "no gallery at"),
        (str(folder), "gallery_unavailable", "is a folder"),
        (str(photo), "gallery_unavailable", "not a faceprint gallery"),
    ]:
        proc = faceprint("--gallery", gallery, *command, "--json")
        error = one_json(proc)["error"]
        assert error["code"] == code and words in error["message"] and gallery in error["message"], (gallery, error)
        assert proc.returncode == (2 if code == "gallery_not_found" else 1), (gallery, proc.stderr)
        assert "Traceback" not in proc.stderr and "created" not in proc.stderr
    assert hashlib.sha256(photo.read_bytes()).hexdigest() == before  # the JPEG is left as it was
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-folder", "photo.jpg"]  # no -wal/-shm beside it
    assert list(folder.iterdir()) == []


def test_export_and_import_files_that_cannot_be_used_are_typed_errors(tmp_path):
    gallery = tmp_path / "g.db"
    assert faceprint("--gallery", str(gallery), "keys", "create", "--scope", "admin").returncode == 0
    target = tmp_path / "no" / "such" / "out.json"
    proc = faceprint("--gallery", str(gallery), "gallery", "export", str(target), "--json")
    assert proc.returncode == 2
    error = one_json(proc)["error"]
    assert error["code"] == "invalid_argument" and str(target) in error["message"]
    truncated = tmp_path / "cut.json.gz"
    truncated.write_bytes(b"\x1f\x8b\x08\x00 cut short")
    proc = faceprint("--gallery", str(gallery), "gallery", "import", str(truncated), "--json")
    assert proc.returncode == 2, proc.stdout
    error = one_json(proc)["error"]
    assert error["code"] == "invalid_argument" and str(truncated) in error["message"]


# --- usage errors: exit 2, in the flags' own words ------------------------------------------------
@pytest.mark.parametrize(
    "args,words",
    [
        (["--far", "1e-3", "--threshold", "0.5"], "give --far or --threshold, not both"),
        (["--far", "0.7"], "--far 0.7 is outside the range"),
        (["--far", "1e-9"], "give --threshold instead"),
        (["--far", "nan"], "--far must be in (0, 1)"),
        (["--threshold", "3"], "--threshold is a cosine similarity"),
    ],
)
def test_far_and_threshold_errors_name_the_flags(tmp_path, args, words):
    proc = faceprint("verify", COLLINS, COLLINS, *args, "--json")
    assert proc.returncode == 2, proc.stderr
    error = one_json(proc)["error"]
    assert error["code"] == "invalid_argument" and words in error["message"]
    assert "far=" not in error["message"] and "threshold=" not in error["message"]


def test_identify_names_the_flags_too(tmp_path):
    gallery = tmp_path / "g.db"
    assert faceprint("--gallery", str(gallery), "enroll", "Collins", COLLINS).returncode == 0
    for args, words in ((["--far", "1e-3", "--threshold", "0.5"], "give --far or --threshold"),
                        (["--far", "2"], "--far must be in (0, 1)")):
        proc = faceprint("--gallery", str(gallery), "identify", COLLINS, *args, "--json")
        assert proc.returncode == 2, proc.stderr
        error = one_json(proc)["error"]
        assert error["code"] == "invalid_argument" and words in error["message"], error
        assert "far=" not in error["message"]


def test_other_usage_errors_exit_2(tmp_path):
    enrol = faceprint("--gallery", str(tmp_path / "g.db"), "enroll")
    assert enrol.returncode == 2 and "invalid_argument" in enrol.stderr and not (tmp_path / "g.db").exists()
    unknown = faceprint("verify", COLLINS, COLLINS, "--model", "nope", "--json")
    assert unknown.returncode == 2 and one_json(unknown)["error"]["code"] == "unknown_model"
    group = faceprint("eval", "pairs", str(tmp_path / "pairs.csv"), "--group-far", "2", "--json")
    assert group.returncode == 2 and "--group-far" in one_json(group)["error"]["message"]


def test_verify_names_the_file_that_is_not_an_image(tmp_path):
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    text = tmp_path / "notes.jpg"
    text.write_text("not a picture")
    for a, b, bad in ((COLLINS, str(empty), empty), (str(text), COLLINS, text), (str(empty), str(text), empty)):
        proc = faceprint("verify", a, b, "--json")
        assert proc.returncode == 1
        error = one_json(proc)["error"]
        assert error["code"] == "invalid_image" and str(bad) in error["message"] and error["details"]["path"] == str(bad)
    plain = faceprint("verify", COLLINS, str(empty))
    assert plain.stdout == "" and str(empty) in plain.stderr and len(plain.stderr.strip().splitlines()) == 1
    json.loads(faceprint("verify", COLLINS, str(face_image("collins_2.jpg")), "--json").stdout)  # still fine
