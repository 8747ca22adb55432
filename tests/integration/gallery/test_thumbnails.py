"""Face pictures are raw biometric data: a gallery keeps none unless asked (``thumbnails=True``,
``--keep-thumbnails``), and what shows faces (clustering's contact sheets) still works without
them, cutting each face from its photo, or drawing a placeholder when the photo is gone."""

from __future__ import annotations

import io
import shutil
import sqlite3
from contextlib import closing
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from faceprint.clustering.people import People, contact_sheet_tile_box
from faceprint.gallery import Gallery, PhotoFace
from faceprint.gallery.thumbnails import crop_face, placeholder
from faceprint.imageio import load_image
from tests.conftest import face_image
from tests.integration.test_cli import faceprint, one_json

#: The first bytes of every JPEG Pillow writes (SOI, then the JFIF header): a stored thumbnail.
JPEG_HEADER = b"\xff\xd8\xff\xe0\x00\x10JFIF"
PHOTOS = ("collins.jpg", "collins_2.jpg", "hopper.jpg", "hopper_2.jpg", "two_people.jpg")
TILE = 96  # People.contact_sheet's default size


def stored(db: Path, table: str) -> int:
    """Thumbnails stored in ``table`` of the SQLite gallery ``db`` (its own SQL, not the library's)."""
    with closing(sqlite3.connect(db)) as con:
        count: int = con.execute(f"SELECT COUNT(thumbnail) FROM {table}").fetchone()[0]
    return count


def raw_bytes(db: Path) -> bytes:
    """The gallery's files as they are on disk (the database, its WAL and shared memory)."""
    return b"".join(p.read_bytes() for p in sorted(db.parent.glob(db.name + "*")))


@pytest.fixture()
def photos(tmp_path) -> Path:
    """The shipped photos copied into a folder of their own (the tests delete and change them)."""
    folder = tmp_path / "photos"
    folder.mkdir()
    for name in PHOTOS:
        shutil.copyfile(face_image(name), folder / name)
    return folder


# --- enrolment --------------------------------------------------------------------------------
def test_a_library_gallery_keeps_no_face_picture_unless_asked(tmp_path, analyzer):
    db = tmp_path / "people.db"
    with Gallery.open(db, analyzer=analyzer) as g:
        assert g.thumbnails is False and Gallery.in_memory(analyzer).thumbnails is False
        (enrolled,) = g.enroll("Collins", [face_image("collins.jpg")]).enrolled
        assert g.thumbnail(enrolled.face_id) is None and not g.template(enrolled.face_id).has_thumbnail
        assert g.stats().thumbnails == 0
    assert stored(db, "faces") == 0 and JPEG_HEADER not in raw_bytes(db)
    with Gallery.open(db, analyzer=analyzer, thumbnails=True) as g:
        (enrolled,) = g.enroll("Hopper", [face_image("hopper.jpg")]).enrolled
        assert g.thumbnail(enrolled.face_id)[:3] == b"\xff\xd8\xff" and g.template(enrolled.face_id).has_thumbnail
    assert stored(db, "faces") == 1


def test_enroll_command_stores_no_thumbnail_by_default_and_does_with_keep_thumbnails(tmp_path):
    db = tmp_path / "people.db"
    proc = faceprint("--gallery", str(db), "enroll", "Collins", str(face_image("collins.jpg")),
                     str(face_image("collins_2.jpg")), "--json")
    assert proc.returncode == 0, proc.stderr
    assert len(one_json(proc)["enrolled"]) == 2
    assert stored(db, "faces") == 0
    assert JPEG_HEADER not in raw_bytes(db)  # no face picture anywhere in the files
    # asked for: this command's faces keep theirs (the choice is each command's, not the gallery's)
    proc = faceprint("--gallery", str(db), "enroll", "Hopper", str(face_image("hopper.jpg")), "--keep-thumbnails", "--json")
    assert proc.returncode == 0, proc.stderr
    (face,) = one_json(proc)["enrolled"]
    assert stored(db, "faces") == 1
    with Gallery.open(db) as g:
        assert g.thumbnail(face["face_id"])[:3] == b"\xff\xd8\xff"
        assert [t.has_thumbnail for t in g.templates("Collins")] == [False, False]
    assert "--keep-thumbnails" in faceprint("enroll", "--help", columns=200).stdout


