"""The container image's build, tested without Docker (no engine on the CI machine).

The Dockerfile's build stage runs ``scripts/container-steps.sh`` steps (``venv``, ``install``,
``models``, ``check``); this test reads those RUN lines and runs the same steps, in the same
order, in a fresh prefix under a temporary folder, then starts the service the way the image's
entry point does (``scripts/container-entrypoint.sh serve ...``, a fresh gallery in an empty
data folder that is also ``$HOME``) and runs the image's HEALTHCHECK command against it.

What differs from a real build, and why (to stay well under 2 minutes on 2 cores, offline):

* ``install`` gets a wheel built from the same files the Dockerfile copies (``pip wheel
  --no-deps``, ~6 s) and ``PIP_INSTALL_ARGS=--no-deps --no-index``: faceprint's dependencies
  (hnswlib compiled from source alone takes minutes) are not installed again but seen through a
  ``.pth`` line naming this test run's site-packages. The wheel's own faceprint is the one
  imported (checked): its package data (the web page's static files) must be in it.
* ``models`` runs ``faceprint models install faceplugin`` with npm in offline mode
  (``npm_config_offline=true``): the package comes from npm's cache (this user's, though
  ``$HOME`` is a fresh folder), filled when this machine installed the pack (``make
  install-models``). Without npm, or without the package in its
  cache, the test skips saying so.
* The processes run as the test's user, not the image's uid 10001 (the interpreter may sit in a
  home folder another uid cannot read); the Dockerfile's ``USER`` is checked to be non-root.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import sysconfig
import time
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.slow

DOCKERFILE = REPO / "Dockerfile"
STEPS = "scripts/container-steps.sh"


def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of a Dockerfile, continuation lines joined, comments dropped."""
    joined = re.sub(r"\\\n\s*", " ", "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#")))
    return [(m.group(1).upper(), m.group(2).strip()) for m in re.finditer(r"^\s*(\w+)\s+(.*)$", joined, re.M)]


def stages(text: str) -> list[list[tuple[str, str]]]:
    out: list[list[tuple[str, str]]] = []
    for ins in instructions(text):
        if ins[0] == "FROM":
            out.append([])
        if out:
            out[-1].append(ins)
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_dockerfile_shape():
    text = DOCKERFILE.read_text()
    build, runtime = stages(text)
    arg = next(a for i, a in instructions(text) if i == "ARG" and a.startswith("PYTHON_IMAGE="))
    assert re.search(r"@sha256:[0-9a-f]{64}$", arg), "the base image is pinned by digest"
    runs = [a for i, a in build if i == "RUN" and STEPS in a]
    assert [r.split(STEPS, 1)[1].split()[0] for r in runs] == ["venv", "install", "models", "check"]
    users = [a for i, a in runtime if i == "USER"]
    assert users and users[-1] not in ("root", "0"), "the service runs as a non-root user"
    assert any(i == "HEALTHCHECK" and "/v1/health" in a for i, a in runtime)
    assert not any(i == "RUN" and "models install" in a for i, a in runtime)  # nothing fetched at start
    ignored = (REPO / ".dockerignore").read_text().split()
    assert {".venv", "tests", "**/*.db"} <= set(ignored)


