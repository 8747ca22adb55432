"""The service middleware and CORS at the ASGI level (no network): the last-resort 500 envelope,
which no real route can be made to raise on purpose, and CORS when origins are configured."""

from __future__ import annotations

import asyncio
import json
import logging

from faceprint.service import Settings, create_app
from faceprint.service.middleware import ServiceMiddleware


def run_asgi(app, method: str = "GET", path: str = "/", headers: list[tuple[bytes, bytes]] | None = None,
             body: bytes = b"") -> tuple[int, dict[str, str], bytes]:
    sent: list[dict] = []
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method, "path": path,
             "raw_path": path.encode(), "query_string": b"", "headers": headers or [], "client": ("127.0.0.1", 1),
             "server": ("127.0.0.1", 80), "scheme": "http", "root_path": ""}
    messages = [{"type": "http.request", "body": body, "more_body": False}]

    async def receive():
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message):
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    start = next(m for m in sent if m["type"] == "http.response.start")
    hdrs = {k.decode().lower(): v.decode() for k, v in start["headers"]}
    return start["status"], hdrs, b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")


def test_an_unexpected_exception_becomes_a_500_envelope_without_a_trace(tmp_path, caplog, monkeypatch):
    # An in-process `faceprint serve` earlier in the session gives the service's loggers their own
    # handler and stops propagation (server.configure_logging); caplog listens at the root.
    monkeypatch.setattr(logging.getLogger("faceprint.service"), "propagate", True)

    async def broken(scope, receive, send):
        raise RuntimeError("secret internals /etc/passwd")

    app = ServiceMiddleware(broken, Settings(gallery=tmp_path / "g.db"))
    with caplog.at_level(logging.ERROR, logger="faceprint.service.middleware"):
        status, headers, body = run_asgi(app, path="/v1/anything")
    doc = json.loads(body)
    assert status == 500 and doc["error"]["code"] == "internal_error"
    assert doc["request_id"] == headers["x-request-id"]
    assert b"secret" not in body and b"Traceback" not in body and b"RuntimeError" not in body
    assert "secret internals" in caplog.text  # the operator still sees it, in the log


def test_body_over_the_limit_while_streaming_is_413(tmp_path):
    async def reader(scope, receive, send):
        while (await receive()).get("more_body"):
            pass
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"read it all"})

    app = ServiceMiddleware(reader, Settings(gallery=tmp_path / "g.db", max_request_bytes=10))
    status, _, body = run_asgi(app, method="POST", path="/v1/detect", body=b"x" * 11)
    assert status == 413 and json.loads(body)["error"]["code"] == "request_too_large"
    status, _, body = run_asgi(app, method="POST", path="/v1/detect", body=b"x" * 10)
    assert status == 200 and body == b"read it all"


def test_cors_allows_only_the_configured_origins(tmp_path):
    app = create_app(Settings(gallery=tmp_path / "g.db", cors_origins=("https://app.example",)))
    try:
        pre = [(b"origin", b"https://app.example"), (b"access-control-request-method", b"POST")]
        status, headers, _ = run_asgi(app, "OPTIONS", "/v1/detect", pre)
        assert status == 200 and headers["access-control-allow-origin"] == "https://app.example"
        assert headers["x-request-id"]
        other = [(b"origin", b"https://evil.example"), (b"access-control-request-method", b"POST")]
        status, headers, _ = run_asgi(app, "OPTIONS", "/v1/detect", other)
        assert "access-control-allow-origin" not in headers
        status, headers, _ = run_asgi(app, "GET", "/v1/health", [(b"origin", b"https://app.example")])
        assert status == 200 and headers["access-control-allow-origin"] == "https://app.example"
    finally:
        app.state.service.close()
