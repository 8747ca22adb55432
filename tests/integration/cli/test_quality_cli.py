"""`faceprint detect` / `faceprint embed` show each face's quality (JSON object, table column),
through a real subprocess on the shipped faces."""

from __future__ import annotations

from tests.conftest import face_image
from tests.integration.test_cli import faceprint, one_json

QUALITY_KEYS = {"score", "factors", "reasons", "measures"}


def test_detect_and_embed_json_give_each_face_its_quality():
    collins = str(face_image("collins.jpg"))
    detected = one_json(faceprint("detect", collins, "--json"))["results"][0]["faces"][0]["quality"]
    assert set(detected) == QUALITY_KEYS and 0.0 < detected["score"] <= 1.0 and detected["reasons"] == []
    assert {"size", "sharpness"} <= set(detected["factors"]) and "embedding_norm" not in detected["measures"]

    doc = one_json(faceprint("embed", collins, "--model", "dlib-resnet34", "--json"))
    embedded = doc["results"][0]["faces"][0]["quality"]
    assert set(embedded) == QUALITY_KEYS and 0.0 < embedded["score"] <= 1.0
    assert "embedding_norm" not in embedded["factors"]  # dlib's norm is not informative


def test_the_tables_have_a_quality_column():
    proc = faceprint("detect", str(face_image("hopper.jpg")), columns=200)
    assert proc.returncode == 0, proc.stderr
    assert "quality" in proc.stdout
