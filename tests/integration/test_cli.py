"""The CLI through a real subprocess: exit codes and the JSON shapes of the contract.

Faces come from the public-domain images shipped in tests/data/faces: no ../shared needed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import default_dim, default_model_id, face_image


def faceprint(*args: str, columns: int | None = None) -> subprocess.CompletedProcess:
    exe = Path(sys.executable).with_name("faceprint")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "faceprint"]
    env = {**os.environ, "COLUMNS": str(columns)} if columns else None
    return subprocess.run([*cmd, *args], capture_output=True, text=True, timeout=600, env=env)


def one_json(proc: subprocess.CompletedProcess) -> dict:
    doc = json.loads(proc.stdout)  # exactly one document: json.loads rejects trailing data
    assert isinstance(doc, dict)
    return doc


def test_help_lists_the_commands():
    proc = faceprint("--help")
    assert proc.returncode == 0
    for cmd in ("detect", "embed", "verify", "models"):
        assert cmd in proc.stdout


def test_models_json_lists_cards_with_thresholds():
    proc = faceprint("models", "--json")
    assert proc.returncode == 0, proc.stderr
    cards = {m["name"]: m for m in one_json(proc)["models"]}
    resnet = cards["dlib-resnet34"]
    assert resnet["embedding_dim"] == 128 and resnet["kind"] == "embedder"
    assert set(resnet["calibration"]["thresholds"]) >= {"1e-2", "1e-3", "1e-4"}
    assert resnet["files"][0]["sha256"] and resnet["licence"]
    table = faceprint("models")
    assert table.returncode == 0 and "dlib-resnet34" in table.stdout


def test_detect_json_shape_and_a_bad_file_in_its_own_entry(tmp_path):
    collins = face_image("collins.jpg")
    bad = tmp_path / "broken.jpg"
    bad.write_text("this is not a picture")
    proc = faceprint("detect", str(collins), str(bad), "--json")
    assert proc.returncode == 1  # some file failed; every file still has its entry
    results = one_json(proc)["results"]
    assert [r["path"] for r in results] == [str(collins), str(bad)]
    good, broken = results
    assert good["error"] is None and len(good["faces"]) == 1
    face = good["faces"][0]
    assert len(face["box"]) == 4 and isinstance(face["score"], float)
    assert len(face["landmarks"]) == 5 and all(len(p) == 2 for p in face["landmarks"])
    assert set(face["pose"]) == {"yaw", "pitch", "roll"}
    assert broken["faces"] == [] and broken["error"]["code"] == "invalid_image" and broken["error"]["message"]


def test_detect_all_good_exits_zero_and_prints_a_table():
    path = face_image("collins.jpg")
    proc = faceprint("detect", str(path), columns=80)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()  # the folder above the table, the file's name in its row
    assert lines[0] == f"in {path.parent}/" and any(line.startswith("collins.jpg ") for line in lines)
    assert "Traceback" not in proc.stderr


def test_embed_json_has_unit_embeddings():
    proc = faceprint("embed", str(face_image("collins_2.jpg")), "--json")
    assert proc.returncode == 0, proc.stderr
    doc = one_json(proc)
    assert doc["model"] == default_model_id()
    (result,) = doc["results"]
    (face,) = result["faces"]
    vec = face["embedding"]
    assert len(vec) == default_dim() and abs(sum(v * v for v in vec) - 1.0) < 1e-4


def test_verify_json_same_and_different_person():
    a, b, c = (str(face_image(n)) for n in ("collins.jpg", "collins_2.jpg", "hopper.jpg"))
    same = one_json(faceprint("verify", a, b, "--json"))
    assert same["match"] is True and same["far"] == 1e-3 and same["model"] == default_model_id()
    assert same["similarity"] >= same["threshold"]
    assert len(same["faces"]) == 2 and same["faces"][0]["selection"] == "only"
    diff = faceprint("verify", a, c, "--far", "1e-2", "--json")
    assert diff.returncode == 0
    doc = one_json(diff)
    assert doc["match"] is False and doc["far"] == 1e-2
    user = one_json(faceprint("verify", a, b, "--threshold", "0.995", "--json"))  # they score ~0.989
    assert user["threshold"] == 0.995 and user["threshold_source"] == "user" and user["match"] is False


def test_verify_no_face_is_an_error_with_json_and_nonzero_exit():
    proc = faceprint("verify", str(face_image("collins.jpg")), str(face_image("no_face.png")), "--json")
    assert proc.returncode == 1
    assert one_json(proc)["error"]["code"] == "no_face"


def test_verify_bad_file_without_json_prints_one_line_no_traceback(tmp_path):
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    proc = faceprint("verify", str(empty), str(empty))
    assert proc.returncode == 1
    assert proc.stdout == "" and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and "invalid_image" in proc.stderr


@pytest.mark.parametrize(
    "args,code",
    [
        (["--far", "0.7"], "invalid_argument"),
        (["--far", "1e-3", "--threshold", "0.9"], "invalid_argument"),
        (["--model", "nope"], "unknown_model"),
        (["--detector", "nope"], "unknown_model"),
    ],
)
def test_verify_argument_errors_are_typed(tmp_path, args, code):
    img = tmp_path / "x.png"
    img.write_bytes(b"")
    proc = faceprint("verify", str(img), str(img), *args, "--json")
    assert proc.returncode == 2  # a usage error, found before the (unreadable) images are read
    assert one_json(proc)["error"]["code"] == code


def test_usage_error_exits_two():
    assert faceprint("verify", "only-one.jpg").returncode == 2
    assert faceprint("frobnicate").returncode == 2
