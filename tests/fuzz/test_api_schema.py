"""The HTTP API fuzzed from its own OpenAPI schema (schemathesis) against a real ``faceprint serve``.

Every operation of the published schema (tests/integration/service/openapi.json, which
test_openapi keeps equal to what the server serves -- checked again here) gets requests that
fit the schema and requests that do not (schemathesis' positive and negative modes, and its
boundary "coverage" cases), seeded and bounded. Each answer must be:

- never a 5xx;
- an error (4xx) in the service's envelope ``{"error": {"code", "message", "details"}, "request_id"}``;
- what the schema says: a documented status, content type and body.

Once with a valid admin key (every operation authorised), once with no key or a wrong one
(every operation but the health check must answer 401, in the envelope, whatever the body).
Then hostile values a schema-driven generator seldom sends (NaN, Infinity, integers past 64
bits, 100,000-deep nesting, 1,000-key objects, lone surrogates) in every field of every JSON
body and every integer path and query parameter: what broke the service in issue 13.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import settings
from schemathesis import GenerationMode
from schemathesis.specs.openapi.checks import (
    ignored_auth,
    positive_data_acceptance,
)

from tests.conftest import face_image
from tests.fuzz.conftest import FuzzRun, record
from tests.integration.service.conftest import Keys, Server, b64, call, envelope, make_keys

SCHEMA_PATH = Path(__file__).parents[1] / "integration" / "service" / "openapi.json"

#: Generated cases per operation (positive and negative; schemathesis adds its boundary cases):
#: about 2,000 requests, 30-40 s on 2 shared cores with the server's start.
AUTHENTICATED_EXAMPLES = 40
UNAUTHENTICATED_EXAMPLES = 8

schema = schemathesis.openapi.from_path(SCHEMA_PATH)
schema.config.generation.update(modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE], deterministic=True,
                                  # the keys are the fixture's: generated ones would fuzz authentication instead
                                  with_security_parameters=False)


OPERATIONS = [f"{method.upper()} {path}" for path, ops in json.loads(SCHEMA_PATH.read_text())["paths"].items() for method in ops]


#: No rate limits (per key, and on invalid keys per client address): the fuzzer's pace would be
#: answered 429 instead of what is being tested (the limits have tests of their own).
SERVE_OPTIONS = ["--rate-limit", "0", "--auth-failure-limit", "0"]


class Fuzzed(Server):
    """The server under fuzzing, with its keys (which the fuzzer must not revoke)."""

    keys: Keys


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fuzzed]:
    """A real server on a fresh gallery (keys of every scope, two people enrolled), no rate limits."""
    root = tmp_path_factory.mktemp("fuzz-service")
    gallery = root / "gallery.db"
    keys = make_keys(gallery)
    srv = Fuzzed(gallery, root / "server.log", *SERVE_OPTIONS)
    srv.keys = keys
    try:
        served = srv.call("GET", "/openapi.json").json()
        assert served == json.loads(SCHEMA_PATH.read_text()), "openapi.json is stale: run update_openapi.py"
        for name, photo in (("collins", "collins.jpg"), ("hopper", "hopper.jpg")):
            made = srv.call("POST", "/v1/subjects", key=keys.admin, json_body={"name": name, "metadata": {"team": "a"}})
            assert made.status == 201, made.body
            sid = made.json()["id"]
            enrolled = srv.call("POST", f"/v1/subjects/{sid}/faces", key=keys.admin, json_body={"images": [b64(face_image(photo))]})
            assert enrolled.status == 200, enrolled.body
        yield srv
    finally:
        srv.stop()


def key_ids(keys: Keys) -> set[str]:
    return {k.split("_")[1] for k in (keys.recognize, keys.manage, keys.admin, keys.both)}


def assert_envelope(response: Any, case: Any) -> None:
    """An error answer is the service's envelope, whoever raised it (the app, FastAPI, uvicorn)."""
    where = f"{case.method} {case.formatted_path} -> {response.status_code}: {response.content[:500]!r}"
    content_type = (response.headers.get("content-type") or [""])[0]
    assert content_type.startswith("application/json"), where
    doc = json.loads(response.content)
    assert isinstance(doc, dict) and set(doc) == {"error", "request_id"}, where
    error = doc["error"]
    assert isinstance(error, dict) and set(error) == {"code", "message", "details"}, where
    assert isinstance(error["code"], str) and error["code"], where
    assert isinstance(error["message"], str) and error["message"], where
    assert isinstance(error["details"], dict), where
    assert isinstance(doc["request_id"], str) and doc["request_id"], where
    assert b"Traceback" not in response.content, where


