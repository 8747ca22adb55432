"""A hostile or careless client gets a 4xx in the error envelope, never a 500, a stall or a
connection held open for ever (issue 13, "Service failures found"):

- NaN and Infinity in JSON, which Python's parser accepts and SQLite's JSON functions reject;
- integers over 64 bits in paths, queries, fields and filters;
- metadata filters of a thousand keys; JSON nested 100 000 levels deep;
- the key is checked before the body is read; invalid keys are rate-limited per address;
- ``/v1/verify`` has the max-faces check of the other recognition routes;
- a request head that never completes (slowloris) is cut off; uvicorn's own 400 is the envelope.

In this process (TestClient) over a gallery of its own, and over real sockets for what only a
socket shows.
"""

from __future__ import annotations

import base64
import json
import socket
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from faceprint.service.schemas import MAX_REQUEST_INT
from tests.conftest import face_image
from tests.integration.service.conftest import InProcess, Server, b64, envelope, mirrored, png, store_key

COLLINS, COLLINS_2 = face_image("collins.jpg"), face_image("collins_2.jpg")
HOPPER, TWO = face_image("hopper.jpg"), face_image("two_people.jpg")
BIG = 2**63  # one more than SQLite's largest integer
JSON = {"Content-Type": "application/json"}
#: This module's app refuses more invalid keys than this a minute from one address.
AUTH_FAILURES = 5


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcess]:
    """The app over a gallery of its own holding two enrolled subjects (so that searches reach
    the database's filter), with max_faces=1 and a low limit of invalid keys."""
    from faceprint.service import Settings

    gallery = tmp_path_factory.mktemp("hostile") / "gallery.db"
    key = store_key(gallery, "recognize,manage")
    app = InProcess(Settings(gallery=gallery, max_faces=1, auth_failure_limit=AUTH_FAILURES))
    app.key = key  # type: ignore[attr-defined]
    for name, image, metadata in (("Collins", COLLINS, {"team": "apollo"}), ("Hopper", HOPPER, {"team": "navy"})):
        sid = app.call("POST", "/v1/subjects", key=key, json_body={"name": name, "metadata": metadata}).json()["id"]
        enrolled = app.call("POST", f"/v1/subjects/{sid}/faces", key=key, form={"images": [image]}).json()
        assert len(enrolled["enrolled"]) == 1, enrolled
    yield app
    app.close()


def raw(app: InProcess, method: str, path: str, body: str | bytes, *, key: str | None = None,
        headers: dict[str, str] | None = None) -> object:
    data = body.encode() if isinstance(body, str) else body
    return app.call(method, path, key=key, data=data, headers={**JSON, **(headers or {})})


# --- 1. NaN and Infinity -------------------------------------------------------------------------
@pytest.mark.parametrize("number", ["NaN", "Infinity", "-Infinity", "1e999"])
def test_non_finite_numbers_are_refused_in_every_json_body(hostile, number):
    k = hostile.key
    doc = envelope(raw(hostile, "POST", "/v1/subjects", f'{{"name": "nan-{number}", "metadata": {{"x": {number}}}}}',
                       key=k), 422, "invalid_argument")
    assert doc["error"]["details"]["reason"] == "non_finite_number"
    sid = hostile.call("GET", "/v1/subjects?name=Collins", key=k).json()["subjects"][0]["id"]
    envelope(raw(hostile, "PATCH", f"/v1/subjects/{sid}", f'{{"metadata": {{"x": [1, {number}]}}}}', key=k),
             422, "invalid_argument")
    body = f'{{"image": "{b64(COLLINS_2)}", "where": {{"team": {number}}}}}'
    envelope(raw(hostile, "POST", "/v1/identify", body, key=k), 422, "invalid_argument")
    form = {"image": COLLINS_2, "where": f'{{"team": {number}}}'}
    envelope(hostile.call("POST", "/v1/identify", key=k, form=form), 422, "invalid_argument")
    envelope(raw(hostile, "POST", "/v1/verify", f'{{"image_a": "{b64(COLLINS)}", "image_b": "{b64(COLLINS_2)}", '
                                                f'"threshold": {number}}}', key=k), 422, "invalid_argument")
    # nothing was stored, and filtering still works for everyone
    assert hostile.call("GET", f"/v1/subjects?name=nan-{number}", key=k).json()["total"] == 0
    assert hostile.call("GET", f"/v1/subjects/{sid}", key=k).json()["metadata"] == {"team": "apollo"}
    found = hostile.call("POST", "/v1/identify", key=k, form={"image": COLLINS_2, "where": '{"team": "apollo"}'})
    assert found.status == 200 and found.json()["faces"][0]["identity"] == "Collins"


