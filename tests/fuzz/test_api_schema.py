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
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import settings
from schemathesis import GenerationMode
from schemathesis.specs.openapi.checks import (
    allow_header_conformance,
    ignored_auth,
    positive_data_acceptance,
    status_code_conformance,
)

from faceprint.service.settings import Settings as ServiceSettings
from tests.conftest import face_image
from tests.fuzz.conftest import FuzzRun, record
from tests.integration.service.conftest import Keys, Server, b64, call, make_keys

SCHEMA_PATH = Path(__file__).parents[1] / "integration" / "service" / "openapi.json"

#: Cases per operation and mode (17 operations; about 2 minutes on 2 shared cores, both runs).
AUTHENTICATED_EXAMPLES = 40
UNAUTHENTICATED_EXAMPLES = 8

schema = schemathesis.openapi.from_path(SCHEMA_PATH)
schema.config.generation.update(modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE], deterministic=True,
                                  # the keys are the fixture's: generated ones would fuzz authentication instead
                                  with_security_parameters=False)


OPERATIONS = [f"{method.upper()} {path}" for path, ops in json.loads(SCHEMA_PATH.read_text())["paths"].items() for method in ops]


#: No rate limits: the fuzzer's pace would be answered 429 instead of what is being tested (the
#: limits have tests of their own). The limit on invalid keys per client address is newer: named
#: only where this version has it.
SERVE_OPTIONS = ["--rate-limit", "0"]
if "auth_failure_limit" in {f.name for f in dataclasses.fields(ServiceSettings)}:
    SERVE_OPTIONS += ["--auth-failure-limit", "0"]


class Fuzzed(Server):
    """The server under fuzzing, with its keys and the key ids that must survive the run."""

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


#: Open bugs the fuzzer found (NEW in issue 13's fuzzing; each has an xfail test below, so the
#: fix shows as XPASS). Until fixed, only these exact cases skip the one check they fail.
#: - The image routes answer 415 (no or another content type) but their schema does not say so.
UNDOCUMENTED_415 = {"/v1/detect", "/v1/embed", "/v1/identify", "/v1/verify", "/v1/subjects/{subject_id}/faces"}
#: - A 405's Allow header names only one route's method where a path has several (GET and POST
#:   /v1/keys, /v1/subjects; GET, PATCH and DELETE /v1/subjects/{id}).
ALLOW_HEADER_BUG = True

#: Checks that are not properties of this API: a well-formed request may still be refused (an
#: image that is not one: 422; no such subject: 404); "invalid credentials are refused" is the
#: unauthenticated run's job (here, after 30 tries, a client address is answered 429 instead).
NOT_PROPERTIES = [positive_data_acceptance, ignored_auth]


def excluded_checks(case: Any, status: int) -> list[Any]:
    excluded = list(NOT_PROPERTIES)
    if status == 415 and case.path in UNDOCUMENTED_415:
        excluded.append(status_code_conformance)
    if status == 405 and ALLOW_HEADER_BUG:
        excluded.append(allow_header_conformance)
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


# --- the open bugs above, as tests that pass once they are fixed --------------------------------
@pytest.mark.xfail(strict=False, reason="NEW (fuzzer, issue 13): the image routes answer 415 but do not document it")
@pytest.mark.parametrize("path", sorted(UNDOCUMENTED_415))
def test_image_routes_document_415(path: str) -> None:
    assert "415" in json.loads(SCHEMA_PATH.read_text())["paths"][path]["post"]["responses"]


@pytest.mark.xfail(strict=False, reason="NEW (fuzzer, issue 13): a 405's Allow header names one route's method only")
def test_405_allow_names_every_method(server: Fuzzed) -> None:
    answer = call("OPTIONS", server.url + "/v1/keys", key=server.keys.admin)
    assert answer.status == 405
    assert {m.strip() for m in (answer.header("allow") or "").split(",")} >= {"GET", "POST"}
