"""What a person reads at an 80-column terminal (issue 16): help pages, ``--version`` and the
result tables of the real CLI, run as a subprocess with ``COLUMNS=80``.

Nothing is cut ("…"), no line is wider than the terminal, paths are shown relative to the folder
the user named, long messages are whole (below the table), names are never folded, counts take
the right plural, and every command that reads images refuses a folder without any.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

import faceprint
from tests.conftest import face_image, shared
from tests.integration.test_cli import faceprint as run
from tests.integration.test_cli import one_json

WIDTH = 80


def cli(*args: str) -> subprocess.CompletedProcess:
    return run(*args, columns=WIDTH)


def assert_readable(text: str) -> list[str]:
    """No line wider than the terminal and nothing cut with an ellipsis; the lines. A table's
    heading ``in FOLDER/`` is the one exception: the folder as the user gave it stays whole on
    its line, however long (../shared's absolute path differs from machine to machine)."""
    lines = text.splitlines()
    too_wide = [line for line in lines if len(line) > WIDTH and not (line.startswith("in ") and line.endswith("/"))]
    assert not too_wide, f"{len(too_wide)} line(s) over {WIDTH} columns, e.g. {too_wide[0]!r}"
    assert "…" not in text, "something was cut:\n" + text
    return lines


def words(text: str) -> str:
    """``text`` with every run of whitespace one space: a message wrapped over lines, whole."""
    return " ".join(text.split())


def row(lines: list[str], first: str) -> list[str]:
    """The cells (split on two or more spaces) of the table line that starts with ``first``."""
    matches = [line for line in lines if line.startswith(first)]
    assert matches, f"no row for {first!r} in:\n" + "\n".join(lines)
    return re.split(r"\s{2,}", matches[0].strip())


# --- help and version ----------------------------------------------------------------------------
def test_help_shows_flags_bare_and_arguments_by_name():
    root = cli("--help")
    detect = cli("detect", "--help")
    enroll = cli("enroll", "--help")
    for proc in (root, detect, enroll):
        assert proc.returncode == 0, proc.stderr
        assert "<bool>" not in proc.stdout  # --json, --help ... take no value
        assert "{" not in proc.stdout.split("Usage:")[1].splitlines()[0]  # not `{images}...`
        assert_readable(proc.stdout)
    assert "Usage: faceprint detect [OPTIONS] IMAGES..." in detect.stdout
    assert "IMAGES..." in detect.stdout.split("Arguments")[1]  # the argument's row names it too
    assert "[NAME] [IMAGES]..." in enroll.stdout  # optional arguments in brackets, as click writes them
    assert re.search(r"--json\s+Print exactly one JSON", detect.stdout)
    assert "--version" in root.stdout


def test_version_is_one_line_with_the_default_models():
    from faceprint.models.defaults import default_models

    proc = cli("--version")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"faceprint {faceprint.__version__} ")
    chosen = default_models()
    assert all(name in lines[0] for name in (chosen.detector, chosen.landmarks, chosen.embedder))


# --- tables --------------------------------------------------------------------------------------
def test_detect_table_paths_relative_and_errors_whole():
    folder = shared("inspireface_tests", "images")
    missing = folder / "no_such_photo.jpg"
    proc = cli("detect", str(folder), str(missing))
    assert proc.returncode == 1  # a file failed; the others still have their rows
    lines = assert_readable(proc.stdout)
    table, notes = proc.stdout.split("\n(1) ")
    assert lines[0] == f"in {folder}/" and table.count(str(folder)) == 1  # said once, above the table
    for image in sorted(folder.rglob("*.jp*g"))[:5]:
        assert row(lines, str(image.relative_to(folder)))[1] in {"0", "-"}  # the path whole, on one line
    assert row(lines, "no_such_photo.jpg")[1:] == ["-", "error (1)"]
    assert words(notes) == f"invalid_image: no such file: {missing}"  # the message, whole, below the table
    assert row(lines, "crop/no_face.png")[1:] == ["-", "no face"]


def test_models_table_cuts_no_version():
    cards = one_json(cli("models", "--json"))["models"]
    proc = cli("models")
    assert proc.returncode == 0, proc.stderr
    lines = assert_readable(proc.stdout)
    for card in cards:
        cells = row(lines, card["name"])
        assert card["version"] in cells, cells


def test_keys_list_fits(tmp_path):
    gallery = str(tmp_path / "keys.db")
    name = "the web page on the front desk"
    assert cli("--gallery", gallery, "keys", "create", "--scope", "recognize,manage", "--name", name).returncode == 0
    proc = cli("--gallery", gallery, "keys", "list")
    assert proc.returncode == 0, proc.stderr
    assert any(name in line for line in assert_readable(proc.stdout))  # a name on one line
    assert re.search(r"\d{4}-\d\d-\d\d", proc.stdout) and "+00:00" not in proc.stdout  # when, to the minute, UTC


@pytest.fixture(scope="module")
def knn_gallery(tmp_path_factory) -> tuple[str, Path]:
    """face_recognition's knn example: five people enrolled from their folders; the test photos."""
    knn = shared("face_recognition_examples", "examples", "knn_examples")
    db = str(tmp_path_factory.mktemp("knn") / "gallery.db")
    proc = cli("--gallery", db, "enroll", "--folders", str(knn / "train"), "--json")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return db, knn / "test"


def test_enroll_table(tmp_path):
    folder = shared("face_recognition_examples", "examples", "knn_examples", "train")
    proc = cli("--gallery", str(tmp_path / "g.db"), "enroll", "--folders", str(folder))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = assert_readable(proc.stdout)
    assert lines[0] == f"in {folder}/"
    assert row(lines, "kit_harington/john1.jpeg")[1] == "kit_harington"  # the path relative, the name whole


