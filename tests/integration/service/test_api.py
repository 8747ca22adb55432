"""The HTTP API against a real `faceprint serve` (uvicorn) on a loopback port."""

from __future__ import annotations

import base64
import io
import json
import socket
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from PIL import Image

from tests.integration.service.conftest import b64, call, cli, image, new_key


def envelope(resp, status: int, code: str) -> dict:
    assert resp.status == status, resp.body
    doc = resp.json()
    assert set(doc) == {"error", "request_id"}
    assert doc["error"]["code"] == code
    assert isinstance(doc["error"]["message"], str) and doc["error"]["message"]
    assert isinstance(doc["error"]["details"], dict)
    assert doc["request_id"] and resp.header("x-request-id") == doc["request_id"]
    assert b"Traceback" not in resp.body
    return doc


def png(width: int, height: int, noise: bool = False) -> bytes:
    rng = np.random.default_rng(0)
    arr = rng.integers(0, 256, (height, width, 3), dtype=np.uint8) if noise else np.full((height, width, 3), 128, np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


# --- health, models, request ids, access log ---------------------------------------------------
def test_health_needs_no_key_and_every_response_has_a_request_id(api):
    r = call("GET", api.url + "/v1/health")
    assert r.status == 200 and r.json() == {"status": "ok", "version": r.json()["version"], "model": "dlib-resnet34@v1"}
    assert r.header("x-request-id")
    mine = call("GET", api.url + "/v1/health", headers={"X-Request-ID": "trace-42"})
    assert mine.header("x-request-id") == "trace-42"
    odd = call("GET", api.url + "/v1/health", headers={"X-Request-ID": "bad id\twith spaces"})
    assert odd.header("x-request-id") and odd.header("x-request-id") != "bad id\twith spaces"
    page = call("GET", api.url + "/")
    assert page.status == 200 and page.header("x-request-id") and b"<html" in page.body
    assert "default-src 'self'" in page.header("content-security-policy")
    for asset in ("/static/app.js", "/static/style.css"):
        assert call("GET", api.url + asset).status == 200
    docs = call("GET", api.url + "/docs")
    assert docs.status == 200 and b"openapi.json" in docs.body


def test_access_log_has_one_json_line_per_request(api):
    r = call("GET", api.url + "/v1/models", key=api.keys.recognize, headers={"X-Request-ID": "log-check-1"})
    assert r.status == 200
    # The line is written once the response is sent: the client may see the answer first.
    deadline, found = time.monotonic() + 10, []
    while not found and time.monotonic() < deadline:
        lines = [json.loads(line) for line in api.log().splitlines() if line.startswith("{")]
        found = [e for e in lines if e["request_id"] == "log-check-1"]
        time.sleep(0 if found else 0.05)
    (entry,) = found
    assert entry["method"] == "GET" and entry["path"] == "/v1/models" and entry["status"] == 200
    assert entry["key_id"] == api.keys.recognize.split("_")[1]
    assert api.keys.recognize not in api.log()  # the key itself is never logged


def test_models_lists_cards_and_the_gallery_model(api):
    doc = call("GET", api.url + "/v1/models", key=api.keys.manage).json()
    names = {m["name"] for m in doc["models"]}
    assert {"hog", "dlib5", "dlib-resnet34"} <= names
    assert doc["gallery_model"] == doc["embedder"] == "dlib-resnet34@v1"


# --- auth --------------------------------------------------------------------------------------
def test_401_without_a_valid_key(api):
    for headers in ({}, {"Authorization": "Bearer fp_00000000_" + "x" * 43}, {"X-API-Key": "nonsense"},
                    {"Authorization": "Basic dXNlcjpwYXNz"}):
        r = call("GET", api.url + "/v1/models", headers=headers)
        envelope(r, 401, "unauthorized")
        assert r.header("www-authenticate") == "Bearer"
    # a real key with one character changed
    k = api.keys.recognize
    envelope(call("GET", api.url + "/v1/models", key=k[:-1] + ("A" if k[-1] != "A" else "B")), 401, "unauthorized")
    envelope(call("POST", api.url + "/v1/detect", form={"image": image("obama.jpg")}), 401, "unauthorized")


def test_x_api_key_header_is_accepted(api):
    r = call("GET", api.url + "/v1/models", headers={"X-API-Key": api.keys.recognize})
    assert r.status == 200


def test_403_with_the_wrong_scope(api):
    doc = envelope(call("GET", api.url + "/v1/subjects", key=api.keys.recognize), 403, "forbidden")
    assert doc["error"]["details"]["needed"] == "manage"
    envelope(call("POST", api.url + "/v1/detect", key=api.keys.manage, form={"image": image("obama.jpg")}), 403, "forbidden")
    envelope(call("GET", api.url + "/v1/keys", key=api.keys.both), 403, "forbidden")
    # admin implies the others
    assert call("GET", api.url + "/v1/subjects", key=api.keys.admin).status == 200


def test_keys_endpoints_and_revocation(api):
    r = call("POST", api.url + "/v1/keys", key=api.keys.admin, json_body={"scopes": ["recognize"], "name": "temp"})
    assert r.status == 201
    created = r.json()
    assert created["key"].startswith("fp_") and created["scopes"] == ["recognize"] and not created["revoked"]
    assert call("GET", api.url + "/v1/models", key=created["key"]).status == 200
    listed = call("GET", api.url + "/v1/keys", key=api.keys.admin).json()["keys"]
    assert created["key_id"] in {k["key_id"] for k in listed}
    assert all("key" not in k for k in listed)  # never shown again
    revoked = call("DELETE", api.url + f"/v1/keys/{created['key_id']}", key=api.keys.admin)
    assert revoked.status == 200 and revoked.json()["revoked"] is True
    envelope(call("GET", api.url + "/v1/models", key=created["key"]), 401, "unauthorized")
    envelope(call("DELETE", api.url + "/v1/keys/ffffffff", key=api.keys.admin), 404, "key_not_found")
    envelope(call("POST", api.url + "/v1/keys", key=api.keys.admin, json_body={"scopes": ["root"]}), 422, "invalid_argument")


def test_keys_cli_lists_and_revokes(api, tmp_path):
    gallery = tmp_path / "g.db"
    key = new_key(gallery, "manage", name="cli")
    key_id = key.split("_")[1]
    listed = json.loads(cli(gallery, "keys", "list", "--json").stdout)["keys"]
    assert [(k["key_id"], k["name"], k["scopes"]) for k in listed] == [(key_id, "cli", ["manage"])]
    import sqlite3

    with sqlite3.connect(gallery) as db:  # only the hash is stored
        (stored,) = db.execute("SELECT key_sha256 FROM api_keys").fetchone()
        dump = "\n".join(db.iterdump())
    assert key not in dump and len(stored) == 64
    proc = cli(gallery, "keys", "revoke", key_id, "--json")
    assert proc.returncode == 0 and json.loads(proc.stdout)["revoked"] is True
    bad = cli(gallery, "keys", "create", "--scope", "everything", "--json")
    assert bad.returncode == 1 and json.loads(bad.stdout)["error"]["code"] == "invalid_argument"


# --- recognition -------------------------------------------------------------------------------
def test_detect_multipart_and_base64_agree(api):
    r = call("POST", api.url + "/v1/detect", key=api.keys.recognize, form={"image": image("obama.jpg")})
    assert r.status == 200, r.body
    doc = r.json()
    w, h = doc["image_size"]
    (face,) = doc["faces"]
    x1, y1, x2, y2 = face["box"]
    assert 0 <= x1 < x2 <= w and 0 <= y1 < y2 <= h
    assert len(face["landmarks"]) == 5 and face["landmark_scheme"] == "dlib5" and set(face["pose"]) == {"yaw", "pitch", "roll"}
    as_json = call("POST", api.url + "/v1/detect", key=api.keys.recognize, json_body={"image": b64(image("obama.jpg"))})
    assert as_json.status == 200 and as_json.json() == doc
    data_url = "data:image/jpeg;base64," + b64(image("obama.jpg"))
    assert call("POST", api.url + "/v1/detect", key=api.keys.recognize, json_body={"image": data_url}).json() == doc


def test_detect_without_a_face_is_an_empty_list(api):
    r = call("POST", api.url + "/v1/detect", key=api.keys.recognize, form={"image": ("grey.png", png(200, 150))})
    assert r.status == 200 and r.json() == {"image_size": [200, 150], "faces": []}


def test_embed_gives_unit_vectors(api):
    doc = call("POST", api.url + "/v1/embed", key=api.keys.recognize, form={"image": image("obama2.jpg")}).json()
    assert doc["model"] == "dlib-resnet34@v1"
    (face,) = doc["faces"]
    vec = np.array(face["embedding"])
    assert vec.shape == (128,) and abs(np.linalg.norm(vec) - 1.0) < 1e-4


def test_verify_a_known_pair_matches_and_a_stranger_does_not(api):
    same = call("POST", api.url + "/v1/verify", key=api.keys.recognize,
                form={"image_a": image("obama.jpg"), "image_b": image("obama2.jpg")})
    assert same.status == 200, same.body
    doc = same.json()
    assert {"similarity", "threshold", "far", "match", "model"} <= set(doc)
    assert doc["match"] is True and doc["similarity"] >= doc["threshold"] and doc["far"] == 0.001
    assert [f["path"] for f in doc["faces"]] == ["obama.jpg", "obama2.jpg"]
    other = call("POST", api.url + "/v1/verify", key=api.keys.recognize,
                 form={"image_a": image("obama.jpg"), "image_b": image("biden.jpg")}).json()
    assert other["match"] is False and other["similarity"] < other["threshold"]
    # base64 JSON and an explicit far
    loose = call("POST", api.url + "/v1/verify", key=api.keys.recognize,
                 json_body={"image_a": b64(image("obama.jpg")), "image_b": b64(image("obama2.jpg")), "far": 0.01}).json()
    assert loose["far"] == 0.01 and loose["threshold"] < doc["threshold"]
    assert abs(loose["similarity"] - doc["similarity"]) < 1e-6
    user = call("POST", api.url + "/v1/verify", key=api.keys.recognize,
                form={"image_a": image("obama.jpg"), "image_b": image("obama2.jpg"), "threshold": "0.99"}).json()
    assert user["match"] is False and user["threshold_source"] == "user"


def test_verify_errors(api):
    url = api.url + "/v1/verify"
    k = api.keys.recognize
    envelope(call("POST", url, key=k, form={"image_a": image("obama.jpg")}), 422, "invalid_argument")
    envelope(call("POST", url, key=k, form={"image_a": ("grey.png", png(300, 300)), "image_b": image("obama.jpg")}),
             422, "no_face")
    envelope(call("POST", url, key=k, form={"image_a": image("obama.jpg"), "image_b": image("obama2.jpg"), "far": "2"}),
             422, "invalid_argument")
    envelope(call("POST", url, key=k, form={"image_a": image("obama.jpg"), "subject_id": "999999"}), 404, "subject_not_found")


def test_invalid_inputs_answer_with_the_envelope(api):
    k = api.keys.recognize
    url = api.url + "/v1/detect"
    envelope(call("POST", url, key=k, form={"image": ("notes.txt", b"not a picture")}), 422, "invalid_image")
    envelope(call("POST", url, key=k, json_body={"image": "***"}), 422, "invalid_image")
    envelope(call("POST", url, key=k, json_body={"picture": "abc"}), 422, "invalid_argument")
    envelope(call("POST", url, key=k, data=b"{not json", headers={"Content-Type": "application/json"}), 422, "invalid_argument")
    envelope(call("POST", url, key=k, data=b"x=1", headers={"Content-Type": "text/plain"}), 415, "unsupported_media_type")
    envelope(call("POST", url, key=k, form={"image": ("a.jpg", b"\xff\xd8\xff\xe0" + b"\0" * 100)}), 422, "invalid_image")
    envelope(call("GET", api.url + "/v1/nowhere", key=k), 404, "not_found")
    envelope(call("PUT", api.url + "/v1/health"), 405, "method_not_allowed")
    envelope(call("POST", api.url + "/v1/identify", key=k, form={"image": image("obama.jpg"), "top_k": "0"}),
             422, "invalid_argument")
    envelope(call("POST", api.url + "/v1/identify", key=k, form={"image": image("obama.jpg"), "top_k": "101"}),
             422, "invalid_argument")
    envelope(call("POST", api.url + "/v1/identify", key=k, form={"image": image("obama.jpg"), "where": "[1"}),
             422, "invalid_argument")
    envelope(call("GET", api.url + "/v1/subjects?limit=0", key=api.keys.manage), 422, "invalid_argument")


# --- subjects, enrolment, identify, forget ------------------------------------------------------
def test_subject_lifecycle_and_forget_is_final(api):
    m, r = api.keys.manage, api.keys.recognize
    created = call("POST", api.url + "/v1/subjects", key=m,
                   json_body={"name": "Barack Obama", "metadata": {"group": "presidents"}})
    assert created.status == 201, created.body
    subject = created.json()
    sid = subject["id"]
    assert subject["name"] == "Barack Obama" and subject["face_count"] == 0 and subject["metadata"] == {"group": "presidents"}
    envelope(call("POST", api.url + "/v1/subjects", key=m, json_body={"name": "Barack Obama"}), 409, "subject_exists")
    envelope(call("POST", api.url + "/v1/subjects", key=m, json_body={"name": ""}), 422, "invalid_argument")

    # enrol: partial success with a reason per rejected image
    report = call("POST", api.url + f"/v1/subjects/{sid}/faces", key=m, form={"images": [
        image("obama.jpg"), image("obama2.jpg"), image("two_people.jpg"), ("readme.txt", b"hello")]})
    assert report.status == 200, report.body
    doc = report.json()
    assert [e["path"] for e in doc["enrolled"]] == ["obama.jpg", "obama2.jpg"]
    assert {x["path"]: x["reason"]["code"] for x in doc["rejected"]} == {
        "two_people.jpg": "multiple_faces", "readme.txt": "invalid_image"}
    assert doc["subject"]["face_count"] == 2
    face_ids = [e["face_id"] for e in doc["enrolled"]]
    again = call("POST", api.url + f"/v1/subjects/{sid}/faces", key=m, json_body={"images": [b64(image("obama.jpg"))]}).json()
    assert again["enrolled"] == [] and again["rejected"][0]["reason"]["code"] == "duplicate_image"
    envelope(call("POST", api.url + "/v1/subjects/999999/faces", key=m, form={"images": [image("obama3.jpg")]}),
             404, "subject_not_found")

    # read back
    detail = call("GET", api.url + f"/v1/subjects/{sid}", key=m).json()
    assert [f["face_id"] for f in detail["faces"]] == face_ids and detail["thumbnail_face_id"] == face_ids[0]
    thumb = call("GET", api.url + f"/v1/subjects/{sid}/faces/{face_ids[0]}/thumbnail", key=m)
    assert thumb.status == 200 and thumb.header("content-type") == "image/jpeg" and thumb.body[:3] == b"\xff\xd8\xff"
    assert Image.open(io.BytesIO(thumb.body)).size[0] > 0

    # identify: the probe is recognised, with candidates and the threshold's FAR
    ident = call("POST", api.url + "/v1/identify", key=r, form={"image": image("obama3.jpg"), "top_k": "3"}).json()
    (face,) = ident["faces"]
    assert face["identity"] == "Barack Obama" and face["subject_id"] == sid
    assert face["similarity"] >= face["threshold"] and face["far"] == 0.001 and face["candidates"][0]["subject_id"] == sid
    filtered = call("POST", api.url + "/v1/identify", key=r,
                    json_body={"image": b64(image("obama3.jpg")), "where": {"group": "senators"}}).json()
    assert filtered["faces"][0]["identity"] is None and filtered["faces"][0]["candidates"] == []
    kept = call("POST", api.url + "/v1/identify", key=r,
                form={"image": image("obama3.jpg"), "where": json.dumps({"group": "presidents"})}).json()
    assert kept["faces"][0]["identity"] == "Barack Obama"
    two = call("POST", api.url + "/v1/identify", key=r, form={"image": image("two_people.jpg")}).json()
    assert len(two["faces"]) == 2 and [f["identity"] for f in two["faces"]].count("Barack Obama") == 1

    # verify an image against the enrolled subject
    v = call("POST", api.url + "/v1/verify", key=r, form={"image_a": image("obama3.jpg"), "subject_id": str(sid)}).json()
    assert v["match"] is True and v["subject"] == {"id": sid, "name": "Barack Obama"} and v["subject_face_id"] in face_ids
    v2 = call("POST", api.url + "/v1/verify", key=r, json_body={"image_a": b64(image("biden.jpg")), "subject_id": sid}).json()
    assert v2["match"] is False

    # rename and metadata
    patched = call("PATCH", api.url + f"/v1/subjects/{sid}", key=m,
                   json_body={"name": "Obama", "metadata": {"group": "presidents", "term": 44}})
    assert patched.status == 200 and patched.json()["name"] == "Obama" and patched.json()["metadata"]["term"] == 44
    assert call("POST", api.url + "/v1/identify", key=r, form={"image": image("obama3.jpg")}).json()["faces"][0]["identity"] == "Obama"

    # delete one face (and not through another subject)
    other = call("POST", api.url + "/v1/subjects", key=m, json_body={"name": "Somebody Else"}).json()
    envelope(call("DELETE", api.url + f"/v1/subjects/{other['id']}/faces/{face_ids[1]}", key=m), 404, "template_not_found")
    envelope(call("GET", api.url + f"/v1/subjects/{other['id']}/faces/{face_ids[1]}/thumbnail", key=m), 404, "template_not_found")
    gone = call("DELETE", api.url + f"/v1/subjects/{sid}/faces/{face_ids[1]}", key=m)
    assert gone.status == 200 and gone.json() == {"deleted_face": face_ids[1], "subject_id": sid}
    assert call("GET", api.url + f"/v1/subjects/{sid}", key=m).json()["face_count"] == 1

    # forget: never returned again
    forgotten = call("DELETE", api.url + f"/v1/subjects/{sid}", key=m)
    assert forgotten.status == 200 and forgotten.json() == {"forgotten": sid, "name": "Obama", "faces_removed": 1}
    for probe in ("obama.jpg", "obama2.jpg", "obama3.jpg", "two_people.jpg"):
        for f in call("POST", api.url + "/v1/identify", key=r, form={"image": image(probe), "top_k": "100"}).json()["faces"]:
            assert f["identity"] != "Obama" and f["subject_id"] != sid
            assert sid not in {c["subject_id"] for c in f["candidates"]}
    envelope(call("GET", api.url + f"/v1/subjects/{sid}", key=m), 404, "subject_not_found")
    envelope(call("DELETE", api.url + f"/v1/subjects/{sid}", key=m), 404, "subject_not_found")
    envelope(call("GET", api.url + f"/v1/subjects/{sid}/faces/{face_ids[0]}/thumbnail", key=m), 404, "subject_not_found")
    envelope(call("POST", api.url + "/v1/verify", key=r, form={"image_a": image("obama3.jpg"), "subject_id": str(sid)}),
             404, "subject_not_found")
    assert call("DELETE", api.url + f"/v1/subjects/{other['id']}", key=m).status == 200


def test_subjects_are_paginated_and_found_by_name(api):
    m = api.keys.manage
    names = [f"Page Person {i:02d}" for i in range(5)]
    for n in names:
        assert call("POST", api.url + "/v1/subjects", key=m, json_body={"name": n}).status == 201
    seen: list[str] = []
    offset = 0
    while True:
        page = call("GET", api.url + f"/v1/subjects?limit=2&offset={offset}", key=m).json()
        assert page["limit"] == 2 and page["offset"] == offset and len(page["subjects"]) <= 2
        if not page["subjects"]:
            break
        seen += [s["name"] for s in page["subjects"]]
        offset += 2
    assert [s for s in seen if s.startswith("Page Person")] == names and len(seen) == page["total"]
    found = call("GET", api.url + "/v1/subjects?name=Page%20Person%2003", key=m).json()
    assert [s["name"] for s in found["subjects"]] == ["Page Person 03"]
    assert call("GET", api.url + "/v1/subjects?name=Nobody", key=m).json()["subjects"] == []
    for s in call("GET", api.url + "/v1/subjects?limit=500", key=m).json()["subjects"]:
        if s["name"].startswith("Page Person"):
            assert call("DELETE", api.url + f"/v1/subjects/{s['id']}", key=m).status == 200


# --- concurrency -------------------------------------------------------------------------------
def test_a_slow_upload_does_not_block_other_requests(api):
    host, port = "127.0.0.1", api.port
    slow = socket.create_connection((host, port))
    try:
        body_start = b"--b\r\nContent-Disposition: form-data; name=\"image\"; filename=\"x.jpg\"\r\n\r\n"
        slow.sendall(
            f"POST /v1/detect HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {api.keys.recognize}\r\n"
            f"Content-Type: multipart/form-data; boundary=b\r\nContent-Length: 5000000\r\n\r\n".encode() + body_start
        )
        # the upload stalls; meanwhile others are served
        assert call("GET", api.url + "/v1/health", timeout=60).status == 200
        v = call("POST", api.url + "/v1/verify", key=api.keys.recognize, timeout=120,
                 form={"image_a": image("obama.jpg"), "image_b": image("obama2.jpg")})
        assert v.status == 200 and v.json()["match"] is True
    finally:
        slow.close()


def test_concurrent_requests_all_get_their_own_answers(api):
    pairs = [("obama.jpg", "obama2.jpg", True), ("obama.jpg", "biden.jpg", False), ("obama2.jpg", "obama3.jpg", True),
             ("biden.jpg", "obama3.jpg", False)] * 2

    def run(pair):
        a, b, expected = pair
        r = call("POST", api.url + "/v1/verify", key=api.keys.recognize, form={"image_a": image(a), "image_b": image(b)})
        return r.status, r.json().get("match"), expected, r.header("x-request-id")

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(run, pairs))
    assert all(status == 200 and match == expected for status, match, expected, _ in results)
    assert len({rid for *_, rid in results}) == len(results)


