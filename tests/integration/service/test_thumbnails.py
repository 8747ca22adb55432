"""The service keeps no face picture unless started with ``--keep-thumbnails``
(``Settings.keep_thumbnails``): subjects then have ``thumbnail_face_id`` null and the thumbnail
endpoint answers a 404 envelope that says why. With it, the endpoint serves the kept chip.
(``faceprint serve --keep-thumbnails`` itself is driven by test_web.py's site.)"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path

from tests.conftest import face_image
from tests.integration.service.conftest import InProcess, envelope, make_keys

COLLINS, COLLINS_2 = face_image("collins.jpg"), face_image("collins_2.jpg")
JPEG_HEADER = b"\xff\xd8\xff\xe0\x00\x10JFIF"  # the start of every JPEG Pillow writes


@contextmanager
def service(gallery: Path, **settings: object) -> Iterator[InProcess]:
    from faceprint.service import Settings

    keys = make_keys(gallery)
    app = InProcess(Settings(gallery=gallery, **settings))  # type: ignore[arg-type]
    app.keys = keys  # type: ignore[attr-defined]
    try:
        yield app
    finally:
        app.close()


def enrol_collins(app: InProcess) -> tuple[int, list[int]]:
    m = app.keys.manage  # type: ignore[attr-defined]
    sid = app.call("POST", "/v1/subjects", key=m, json_body={"name": "Eileen Collins"}).json()["id"]
    report = app.call("POST", f"/v1/subjects/{sid}/faces", key=m, form={"images": [COLLINS, COLLINS_2]})
    assert report.status == 200, report.body
    return sid, [e["face_id"] for e in report.json()["enrolled"]]


def stored_thumbnails(gallery: Path) -> int:
    with closing(sqlite3.connect(gallery)) as con:
        count: int = con.execute("SELECT COUNT(thumbnail) FROM faces").fetchone()[0]
    return count


def test_by_default_no_thumbnail_is_kept_and_the_endpoint_says_why(tmp_path):
    gallery = tmp_path / "gallery.db"
    with service(gallery) as app:
        m = app.keys.manage  # type: ignore[attr-defined]
        sid, face_ids = enrol_collins(app)
        assert len(face_ids) == 2
        listed = app.call("GET", "/v1/subjects", key=m).json()["subjects"]
        assert [(s["id"], s["thumbnail_face_id"]) for s in listed] == [(sid, None)]
        detail = app.call("GET", f"/v1/subjects/{sid}", key=m).json()
        assert detail["thumbnail_face_id"] is None and [f["has_thumbnail"] for f in detail["faces"]] == [False, False]
        doc = envelope(app.call("GET", f"/v1/subjects/{sid}/faces/{face_ids[0]}/thumbnail", key=m), 404, "template_not_found")
        assert doc["error"]["details"] == {"face_id": face_ids[0], "reason": "no_thumbnail"}
        assert doc["error"]["message"] == (f"no thumbnail stored for face {face_ids[0]}: the gallery keeps none unless "
                                           "started with --keep-thumbnails")
        # a face that does not exist is another 404: no reason "no_thumbnail"
        missing = envelope(app.call("GET", f"/v1/subjects/{sid}/faces/999999/thumbnail", key=m), 404, "template_not_found")
        assert missing["error"]["details"].get("reason") != "no_thumbnail"
    assert stored_thumbnails(gallery) == 0
    assert JPEG_HEADER not in b"".join(p.read_bytes() for p in tmp_path.glob("gallery.db*"))


def test_keep_thumbnails_serves_the_kept_chip(tmp_path):
    from faceprint.service import Settings

    gallery = tmp_path / "gallery.db"
    settings = Settings(gallery=gallery, keep_thumbnails=True)
    assert Settings.from_json(settings.to_json()).keep_thumbnails is True  # reaches every worker process
    with service(gallery, keep_thumbnails=True) as app:
        m = app.keys.manage  # type: ignore[attr-defined]
        sid, face_ids = enrol_collins(app)
        detail = app.call("GET", f"/v1/subjects/{sid}", key=m).json()
        assert detail["thumbnail_face_id"] == face_ids[0] and all(f["has_thumbnail"] for f in detail["faces"])
        thumb = app.call("GET", f"/v1/subjects/{sid}/faces/{face_ids[0]}/thumbnail", key=m)
        assert thumb.status == 200 and thumb.header("content-type") == "image/jpeg" and thumb.body[:3] == b"\xff\xd8\xff"
        assert thumb.header("cache-control") == "private, max-age=300"
    assert stored_thumbnails(gallery) == 2