def test_identify_names_whole_and_says_why_a_face_is_unknown(knn_gallery, tmp_path):
    db, photos = knn_gallery
    # Obama twice in one photo: both faces pass the threshold, one person cannot be two faces.
    from PIL import Image

    obama = Image.open(photos / "obama1.jpg").convert("RGB")
    twice = Image.new("RGB", (obama.width * 2, obama.height))
    twice.paste(obama, (0, 0))
    twice.paste(obama, (obama.width, 0))
    folder = tmp_path / "probes"
    folder.mkdir()
    twice.save(folder / "obama_twice.jpg", quality=95)
    for name in ("kit_with_rose.jpg", "alex_lacamoire1.jpg"):
        (folder / name).write_bytes((photos / name).read_bytes())
    (folder / "nothing.png").write_bytes(face_image("no_face.png").read_bytes())
    stranger = shared("dlib_examples", "images", "Tom_Cruise_avp_2014_4.jpg")  # nobody enrolled
    (folder / "stranger.jpg").write_bytes(stranger.read_bytes())

    proc = cli("--gallery", db, "identify", str(folder))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = assert_readable(proc.stdout)
    assert lines[0] == f"in {folder}/"
    assert row(lines, "kit_with_rose.jpg")[:3] == ["kit_with_rose.jpg", "0", "kit_harington"]
    assert row(lines, "alex_lacamoire1.jpg")[:3] == ["alex_lacamoire1.jpg", "0", "alex_lacamoire"]
    assert row(lines, "nothing.png")[1:] == ["-", "no face"]  # no face 0 where there is none
    doc = one_json(cli("--gallery", db, "identify", str(folder / "obama_twice.jpg"), "--json"))
    notes = [f["note"] for f in doc["results"][0]["faces"] if f["note"]]
    assert notes and "obama matched face" in notes[0]
    table = words(proc.stdout)
    assert all(word in table for word in notes[0].split())  # the reason, in the table
    assert row(lines, "stranger.jpg")[2] == "unknown" and "below the threshold" in table


def test_an_empty_folder_is_refused_like_by_the_other_commands(knn_gallery, tmp_path):
    db, _ = knn_gallery
    empty = tmp_path / "empty"
    empty.mkdir()
    identify = cli("--gallery", db, "identify", str(empty), "--json")
    embed = cli("embed", str(empty), "--json")
    assert identify.returncode == embed.returncode == 2
    assert one_json(identify)["error"]["code"] == one_json(embed)["error"]["code"] == "invalid_argument"
    assert str(empty) in one_json(identify)["error"]["message"]
    plain = cli("--gallery", db, "identify", str(empty))
    assert plain.returncode == 2 and plain.stdout == "" and "no image files found" in plain.stderr


def test_counts_take_their_plural_and_stats_say_the_index_in_words(tmp_path):
    db = str(tmp_path / "one.db")
    assert cli("--gallery", db, "enroll", "Collins", str(face_image("collins.jpg"))).returncode == 0
    exported = cli("--gallery", db, "gallery", "export", str(tmp_path / "out.json"))
    assert exported.returncode == 0, exported.stderr
    assert "wrote 1 face to" in exported.stdout
    stats = cli("--gallery", db, "gallery", "stats")
    assert stats.returncode == 0, stats.stderr
    assert "1 person, 1 face" in stats.stdout and "exact search" in stats.stdout
    assert "Index" not in stats.stdout  # no class name (ExactIndex)
    assert json.loads(cli("--gallery", db, "gallery", "stats", "--json").stdout)["index"]  # the JSON keeps its value


# --- the table itself ----------------------------------------------------------------------------
def test_plural():
    from faceprint.cli.common import plural

    assert [plural(1, "face"), plural(2, "face"), plural(0, "person", "people")] == ["1 face", "2 faces", "0 people"]


def test_short_paths_are_relative_to_the_folder_named(tmp_path):
    from faceprint.cli.common import ShortPaths

    (tmp_path / "a" / "b").mkdir(parents=True)
    paths = ShortPaths([tmp_path / "a", tmp_path / "a" / "b" / "x.jpg"])
    assert paths(tmp_path / "a" / "b" / "x.jpg") == str(Path("b", "x.jpg")) and paths.heading == f"in {tmp_path / 'a'}/"
    assert ShortPaths([Path("x.jpg")]).heading is None  # the current folder: paths as given
    assert ShortPaths([Path("x.jpg")])("x.jpg") == "x.jpg"


def test_a_crowded_table_folds_but_never_cuts(tmp_path):
    from rich.console import Console

    from faceprint.cli.common import ResultTable

    table = ResultTable("image", "person", "similarity", "next candidates", keep=["person", "image"])
    name = "Maria_Fernanda_de_la_Cruz_Gonzalez"
    path = "holidays/2024/" + "very_long_folder_name/" * 3 + "IMG_0001.jpg"
    table.add_row(path, name, "0.7123", ", ".join(f"{name}_{i} 0.{i}12" for i in range(3)))
    table.add_row("[b]x.jpg", "[red]Ada[/]", "0.5", "")  # user input: shown as typed, never read as markup
    table.note("invalid_image: " + "a long message " * 10)
    console = Console(width=WIDTH, record=True, file=open(tmp_path / "out.txt", "w"))
    table.print(console)
    text = console.export_text()
    lines = assert_readable(text)
    assert any(name in line for line in lines)  # a kept name stays on one line
    assert any("[red]Ada[/]" in line and "[b]x.jpg" in line for line in lines)
    assert words(text).count("a long message") == 10
