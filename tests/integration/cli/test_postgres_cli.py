"""The command line on a PostgreSQL gallery (``--gallery postgresql://...``), against the real
PostgreSQL the test session starts (tests/postgres.py): the same commands and exit codes as on a
file, and a URL's password never shown."""

from __future__ import annotations

import json

from tests.conftest import face_image
from tests.integration.service.conftest import cli

PASSWORD = "hunter2-secret"  # the socket's trust authentication ignores it: only its display is tested


def test_a_gallery_in_postgresql_from_the_command_line(postgres_server):
    url = postgres_server.url(postgres_server.create_database(), password=PASSWORD)
    outputs = []

    def run(*args: str, code: int = 0) -> dict:
        proc = cli(url, *args, "--json")
        outputs.append(proc.stdout + proc.stderr)
        assert proc.returncode == code, proc.stdout + proc.stderr
        return json.loads(proc.stdout)

    # an empty database holds no gallery: reading commands create nothing
    assert run("gallery", "stats", code=2)["error"]["code"] == "gallery_not_found"
    assert run("people", "list", code=2)["error"]["code"] == "gallery_not_found"
    assert run("gallery", "init")["gallery"].startswith("postgresql://")
    again = run("gallery", "init", code=2)["error"]
    assert again["code"] == "invalid_argument" and "already exists" in again["message"]

    run("enroll", "Collins", str(face_image("collins.jpg")), "--metadata", '{"site": "a"}')
    run("enroll", "Hopper", str(face_image("hopper.jpg")), "--metadata", '{"site": "b"}')
    found = run("identify", str(face_image("collins_2.jpg")))
    assert [f["identity"] for f in found["results"][0]["faces"]] == ["Collins"]
    elsewhere = run("identify", str(face_image("collins_2.jpg")), "--where", "site=b")
    assert [f["identity"] for f in elsewhere["results"][0]["faces"]] == [None]
    stats = run("gallery", "stats")
    assert (stats["subjects"], stats["faces"], stats["index"]) == (2, 2, "database")

    proc = cli(url, "people", "forget", "Collins", "--yes", "--json")
    outputs.append(proc.stdout + proc.stderr)
    assert proc.returncode == 0, proc.stderr
    gone = run("identify", str(face_image("collins_2.jpg")))
    assert [f["identity"] for f in gone["results"][0]["faces"]] == [None]

    missing = cli(postgres_server.url("no_such_database", password=PASSWORD), "gallery", "stats", "--json")
    outputs.append(missing.stdout + missing.stderr)
    assert missing.returncode == 2 and json.loads(missing.stdout)["error"]["code"] == "gallery_not_found"

    everything = "\n".join(outputs)
    assert PASSWORD not in everything and "***" in everything
