"""A real `faceprint serve` (uvicorn) on a free loopback port, and a small stdlib HTTP client."""

from __future__ import annotations

import base64
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import shared

FR = ("face_recognition_examples", "tests", "test_images")


def faceprint_cmd() -> list[str]:
    exe = Path(sys.executable).with_name("faceprint")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "faceprint"]


def image(name: str) -> Path:
    if name == "two_people.jpg":
        return shared("face_recognition_examples", "examples", name)
    return shared(*FR, name)


@dataclass
class Resp:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> dict:
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
    hdrs = dict(headers or {})
    if key is not None:
        hdrs.setdefault("Authorization", f"Bearer {key}")
    if json_body is not None:
        data = json.dumps(json_body).encode()
        hdrs["Content-Type"] = "application/json"
    elif form is not None:
        data, ctype = multipart(form)
        hdrs["Content-Type"] = ctype
    req = urllib.request.Request(url, data=data, method=method, headers=hdrs)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return Resp(r.status, {k.lower(): v for k, v in r.headers.items()}, r.read())
    except urllib.error.HTTPError as e:
        return Resp(e.code, {k.lower(): v for k, v in e.headers.items()}, e.read())


def b64(path: Path) -> str:
    return base64.b64encode(path.read_bytes()).decode()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cli(gallery: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*faceprint_cmd(), "--gallery", str(gallery), *args], capture_output=True, text=True,
                          timeout=300)


def new_key(gallery: Path, *scopes: str, name: str = "") -> str:
    args = [a for s in scopes for a in ("--scope", s)]
    proc = cli(gallery, "keys", "create", *args, "--name", name, "--json")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["scopes"] and doc["key"].startswith("fp_")
    return doc["key"]


class Server:
    """`faceprint --gallery G serve --port P ...` in a subprocess; stopped by :meth:`stop`."""

    def __init__(self, gallery: Path, log: Path, *args: str, serve_option: bool = False) -> None:
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


@dataclass
class Keys:
    recognize: str
    manage: str
    admin: str
    both: str


@pytest.fixture(scope="session")
def api(tmp_path_factory):
    """The main server and its keys (a fresh gallery)."""
    image("obama.jpg")  # skip early without the shared data
    root = tmp_path_factory.mktemp("service")
    gallery = root / "gallery.db"
    keys = Keys(
        recognize=new_key(gallery, "recognize", name="recognizer"),
        manage=new_key(gallery, "manage", name="manager"),
        admin=new_key(gallery, "admin", name="root"),
        both=new_key(gallery, "recognize,manage", name="app"),
    )
    server = Server(gallery, root / "server.log")
    server.keys = keys  # type: ignore[attr-defined]
    yield server
    server.stop()