def server_log_tail(server: Server) -> str:
    return "\n".join(server.log().splitlines()[-60:])


#: The image routes, which take JSON or multipart bodies (and answer 415 to anything else).
IMAGE_ROUTES = ["/v1/detect", "/v1/embed", "/v1/identify", "/v1/verify", "/v1/subjects/{subject_id}/faces"]

#: Checks that are not properties of this API: a well-formed request may still be refused (an
#: image that is not one: 422; no such subject: 404); "invalid credentials are refused" is the
#: unauthenticated run's job (here, after 30 tries, a client address is answered 429 instead).
NOT_PROPERTIES = [positive_data_acceptance, ignored_auth]


def excluded_checks(case: Any, status: int) -> list[Any]:
    excluded = list(NOT_PROPERTIES)
    return excluded


#: The operations each run reached (its summary says how many of the schema's).
REACHED: dict[str, set[str]] = {}


def count(run: FuzzRun, case: Any, status: int) -> None:
    run.cases += 1
    run.extra[str(status)] = run.extra.get(str(status), 0) + 1
    reached = REACHED.setdefault(run.name, set())
    reached.add(f"{case.operation.method.upper()} {case.path}")
    run.extra["operations"] = f"{len(reached)}/{len(OPERATIONS)}"


@schema.parametrize()
@settings(settings.get_profile("faceprint-fuzz"), max_examples=AUTHENTICATED_EXAMPLES)
def test_authenticated(case: Any, server: Fuzzed) -> None:
    """A valid admin key: every operation is authorised, so the body and parameters are what is fuzzed."""
    if case.path_parameters and case.path_parameters.get("key_id") in key_ids(server.keys):
        case.path_parameters["key_id"] = "00000000"  # never revoke the fuzzer's own keys
    with record("api.authenticated") as run:
        response = case.call(base_url=server.url, headers={"Authorization": f"Bearer {server.keys.admin}"}, timeout=120)
        count(run, case, response.status_code)
    assert response.status_code < 500, f"{case.as_curl_command(base_url=server.url)}\n{response.content[:2000]!r}\n{server_log_tail(server)}"
    if response.status_code >= 400:
        assert_envelope(response, case)
    case.validate_response(response, excluded_checks=excluded_checks(case, response.status_code))


#: The ways of not having a key: none, an unknown one of the right form, garbage, a key in the
#: other header.
NO_KEYS: list[dict[str, str]] = [
    {},
    {"Authorization": "Bearer fp_00000000_" + "A" * 43},
    {"Authorization": "Bearer \u00e9\u00e9 not a key"},
    {"X-API-Key": "fp_deadbeef_" + "x" * 30},
]


@schema.parametrize()
@settings(settings.get_profile("faceprint-fuzz"), max_examples=UNAUTHENTICATED_EXAMPLES)
def test_unauthenticated(case: Any, server: Fuzzed) -> None:
    """No valid key: whatever the body and parameters, 401 in the envelope (the key is checked
    before the body is read) -- except the health check, and a method the path does not have (405)."""
    with record("api.unauthenticated") as run:
        headers = NO_KEYS[run.cases % len(NO_KEYS)]  # (each way in turn)
        response = case.call(base_url=server.url, headers=headers, timeout=120)
        count(run, case, response.status_code)
    status = response.status_code
    where = f"{case.as_curl_command(base_url=server.url)}\n-> {status} {response.content[:500]!r}"
    assert status < 500, f"{where}\n{server_log_tail(server)}"
    if case.path == "/v1/health" and case.method.upper() == "GET":
        assert status == 200, where
        return
    # (429: the server's limit on invalid keys per address, if the fixture could not lift it; a
    # method the path does not have may be answered before the key is checked, or after)
    allowed = (401, 429) if case.method.upper() == case.operation.method.upper() else (401, 405, 429)
    assert status in allowed, where
    assert_envelope(response, case)


