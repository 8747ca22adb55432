"""A real `faceprint serve` (uvicorn) on a loopback port: start-up, the access log, the body limit
over a socket, slow and concurrent clients, several worker processes. The API itself is tested
in this process (test_api.py)."""

from __future__ import annotations

import http.client
import json
import socket
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.conftest import default_model_id, face_image
from tests.integration.service.conftest import Server, call, cli, new_key

COLLINS, COLLINS_2 = face_image("collins.jpg"), face_image("collins_2.jpg")
HOPPER, HOPPER_2 = face_image("hopper.jpg"), face_image("hopper_2.jpg")
TWO = face_image("two_people.jpg")


def test_the_server_answers_health_the_page_and_docs_with_request_ids(api):
    r = api.call("GET", "/v1/health")
    assert r.status == 200 and r.json()["status"] == "ok" and r.json()["model"] == default_model_id()
    assert r.header("x-request-id") and r.header("server") is None  # no server header
    assert api.call("GET", "/v1/health", headers={"X-Request-ID": "trace-42"}).header("x-request-id") == "trace-42"
    page = api.call("GET", "/")
    assert page.status == 200 and page.header("x-request-id") and b"<html" in page.body
    assert "default-src 'self'" in page.header("content-security-policy")
    for asset in ("/static/app.js", "/static/style.css"):
        assert api.call("GET", asset).status == 200
    docs = api.call("GET", "/docs")
    assert docs.status == 200 and b"openapi.json" in docs.body


def test_access_log_has_one_json_line_per_request(api):
    r = api.call("GET", "/v1/models", key=api.keys.recognize, headers={"X-Request-ID": "log-check-1"})
    assert r.status == 200
    # The line is written once the response is sent: the client may see the answer first.
    deadline, found = time.monotonic() + 10, []
    while not found and time.monotonic() < deadline:
        lines = [json.loads(line) for line in api.log().splitlines() if line.startswith("{")]
        found = [e for e in lines if e["request_id"] == "log-check-1"]
        time.sleep(0 if found else 0.05)
    (entry,) = found
    assert entry["method"] == "GET" and entry["path"] == "/v1/models" and entry["status"] == 200
    assert entry["key_id"] == api.keys.recognize.split("_")[1] and entry["bytes_out"] > 0
    assert api.keys.recognize not in api.log()  # the key itself is never logged


def test_keys_made_by_the_cli_work_and_are_scoped(api):
    assert api.call("GET", "/v1/models", headers={"X-API-Key": api.keys.recognize}).status == 200
    assert api.call("GET", "/v1/subjects", key=api.keys.recognize).status == 403
    assert api.call("GET", "/v1/keys", key=api.keys.admin).status == 200


def test_keys_cli_lists_and_revokes(tmp_path):
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
    assert bad.returncode == 2 and json.loads(bad.stdout)["error"]["code"] == "invalid_argument"  # a usage error


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
                 form={"image_a": COLLINS, "image_b": COLLINS_2})
        assert v.status == 200 and v.json()["match"] is True
    finally:
        slow.close()


def test_concurrent_requests_all_get_their_own_answers(api):
    pairs = [(COLLINS, COLLINS_2, True), (COLLINS, HOPPER, False), (HOPPER, HOPPER_2, True),
             (COLLINS_2, HOPPER_2, False)] * 2

    def run(pair: tuple[Path, Path, bool]) -> tuple[int, bool | None, bool, str | None]:
        a, b, expected = pair
        r = api.call("POST", "/v1/verify", key=api.keys.recognize, form={"image_a": a, "image_b": b})
        return r.status, r.json().get("match"), expected, r.header("x-request-id")

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(run, pairs))
    assert all(status == 200 and match == expected for status, match, expected, _ in results)
    assert len({rid for *_, rid in results}) == len(results)


def test_threads_dont_leak_between_requests(api):
    # The same image at the same time from several threads: identical answers (no shared scratch state).
    def detect(_: int) -> dict:
        return api.call("POST", "/v1/detect", key=api.keys.recognize, form={"image": TWO}).json()

    with ThreadPoolExecutor(max_workers=4) as pool:
        docs = list(pool.map(detect, range(4)))
    assert all(d == docs[0] for d in docs) and len(docs[0]["faces"]) == 2


