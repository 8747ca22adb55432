"""The service two ways, with one way of calling it:

- in this process through FastAPI's ``TestClient`` (:class:`InProcess`; fast, most API tests);
- a real ``faceprint serve`` (uvicorn) on a free loopback port (:class:`Server`; start-up, the
  access log, limits over a socket, concurrency, several workers, the browser tests).

Both have ``call(method, path, ...) -> Resp``. The faces are the small public-domain images
shipped in tests/data/faces, so none of these tests needs ../shared.
"""

from __future__ import annotations

import base64
import io
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from tests.conftest import GALLERY_BACKENDS, new_gallery_location


def faceprint_cmd() -> list[str]:
    exe = Path(sys.executable).with_name("faceprint")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "faceprint"]


@dataclass
class Resp:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


def multipart(fields: dict[str, object]) -> tuple[bytes, str]:
    """Encode form fields: a value that is a Path, or a (filename, bytes) pair, or a list of them,
    becomes file parts; anything else a text field."""
    boundary = uuid.uuid4().hex
    out = bytearray()
    for name, value in fields.items():
        values = value if isinstance(value, list) else [value]
        for v in values:
            out += f"--{boundary}\r\n".encode()
            if isinstance(v, Path):
                v = (v.name, v.read_bytes())
            if isinstance(v, tuple):
                filename, data = v
                out += (f'Content-Disposition: form-data; name="{name}"; filename="{filename}"\r\n'
                        "Content-Type: application/octet-stream\r\n\r\n").encode()
                out += data + b"\r\n"
            else:
                out += f'Content-Disposition: form-data; name="{name}"\r\n\r\n{v}\r\n'.encode()
    out += f"--{boundary}--\r\n".encode()
    return bytes(out), f"multipart/form-data; boundary={boundary}"


def request_parts(key: str | None, json_body: object, form: dict[str, object] | None,
                  headers: dict[str, str] | None, data: bytes | None) -> tuple[dict[str, str], bytes | None]:
    """The headers and body of a call (a key as a bearer token, a JSON or multipart body)."""
    hdrs = dict(headers or {})
    if key is not None:
        hdrs.setdefault("Authorization", f"Bearer {key}")
    if json_body is not None:
        data = json.dumps(json_body).encode()
        hdrs["Content-Type"] = "application/json"
    elif form is not None:
        data, ctype = multipart(form)
        hdrs["Content-Type"] = ctype
    return hdrs, data


def call(
    method: str,
    url: str,
    *,
    key: str | None = None,
    json_body: object = None,
    form: dict[str, object] | None = None,
    headers: dict[str, str] | None = None,
    data: bytes | None = None,
    timeout: float = 300,
) -> Resp:
    """One HTTP request over a real socket (stdlib client)."""
    hdrs, data = request_parts(key, json_body, form, headers, data)
    req = urllib.request.Request(url, data=data, method=method, headers=hdrs)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return Resp(r.status, {k.lower(): v for k, v in r.headers.items()}, r.read())
    except urllib.error.HTTPError as e:
        return Resp(e.code, {k.lower(): v for k, v in e.headers.items()}, e.read())


def envelope(resp: Resp, status: int, code: str) -> dict[str, Any]:
    """Asserts an error answer: its status, the envelope's shape and code, the request id."""
    assert resp.status == status, resp.body
    doc = resp.json()
    assert set(doc) == {"error", "request_id"}
    assert doc["error"]["code"] == code
    assert isinstance(doc["error"]["message"], str) and doc["error"]["message"]
    assert isinstance(doc["error"]["details"], dict)
    assert doc["request_id"] and resp.header("x-request-id") == doc["request_id"]
    assert b"Traceback" not in resp.body
    return doc


def b64(path: Path) -> str:
    return base64.b64encode(path.read_bytes()).decode()


def png(width: int, height: int, noise: bool = False) -> bytes:
    rng = np.random.default_rng(0)
    arr = (rng.integers(0, 256, (height, width, 3), dtype=np.uint8) if noise
           else np.full((height, width, 3), 128, np.uint8))
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


def mirrored(path: Path) -> tuple[str, bytes]:
    """Another image of the same face (mirrored, PNG): a third photo for a probe."""
    buf = io.BytesIO()
    with Image.open(path) as im:
        im.transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(buf, format="PNG")
    return f"{path.stem}_mirrored.png", buf.getvalue()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cli(gallery: Path | str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*faceprint_cmd(), "--gallery", str(gallery), *args], capture_output=True, text=True,
                          timeout=300)


def new_key(gallery: Path | str, *scopes: str, name: str = "") -> str:
    """A key made by `faceprint keys create` (the CLI path)."""
    args = [a for s in scopes for a in ("--scope", s)]
    proc = cli(gallery, "keys", "create", *args, "--name", name, "--json")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["scopes"] and doc["key"].startswith("fp_")
    return str(doc["key"])


def store_key(gallery: Path | str, *scopes: str, name: str = "") -> str:
    """A key made in this process (faster than the CLI; for in-process tests)."""
    from faceprint.service.auth import KeyStore

    store = KeyStore(gallery)
    try:
        secret, _ = store.create(list(scopes), name)
    finally:
        store.close()
    return secret


