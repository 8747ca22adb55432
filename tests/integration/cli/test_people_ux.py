"""`faceprint people` and `faceprint cluster` as a new user meets them (issue 16), on real lfw_dev
photos (skipped without ../shared/data): one way to name a person (``#ID`` or the exact name, with
"did you mean"), deleting only when asked for (a question at a terminal, ``--yes`` in a script),
a progress bar at a terminal, a first-pass summary that says what happened, face id lists that say
how many more there are, a face picture by id, and labelled contact sheets."""

from __future__ import annotations

import io
import os
import pty
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from faceprint.clustering.people import (
    LABEL_COLOUR,
    SHEET_HEADER,
    THUMBNAIL_SIZE,
    TILE_CAPTION,
    contact_sheet_tile_box,
)
from faceprint.gallery.thumbnails import crop_face
from faceprint.imageio import load_image
from faceprint.types import Box
from tests.conftest import shared
from tests.integration.test_cli import one_json

#: 16 photos each of three lfw_dev people: each becomes a person of more than 12 faces.
NAMES = ("Tony_Blair", "Hugo_Chavez", "Laura_Bush")
PER_PERSON = 16
TILE = 96  # People.contact_sheet's default picture size


def run(*args: str, stdin: int | None = subprocess.DEVNULL) -> subprocess.CompletedProcess:
    """The CLI in a subprocess whose stdin is no terminal (unless given): as a script runs it."""
    exe = Path(sys.executable).with_name("faceprint")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "faceprint"]
    return subprocess.run([*cmd, *args], stdin=stdin, capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def first_pass(tmp_path_factory) -> dict:
    """One `faceprint cluster` of 48 photos into a new gallery, in text (as a person reads it),
    with contact sheets; then its people as JSON. Tests copy the gallery before changing it."""
    root = shared("lfw_dev", "images")
    work = tmp_path_factory.mktemp("people_ux")
    photos = work / "photos"
    photos.mkdir()
    for name in NAMES:
        for p in sorted((root / name).glob("*.jpg"))[:PER_PERSON]:
            (photos / p.name).symlink_to(p)
    db, sheets = work / "g.db", work / "sheets"
    proc = run("--gallery", str(db), "cluster", str(photos), "--out", str(sheets))
    assert proc.returncode == 0, proc.stderr
    clusters = one_json(run("--gallery", str(db), "people", "clusters", "--json"))
    assert len(clusters["people"]) >= 2 and max(len(p["faces"]) for p in clusters["people"]) > 12
    return {"db": db, "sheets": sheets, "stdout": proc.stdout, "root": root, **clusters}


@pytest.fixture()
def gallery(first_pass, tmp_path) -> str:
    """A copy of the first pass's gallery, for a test to change."""
    for f in first_pass["db"].parent.glob(first_pass["db"].name + "*"):
        shutil.copyfile(f, tmp_path / f.name)
    return str(tmp_path / first_pass["db"].name)


def biggest(first_pass: dict) -> dict:
    return max(first_pass["people"], key=lambda p: len(p["faces"]))


# --- the summary of a pass ---------------------------------------------------------------------
def test_a_first_pass_says_it_found_new_people_and_nobody_joined(first_pass):
    last = first_pass["stdout"].strip().splitlines()[-2:]  # the summary (then "contact sheets in ...")
    summary = next(line for line in last if "found" in line)
    n_people = len(first_pass["people"])
    in_people = sum(len(p["faces"]) for p in first_pass["people"])
    assert f"{n_people} new people ({in_people} faces)" in summary, summary
    assert "joined" not in summary and "known people" not in summary  # there was nobody to join
    assert f"{len(first_pass['unsorted'])} faces unsorted" in summary


def test_a_later_pass_says_how_many_joined_the_people_found_before(first_pass, gallery, tmp_path):
    more = tmp_path / "more"
    more.mkdir()
    for p in sorted((first_pass["root"] / "Tony_Blair").glob("*.jpg"))[PER_PERSON:PER_PERSON + 4]:
        (more / p.name).symlink_to(p)
    doc = one_json(run("--gallery", gallery, "cluster", str(more), "--json"))
    assert doc["photos_added"] == 4 and doc["people_before"] == len(first_pass["people"])
    assert doc["assigned"] >= 1 and doc["new_people"] == 0 and doc["new_people_faces"] == 0


# --- naming someone ----------------------------------------------------------------------------
def test_show_takes_an_id_as_every_people_command_does(first_pass, gallery):
    person = biggest(first_pass)
    shown = one_json(run("--gallery", gallery, "people", "show", f"#{person['person_id']}", "--json"))
    assert shown["label"] == f"#{person['person_id']}" and shown["faces"] == []  # nothing enrolled yet
    assert [f["face_id"] for f in shown["person"]["faces"]] == [f["face_id"] for f in person["faces"]]
    text = run("--gallery", gallery, "people", "show", f"#{person['person_id']}")
    assert text.returncode == 0 and f"{len(person['faces'])} photo faces" in text.stdout
    # Named, the same person is shown by name and by #ID: its enrolled faces and its photo faces.
    assert run("--gallery", gallery, "people", "name", f"#{person['person_id']}", "Hugo Chavez").returncode == 0
    by_name = one_json(run("--gallery", gallery, "people", "show", "Hugo Chavez", "--json"))
    by_id = one_json(run("--gallery", gallery, "people", "show", f"#{person['person_id']}", "--json"))
    assert by_name == by_id and by_name["name"] == "Hugo Chavez" and by_name["face_count"] >= 1
    missing = run("--gallery", gallery, "people", "show", "#99999", "--json")
    assert missing.returncode == 1 and one_json(missing)["error"]["code"] == "subject_not_found"


def test_a_name_not_found_offers_the_close_ones(first_pass, gallery):
    person = biggest(first_pass)
    run("--gallery", gallery, "people", "name", f"#{person['person_id']}", "Hugo Chavez")
    for command in (["show", "hugo chavez"], ["rename", "Hugo Chaves", "Hugo"], ["merge", "Hugo Chavz", "Someone"],
                    ["forget", "Hugo Chave", "--yes"]):
        proc = run("--gallery", gallery, "people", *command, "--json")
        assert proc.returncode == 1, (command, proc.stdout)
        error = one_json(proc)["error"]
        assert error["code"] == "subject_not_found" and error["details"]["did_you_mean"] == ["Hugo Chavez"], command
        assert "did you mean 'Hugo Chavez'?" in error["message"]
    text = run("--gallery", gallery, "people", "show", "hugo chavez")
    assert "did you mean 'Hugo Chavez'?" in text.stderr
    far_off = one_json(run("--gallery", gallery, "people", "show", "Zzyzx", "--json"))["error"]
    assert far_off["details"]["did_you_mean"] == [] and "did you mean" not in far_off["message"]
    # Names match exactly: the close one is offered, never taken.
    assert one_json(run("--gallery", gallery, "people", "list", "--json"))["subjects"][0]["name"] == "Hugo Chavez"


# --- deleting ----------------------------------------------------------------------------------
def test_forget_and_delete_face_in_a_script_need_yes(first_pass, gallery):
    person = biggest(first_pass)
    ref = f"#{person['person_id']}"
    refused = run("--gallery", gallery, "people", "forget", ref)
    assert refused.returncode == 2 and "--yes" in refused.stderr and "nothing was deleted" in refused.stderr
    refused_json = run("--gallery", gallery, "people", "forget", ref, "--json")
    assert refused_json.returncode == 2 and one_json(refused_json)["error"]["code"] == "invalid_argument"
    assert one_json(run("--gallery", gallery, "people", "clusters", "--json"))["people"] == first_pass["people"]

    gone = run("--gallery", gallery, "people", "forget", ref, "--yes", "--json")
    assert gone.returncode == 0 and one_json(gone) == {"forgotten": ref, "faces_removed": len(person["faces"])}
    left = one_json(run("--gallery", gallery, "people", "clusters", "--json"))["people"]
    assert person["person_id"] not in {p["person_id"] for p in left}

    other = next(p for p in left if len(p["faces"]) >= 3)
    run("--gallery", gallery, "people", "name", f"#{other['person_id']}", "Ada")
    face_id = one_json(run("--gallery", gallery, "people", "show", "Ada", "--json"))["faces"][0]["face_id"]
    kept = run("--gallery", gallery, "people", "delete-face", str(face_id))
    assert kept.returncode == 2 and "--yes" in kept.stderr
    assert face_id in [f["face_id"] for f in one_json(run("--gallery", gallery, "people", "show", "Ada", "--json"))["faces"]]
    assert run("--gallery", gallery, "people", "delete-face", str(face_id), "-y").returncode == 0
    assert face_id not in [f["face_id"] for f in one_json(run("--gallery", gallery, "people", "show", "Ada", "--json"))["faces"]]


def at_a_terminal(answer: str, *args: str) -> subprocess.CompletedProcess:
    """The CLI with a terminal as its stdin (a pseudo-terminal), ``answer`` typed into it."""
    main, secondary = pty.openpty()
    try:
        os.write(main, answer.encode())
        return run(*args, stdin=secondary)
    finally:
        os.close(main)
        os.close(secondary)


def test_forget_at_a_terminal_asks_first_showing_what_goes(first_pass, gallery):
    person = biggest(first_pass)
    ref = f"#{person['person_id']}"
    declined = at_a_terminal("n\n", "--gallery", gallery, "people", "forget", ref)
    assert declined.returncode == 1 and "nothing was deleted" in declined.stderr
    assert f"forget {ref}: {len(person['faces'])} photo faces of {ref}" in declined.stderr  # the question
    assert one_json(run("--gallery", gallery, "people", "clusters", "--json"))["people"] == first_pass["people"]
    accepted = at_a_terminal("y\n", "--gallery", gallery, "people", "forget", ref)
    assert accepted.returncode == 0 and f"({len(person['faces'])} faces removed)" in accepted.stdout
    left = one_json(run("--gallery", gallery, "people", "clusters", "--json"))["people"]
    assert person["person_id"] not in {p["person_id"] for p in left}


# --- what `people clusters` says ---------------------------------------------------------------
# (`people suggest` never asking whether a face is the person it is in: tests/unit/clustering/
# test_people_store.py, which builds the uncertain automatic match that used to be asked about;
# on these photos every match is confident, so there is nothing to ask.)
def test_clusters_say_how_many_face_ids_are_not_listed(first_pass, gallery):
    text = run("--gallery", gallery, "people", "clusters").stdout
    for p in first_pass["people"]:
        ids = [f["face_id"] for f in p["faces"]]
        line = next(row for row in text.splitlines() if row.strip().startswith(p["label"] + " "))
        listed = ", ".join(str(i) for i in ids[:12])
        if len(ids) > 12:
            assert line.endswith(f"face ids {listed} … and {len(ids) - 12} more"), line
        else:
            assert line.endswith(f"face ids {listed}"), line
    assert any(len(p["faces"]) > 12 for p in first_pass["people"])


# --- seeing faces ------------------------------------------------------------------------------
def test_people_face_writes_the_face_picture(first_pass, gallery, tmp_path):
    face = biggest(first_pass)["faces"][0]
    out = tmp_path / "face.jpg"
    doc = one_json(run("--gallery", gallery, "people", "face", str(face["face_id"]), "--out", str(out), "--json"))
    assert doc["face_id"] == face["face_id"] and doc["out"] == str(out)
    with Image.open(out) as img:
        assert img.format == "JPEG" and img.size == (THUMBNAIL_SIZE, THUMBNAIL_SIZE)
        picture = np.asarray(img.convert("RGB"), dtype=np.float32)
    expected = crop_face(load_image(face["path"]), Box(*face["box"]), THUMBNAIL_SIZE).astype(np.float32)
    assert float(np.abs(picture - expected).mean()) < 6  # the face cut from its photo (JPEG aside)
    missing = run("--gallery", gallery, "people", "face", "999999", "--out", str(tmp_path / "x.jpg"), "--json")
    assert missing.returncode == 1 and not (tmp_path / "x.jpg").exists()


def caption(text: str, width: int = TILE) -> np.ndarray:
    """The caption strip a contact sheet draws under a face: ``text`` centred in Pillow's default font."""
    from PIL import ImageFont

    strip = Image.new("RGB", (width, TILE_CAPTION), (32, 32, 32))
    ImageDraw.Draw(strip).text((width // 2, TILE_CAPTION // 2), text, fill=LABEL_COLOUR,
                               font=ImageFont.load_default(size=12), anchor="mm")
    return np.asarray(strip, dtype=np.float32)


def test_contact_sheets_label_the_person_and_each_face(first_pass):
    person = biggest(first_pass)
    sheet_path = first_pass["sheets"] / f"person_{person['person_id']}.jpg"
    with Image.open(sheet_path) as img:
        sheet = np.asarray(img.convert("RGB"), dtype=np.float32)
    n = len(person["faces"])
    rows = -(-n // 8)
    assert sheet.shape[:2] == (SHEET_HEADER + rows * (TILE + TILE_CAPTION), 8 * TILE)
    header = sheet[:SHEET_HEADER]
    assert (header.max(axis=2) > 180).sum() > 50  # text drawn on the dark band: the title
    for k, face in enumerate(person["faces"][:8]):
        left, _, right, bottom = contact_sheet_tile_box(k)
        strip = sheet[bottom:bottom + TILE_CAPTION, left:right]
        right_label = float(np.abs(strip - caption(f"face {face['face_id']}")).mean())
        wrong_label = float(np.abs(strip - caption(f"face {face['face_id'] + 1000}")).mean())
        blank = float(np.abs(strip - 32).mean())
        assert right_label < 6 and right_label < wrong_label and right_label < blank / 2, (k, right_label, blank)
    assert (first_pass["sheets"] / "unsorted.jpg").exists()


# --- a progress bar at a terminal --------------------------------------------------------------
def test_cluster_shows_progress_at_a_terminal_and_never_with_json(first_pass, tmp_path, monkeypatch):
    from rich.console import Console
    from typer.testing import CliRunner

    from faceprint.cli import common
    from faceprint.cli.root import app

    photos = tmp_path / "photos"
    photos.mkdir()
    for p in sorted((first_pass["root"] / "Laura_Bush").glob("*.jpg"))[:3]:
        (photos / p.name).symlink_to(p)
    for as_json, db in ((False, "a.db"), (True, "b.db")):
        screen = io.StringIO()
        monkeypatch.setattr(common, "err", Console(file=screen, force_terminal=True, width=100))
        args = ["--gallery", str(tmp_path / db), "cluster", str(photos), "-j", "1"] + (["--json"] if as_json else [])
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 0, result.output
        drawn = screen.getvalue()
        if as_json:
            assert "finding faces" not in drawn and "clustering" not in drawn
        else:
            assert "finding faces" in drawn and "3/3" in drawn and "clustering" in drawn