def test_cors_is_off_by_default(api):
    r = call("GET", api.url + "/v1/health", headers={"Origin": "https://evil.example"})
    assert r.status == 200 and r.header("access-control-allow-origin") is None
    pre = call("OPTIONS", api.url + "/v1/detect", headers={
        "Origin": "https://evil.example", "Access-Control-Request-Method": "POST"})
    assert pre.header("access-control-allow-origin") is None


# --- limits (a server of its own, with small limits) -----------------------------------------------
@pytest.fixture(scope="module")
def tight(tmp_path_factory):
    from tests.integration.service.conftest import Server

    image("obama.jpg")
    root = tmp_path_factory.mktemp("tight")
    gallery = root / "gallery.db"
    keys = [new_key(gallery, "recognize,manage", name=f"k{i}") for i in range(3)]
    server = Server(gallery, root / "server.log", "--max-request-mb", "2", "--max-image-mb", "1", "--max-pixels",
                    "1100000", "--max-faces", "1", "--max-images", "2", "--max-top-k", "10", "--rate-limit", "30",
                    serve_option=True)
    server.keys = keys  # type: ignore[attr-defined]
    yield server
    server.stop()


def test_413_for_a_request_over_the_limit(tight):
    """Refused from its Content-Length, before the body is read: only the headers are sent (a
    client still sending a body the server refused may see the connection closed under it)."""
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", tight.port, timeout=120)
    conn.putrequest("POST", "/v1/detect")
    for name, value in (("Authorization", f"Bearer {tight.keys[0]}"), ("Content-Length", str(2 * 1024 * 1024 + 10)),
                        ("Content-Type", "multipart/form-data; boundary=zz")):
        conn.putheader(name, value)
    conn.endheaders()
    resp = conn.getresponse()
    doc = json.loads(resp.read())
    conn.close()
    assert resp.status == 413 and doc["error"]["code"] == "request_too_large" and doc["request_id"]
    assert doc["error"]["details"]["max_request_bytes"] == 2 * 1024 * 1024