# --- bugs the fuzzers found (issue 13), kept as regression tests ---------------------------------
@pytest.mark.parametrize("path", IMAGE_ROUTES)
def test_image_routes_document_415(path: str) -> None:
    """They answer 415 to a body that is neither JSON nor multipart (was undocumented)."""
    assert "415" in json.loads(SCHEMA_PATH.read_text())["paths"][path]["post"]["responses"]


def test_405_allow_names_every_method(server: Fuzzed) -> None:
    """A 405's Allow names every method of the path (named the first route's only)."""
    answer = call("OPTIONS", server.url + "/v1/keys", key=server.keys.admin)
    assert answer.status == 405
    assert {m.strip() for m in (answer.header("allow") or "").split(",")} >= {"GET", "POST"}


def test_repeated_form_field_is_refused(server: Fuzzed) -> None:
    """A multipart form repeating a one-value field was accepted (one of the values used)."""
    answer = server.call("POST", "/v1/identify", key=server.keys.admin,
                         form={"image": face_image("no_face.png"), "where": ['{"team": "a"}', '{"team": "b"}']})
    envelope(answer, 422, "invalid_argument")



# --- hostile values where the schema allows a number or an object -------------------------------
#: JSON a schema-driven generator does not send (or seldom): what broke the service in issue 13.
HOSTILE_JSON = {
    "nan": "NaN", "infinity": "Infinity", "-infinity": "-Infinity", "1e400": "1e400",
    "2^63": str(2**63), "2^64": str(2**64), "-2^63-1": str(-(2**63) - 1), "10^40": "1" + "0" * 40,
    "lone_surrogate": '"\\ud800"', "deep_array": "[" * 100_000 + "]" * 100_000,
    "deep_object": '{"a":' * 50_000 + "1" + "}" * 50_000,
    "1000_keys": "{" + ",".join(f'"k{i}":1' for i in range(1000)) + "}",
}
#: Path and query values where an integer is expected.
HOSTILE_INTEGERS = [str(2**63), str(2**64), str(-(2**63) - 1), "1" + "0" * 40, "-1", "1e3", "NaN", "0x10"]
HOLE = '"@HOSTILE@"'


def body_requests(tiny_image: str, face: str, sid: int) -> list[tuple[str, str, dict[str, Any], list[str]]]:
    """(method, path, a valid JSON body, the places a hostile value goes: a field, or field.key).
    Identify gets a face, so that its search (and so ``where``) runs; ``sid`` is a subject that
    exists (with a face), so that a value is judged, not answered 404."""
    return [
        ("POST", "/v1/subjects", {"name": "hostile", "metadata": {}}, ["metadata", "metadata.x", "name"]),
        ("PATCH", f"/v1/subjects/{sid}", {"metadata": {}}, ["metadata", "metadata.x", "name"]),
        ("POST", "/v1/identify", {"image": face, "where": {"team": "a"}},
         ["where", "where.team", "top_k", "far", "threshold", "image"]),
        ("POST", "/v1/verify", {"image_a": face, "subject_id": sid},
         ["subject_id", "far", "threshold", "face_a", "image_a"]),
        ("POST", "/v1/detect", {"image": tiny_image}, ["image"]),
        ("POST", f"/v1/subjects/{sid}/faces", {"images": [tiny_image]}, ["images"]),
        ("POST", "/v1/keys", {"scopes": ["recognize"], "name": "hostile"}, ["scopes", "name"]),
    ]


def with_hole(body: dict[str, Any], place: str) -> str:
    """``body`` as JSON text with :data:`HOLE` at ``place`` (``field`` or ``field.key``)."""
    doc = json.loads(json.dumps(body))
    field, _, key = place.partition(".")
    if key:
        doc[field] = {**(doc.get(field) or {}), key: "@HOSTILE@"}
    else:
        doc[field] = "@HOSTILE@"
    return json.dumps(doc)


