"""/v1/detect and /v1/embed give each face its quality (the service in this process)."""

from __future__ import annotations

from tests.conftest import face_image

QUALITY_KEYS = {"score", "factors", "reasons", "measures"}


def test_detect_and_embed_give_each_face_its_quality(app):
    image = face_image("collins.jpg")
    detected = app.call("POST", "/v1/detect", key=app.keys.recognize, form={"image": image})
    assert detected.status == 200, detected.body
    (face,) = detected.json()["faces"]
    assert set(face["quality"]) == QUALITY_KEYS and 0.0 < face["quality"]["score"] <= 1.0
    assert face["quality"]["reasons"] == [] and "embedding_norm" not in face["quality"]["factors"]

    r = app.call("POST", "/v1/embed", key=app.keys.recognize, form={"image": image})
    assert r.status == 200, r.body
    doc = r.json()
    (embedded,) = doc["faces"]
    quality = embedded["quality"]
    assert set(quality) == QUALITY_KEYS and 0.0 < quality["score"] <= 1.0
    # The norm is a factor only for a model whose norm was measured informative (fr-feature).
    assert ("embedding_norm" in quality["factors"]) == doc["model"].startswith("fr-feature@")