# --- clustering -------------------------------------------------------------------------------
def all_faces(people: People) -> list[PhotoFace]:
    return sorted([f for p in people.people() for f in p.faces] + people.unsorted(), key=lambda f: f.id)


def tiles(sheet: bytes, n: int, columns: int = 8) -> list[np.ndarray]:
    with Image.open(io.BytesIO(sheet)) as im:
        rgb = np.asarray(im.convert("RGB")).astype(np.float32)
    boxes = [contact_sheet_tile_box(k, columns, TILE) for k in range(n)]
    return [rgb[top:bottom, left:right] for left, top, right, bottom in boxes]


def difference(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.float32) - b.astype(np.float32)).mean())


def test_contact_sheets_cut_faces_from_their_photos_when_no_thumbnail_was_kept(tmp_path, photos, analyzer):
    db = tmp_path / "photos.db"
    with Gallery.open(db, analyzer=analyzer) as g:
        people = People(g)
        report = people.add_photos(sorted(str(p) for p in photos.iterdir()))
        faces = all_faces(people)
        assert report.faces_added == len(faces) >= 5
        assert stored(db, "photo_faces") == 0 and JPEG_HEADER not in raw_bytes(db)

        # each tile is its face, cut from the photo: close to the crop, far from the placeholder
        blank = placeholder(TILE)
        for face, tile in zip(faces, tiles(people.contact_sheet(faces), len(faces))):
            expected = crop_face(load_image(face.path), face.box, TILE)
            assert difference(tile, expected) < 12, face
            assert difference(tile, blank) > 2 * difference(tile, expected), face
        picture = people.thumbnail(faces[0].id)
        assert picture is not None and picture[:3] == b"\xff\xd8\xff"

        # a photo gone, another changed since (its box would point elsewhere): placeholders
        gone, changed = Path(faces[0].path), next(Path(f.path) for f in faces if f.path != faces[0].path)
        gone.unlink()
        Image.open(face_image("hopper_2.jpg")).save(changed, quality=60)
        for face, tile in zip(faces, tiles(people.contact_sheet(faces), len(faces))):
            if Path(face.path) in (gone, changed):
                assert difference(tile, blank) < 6, face
                assert people.thumbnail(face.id) is None
            else:
                assert difference(tile, blank) > 10, face
        written = people.write_contact_sheets(tmp_path / "sheets")
        assert written and all(p.read_bytes()[:3] == b"\xff\xd8\xff" for p in written)


def test_contact_sheets_use_kept_thumbnails_even_when_the_photos_are_gone(tmp_path, photos, analyzer):
    db = tmp_path / "photos.db"
    with Gallery.open(db, analyzer=analyzer, thumbnails=True) as g:
        people = People(g)
        people.add_photos(sorted(str(p) for p in photos.iterdir()))
        faces = all_faces(people)
        assert stored(db, "photo_faces") == len(faces)
        shutil.rmtree(photos)
        blank = placeholder(TILE)
        assert all(difference(tile, blank) > 10 for tile in tiles(people.contact_sheet(faces), len(faces)))
        assert all((people.thumbnail(f.id) or b"")[:3] == b"\xff\xd8\xff" for f in faces)


def test_cluster_command_stores_no_thumbnail_by_default_and_does_with_keep_thumbnails(tmp_path, photos):
    default, kept = tmp_path / "default.db", tmp_path / "kept.db"
    doc = one_json(faceprint("--gallery", str(default), "cluster", str(photos), "--json", "--out", str(tmp_path / "sheets")))
    assert doc["faces_added"] >= 5 and doc["contact_sheets"]
    assert all(Path(s).read_bytes()[:3] == b"\xff\xd8\xff" for s in doc["contact_sheets"])
    assert stored(default, "photo_faces") == 0 and JPEG_HEADER not in raw_bytes(default)
    doc = one_json(faceprint("--gallery", str(kept), "cluster", str(photos), "--keep-thumbnails", "--json"))
    assert stored(kept, "photo_faces") == doc["faces_added"] >= 5