INTEGER_PATHS = ["/v1/subjects/{}", "/v1/subjects/1/faces/{}", "/v1/subjects/{}/faces/1/thumbnail",
                 "/v1/subjects/1/faces/{}/thumbnail",
                 "/v1/subjects?offset={}", "/v1/subjects?limit={}"]


def test_hostile_values(server: Fuzzed) -> None:
    """Every hostile JSON value in every field of the JSON bodies, and hostile integers in every
    integer path and query parameter (all of them, not a sample): never a 5xx; a refusal in the
    envelope."""
    tiny, face = b64(face_image("no_face.png")), b64(face_image("hopper_2.jpg"))
    made = server.call("POST", "/v1/subjects", key=server.keys.admin, json_body={"name": "hostile target", "metadata": {"team": "a"}})
    sid = made.json()["id"]
    enrolled = server.call("POST", f"/v1/subjects/{sid}/faces", key=server.keys.admin, json_body={"images": [b64(face_image("collins_2.jpg"))]})
    assert enrolled.status == 200 and enrolled.json()["enrolled"], enrolled.body
    bodies = [(m, p, body_text, name) for m, p, body, places in body_requests(tiny, face, sid) for place in places
              for body_text in [with_hole(body, place)] for name in HOSTILE_JSON]
    paths = [(m, template.format(value)) for template in INTEGER_PATHS for value in HOSTILE_INTEGERS
             for m in (["GET"] if "?" in template or "thumbnail" in template else ["GET", "DELETE"])]

    failures = []
    with record("api.hostile_values") as run:
        for request in [*bodies, *paths]:  # every one: a few hundred requests, about a second
            if len(request) == 4:
                method, path, text, name = request
                data = text.replace(HOLE, HOSTILE_JSON[name]).encode()
                answer = server.call(method, path, key=server.keys.admin, data=data, headers={"Content-Type": "application/json"})
                what = f"{method} {path} with {name} in {text[:120]}"
            else:
                method, path = request
                answer = server.call(method, path, key=server.keys.admin)
                what = f"{method} {path}"
            run.cases += 1
            run.extra[str(answer.status)] = run.extra.get(str(answer.status), 0) + 1
            try:
                assert answer.status < 500, f"{answer.status} {answer.body[:300]!r}"
                if answer.status >= 400:
                    envelope(answer, answer.status, answer.json()["error"]["code"])
            except AssertionError as exc:
                failures.append(f"{what}: {exc}")
    assert not failures, "\n".join(failures) + "\n" + server_log_tail(server)
    # what was accepted must not break the others' searches (issue 13: one NaN broke every `where`)
    after = server.call("POST", "/v1/identify", key=server.keys.admin, json_body={"image": face, "where": {"team": "a"}})
    assert after.status == 200, after.body


@pytest.mark.parametrize(("method", "path", "body"), [
    ("POST", "/v1/subjects", '{"name": "surrogate", "metadata": {"x": "\\ud800"}}'),
    ("PATCH", "/v1/subjects/1", '{"metadata": {"\\udfff": 1}}'),
    ("POST", "/v1/subjects", '{"name": "surrogate\\ud800"}'),
    ("POST", "/v1/identify", '{"image": "", "where": {"team": "\\ud800"}}'),
], ids=["metadata_value", "metadata_key", "name", "where"])
def test_lone_surrogates_are_refused(server: Fuzzed, method: str, path: str, body: str) -> None:
    """A lone surrogate is valid JSON but no UTF-8 database holds it (was a 500 in metadata)."""
    made = server.call("POST", "/v1/subjects", key=server.keys.admin, json_body={"name": f"surrogates {method} {len(body)}"})
    path = path.replace("/1", f"/{made.json()['id']}")  # a subject that exists (the fuzzers may have forgotten 1)
    answer = server.call(method, path, key=server.keys.admin, data=body.encode(), headers={"Content-Type": "application/json"})
    assert 400 <= answer.status < 500, answer.body
    envelope(answer, answer.status, answer.json()["error"]["code"])
