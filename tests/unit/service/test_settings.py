"""The service's settings and how they reach a worker process."""

from __future__ import annotations

from pathlib import Path

import pytest

from faceprint import settings as env
from faceprint.service import Settings


def test_json_round_trip_keeps_every_field():
    s = Settings(gallery=Path("/tmp/g.db"), detector="cnn", threads=3, max_faces=2, rate_burst=5,
                 cors_origins=("https://a.example", "https://b.example"), log_level="debug")
    assert Settings.from_json(s.to_json()) == s


def test_unknown_fields_are_ignored():
    text = '{"gallery": "/tmp/g.db", "from_a_newer_version": 1}'
    assert Settings.from_json(text) == Settings(gallery=Path("/tmp/g.db"))


def test_from_the_environment(monkeypatch):
    s = Settings(gallery=Path("/tmp/g.db"), log_level="warning")
    monkeypatch.setenv(env.SERVICE_SETTINGS, s.to_json())
    assert Settings.from_environment() == s
    monkeypatch.delenv(env.SERVICE_SETTINGS)
    with pytest.raises(RuntimeError, match="faceprint serve"):
        Settings.from_environment()


def test_the_variable_is_declared_with_the_others():
    assert env.SERVICE_SETTINGS == "FACEPRINT_SERVICE_SETTINGS" and env.SERVICE_SETTINGS in env.VARIABLES


def test_serve_passes_the_settings_to_uvicorns_workers(monkeypatch):
    import uvicorn

    from faceprint.service import serve
    from faceprint.service.server import APP_FACTORY

    seen: dict = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: seen.update(app=app, **kw))
    monkeypatch.delenv(env.SERVICE_SETTINGS, raising=False)
    s = Settings(gallery=Path("/tmp/g.db"), log_level="error")
    serve(s, host="127.0.0.1", port=8123, workers=3)
    assert seen["app"] == APP_FACTORY and seen["factory"] is True
    assert (seen["host"], seen["port"], seen["workers"], seen["log_level"]) == ("127.0.0.1", 8123, 3, "error")
    assert Settings.from_environment() == s