# --- the body limit over a socket (a server of its own, with a small limit) ------------------------
@pytest.fixture(scope="module")
def tight(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("tight")
    gallery = root / "gallery.db"
    key = new_key(gallery, "recognize,manage", name="tight")
    server = Server(gallery, root / "server.log", "--max-request-mb", "2", "--max-image-mb", "1",
                    "--log-level", "warning", serve_option=True)
    server.key = key  # type: ignore[attr-defined]
    yield server
    server.stop()


def test_413_for_a_request_over_the_limit(tight):
    """Refused from its Content-Length, before the body is read: only the headers are sent (a
    client still sending a body the server refused may see the connection closed under it)."""
    conn = http.client.HTTPConnection("127.0.0.1", tight.port, timeout=120)
    conn.putrequest("POST", "/v1/detect")
    for name, value in (("Authorization", f"Bearer {tight.key}"), ("Content-Length", str(2 * 1024 * 1024 + 10)),
                        ("Content-Type", "multipart/form-data; boundary=zz")):
        conn.putheader(name, value)
    conn.endheaders()
    resp = conn.getresponse()
    doc = json.loads(resp.read())
    conn.close()
    assert resp.status == 413 and doc["error"]["code"] == "request_too_large" and doc["request_id"]
    assert doc["error"]["details"]["max_request_bytes"] == 2 * 1024 * 1024


def test_413_while_streaming_a_body_without_a_length(tight):
    conn = http.client.HTTPConnection("127.0.0.1", tight.port, timeout=120)
    head = b'--zz\r\nContent-Disposition: form-data; name="image"; filename="big.png"\r\n\r\n'
    chunks = iter([head] + [b"\0" * 65536] * 48)  # 3 MiB, chunked: no Content-Length to refuse up front
    try:
        conn.request("POST", "/v1/detect", body=chunks, encode_chunked=True, headers={
            "Authorization": f"Bearer {tight.key}", "Content-Type": "multipart/form-data; boundary=zz"})
    except (BrokenPipeError, ConnectionResetError):
        pass  # the server may answer and close before the whole body is sent
    resp = conn.getresponse()
    body = resp.read()
    conn.close()
    assert resp.status == 413
    assert json.loads(body)["error"]["code"] == "request_too_large"


def test_the_log_level_reaches_the_workers(tight, api):
    # --log-level warning: the worker's info-level access log is off (the main server's is on)
    for _ in range(3):
        assert tight.call("GET", "/v1/health").status == 200
    assert api.call("GET", "/v1/health").status == 200
    deadline = time.monotonic() + 10
    while '"path": "/v1/health"' not in api.log() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert '"path": "/v1/health"' in api.log()
    assert not [line for line in tight.log().splitlines() if line.startswith("{")]


# --- several worker processes share the gallery ----------------------------------------------------
@pytest.mark.slow
def test_two_worker_processes_share_one_gallery(tmp_path, gallery_location):
    # On PostgreSQL both processes search in the database; on SQLite each follows the change log.
    gallery = gallery_location
    key = new_key(gallery, "recognize,manage")
    server = Server(gallery, tmp_path / "server.log", "--workers", "2", "--threads", "1")
    try:
        sid = server.call("POST", "/v1/subjects", key=key, json_body={"name": "Collins"}).json()["id"]
        enrolled = server.call("POST", f"/v1/subjects/{sid}/faces", key=key, form={"images": [COLLINS]})
        assert len(enrolled.json()["enrolled"]) == 1

        def who() -> list:
            return [server.call("POST", "/v1/identify", key=key, form={"image": COLLINS_2}).json()
                    ["faces"][0]["identity"] for _ in range(2)]

        with ThreadPoolExecutor(max_workers=3) as pool:
            before = [x for xs in pool.map(lambda _: who(), range(3)) for x in xs]
        assert before == ["Collins"] * 6
        assert server.call("DELETE", f"/v1/subjects/{sid}", key=key).status == 200
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
