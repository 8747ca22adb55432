"""Every code block of README.md (and bench/README.md) runs as written.

Each block runs in a fresh workspace (a temporary folder that is also ``$HOME``, so ``~``, the
user data folder, the default gallery and the master key file are all inside it) holding the
files the README names: ``photo.jpg``, ``a.jpg``/``b.jpg``, ``ada1.jpg``/``ada2.jpg``,
``group.jpg`` (two people), ``obama.jpg``/``obama2.jpg``, ``me.jpg``, ``broken.jpg`` (not an
image: the README shows a bad file not stopping a run), folders ``more/``, ``photos/``,
``people/<name>/``, ``~/Pictures/2025``/``2026`` and ``~/models`` (empty), ``clip.mp4`` (a room,
then Collins's face coming in: tests/integration/video/test_watch_cli.py's video), and ``old.db`` (an existing plain gallery,
which the encryption section encrypts). They are the public-domain faces shipped in
tests/data/faces. The installed model packs stay visible (``$FACEPRINT_MODELS_DIR`` is set to
where they are), so the blocks run with whichever default pipeline this machine has.

* ``python`` blocks run as a script (``python block.py``) and must exit 0.
* ``sh``/``bash``/``console`` blocks: the block becomes one bash script (``set -e``; a
  ``console`` block's ``$ `` prompts are removed and its output lines dropped) in which a line
  is *run* when it is a ``faceprint`` command (optionally after ``VAR=value`` assignments) or an
  ``export VAR=...``; every other line (``make``, ``pip``, ``npm``, ``curl``, ``docker``, shell variables,
  comments) is left out. A ``faceprint`` line is left out too, by these rules, each named in the
  test's output:

  - ``synopsis``: after dropping the optional ``[...]`` parts it still shows alternatives
    (`` | ``) or a placeholder in capitals (``NAME``, ``FILE``, ``PAIRS.csv``, ``N``); the
    line without its ``[...]`` parts is run otherwise (``faceprint verify a.jpg b.jpg
    [--far 1e-3]`` runs ``faceprint verify a.jpg b.jpg``).
  - ``long-running or machine-wide``: ``serve`` (a server that does not return), ``models
    install``/``models remove`` (the machine's model packs; install needs the network) and
    ``gallery migrate`` (re-embeds every photo; tests/integration/gallery/test_gallery_migrate.py).
  - ``your own files``: a file the reader brings (``.onnx`` models, an npm ``.tgz``).
  - ``your own camera``: ``watch``/``liveness`` of a webcam index (``0``); none here
    (tests/integration/video and tests/integration/liveness read frames made from files instead).
  - ``your own servers``: a PostgreSQL gallery (``postgresql://...``), a Dask scheduler
    (``--dask tcp://...``) or a camera stream (``rtsp://...``) the reader runs (tests/integration/test_dask.py and the PostgreSQL
    suites run those commands against servers the test session starts).
  - ``example ids``: people and faces named by an id the README made up (``'#3'``, face
    ``42``): which ids exist depends on the photos.

  Each run line must exit 0 (``set -e``).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from faceprint import settings
from faceprint.video.source import VideoWriter
from tests.conftest import FACES, REPO
from tests.integration.video.test_watch_cli import FPS
from tests.integration.video.test_watch_cli import frames as video_frames

READMES = [REPO / "README.md", REPO / "bench" / "README.md"]
SHELL_LANGS = {"sh", "bash", "console", "shell"}

pytestmark = pytest.mark.slow


@dataclass(frozen=True)
class Block:
    file: str
    line: int
    lang: str
    text: str

    @property
    def id(self) -> str:
        return f"{self.file}:{self.line}-{self.lang}"


def code_blocks() -> list[Block]:
    blocks = []
    for path in READMES:
        if not path.is_file():
            continue
        text = path.read_text(encoding="utf-8")
        for m in re.finditer(r"^```(\w*)[ \t]*\n(.*?)^```", text, re.S | re.M):
            lang = m.group(1).lower()
            if lang == "python" or lang in SHELL_LANGS:
                blocks.append(Block(path.relative_to(REPO).as_posix(), text[:m.start()].count("\n") + 1, lang,
                                    m.group(2)))
    return blocks


# --- which shell lines run ------------------------------------------------------------------
PLACEHOLDER = re.compile(r"^[A-Z][A-Z0-9_]*(?:\.[a-z0-9]+)?$")  # NAME, N, KEY_ID, PAIRS.csv, OUT.html
ENV_PREFIX = re.compile(r"^(?:[A-Za-z_][A-Za-z0-9_]*=\S*\s+)*")
LONG_RUNNING = (("serve",), ("models", "install"), ("models", "remove"), ("gallery", "migrate"))


def strip_optional(line: str) -> str:
    """The line without its ``[...]`` parts (nested ones too)."""
    while True:
        shorter = re.sub(r"\s*\[[^\[\]]*\]", "", line)
        if shorter == line:
            return line
        line = shorter


def subcommand(words: list[str]) -> list[str]:
    """The command's words after ``faceprint`` and its global ``--gallery PATH``."""
    rest = words[1:]
    while rest and rest[0].startswith("--"):
        rest = rest[2:] if "=" not in rest[0] else rest[1:]
    return rest