@dataclass
class Keys:
    recognize: str
    manage: str
    admin: str
    both: str


def make_keys(gallery: Path | str, make: Any = store_key) -> Keys:
    return Keys(
        recognize=make(gallery, "recognize", name="recognizer"),
        manage=make(gallery, "manage", name="manager"),
        admin=make(gallery, "admin", name="root"),
        both=make(gallery, "recognize,manage", name="app"),
    )


class InProcess:
    """The app for ``settings`` in this process, through FastAPI's TestClient (lifespan run)."""

    def __init__(self, settings: Any) -> None:
        from fastapi.testclient import TestClient

        from faceprint.service import create_app

        self.settings = settings
        self.app = create_app(settings)
        self.client = TestClient(self.app)
        self.client.__enter__()

    def call(self, method: str, path: str, *, key: str | None = None, json_body: object = None,
             form: dict[str, object] | None = None, headers: dict[str, str] | None = None,
             data: bytes | None = None) -> Resp:
        hdrs, body = request_parts(key, json_body, form, headers, data)
        r = self.client.request(method, path, headers=hdrs, content=body)
        return Resp(r.status_code, {k.lower(): v for k, v in r.headers.items()}, r.content)

    def close(self) -> None:
        self.client.__exit__(None, None, None)


class Server:
    """`faceprint --gallery G serve --port P ...` in a subprocess; stopped by :meth:`stop`."""

    def __init__(self, gallery: Path | str, log: Path, *args: str, serve_option: bool = False) -> None:
        self.gallery = gallery
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log
        self._log = open(log, "wb")
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self.proc = subprocess.Popen(
            # the gallery as the global option, or as serve's own (`faceprint serve --gallery G`)
            [*faceprint_cmd(), *(() if serve_option else ("--gallery", str(gallery))), "serve",
             *(("--gallery", str(gallery)) if serve_option else ()), "--port", str(self.port), *args],
            stdout=self._log, stderr=subprocess.STDOUT, env=env,
        )
        for _ in range(1200):  # up to ~2 minutes on a loaded machine
            if self.proc.poll() is not None:
                raise RuntimeError(f"the server exited ({self.proc.returncode}):\n{self.log()}")
            try:
                if call("GET", self.url + "/v1/health", timeout=5).status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"the server did not answer:\n{self.log()}")

    def call(self, method: str, path: str, **kwargs: Any) -> Resp:
        return call(method, self.url + path, **kwargs)

    def log(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()


@pytest.fixture(scope="session", params=GALLERY_BACKENDS)
def app(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcess]:
    """The app in this process over a fresh gallery, with its keys (``app.keys``); once on each
    backend (a SQLite file, a PostgreSQL database)."""
    from faceprint.service import Settings

    gallery = new_gallery_location(request, tmp_path_factory.mktemp("inprocess"), request.param)
    keys = make_keys(gallery)
    service = InProcess(Settings(gallery=gallery))
    service.keys = keys  # type: ignore[attr-defined]
    yield service
    service.close()


def browser_site(tmp_path_factory: pytest.TempPathFactory, name: str, *args: str) -> Iterator[Server]:
    """A real server over a fresh gallery with one recognize+manage key (``.key``), the web
    page's browser tests' site; ``args``: more ``serve`` options."""
    root = tmp_path_factory.mktemp(name)
    gallery = root / "gallery.db"
    key = new_key(gallery, "recognize,manage", name="browser")
    server = Server(gallery, root / "server.log", *args)
    server.key = key  # type: ignore[attr-defined]
    yield server
    server.stop()


@pytest.fixture(scope="session", params=GALLERY_BACKENDS)
def api(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A real server over a fresh gallery, with keys made by the CLI (``api.keys``); once on
    each backend (a SQLite file, a PostgreSQL database)."""
    root = tmp_path_factory.mktemp("service")
    gallery = new_gallery_location(request, root, request.param)
    keys = make_keys(gallery, new_key)
    server = Server(gallery, root / "server.log")
    server.keys = keys  # type: ignore[attr-defined]
    yield server
    server.stop()



def enrol_with(service: Any, key: str, name: str, *images: Path) -> int:
    """``name`` created and enrolled with ``images`` through the API (``service``: a real server
    or in-process); the subject's id."""
    r = service.call("POST", "/v1/subjects", key=key, json_body={"name": name})
    assert r.status == 201, r.body
    sid = int(r.json()["id"])
    report = service.call("POST", f"/v1/subjects/{sid}/faces", key=key, form={"images": list(images)})
    assert report.status == 200 and len(report.json()["enrolled"]) == len(images), report.body
    return sid


@pytest.fixture()
def collins(api: Server, request: pytest.FixtureRequest) -> Iterator[str]:
    """Eileen Collins enrolled (from collins.jpg) on the shared server under a name of the test
    module's own (so modules never see each other's); forgotten after."""
    from tests.conftest import face_image

    name = f"Collins of {request.module.__name__.rsplit('.', 1)[-1]}"
    sid = enrol_with(api, api.keys.both, name, face_image("collins.jpg"))
    yield name
    api.call("DELETE", f"/v1/subjects/{sid}", key=api.keys.both)