def test_a_gallery_already_holding_nan_metadata_keeps_filtering(hostile):
    """Metadata stored before these checks (written here straight into SQLite) that SQLite's
    JSON functions reject: its subject matches no filter; every other search still answers."""
    k = hostile.key
    hopper = hostile.call("GET", "/v1/subjects?name=Hopper", key=k).json()["subjects"][0]
    with sqlite3.connect(hostile.settings.gallery) as db:
        db.execute("UPDATE subjects SET metadata = ? WHERE id = ?", ('{"team": "navy", "x": NaN}', hopper["id"]))
    db.close()
    try:
        for where in ('{"team": "navy"}', '{"team": "apollo"}', '{"x": 1}'):
            r = hostile.call("POST", "/v1/identify", key=k, form={"image": HOPPER, "where": where})
            assert r.status == 200, r.body
            assert r.json()["faces"][0]["identity"] is None
        r = hostile.call("POST", "/v1/identify", key=k, form={"image": COLLINS_2, "where": '{"team": "apollo"}'})
        assert r.json()["faces"][0]["identity"] == "Collins"
        assert hostile.call("GET", f"/v1/subjects/{hopper['id']}", key=k).status == 200
    finally:
        assert hostile.call("PATCH", f"/v1/subjects/{hopper['id']}", key=k,
                            json_body={"metadata": {"team": "navy"}}).status == 200
    r = hostile.call("POST", "/v1/identify", key=k, form={"image": HOPPER, "where": '{"team": "navy"}'})
    assert r.json()["faces"][0]["identity"] == "Hopper"


# --- 2. integers over 64 bits -----------------------------------------------------------------------
@pytest.mark.parametrize(("method", "path"), [
    ("GET", f"/v1/subjects/{BIG}"),
    ("PATCH", f"/v1/subjects/{BIG}"),
    ("DELETE", f"/v1/subjects/{BIG}"),
    ("DELETE", f"/v1/subjects/1/faces/{BIG}"),
    ("DELETE", f"/v1/subjects/{BIG}/faces/1"),
    ("GET", f"/v1/subjects/1/faces/{BIG}/thumbnail"),
    ("GET", f"/v1/subjects?offset={BIG}"),
    ("GET", f"/v1/subjects?limit={BIG}"),
    ("GET", f"/v1/subjects/{-BIG - 1}"),
])
def test_ids_and_offsets_over_64_bits_are_invalid_arguments(hostile, method, path):
    body = {"name": "x"} if method == "PATCH" else None
    envelope(hostile.call(method, path, key=hostile.key, json_body=body), 422, "invalid_argument")


def test_the_largest_id_is_simply_not_found(hostile):
    """Ids and offsets go up to 2^53-1 (JSON's interoperable range); SQLite's largest integer
    is already refused."""
    envelope(hostile.call("GET", f"/v1/subjects/{MAX_REQUEST_INT}", key=hostile.key), 404, "subject_not_found")
    page = hostile.call("GET", f"/v1/subjects?offset={MAX_REQUEST_INT}", key=hostile.key)
    assert page.status == 200 and page.json()["subjects"] == []
    envelope(hostile.call("GET", f"/v1/subjects/{BIG - 1}", key=hostile.key), 422, "invalid_argument")