def shell_line_rule(line: str) -> tuple[str, str | None]:
    """(the line to run, None) or (the line, why it is left out)."""
    command = ENV_PREFIX.sub("", line)
    if not command.startswith("faceprint"):
        return line, "not a faceprint command"
    bare = strip_optional(line.split(" #", 1)[0]).rstrip()
    words = bare.split()
    quoted = re.sub(r"'[^']*'|\"[^\"]*\"", "", bare)  # names in quotes are not placeholders
    if " | " in quoted or any(PLACEHOLDER.match(w) for w in quoted.split()[1:]):
        return line, "synopsis"
    sub = subcommand(ENV_PREFIX.sub("", bare).split())
    if any(tuple(sub[:len(s)]) == s for s in LONG_RUNNING):
        return line, "long-running or machine-wide"
    if re.search(r"\.(onnx|tgz)\b", bare):
        return line, "your own files"
    if sub[:1] in (["watch"], ["liveness"]) and len(sub) > 1 and sub[1].isdigit():
        return line, "your own camera"
    if re.search(r"postgres(ql)?://|rtsp://|--dask\b|FACEPRINT_DASK=", bare):
        return line, "your own servers"
    if re.search(r"'#\d+'", bare) or (sub[:2] in (["people", "move"], ["people", "not"], ["people", "delete-face"], ["people", "face"])):
        return line, "example ids"
    del words
    return bare, None


def shell_script(block: Block) -> tuple[str, list[str], list[tuple[str, str]]]:
    """(bash script, lines run, [(line, why left out)])."""
    lines: list[str] = []
    for raw in block.text.splitlines():
        if block.lang == "console":
            if not raw.startswith("$ "):
                continue  # output
            raw = raw[2:]
        if raw[:1].isspace() and lines:  # a synopsis continued on the next line
            lines[-1] += " " + raw.strip()
        elif raw.strip() and not raw.lstrip().startswith("#"):
            lines.append(raw.strip())
    run, skipped = [], []
    for line in lines:
        if line.startswith("export "):
            run.append(line)
            continue
        command, why = shell_line_rule(line)
        if why is None:
            run.append(command)
        else:
            skipped.append((line, why))
    return "set -euo pipefail\n" + "\n".join(run) + "\n", run, skipped


# --- the workspace ----------------------------------------------------------------------------
def make_workspace(root: Path) -> Path:
    """A folder with the files the README's examples name (see the module docstring)."""
    copies = {
        "photo.jpg": "collins.jpg", "a.jpg": "collins.jpg", "b.jpg": "collins_2.jpg", "me.jpg": "hopper.jpg",
        "ada1.jpg": "collins.jpg", "ada2.jpg": "collins_2.jpg", "group.jpg": "two_people.jpg",
        "obama.jpg": "hopper.jpg", "obama2.jpg": "hopper_2.jpg", "more/one.jpg": "hopper.jpg",
        "photos/1.jpg": "collins.jpg", "photos/2.jpg": "hopper_2.jpg",
        "people/Grace Hopper/1.jpg": "hopper.jpg", "people/Grace Hopper/2.jpg": "hopper_2.jpg",
        "Pictures/2025/1.jpg": "collins.jpg", "Pictures/2025/2.jpg": "two_people.jpg",
        "Pictures/2026/1.jpg": "collins_2.jpg",
    }
    for target, source in copies.items():
        (root / target).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(FACES / source, root / target)
    (root / "broken.jpg").write_bytes(b"this is not an image\n")
    with VideoWriter(root / "clip.mp4", FPS, (320, 240)) as writer:
        for rgb in video_frames():
            writer.write(rgb)
    (root / "models").mkdir()  # ~/models: a folder of your own .onnx files (none here)
    return root


