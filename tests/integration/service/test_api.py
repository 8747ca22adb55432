"""The HTTP API in this process (FastAPI's TestClient): auth, scopes, keys, recognition, subjects,
the error envelope and the limits. The real-socket side is in test_server.py."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator

import numpy as np
import pytest

from faceprint.models.defaults import default_models
from tests.conftest import default_dim, default_model_id, face_image
from tests.integration.service.conftest import InProcess, b64, envelope, mirrored, png, store_key

COLLINS, COLLINS_2 = face_image("collins.jpg"), face_image("collins_2.jpg")
HOPPER, HOPPER_2 = face_image("hopper.jpg"), face_image("hopper_2.jpg")
TWO, NO_FACE = face_image("two_people.jpg"), face_image("no_face.png")


# --- models ------------------------------------------------------------------------------------
def test_models_lists_cards_and_the_gallery_model(app):
    doc = app.call("GET", "/v1/models", key=app.keys.manage).json()
    names = {m["name"] for m in doc["models"]}
    assert {"hog", "dlib5", "dlib-resnet34"} <= names
    assert doc["gallery_model"] == doc["embedder"] == default_model_id()
    assert doc["detector"] == default_models().detector


def test_health_and_request_ids(app):
    r = app.call("GET", "/v1/health")
    assert r.status == 200 and r.json() == {"status": "ok", "version": r.json()["version"], "model": default_model_id()}
    assert r.header("x-request-id") and r.header("cache-control") == "no-store"
    assert app.call("GET", "/v1/health", headers={"X-Request-ID": "trace-42"}).header("x-request-id") == "trace-42"
    odd = app.call("GET", "/v1/health", headers={"X-Request-ID": "bad id\twith spaces"})
    assert odd.header("x-request-id") and odd.header("x-request-id") != "bad id\twith spaces"


# --- auth --------------------------------------------------------------------------------------
def test_401_without_a_valid_key(app):
    for headers in ({}, {"Authorization": "Bearer fp_00000000_" + "x" * 43}, {"X-API-Key": "nonsense"},
                    {"Authorization": "Basic dXNlcjpwYXNz"}):
        r = app.call("GET", "/v1/models", headers=headers)
        envelope(r, 401, "unauthorized")
        assert r.header("www-authenticate") == "Bearer"
    # a real key with one character changed
    k = app.keys.recognize
    envelope(app.call("GET", "/v1/models", key=k[:-1] + ("A" if k[-1] != "A" else "B")), 401, "unauthorized")
    envelope(app.call("POST", "/v1/detect", form={"image": COLLINS}), 401, "unauthorized")


def test_x_api_key_header_is_accepted(app):
    assert app.call("GET", "/v1/models", headers={"X-API-Key": app.keys.recognize}).status == 200


def test_403_with_the_wrong_scope(app):
    doc = envelope(app.call("GET", "/v1/subjects", key=app.keys.recognize), 403, "forbidden")
    assert doc["error"]["details"]["needed"] == "manage"
    envelope(app.call("POST", "/v1/detect", key=app.keys.manage, form={"image": COLLINS}), 403, "forbidden")
    envelope(app.call("GET", "/v1/keys", key=app.keys.both), 403, "forbidden")
    # admin implies the others
    assert app.call("GET", "/v1/subjects", key=app.keys.admin).status == 200


def test_keys_endpoints_and_revocation(app):
    r = app.call("POST", "/v1/keys", key=app.keys.admin, json_body={"scopes": ["recognize"], "name": "temp"})
    assert r.status == 201
    created = r.json()
    assert created["key"].startswith("fp_") and created["scopes"] == ["recognize"] and not created["revoked"]
    assert app.call("GET", "/v1/models", key=created["key"]).status == 200
    listed = app.call("GET", "/v1/keys", key=app.keys.admin).json()["keys"]
    assert created["key_id"] in {k["key_id"] for k in listed}
    assert all("key" not in k for k in listed)  # never shown again
    revoked = app.call("DELETE", f"/v1/keys/{created['key_id']}", key=app.keys.admin)
    assert revoked.status == 200 and revoked.json()["revoked"] is True
    envelope(app.call("GET", "/v1/models", key=created["key"]), 401, "unauthorized")
    envelope(app.call("DELETE", "/v1/keys/ffffffff", key=app.keys.admin), 404, "key_not_found")
    envelope(app.call("POST", "/v1/keys", key=app.keys.admin, json_body={"scopes": ["root"]}), 422, "invalid_argument")


# --- recognition -------------------------------------------------------------------------------
def test_detect_multipart_and_base64_agree(app):
    r = app.call("POST", "/v1/detect", key=app.keys.recognize, form={"image": COLLINS})
    assert r.status == 200, r.body
    doc = r.json()
    w, h = doc["image_size"]
    (face,) = doc["faces"]
    x1, y1, x2, y2 = face["box"]
    assert 0 <= x1 < x2 <= w and 0 <= y1 < y2 <= h
    assert len(face["landmarks"]) == 5 and face["landmark_scheme"] in ("dlib5", "arcface5") and set(face["pose"]) == {"yaw", "pitch", "roll"}
    as_json = app.call("POST", "/v1/detect", key=app.keys.recognize, json_body={"image": b64(COLLINS)})
    assert as_json.status == 200 and as_json.json() == doc
    data_url = "data:image/jpeg;base64," + b64(COLLINS)
    assert app.call("POST", "/v1/detect", key=app.keys.recognize, json_body={"image": data_url}).json() == doc
    # a base64 image in a form's text field is accepted too
    assert app.call("POST", "/v1/detect", key=app.keys.recognize, form={"image": b64(COLLINS)}).json() == doc


def test_detect_without_a_face_is_an_empty_list(app):
    r = app.call("POST", "/v1/detect", key=app.keys.recognize, form={"image": ("grey.png", png(200, 150))})
    assert r.status == 200 and r.json() == {"image_size": [200, 150], "faces": []}
    assert app.call("POST", "/v1/detect", key=app.keys.recognize, form={"image": NO_FACE}).json()["faces"] == []


def test_detect_finds_both_people(app):
    doc = app.call("POST", "/v1/detect", key=app.keys.recognize, form={"image": TWO}).json()
    assert len(doc["faces"]) == 2


def test_embed_gives_unit_vectors(app):
    doc = app.call("POST", "/v1/embed", key=app.keys.recognize, form={"image": HOPPER}).json()
    assert doc["model"] == default_model_id()
    (face,) = doc["faces"]
    vec = np.array(face["embedding"])
    assert vec.shape == (default_dim(),) and abs(np.linalg.norm(vec) - 1.0) < 1e-4


def test_verify_a_known_pair_matches_and_a_stranger_does_not(app):
    k = app.keys.recognize
    same = app.call("POST", "/v1/verify", key=k, form={"image_a": COLLINS, "image_b": COLLINS_2})
    assert same.status == 200, same.body
    doc = same.json()
    assert {"similarity", "threshold", "far", "match", "model"} <= set(doc)
    assert doc["match"] is True and doc["similarity"] >= doc["threshold"] and doc["far"] == 0.001
    assert [f["path"] for f in doc["faces"]] == ["collins.jpg", "collins_2.jpg"]
    other = app.call("POST", "/v1/verify", key=k, form={"image_a": COLLINS, "image_b": HOPPER}).json()
    assert other["match"] is False and other["similarity"] < other["threshold"]
    # base64 JSON and an explicit far
    loose = app.call("POST", "/v1/verify", key=k,
                     json_body={"image_a": b64(COLLINS), "image_b": b64(COLLINS_2), "far": 0.01}).json()
    assert loose["far"] == 0.01 and loose["threshold"] < doc["threshold"]
    assert abs(loose["similarity"] - doc["similarity"]) < 1e-6
    user = app.call("POST", "/v1/verify", key=k,
                    form={"image_a": COLLINS, "image_b": COLLINS_2, "threshold": "0.9999"}).json()
    assert user["match"] is False and user["threshold_source"] == "user"


def test_verify_errors(app):
    k = app.keys.recognize
    envelope(app.call("POST", "/v1/verify", key=k, form={"image_a": COLLINS}), 422, "invalid_argument")
    envelope(app.call("POST", "/v1/verify", key=k, form={"image_a": COLLINS, "image_b": HOPPER, "subject_id": "1"}),
             422, "invalid_argument")
    envelope(app.call("POST", "/v1/verify", key=k, form={"image_a": NO_FACE, "image_b": COLLINS}), 422, "no_face")
    envelope(app.call("POST", "/v1/verify", key=k, form={"image_a": COLLINS, "image_b": COLLINS_2, "far": "2"}),
             422, "invalid_argument")
    envelope(app.call("POST", "/v1/verify", key=k, form={"image_a": COLLINS, "image_b": [COLLINS_2, HOPPER]}),
             422, "invalid_argument")
    envelope(app.call("POST", "/v1/verify", key=k, form={"image_a": COLLINS, "subject_id": "999999"}),
             404, "subject_not_found")


def test_invalid_inputs_answer_with_the_envelope(app):
    k = app.keys.recognize
    envelope(app.call("POST", "/v1/detect", key=k, form={"image": ("notes.txt", b"not a picture")}), 422, "invalid_image")
    envelope(app.call("POST", "/v1/detect", key=k, json_body={"image": "***"}), 422, "invalid_image")
    envelope(app.call("POST", "/v1/detect", key=k, json_body={"image": 12}), 422, "invalid_argument")
    envelope(app.call("POST", "/v1/detect", key=k, json_body={"picture": "abc"}), 422, "invalid_argument")
    envelope(app.call("POST", "/v1/detect", key=k, json_body=["image"]), 422, "invalid_argument")
    envelope(app.call("POST", "/v1/detect", key=k, data=b"{not json", headers={"Content-Type": "application/json"}),
             422, "invalid_argument")
    envelope(app.call("POST", "/v1/detect", key=k, data=b"x=1", headers={"Content-Type": "text/plain"}),
             415, "unsupported_media_type")
    envelope(app.call("POST", "/v1/detect", key=k, form={"image": ("a.jpg", b"\xff\xd8\xff\xe0" + b"\0" * 100)}),
             422, "invalid_image")
    envelope(app.call("POST", "/v1/detect", key=k, form={"image": COLLINS, "other": HOPPER}), 422, "invalid_argument")
    envelope(app.call("POST", "/v1/detect", key=k, form={"nothing": "here"}), 422, "invalid_argument")
    envelope(app.call("GET", "/v1/nowhere", key=k), 404, "not_found")
    envelope(app.call("PUT", "/v1/health"), 405, "method_not_allowed")
    envelope(app.call("POST", "/v1/identify", key=k, form={"image": COLLINS, "top_k": "0"}), 422, "invalid_argument")
    envelope(app.call("POST", "/v1/identify", key=k, form={"image": COLLINS, "top_k": "101"}), 422, "invalid_argument")
    envelope(app.call("POST", "/v1/identify", key=k, form={"image": COLLINS, "where": "[1"}), 422, "invalid_argument")
    envelope(app.call("GET", "/v1/subjects?limit=0", key=app.keys.manage), 422, "invalid_argument")
    envelope(app.call("GET", "/v1/subjects/abc", key=app.keys.manage), 422, "invalid_argument")


# --- subjects, enrolment, identify, forget ------------------------------------------------------
def test_subject_lifecycle_and_forget_is_final(app):
    m, r = app.keys.manage, app.keys.recognize
    probe = mirrored(COLLINS)  # a third image of her, never enrolled
    created = app.call("POST", "/v1/subjects", key=m,
                       json_body={"name": "Eileen Collins", "metadata": {"group": "astronauts"}})
    assert created.status == 201, created.body
    subject = created.json()
    sid = subject["id"]
    assert subject["name"] == "Eileen Collins" and subject["face_count"] == 0
    assert subject["metadata"] == {"group": "astronauts"} and subject["thumbnail_face_id"] is None
    envelope(app.call("POST", "/v1/subjects", key=m, json_body={"name": "Eileen Collins"}), 409, "subject_exists")
    envelope(app.call("POST", "/v1/subjects", key=m, json_body={"name": ""}), 422, "invalid_argument")

    # enrol: partial success with a reason per rejected image
    report = app.call("POST", f"/v1/subjects/{sid}/faces", key=m,
                      form={"images": [COLLINS, COLLINS_2, TWO, ("readme.txt", b"hello")]})
    assert report.status == 200, report.body
    doc = report.json()
    assert [e["path"] for e in doc["enrolled"]] == ["collins.jpg", "collins_2.jpg"]
    assert {x["path"]: x["reason"]["code"] for x in doc["rejected"]} == {
        "two_people.jpg": "multiple_faces", "readme.txt": "invalid_image"}
    assert doc["subject"]["face_count"] == 2
    face_ids = [e["face_id"] for e in doc["enrolled"]]
    again = app.call("POST", f"/v1/subjects/{sid}/faces", key=m, json_body={"images": [b64(COLLINS)]}).json()
    assert again["enrolled"] == [] and again["rejected"][0]["reason"]["code"] == "duplicate_image"
    envelope(app.call("POST", "/v1/subjects/999999/faces", key=m, form={"images": [HOPPER]}), 404, "subject_not_found")
    envelope(app.call("POST", f"/v1/subjects/{sid}/faces", key=m, json_body={"images": []}), 422, "invalid_argument")

    # read back
    detail = app.call("GET", f"/v1/subjects/{sid}", key=m).json()
    assert [f["face_id"] for f in detail["faces"]] == face_ids
    # no face picture kept unless the service was started with --keep-thumbnails (test_thumbnails.py)
    assert detail["thumbnail_face_id"] is None and not any(f["has_thumbnail"] for f in detail["faces"])
    none = envelope(app.call("GET", f"/v1/subjects/{sid}/faces/{face_ids[0]}/thumbnail", key=m), 404, "template_not_found")
    assert none["error"]["details"]["reason"] == "no_thumbnail" and "--keep-thumbnails" in none["error"]["message"]

    # identify: the probe is recognised, with candidates and the threshold's FAR
    ident = app.call("POST", "/v1/identify", key=r, form={"image": probe, "top_k": "3"}).json()
    (face,) = ident["faces"]
    assert face["identity"] == "Eileen Collins" and face["subject_id"] == sid
    assert face["similarity"] >= face["threshold"] and face["far"] == 0.001 and face["candidates"][0]["subject_id"] == sid
    filtered = app.call("POST", "/v1/identify", key=r,
                        json_body={"image": base64.b64encode(probe[1]).decode(), "where": {"group": "admirals"}}).json()
    assert filtered["faces"][0]["identity"] is None and filtered["faces"][0]["candidates"] == []
    kept = app.call("POST", "/v1/identify", key=r,
                    form={"image": probe, "where": json.dumps({"group": "astronauts"})}).json()
    assert kept["faces"][0]["identity"] == "Eileen Collins"
    two = app.call("POST", "/v1/identify", key=r, form={"image": TWO}).json()
    assert len(two["faces"]) == 2 and [f["identity"] for f in two["faces"]].count("Eileen Collins") == 1

    # verify an image against the enrolled subject
    v = app.call("POST", "/v1/verify", key=r, form={"image_a": probe, "subject_id": str(sid)}).json()
    assert v["match"] is True and v["subject"] == {"id": sid, "name": "Eileen Collins"} and v["subject_face_id"] in face_ids
    v2 = app.call("POST", "/v1/verify", key=r, json_body={"image_a": b64(HOPPER), "subject_id": sid}).json()
    assert v2["match"] is False

    # rename and metadata
    patched = app.call("PATCH", f"/v1/subjects/{sid}", key=m,
                       json_body={"name": "Collins", "metadata": {"group": "astronauts", "missions": 4}})
    assert patched.status == 200 and patched.json()["name"] == "Collins" and patched.json()["metadata"]["missions"] == 4
    assert app.call("POST", "/v1/identify", key=r, form={"image": probe}).json()["faces"][0]["identity"] == "Collins"
    other = app.call("POST", "/v1/subjects", key=m, json_body={"name": "Somebody Else"}).json()
    envelope(app.call("PATCH", f"/v1/subjects/{sid}", key=m, json_body={"name": "Somebody Else"}), 409, "subject_exists")
    envelope(app.call("PATCH", "/v1/subjects/999999", key=m, json_body={"name": "X"}), 404, "subject_not_found")

    # delete one face (and not through another subject)
    envelope(app.call("DELETE", f"/v1/subjects/{other['id']}/faces/{face_ids[1]}", key=m), 404, "template_not_found")
    envelope(app.call("GET", f"/v1/subjects/{other['id']}/faces/{face_ids[1]}/thumbnail", key=m), 404, "template_not_found")
    gone = app.call("DELETE", f"/v1/subjects/{sid}/faces/{face_ids[1]}", key=m)
    assert gone.status == 200 and gone.json() == {"deleted_face": face_ids[1], "subject_id": sid}
    assert app.call("GET", f"/v1/subjects/{sid}", key=m).json()["face_count"] == 1
    envelope(app.call("DELETE", f"/v1/subjects/{sid}/faces/{face_ids[1]}", key=m), 404, "template_not_found")

    # forget: never returned again
    forgotten = app.call("DELETE", f"/v1/subjects/{sid}", key=m)
    assert forgotten.status == 200 and forgotten.json() == {"forgotten": sid, "name": "Collins", "faces_removed": 1}
    for image in (COLLINS, COLLINS_2, probe, TWO):
        for f in app.call("POST", "/v1/identify", key=r, form={"image": image, "top_k": "100"}).json()["faces"]:
            assert f["identity"] != "Collins" and f["subject_id"] != sid
            assert sid not in {c["subject_id"] for c in f["candidates"]}
    envelope(app.call("GET", f"/v1/subjects/{sid}", key=m), 404, "subject_not_found")
    envelope(app.call("DELETE", f"/v1/subjects/{sid}", key=m), 404, "subject_not_found")
    envelope(app.call("GET", f"/v1/subjects/{sid}/faces/{face_ids[0]}/thumbnail", key=m), 404, "subject_not_found")
    envelope(app.call("POST", "/v1/verify", key=r, form={"image_a": probe, "subject_id": str(sid)}),
             404, "subject_not_found")
    assert app.call("DELETE", f"/v1/subjects/{other['id']}", key=m).status == 200


def test_subjects_are_paginated_and_found_by_name(app):
    m = app.keys.manage
    names = [f"Page Person {i:02d}" for i in range(5)]
    for n in names:
        assert app.call("POST", "/v1/subjects", key=m, json_body={"name": n}).status == 201
    seen: list[str] = []
    offset = 0
    while True:
        page = app.call("GET", f"/v1/subjects?limit=2&offset={offset}", key=m).json()
        assert page["limit"] == 2 and page["offset"] == offset and len(page["subjects"]) <= 2
        if not page["subjects"]:
            break
        seen += [s["name"] for s in page["subjects"]]
        offset += 2
    assert [s for s in seen if s.startswith("Page Person")] == names and len(seen) == page["total"]
    found = app.call("GET", "/v1/subjects?name=Page%20Person%2003", key=m).json()
    assert [s["name"] for s in found["subjects"]] == ["Page Person 03"] and found["total"] == 1
    assert app.call("GET", "/v1/subjects?name=Nobody", key=m).json()["subjects"] == []
    for s in app.call("GET", "/v1/subjects?limit=500", key=m).json()["subjects"]:
        if s["name"].startswith("Page Person"):
            assert app.call("DELETE", f"/v1/subjects/{s['id']}", key=m).status == 200


def test_cors_is_off_by_default(app):
    r = app.call("GET", "/v1/health", headers={"Origin": "https://evil.example"})
    assert r.status == 200 and r.header("access-control-allow-origin") is None
    pre = app.call("OPTIONS", "/v1/detect", headers={"Origin": "https://evil.example",
                                                     "Access-Control-Request-Method": "POST"})
    assert pre.header("access-control-allow-origin") is None


def test_the_page_static_files_and_docs(app):
    page = app.call("GET", "/")
    assert page.status == 200 and page.header("x-request-id") and b"<html" in page.body
    assert "default-src 'self'" in page.header("content-security-policy")
    for asset in ("/static/app.js", "/static/style.css"):
        assert app.call("GET", asset).status == 200
    docs = app.call("GET", "/docs")
    assert docs.status == 200 and b"openapi.json" in docs.body


# --- limits (an app of its own, with small limits) -----------------------------------------------
@pytest.fixture(scope="module")
def tight(tmp_path_factory) -> Iterator[InProcess]:
    from faceprint.service import Settings

    gallery = tmp_path_factory.mktemp("tight") / "gallery.db"
    keys = [store_key(gallery, "recognize", "manage", name=f"k{i}") for i in range(3)]
    mib = 1024 * 1024
    service = InProcess(Settings(gallery=gallery, max_request_bytes=2 * mib, max_image_bytes=mib, max_pixels=1_100_000,
                                 max_faces=1, max_images=2, max_top_k=10, rate_limit=30))
    service.keys = keys  # type: ignore[attr-defined]
    yield service
    service.close()


def test_413_for_an_image_over_the_byte_or_pixel_limit(tight):
    k = tight.keys[0]
    noisy = png(700, 700, noise=True)  # ~1.4 MB: under the request limit, over the image limit
    assert 1024 * 1024 < len(noisy) < 2 * 1024 * 1024 - 1000
    envelope(tight.call("POST", "/v1/detect", key=k, form={"image": ("noise.png", noisy)}), 413, "image_too_large")
    envelope(tight.call("POST", "/v1/detect", key=k, json_body={"image": base64.b64encode(noisy[:1200000]).decode()}),
             413, "image_too_large")
    wide = png(1300, 1000)  # small file, 1.3 MP decoded
    doc = envelope(tight.call("POST", "/v1/detect", key=k, form={"image": ("wide.png", wide)}), 413, "image_too_large")
    assert doc["error"]["details"]["max_pixels"] == 1100000


def test_413_for_a_body_over_the_request_limit(tight):
    big = b"x" * (2 * 1024 * 1024 + 10)
    doc = envelope(tight.call("POST", "/v1/detect", key=tight.keys[0], data=big,
                              headers={"Content-Type": "multipart/form-data; boundary=zz"}), 413, "request_too_large")
    assert doc["error"]["details"]["max_request_bytes"] == 2 * 1024 * 1024


def test_422_for_too_many_faces_or_too_large_top_k_and_413_for_too_many_images(tight):
    k = tight.keys[0]
    doc = envelope(tight.call("POST", "/v1/identify", key=k, form={"image": TWO}), 422, "too_many_faces")
    assert doc["error"]["details"] == {"faces_found": 2, "max_faces": 1}
    assert tight.call("POST", "/v1/detect", key=k, form={"image": COLLINS}).status == 200
    envelope(tight.call("POST", "/v1/identify", key=k, form={"image": COLLINS, "top_k": "11"}), 422, "invalid_argument")
    sid = tight.call("POST", "/v1/subjects", key=k, json_body={"name": "Many"}).json()["id"]
    envelope(tight.call("POST", f"/v1/subjects/{sid}/faces", key=k, form={"images": [COLLINS, COLLINS_2, HOPPER]}),
             413, "too_many_images")
    doc = envelope(tight.call("POST", f"/v1/subjects/{sid}/faces", key=k,
                              json_body={"images": [b64(COLLINS), b64(COLLINS_2), b64(HOPPER)]}), 413, "too_many_images")
    assert doc["error"]["details"] == {"max_images": 2, "images": 3}


def test_429_per_key_rate_limit(tight):
    key, other = tight.keys[1], tight.keys[2]
    statuses = []
    for _ in range(200):
        r = tight.call("GET", "/v1/models", key=key)
        statuses.append(r.status)
        if r.status == 429:
            break
    assert statuses[-1] == 429 and statuses.count(200) >= 30  # the burst of 30 went through first
    doc = envelope(r, 429, "rate_limited")
    assert int(r.header("retry-after")) >= 1 and doc["error"]["details"]["retry_after"] >= 1
    assert tight.call("GET", "/v1/models", key=other).status == 200  # per key
    assert tight.call("GET", "/v1/health").status == 200  # no key, no limit