def test_subject_id_over_64_bits_in_verify(hostile):
    k = hostile.key
    envelope(hostile.call("POST", "/v1/verify", key=k, json_body={"image_a": b64(COLLINS), "subject_id": BIG}),
             422, "invalid_argument")
    envelope(hostile.call("POST", "/v1/verify", key=k, form={"image_a": COLLINS, "subject_id": str(BIG)}),
             422, "invalid_argument")


@pytest.mark.parametrize("value", [BIG, -BIG - 1, [1, BIG], {"a": BIG}])
def test_filter_values_over_64_bits_are_invalid_arguments(hostile, value):
    k = hostile.key
    envelope(hostile.call("POST", "/v1/identify", key=k, json_body={"image": b64(COLLINS_2), "where": {"x": value}}),
             422, "invalid_argument")
    envelope(hostile.call("POST", "/v1/identify", key=k,
                          form={"image": COLLINS_2, "where": json.dumps({"x": value})}), 422, "invalid_argument")


def test_a_subject_id_within_64_bits_still_verifies(hostile):
    sid = hostile.call("GET", "/v1/subjects?name=Collins", key=hostile.key).json()["subjects"][0]["id"]
    r = hostile.call("POST", "/v1/verify", key=hostile.key, form={"image_a": COLLINS_2, "subject_id": str(sid)})
    assert r.status == 200 and r.json()["match"] is True


# --- 3. filters of many keys; deep nesting -----------------------------------------------------------
def test_a_filter_of_999_keys_is_an_invalid_argument(hostile):
    where = {f"k{i}": i for i in range(999)}
    doc = envelope(hostile.call("POST", "/v1/identify", key=hostile.key,
                                json_body={"image": b64(COLLINS_2), "where": where}), 422, "invalid_argument")
    assert "32" in json.dumps(doc["error"])  # the documented maximum is named
    envelope(hostile.call("POST", "/v1/identify", key=hostile.key,
                          form={"image": COLLINS_2, "where": json.dumps(where)}), 422, "invalid_argument")
    within = {f"k{i}": i for i in range(32)}
    assert hostile.call("POST", "/v1/identify", key=hostile.key,
                        json_body={"image": b64(COLLINS_2), "where": within}).status == 200


DEEP = "[" * 100_000 + "]" * 100_000


@pytest.mark.parametrize("path", ["/v1/detect", "/v1/embed", "/v1/identify", "/v1/verify"])
def test_json_nested_100k_levels_is_an_invalid_argument(hostile, path):
    doc = envelope(raw(hostile, "POST", path, '{"image": ' + DEEP + "}", key=hostile.key), 422, "invalid_argument")
    assert doc["error"]["details"]["reason"] == "too_deep"
    envelope(raw(hostile, "POST", path, DEEP, key=hostile.key), 422, "invalid_argument")


def test_deep_json_in_form_fields_and_pydantic_bodies(hostile):
    k = hostile.key
    envelope(hostile.call("POST", "/v1/identify", key=k, form={"image": COLLINS_2, "where": '{"a": ' + DEEP + "}"}),
             422, "invalid_argument")
    envelope(raw(hostile, "POST", "/v1/subjects", '{"name": "deep", "metadata": {"a": ' + DEEP + "}}", key=k),
             422, "invalid_argument")
    fifty = "[" * 50 + "]" * 50  # parseable, but over the service's nesting limit
    envelope(raw(hostile, "POST", "/v1/subjects", '{"name": "deep", "metadata": {"a": ' + fifty + "}}", key=k),
             422, "invalid_argument")
    assert hostile.call("GET", "/v1/subjects?name=deep", key=k).json()["total"] == 0