def environment(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FACEPRINT_", "XDG_"))}
    env.update(HOME=str(home), FACEPRINT_MODELS_DIR=str(settings.models_home()),
               PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}", PYTHONUNBUFFERED="1")
    return env


@pytest.fixture
def workspace(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    home = make_workspace(tmp_path)
    env = environment(home)
    made = subprocess.run(["faceprint", "--gallery", "old.db", "gallery", "init"], cwd=home, env=env,
                          capture_output=True, text=True, timeout=120)
    assert made.returncode == 0, made.stderr
    return home, env


BLOCKS = code_blocks()


def test_readme_has_code_blocks():
    langs = {b.lang for b in BLOCKS}
    assert "python" in langs and langs & SHELL_LANGS


@pytest.mark.parametrize("block", BLOCKS, ids=[b.id for b in BLOCKS])
def test_readme_block_runs_as_written(block: Block, workspace: tuple[Path, dict[str, str]]):
    home, env = workspace
    if block.lang == "python":
        script = home / "block.py"
        script.write_text(block.text, encoding="utf-8")
        proc = subprocess.run([sys.executable, str(script)], cwd=home, env=env, capture_output=True, text=True,
                              timeout=600)
        assert proc.returncode == 0, f"{block.id} failed:\n{block.text}\n--- stderr\n{proc.stderr[-4000:]}"
        return
    script, run, skipped = shell_script(block)
    for line, why in skipped:
        print(f"{block.id}: left out ({why}): {line}")
    if not [line for line in run if not line.startswith("export ")]:
        pytest.skip(f"{block.id}: no faceprint command to run here ({', '.join(sorted({w for _, w in skipped}))})")
    proc = subprocess.run(["bash", "-c", script], cwd=home, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, (f"{block.id} failed:\n{script}\n--- stdout\n{proc.stdout[-3000:]}"
                                  f"\n--- stderr\n{proc.stderr[-4000:]}")


# --- the rules themselves ---------------------------------------------------------------------
@pytest.mark.parametrize("line,expected", [
    ("faceprint verify a.jpg b.jpg [--far 1e-3 | --threshold 0.93] [--face-a N] [--json]",
     ("faceprint verify a.jpg b.jpg", None)),
    ("faceprint people list | show NAME | rename OLD NEW", "synopsis"),
    ("faceprint eval pairs PAIRS.csv [--root DIR]", "synopsis"),
    ("faceprint enroll \"Ada Lovelace\" ada1.jpg --metadata '{\"group\": \"staff\"}'", None),
    ("faceprint --gallery people.db serve [--port 8000]", "long-running or machine-wide"),
    ("faceprint --gallery people.db watch 0 --every 3", "your own camera"),
    ("faceprint liveness 0", "your own camera"),
    ("faceprint --gallery people.db watch rtsp://cam.local/stream --out seen.webm", "your own servers"),
    ("faceprint models install            # every pack", "long-running or machine-wide"),
    ("faceprint embed photo.jpg --model-file arcface_r100.onnx", "your own files"),
    ("faceprint --gallery postgresql://faceprint@db.example.org/faceprint gallery init", "your own servers"),
    ("faceprint enroll --folders people/ --dask tcp://scheduler:8786", "your own servers"),
    ("faceprint --gallery photos.db people name '#3' \"Ada Lovelace\"", "example ids"),
    ("FACEPRINT_MODELS_DIR=~/models faceprint models   # register", ("FACEPRINT_MODELS_DIR=~/models faceprint models", None)),
    ("make demo", "not a faceprint command"),
])
def test_shell_line_rules(line, expected):
    command, why = shell_line_rule(line)
    if isinstance(expected, tuple):
        assert (command, why) == expected
    else:
        assert why == expected


# --- claims in the prose ----------------------------------------------------------------------
def test_detect_and_embed_json_name_their_models():
    """README, "Batch processing": the document is ``{"model": ..., "models": {...}, "results": [``."""
    from tests.conftest import default_model_id

    for command in ("detect", "embed"):
        proc = subprocess.run([sys.executable, "-c", "import faceprint.cli; faceprint.cli.main()", command,
                               str(FACES / "collins.jpg"), "--json"], capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr

        doc = json.loads(proc.stdout)
        assert doc["model"] == default_model_id() == doc["models"]["embedder"], command
        assert set(doc["models"]) == {"detector", "landmarks", "embedder"} and len(doc["results"]) == 1


def test_bald_guys_claim_faceprint_cluster_forms_nobody_from_one_collage(tmp_path):
    """README, "People from photos": `faceprint cluster bald_guys.jpg` forms nobody (two faces of
    one photo are never one person); `cluster()` without photo ids finds its 4 people
    (tests/integration/clustering/test_algorithms_real.py)."""
    from tests.conftest import shared

    photo = shared("dlib_examples", "images", "bald_guys.jpg")
    proc = subprocess.run([sys.executable, "-c", "import faceprint.cli; faceprint.cli.main()", "--gallery",
                           str(tmp_path / "g.db"), "cluster", str(photo), "--json"], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["faces_added"] == 24 and doc["new_people"] == 0 and doc["people"] == [], doc
    assert len(doc["unsorted"]) == 24