def test_413_while_streaming_a_body_without_a_length(tight):
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", tight.port, timeout=120)
    head = b'--zz\r\nContent-Disposition: form-data; name="image"; filename="big.png"\r\n\r\n'
    chunks = iter([head] + [b"\0" * 65536] * 48)  # 3 MiB, chunked: no Content-Length to refuse up front
    try:
        conn.request("POST", "/v1/detect", body=chunks, encode_chunked=True, headers={
            "Authorization": f"Bearer {tight.keys[0]}", "Content-Type": "multipart/form-data; boundary=zz"})
    except (BrokenPipeError, ConnectionResetError):
        pass  # the server may answer and close before the whole body is sent
    resp = conn.getresponse()
    body = resp.read()
    conn.close()
    assert resp.status == 413
    assert json.loads(body)["error"]["code"] == "request_too_large"


def test_413_for_an_image_over_the_byte_or_pixel_limit(tight):
    noisy = png(700, 700, noise=True)  # ~1.4 MB: under the request limit, over the image limit
    assert 1024 * 1024 < len(noisy) < 2 * 1024 * 1024 - 1000
    envelope(call("POST", tight.url + "/v1/detect", key=tight.keys[0], form={"image": ("noise.png", noisy)}),
             413, "image_too_large")
    envelope(call("POST", tight.url + "/v1/detect", key=tight.keys[0], json_body={"image": base64.b64encode(noisy[:1200000]).decode()}),
             413, "image_too_large")
    wide = png(1300, 1000)  # small file, 1.3 MP decoded
    doc = envelope(call("POST", tight.url + "/v1/detect", key=tight.keys[0], form={"image": ("wide.png", wide)}),
                   413, "image_too_large")
    assert doc["error"]["details"]["max_pixels"] == 1100000


