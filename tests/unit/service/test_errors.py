"""Every library error has an explicit HTTP status, and errors answer with the one envelope."""

from __future__ import annotations

import inspect
import json

import pytest

import faceprint.errors as library_errors
from faceprint.errors import FaceprintError, RateLimitedError, UnauthorizedError
from faceprint.service.errors import HTTP_STATUS, envelope, error_response, http_status

ERROR_CLASSES = sorted(
    (cls for _, cls in inspect.getmembers(library_errors, inspect.isclass)
     if issubclass(cls, FaceprintError) and cls.__module__ == library_errors.__name__),
    key=lambda cls: cls.__name__,
)


def test_the_error_module_is_found():
    assert FaceprintError in ERROR_CLASSES and len(ERROR_CLASSES) > 20


@pytest.mark.parametrize("cls", ERROR_CLASSES, ids=lambda cls: cls.__name__)
def test_every_error_code_has_an_explicit_http_status(cls):
    assert cls.code in HTTP_STATUS, f"{cls.__name__} ({cls.code!r}) has no HTTP status in faceprint.service.errors"
    assert 400 <= HTTP_STATUS[cls.code] <= 599


def test_the_map_names_only_real_codes():
    assert set(HTTP_STATUS) == {cls.code for cls in ERROR_CLASSES}


def test_every_listed_error_is_in_the_module():
    assert set(library_errors.ALL_ERRORS) <= set(ERROR_CLASSES)


def test_a_code_from_elsewhere_is_a_client_error():
    assert http_status("multiple_faces") == 400


def test_envelope_and_headers():
    resp = error_response(UnauthorizedError("no key", details={"reason": "missing"}), "rid-1")
    assert resp.status_code == 401 and resp.headers["www-authenticate"] == "Bearer"
    assert json.loads(resp.body) == envelope("unauthorized", "no key", {"reason": "missing"}, "rid-1")
    assert json.loads(resp.body) == {"error": {"code": "unauthorized", "message": "no key",
                                               "details": {"reason": "missing"}}, "request_id": "rid-1"}
    limited = error_response(RateLimitedError("slow down", details={"retry_after": 3}), "rid-2")
    assert limited.status_code == 429 and limited.headers["retry-after"] == "3"


def test_details_that_are_not_json_are_written_as_text():
    from pathlib import Path

    resp = error_response(FaceprintError("odd", details={"path": Path("/x/y")}), "r")
    assert json.loads(resp.body)["error"]["details"] == {"path": "/x/y"}