def test_metadata_the_gallery_cannot_keep_is_refused(hostile):
    k = hostile.key
    for metadata in ({"a": BIG}, {"a": "x" * 70_000}, {"a": [[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]}):
        envelope(hostile.call("POST", "/v1/subjects", key=k, json_body={"name": "meta", "metadata": metadata}),
                 422, "invalid_argument")
    assert hostile.call("GET", "/v1/subjects?name=meta", key=k).json()["total"] == 0


# --- 5. the key before the body; 6. invalid keys rate-limited ----------------------------------------
def test_the_key_is_checked_before_the_body_is_parsed(hostile):
    for body in ("{not json", '{"image": ' + DEEP + "}", '{"name": "x", "metadata": {"x": NaN}}'):
        for path in ("/v1/detect", "/v1/identify", "/v1/subjects"):
            r = raw(hostile, "POST", path, body)
            envelope(r, 401, "unauthorized")
            assert r.header("www-authenticate") == "Bearer"
    envelope(hostile.call("POST", "/v1/keys", json_body={"scopes": ["admin"]}), 401, "unauthorized")
    assert hostile.call("GET", "/v1/health").status == 200  # needs no key


def test_invalid_keys_are_rate_limited_per_address(hostile):
    bad = {"Authorization": "Bearer fp_00000000_" + "x" * 43}
    statuses = [hostile.call("GET", "/v1/models", headers=bad).status for _ in range(AUTH_FAILURES)]
    assert statuses == [401] * AUTH_FAILURES
    r = hostile.call("POST", "/v1/detect", headers=bad, form={"image": COLLINS})
    doc = envelope(r, 429, "rate_limited")
    assert int(r.header("retry-after")) >= 1 and "address" in doc["error"]["message"]
    # a missing key is no guess, and a valid key from the same address still works
    envelope(hostile.call("GET", "/v1/models"), 401, "unauthorized")
    assert hostile.call("GET", "/v1/models", key=hostile.key).status == 200


# --- 7. max faces in verify -----------------------------------------------------------------------
def test_verify_refuses_images_over_max_faces(hostile):
    k = hostile.key
    doc = envelope(hostile.call("POST", "/v1/verify", key=k, form={"image_a": TWO, "image_b": COLLINS}),
                   422, "too_many_faces")
    assert doc["error"]["details"]["max_faces"] == 1
    envelope(hostile.call("POST", "/v1/verify", key=k, form={"image_a": COLLINS, "image_b": TWO}), 422, "too_many_faces")
    sid = hostile.call("GET", "/v1/subjects?name=Collins", key=k).json()["subjects"][0]["id"]
    envelope(hostile.call("POST", "/v1/verify", key=k, json_body={"image_a": b64(TWO), "subject_id": sid}),
             422, "too_many_faces")
    same = hostile.call("POST", "/v1/verify", key=k, form={"image_a": COLLINS, "image_b": mirrored(COLLINS_2)})
    assert same.status == 200 and same.json()["match"] is True



def test_errors_name_the_image_by_its_field_or_file_never_by_its_array(hostile):
    """A bad or faceless image is named as the client sent it (file name, or JSON field)."""
    k = hostile.key
    doc = envelope(hostile.call("POST", "/v1/verify", key=k, form={"image_a": COLLINS, "image_b": ("notes.txt", b"hello")}),
                   422, "invalid_image")
    assert doc["error"]["message"].startswith("notes.txt: ") and doc["error"]["details"]["field"] == "notes.txt"
    doc = envelope(hostile.call("POST", "/v1/verify", key=k, json_body={"image_a": b64(COLLINS), "image_b": "aGVsbG8="}),
                   422, "invalid_image")
    assert doc["error"]["message"].startswith("image_b: ")
    doc = envelope(hostile.call("POST", "/v1/verify", key=k, form={"image_a": COLLINS, "image_b": ("grey.png", png(200, 150))}),
                   422, "no_face")
    assert "grey.png" in doc["error"]["message"] and "<array" not in doc["error"]["message"]
    ok = hostile.call("POST", "/v1/verify", key=k, form={"image_a": COLLINS, "image_b": mirrored(COLLINS_2)}).json()
    assert [f["path"] for f in ok["faces"]] == [COLLINS.name, mirrored(COLLINS_2)[0]]

# --- over real sockets: auth before the body; slowloris; uvicorn's own 400 ------------------------------
HEADER_TIMEOUT = 2.0


@pytest.fixture(scope="module")
def guarded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("guarded")
    gallery = root / "gallery.db"
    key = store_key(gallery, "recognize,manage")
    server = Server(gallery, root / "server.log", "--header-timeout", str(HEADER_TIMEOUT))
    server.key = key  # type: ignore[attr-defined]
    yield server
    server.stop()


def connect(server: Server, timeout: float = 60.0) -> socket.socket:
    return socket.create_connection(("127.0.0.1", server.port), timeout=timeout)


def read_response(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    """One HTTP response off ``sock`` (status, headers, body by Content-Length)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    length = int(headers.get("content-length", "0"))
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return int(lines[0].split()[1]), headers, body


def closed(sock: socket.socket) -> bool:
    """Whether the peer has closed (what is left to read, if anything, is read and dropped)."""
    try:
        while sock.recv(65536):
            pass
    except (ConnectionResetError, BrokenPipeError):
        pass
    return True


@pytest.mark.parametrize("path", ["/v1/subjects", "/v1/detect", "/v1/keys"])
def test_no_key_gets_401_before_a_30_mb_body_is_sent(guarded, path):
    """The server answers from the headers: the client has sent 64 KiB of a 30 MB body (under
    the 32 MiB limit) and gets its 401 without sending the rest (a route with a pydantic body
    used to read and parse it all first)."""
    with connect(guarded, timeout=30) as sock:
        sock.sendall(f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n".encode()
                     + b"Content-Length: 30000000\r\n\r\n" + b'{"name": "' + b"A" * 65536)
        status, headers, body = read_response(sock)
    assert status == 401 and headers["www-authenticate"] == "Bearer"
    assert json.loads(body)["error"]["code"] == "unauthorized"


def test_a_head_that_never_completes_is_cut_off(guarded):
    """Slowloris: a head sent a byte at a time, each well within any read timeout, is cut off
    by the header timeout (within three times it), with a 408 envelope."""
    started = time.monotonic()
    answer = b""
    with connect(guarded) as sock:
        sock.settimeout(0.5)
        for byte in b"GET /v1/health HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 100:
            try:
                sock.sendall(bytes([byte]))
                answer += sock.recv(65536)
            except TimeoutError:
                continue
            except (ConnectionResetError, BrokenPipeError):
                break
            if answer or time.monotonic() - started > 10 * HEADER_TIMEOUT:
                break
        sock.settimeout(10)
        try:
            while chunk := sock.recv(65536):
                answer += chunk
        except (ConnectionResetError, BrokenPipeError):
            pass
    assert time.monotonic() - started < 3 * HEADER_TIMEOUT + 5, "the connection was held open"
    assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
    doc = json.loads(answer.partition(b"\r\n\r\n")[2])
    assert doc["error"]["code"] == "request_timeout" and doc["request_id"]


def test_an_idle_connection_is_closed(guarded):
    started = time.monotonic()
    with connect(guarded, timeout=3 * HEADER_TIMEOUT + 5) as sock:
        assert sock.recv(65536) == b""  # closed without a word: it asked nothing
    assert time.monotonic() - started < 3 * HEADER_TIMEOUT + 5


def test_a_kept_alive_connection_may_wait_between_requests(guarded):
    """The header timeout runs from a request's first byte, not from the previous response."""
    with connect(guarded) as sock:
        for _ in range(2):
            sock.sendall(b"GET /v1/health HTTP/1.1\r\nHost: x\r\n\r\n")
            status, _, body = read_response(sock)
            assert status == 200 and json.loads(body)["status"] == "ok"
            time.sleep(HEADER_TIMEOUT * 1.25)  # under uvicorn's keep-alive timeout (5 s)


def test_oversized_headers_get_the_envelope(guarded):
    with connect(guarded) as sock:
        sock.sendall(b"GET /v1/health HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 200_000 + b"\r\n\r\n")
        status, headers, body = read_response(sock)
    assert status == 400 and headers["content-type"] == "application/json"
    doc = json.loads(body)
    assert doc["error"]["code"] == "bad_request" and doc["request_id"] == headers["x-request-id"]
    assert headers["x-content-type-options"] == "nosniff"


def test_a_malformed_request_line_gets_the_envelope(guarded):
    with connect(guarded) as sock:
        sock.sendall(b"NOT A REQUEST\r\n\r\n")
        status, headers, body = read_response(sock)
    assert status == 400 and json.loads(body)["error"]["code"] == "bad_request"


def test_the_guarded_server_still_serves(guarded):
    r = guarded.call("POST", "/v1/detect", key=guarded.key,
                     json_body={"image": base64.b64encode(Path(COLLINS).read_bytes()).decode()})
    assert r.status == 200 and len(r.json()["faces"]) == 1


# --- found by the fuzzers (tests/fuzz) --------------------------------------------------------------
@pytest.mark.parametrize(("method", "body"), [
    ("POST", '{"name": "surrogate", "metadata": {"x": "\\ud800"}}'),
    ("PATCH", '{"metadata": {"\\udfff": 1}}'),
    ("POST", '{"name": "surrogate\\ud800"}'),
])
def test_lone_surrogates_are_invalid_arguments(hostile, method, body):
    sid = hostile.call("GET", "/v1/subjects?name=Collins", key=hostile.key).json()["subjects"][0]["id"]
    path = "/v1/subjects" if method == "POST" else f"/v1/subjects/{sid}"
    doc = envelope(raw(hostile, method, path, body, key=hostile.key), 422, "invalid_argument")
    assert doc["error"]["details"]["reason"] == "invalid_unicode"
    form = {"image": COLLINS_2, "where": '{"team": "\\ud800"}'}
    envelope(hostile.call("POST", "/v1/identify", key=hostile.key, form=form), 422, "invalid_argument")
    # a surrogate pair is one character, and fine
    assert hostile.call("PATCH", f"/v1/subjects/{sid}", key=hostile.key,
                        data=b'{"metadata": {"team": "apollo", "emoji": "\\ud83d\\ude00"}}',
                        headers=JSON).json()["metadata"]["emoji"] == "\U0001f600"
    assert hostile.call("PATCH", f"/v1/subjects/{sid}", key=hostile.key,
                        json_body={"metadata": {"team": "apollo"}}).status == 200


def test_405_names_every_method_of_the_path(hostile):
    r = hostile.call("PUT", "/v1/subjects", key=hostile.key)
    envelope(r, 405, "method_not_allowed")
    assert {m.strip() for m in r.header("allow").split(",")} >= {"GET", "POST"}
    r = hostile.call("PUT", "/v1/subjects/1", key=hostile.key)
    assert {m.strip() for m in r.header("allow").split(",")} >= {"GET", "PATCH", "DELETE"}


def test_the_image_routes_document_their_415(hostile):
    envelope(hostile.call("POST", "/v1/detect", key=hostile.key, data=b"x", headers={"Content-Type": "text/plain"}),
             415, "unsupported_media_type")
    schema = hostile.call("GET", "/openapi.json").json()
    for path in ("/v1/detect", "/v1/embed", "/v1/identify", "/v1/verify", "/v1/subjects/{subject_id}/faces"):
        assert "415" in schema["paths"][path]["post"]["responses"], path