def test_422_for_too_many_faces_or_too_large_top_k_and_413_for_too_many_images(tight):
    k = tight.keys[0]
    doc = envelope(call("POST", tight.url + "/v1/identify", key=k, form={"image": image("two_people.jpg")}),
                   422, "too_many_faces")
    assert doc["error"]["details"] == {"faces_found": 2, "max_faces": 1}
    assert call("POST", tight.url + "/v1/detect", key=k, form={"image": image("obama.jpg")}).status == 200
    envelope(call("POST", tight.url + "/v1/identify", key=k, form={"image": image("obama.jpg"), "top_k": "11"}),
             422, "invalid_argument")
    sid = call("POST", tight.url + "/v1/subjects", key=k, json_body={"name": "Many"}).json()["id"]
    envelope(call("POST", tight.url + f"/v1/subjects/{sid}/faces", key=k,
                  form={"images": [image("obama.jpg"), image("obama2.jpg"), image("obama3.jpg")]}), 413, "too_many_images")


def test_429_per_key_rate_limit(tight):
    key, other = tight.keys[1], tight.keys[2]
    statuses = []
    for _ in range(200):
        r = call("GET", tight.url + "/v1/models", key=key)
        statuses.append(r.status)
        if r.status == 429:
            break
    assert statuses[-1] == 429 and statuses.count(200) >= 30  # the burst of 30 went through first
    doc = envelope(r, 429, "rate_limited")
    assert int(r.header("retry-after")) >= 1 and doc["error"]["details"]["retry_after"] >= 1
    assert call("GET", tight.url + "/v1/models", key=other).status == 200  # per key
    assert call("GET", tight.url + "/v1/health").status == 200  # no key, no limit