def test_container_steps_build_and_serve_a_healthy_service(tmp_path):
    text = DOCKERFILE.read_text()
    build, runtime = stages(text)
    # The build context: what the build stage COPYs into /build (never .venv, tests or galleries).
    context = tmp_path / "build"
    for ins, args in build:
        if ins == "COPY":
            *sources, dest = args.split()
            for src in sources:
                target = context / (Path(dest).relative_to("/build") if dest.rstrip("/") != "/build" else "")
                target = target / Path(src).name if dest.endswith("/") else target
                target.parent.mkdir(parents=True, exist_ok=True)
                (shutil.copytree if (REPO / src).is_dir() else shutil.copyfile)(REPO / src, target)
    wheels = tmp_path / "wheels"
    made = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(wheels), str(context)],
                          capture_output=True, text=True, timeout=300)
    if made.returncode != 0:
        pytest.skip(f"cannot build faceprint's wheel here (build isolation needs setuptools>=77): {made.stderr[-500:]}")
    (wheel,) = wheels.glob("faceprint-*.whl")

    prefix = tmp_path / "opt-faceprint"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FACEPRINT_", "XDG_", "VIRTUAL_ENV"))}
    npm_cache = subprocess.run(["npm", "config", "get", "cache"], capture_output=True, text=True,
                               timeout=60).stdout.strip() if shutil.which("npm") else ""
    env.update(PREFIX=str(prefix), PIP_INSTALL_ARGS="--no-deps --no-index", npm_config_offline="true",
               npm_config_cache=npm_cache or str(tmp_path / "npm-cache"),
               PATH=f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}", HOME=str(tmp_path / "build-home"))

    def step(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(["bash", str(context / STEPS), *args], cwd=context, env=env, capture_output=True,
                              text=True, timeout=300)

    for ins, args in build:
        if ins != "RUN" or STEPS not in args:
            continue
        words = args.split(STEPS, 1)[1].split()
        name = words[0]
        if name == "install":
            words = ["install", str(wheel)]
        if name == "models" and shutil.which("npm") is None:
            pytest.skip("needs npm to run the image's `models` step (faceprint models install faceplugin)")
        done = step(*words)
        if name == "models" and done.returncode != 0 and re.search(r"ENOTCACHED|offline", done.stderr + done.stdout):
            pytest.skip("the faceplugin package is not in npm's cache (run `make install-models` once with a network)")
        assert done.returncode == 0, f"step {words}:\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}"
        if name == "venv":  # the dependencies of this test run, after the new venv's own packages
            new_site = Path(subprocess.check_output(
                [str(prefix / "bin" / "python"), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                text=True).strip())
            (new_site / "zz-test-dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")

    # The runtime stage's environment, with the prefix and the data folder moved under tmp_path.
    data = tmp_path / "data"
    data.mkdir()
    run_env = dict(env)
    for ins, args in runtime:
        if ins == "ENV":
            for key, value in re.findall(r"(\w+)=(\S+)", args):
                run_env[key] = value.replace("/opt/faceprint", str(prefix)).replace("/data", str(data)).replace(
                    "$PATH", env["PATH"])
    for path in (prefix / "models").rglob("*"):  # the image's files are not the service's to change
        path.chmod(path.stat().st_mode & ~0o222)
    imported = subprocess.run([str(prefix / "bin" / "python"), "-c", "import faceprint, sys; print(faceprint.__file__)"],
                              env=run_env, capture_output=True, text=True, timeout=60)
    assert imported.stdout.startswith(str(prefix)), imported.stdout + imported.stderr  # the wheel's faceprint

    port = free_port()
    cmd = json.loads(next(a for i, a in runtime if i == "CMD"))
    cmd = [str(port) if word == "8000" else word for word in cmd]
    cmd = ["127.0.0.1" if word == "0.0.0.0" else word for word in cmd]  # the test's machine: loopback
    server = subprocess.Popen(["sh", str(REPO / "scripts" / "container-entrypoint.sh"), *cmd], cwd=data, env=run_env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        health = next(a for i, a in runtime if i == "HEALTHCHECK")
        check = json.loads(health.split("CMD", 1)[1].strip().replace("8000", str(port)))
        deadline = time.monotonic() + 90
        while True:
            probe = subprocess.run(check, env=run_env, capture_output=True, text=True, timeout=30)
            if probe.returncode == 0:
                break
            assert server.poll() is None, f"the service stopped:\n{server.communicate()[0][-3000:]}"
            assert time.monotonic() < deadline, f"unhealthy after 90 s: {probe.stderr[-1000:]}"
            time.sleep(1)
        assert (data / "gallery.db").is_file()  # made by the entry point on the first start
        # the web page's static files came with the wheel
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10) as page:
            assert page.status == 200 and b"<html" in page.read().lower()
        # the same check against a port nobody serves is unhealthy
        dead = subprocess.run([w.replace(str(port), str(free_port())) for w in check], env=run_env,
                              capture_output=True, text=True, timeout=30)
        assert dead.returncode != 0
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
    # A later start finds the gallery (no second `gallery init`, which would refuse).
    again = subprocess.run(["sh", str(REPO / "scripts" / "container-entrypoint.sh"), "serve", "--help"], cwd=data,
                           env=run_env, capture_output=True, text=True, timeout=120)
    assert again.returncode == 0 and "already exists" not in again.stderr, again.stderr[-2000:]
