"""Contract: the committed OpenAPI schema equals the running service's.

After a deliberate API change: ``python -m tests.integration.service.update_openapi``.
"""

from __future__ import annotations

import json

from tests.integration.service.conftest import call
from tests.integration.service.update_openapi import SCHEMA, current_schema, dump

REGEN = "python -m tests.integration.service.update_openapi"


def test_committed_schema_equals_the_running_servers(api):
    r = call("GET", api.url + "/openapi.json")
    assert r.status == 200
    committed = json.loads(SCHEMA.read_text())
    assert r.json() == committed, f"the API changed: review it and regenerate the schema with `{REGEN}`"


def test_committed_schema_equals_the_apps_and_is_formatted(tmp_path):
    assert SCHEMA.read_text() == dump(current_schema()), f"regenerate with `{REGEN}`"


def test_schema_documents_the_contract():
    doc = json.loads(SCHEMA.read_text())
    paths = doc["paths"]
    expected = {
        "/v1/health": {"get"}, "/v1/models": {"get"}, "/v1/detect": {"post"}, "/v1/embed": {"post"},
        "/v1/verify": {"post"}, "/v1/identify": {"post"}, "/v1/subjects": {"get", "post"},
        "/v1/subjects/{subject_id}": {"get", "patch", "delete"}, "/v1/subjects/{subject_id}/faces": {"post"},
        "/v1/subjects/{subject_id}/faces/{face_id}": {"delete"},
        "/v1/subjects/{subject_id}/faces/{face_id}/thumbnail": {"get"},
        "/v1/keys": {"get", "post"}, "/v1/keys/{key_id}": {"delete"},
        "/v1/videos/identify": {"post"}, "/v1/streams": {"post"}, "/v1/streams/{stream_id}/frames": {"post"},
        "/v1/streams/{stream_id}": {"delete"}, "/v1/liveness/sessions": {"post"},
        "/v1/liveness/sessions/{session_id}": {"get"}, "/v1/liveness/sessions/{session_id}/frames": {"post"},
        "/v1/liveness/verify": {"post"},
    }
    assert {p: set(ops) for p, ops in paths.items()} == expected
    verify = paths["/v1/verify"]["post"]["requestBody"]["content"]
    form = verify["multipart/form-data"]["schema"]["properties"]
    assert form["image_a"]["format"] == "binary" and form["image_b"]["format"] == "binary"
    assert "application/json" in verify
    out = doc["components"]["schemas"]["VerifyOut"]["properties"]
    assert {"similarity", "threshold", "far", "match", "model"} <= set(out)
    assert set(doc["components"]["schemas"]["SubjectCreate"]["properties"]) == {"name", "metadata"}
    assert set(doc["components"]["schemas"]["ErrorEnvelope"]["properties"]) == {"error", "request_id"}
    schemes = doc["components"]["securitySchemes"]
    assert any(s.get("scheme", "").lower() == "bearer" for s in schemes.values())
    assert any(s.get("name") == "X-API-Key" for s in schemes.values())
    assert "security" not in paths["/v1/health"]["get"]