# --- several worker processes share the gallery ----------------------------------------------------
@pytest.mark.slow
def test_two_worker_processes_share_one_gallery(tmp_path):
    from tests.integration.service.conftest import Server

    gallery = tmp_path / "gallery.db"
    key = new_key(gallery, "recognize,manage")
    server = Server(gallery, tmp_path / "server.log", "--workers", "2", "--threads", "1")
    try:
        sid = call("POST", server.url + "/v1/subjects", key=key, json_body={"name": "Obama"}).json()["id"]
        enrolled = call("POST", server.url + f"/v1/subjects/{sid}/faces", key=key, form={"images": [image("obama.jpg")]})
        assert len(enrolled.json()["enrolled"]) == 1

        def who() -> list:
            return [call("POST", server.url + "/v1/identify", key=key, form={"image": image("obama2.jpg")}).json()
                    ["faces"][0]["identity"] for _ in range(2)]

        with ThreadPoolExecutor(max_workers=3) as pool:
            before = [x for xs in pool.map(lambda _: who(), range(3)) for x in xs]
        assert before == ["Obama"] * 6
        assert call("DELETE", server.url + f"/v1/subjects/{sid}", key=key).status == 200
        with ThreadPoolExecutor(max_workers=3) as pool:
            after = [x for xs in pool.map(lambda _: who(), range(3)) for x in xs]
        assert after == [None] * 6
    finally:
        server.stop()


def test_serve_refuses_a_file_that_is_not_a_gallery(tmp_path):
    bad = tmp_path / "bad.db"
    bad.write_bytes(b"this is not sqlite" * 100)
    proc = cli(bad, "serve", "--port", "1")
    assert proc.returncode == 1 and "gallery_unavailable" in proc.stderr and "Traceback" not in proc.stderr


def test_threads_dont_leak_between_requests(api):
    # The same image at the same time from several threads: identical answers (no shared scratch state).
    def detect(_):
        return call("POST", api.url + "/v1/detect", key=api.keys.recognize, form={"image": image("two_people.jpg")}).json()

    with ThreadPoolExecutor(max_workers=4) as pool:
        docs = list(pool.map(detect, range(4)))
    assert all(d == docs[0] for d in docs) and len(docs[0]["faces"]) == 2
