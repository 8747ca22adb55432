"""The gallery with real photos: enrolment reasons, LFW identification, forgetting,
crash safety and several processes on one file."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import textwrap
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest

from faceprint.gallery import Gallery, SQLiteStore
from tests.conftest import REPO, shared

FR = ("face_recognition_examples", "tests", "test_images")


@pytest.fixture()
def gallery(gallery_location, analyzer):
    """A new gallery on each backend (a SQLite file, a PostgreSQL database)."""
    g = Gallery.open(gallery_location, analyzer=analyzer)
    yield g
    g.close()


def test_enrolment_is_partial_success_with_a_reason_per_image(gallery, tmp_path):
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8\xff\xe0garbage")
    gallery.thumbnails = True  # asked for: a gallery keeps no face picture by default
    images = [
        shared(*FR, "obama.jpg"),
        shared(*FR, "obama2.jpg"),
        shared(*FR, "obama.jpg"),  # the same file again
        shared("face_recognition_examples", "examples", "two_people.jpg"),
        shared("inspireface_tests", "images", "bulk", "view.jpg"),
        broken,
    ]
    report = gallery.enroll("Barack Obama", images, metadata={"group": "presidents"})
    assert [e.path for e in report.enrolled] == [str(images[0]), str(images[1])]
    reasons = {r.path: r.code for r in report.rejected}
    assert reasons == {
        str(images[2]): "duplicate_image",
        str(images[3]): "multiple_faces",
        str(images[4]): "no_face",
        str(broken): "invalid_image",
    }
    doc = report.to_dict()
    assert set(doc) == {"enrolled", "rejected"} and doc["rejected"][0]["reason"]["code"]
    subject = gallery.subject("Barack Obama")
    assert subject.face_count == 2 and subject.metadata == {"group": "presidents"}
    assert gallery.thumbnail(report.enrolled[0].face_id)[:3] == b"\xff\xd8\xff"  # a JPEG chip


def test_a_bystander_in_the_background_does_not_block_enrolment(gallery):
    # fr-detect finds part of a second, much smaller face at the edge of these lfw_dev crops
    # (HOG finds it in some); the subject is the face at least twice its side.
    lfw = shared("lfw_dev", "images")
    for person in ("Bob_Graham", "Jennifer_Garner", "Jeremy_Greenstock"):
        photo = lfw / person / f"{person}_0001.jpg"
        report = gallery.enroll(person, [photo])
        assert [e.path for e in report.enrolled] == [str(photo)], report.to_dict()
        (found,) = [f for f in gallery.identify(photo) if f.identity is not None]
        assert found.identity == person


def test_the_dominant_face_rule():
    from faceprint.gallery.gallery import is_dominant
    from faceprint.types import Box, Face, Landmarks

    def face(side: float) -> Face:
        return Face(Box(0, 0, side, side), 1.0, Landmarks(np.zeros((5, 2)), "dlib5"))

    assert is_dominant([face(100)], 40) and is_dominant([face(100), face(50), face(39)], 40)
    assert not is_dominant([face(100), face(51)], 40) and not is_dominant([face(104), face(94)], 40)
    assert is_dominant([face(60), face(39.9)], 40)  # too small to enrol, whatever the ratio
    assert not is_dominant([], 40)


def test_tiny_face_is_rejected_as_too_small(gallery, tmp_path):
    from PIL import Image

    img = Image.open(shared(*FR, "obama.jpg")).convert("RGB")
    small = tmp_path / "small.png"
    img.resize((img.width // 8, img.height // 8)).save(small)
    report = gallery.enroll("tiny", [small])
    assert [r.code for r in report.rejected] in (["face_too_small"], ["no_face"])


def test_identify_and_forget_with_real_photos(gallery):
    gallery.enroll("obama", [shared(*FR, "obama.jpg"), shared(*FR, "obama2.jpg")])
    gallery.enroll("biden", [shared(*FR, "biden.jpg")])
    (face,) = gallery.identify(shared(*FR, "obama3.jpg"))
    assert face.identity == "obama" and face.candidates[0].subject == "obama"
    two = gallery.identify(shared("face_recognition_examples", "examples", "knn_examples", "test", "obama_and_biden.jpg"))
    # The photo also shows a third, unenrolled person in the background: unknown, not a guess.
    assert sorted(f.identity for f in two if f.identity) == ["biden", "obama"]
    assert len(two) == 3 and sum(f.identity is None for f in two) == 1
    assert gallery.forget("obama") == 2
    # Its own enrolment photo no longer finds it.
    (face,) = gallery.identify(shared(*FR, "obama.jpg"), top_k=10)
    assert face.identity != "obama" and all(c.subject != "obama" for c in face.candidates)
    assert gallery.check_consistency()


def test_lfw_identification(tmp_path, analyzer, record_property):
    """Enrol the first image of people with >= 2 images, probe with the rest; people never
    enrolled must mostly come back unknown at FAR 1e-3. A fixed subsample keeps it quick."""
    root = shared("lfw_dev")
    by_person: dict[str, list[str]] = defaultdict(list)
    for row in csv.DictReader(open(root / "identities.csv")):
        by_person[row["identity"]].append(str(root / row["path"]))
    multi = sorted(p for p, imgs in by_person.items() if len(imgs) >= 2)[::4]  # 124 people
    singles = sorted(p for p, imgs in by_person.items() if len(imgs) == 1)[::8]  # 152 strangers
    g = Gallery.open(tmp_path / "lfw.db", analyzer=analyzer)
    for person in multi:
        g.enroll(person, by_person[person][:1])
    enrolled = {s.name for s in g.subjects()}
    hits = total = 0
    for person in multi:
        if person not in enrolled:
            continue
        for path in by_person[person][1:4]:
            faces = g.identify(path)
            if not faces:
                continue
            centre = min(faces, key=lambda f: abs(f.box.center[0] - 75) + abs(f.box.center[1] - 75))
            total += 1
            hits += bool(centre.candidates) and centre.candidates[0].subject == person
    unknown = strangers = 0
    for person in singles:
        faces = g.identify(by_person[person][0])
        if faces:
            centre = min(faces, key=lambda f: abs(f.box.center[0] - 75) + abs(f.box.center[1] - 75))
            strangers += 1
            unknown += centre.identity is None
    rank1, unknown_rate = hits / total, unknown / strangers
    record_property("lfw_rank1", rank1)
    record_property("lfw_strangers_unknown", unknown_rate)
    print(f"\nlfw_dev subsample: {len(enrolled)} enrolled, rank-1 {rank1:.4f} over {total} probes; "
          f"{unknown_rate:.4f} of {strangers} strangers unknown at FAR 1e-3")
    # Measured (2026-11-28): rank-1 0.97, strangers unknown 0.90. A 1:1 FAR of 1e-3 against
    # 124 enrolled people gives a stranger about 1 - (1 - 1e-3)**124 = 12% chance of some false
    # match, so ~0.89 unknown is what the calibration predicts. Floors leave a margin.
    assert rank1 >= 0.93
    assert unknown_rate >= 0.85
    g.close()


ENROL_SCRIPT = textwrap.dedent(
    """
    import sys
    from faceprint.gallery import Gallery
    gallery = Gallery.open(sys.argv[1])
    for line in open(sys.argv[2]):
        name, path = line.rstrip("\\n").split("\\t")
        report = gallery.enroll(name, [path])
        for e in report.enrolled:
            print("committed", e.face_id, name, flush=True)
        for r in report.rejected:
            print("rejected", r.code, name, flush=True)
    print("done", flush=True)
    """
)

SEARCH_SCRIPT = textwrap.dedent(
    """
    import sys, time
    from faceprint.gallery import Gallery
    gallery = Gallery.open(sys.argv[1])
    deadline = time.time() + float(sys.argv[3])
    n = 0
    while time.time() < deadline:
        gallery.identify(sys.argv[2])
        n += 1
    print("searches", n, flush=True)
    """
)


def _lfw_jobs(count: int, offset: int = 0) -> list[tuple[str, str]]:
    root = shared("lfw_dev")
    rows = list(csv.DictReader(open(root / "identities.csv")))[offset : offset + count]
    return [(r["identity"], str(root / r["path"])) for r in rows]


def _start(script: str, *args: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    return subprocess.Popen([sys.executable, "-c", script, *args], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)


def _start_enrolment(db: Path | str, jobs: list[tuple[str, str]], jobs_file: Path) -> subprocess.Popen:
    jobs_file.write_text("".join(f"{n}\t{p}\n" for n, p in jobs))
    return _start(ENROL_SCRIPT, str(db), str(jobs_file))


def test_sigkill_mid_enrolment_loses_nothing_committed(tmp_path, analyzer, gallery_location):
    db = gallery_location
    jobs = _lfw_jobs(400)
    proc = _start_enrolment(db, jobs, tmp_path / "jobs.tsv")
    committed: list[int] = []
    while len(committed) < 25:
        line = proc.stdout.readline()
        assert line, proc.stderr.read()
        if line.startswith("committed"):
            committed.append(int(line.split()[1]))
    os.kill(proc.pid, signal.SIGKILL)  # in the middle of the next enrolment
    proc.wait()
    g = Gallery.open(db, analyzer=analyzer)
    if isinstance(db, Path):
        assert isinstance(g.store, SQLiteStore) and g.store.integrity_check() == ["ok"]
    stored = {t.id for s in g.subjects() for t in g.templates(s.name)}
    assert set(committed) <= stored  # everything reported is there
    assert len(stored) <= len(committed) + 1  # at most the one in flight, whole or absent
    assert all(s.face_count > 0 for s in g.subjects())  # no half-written subject
    assert g.check_consistency()
    g.close()


def test_two_writers_and_a_reader_on_one_gallery(tmp_path, analyzer, gallery_location):
    db = gallery_location
    Gallery.open(db, analyzer=analyzer).enroll("seed", [shared(*FR, "obama.jpg")])
    writers = []
    for offset in (0, 1000):
        # Both start with the same image: one enrols it, the other gets duplicate_image.
        same = [("twice", str(shared("face_recognition_examples", "tests", "test_images", "biden.jpg")))]
        writers.append(_start_enrolment(db, same + _lfw_jobs(40, offset), tmp_path / f"jobs{offset}.tsv"))
    reader = _start(SEARCH_SCRIPT, str(db), str(shared(*FR, "obama2.jpg")), "8")
    committed: list[int] = []
    outputs = ""
    for proc in writers:
        out, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err
        assert out.strip().endswith("done")
        committed += [int(line.split()[1]) for line in out.splitlines() if line.startswith("committed")]
        outputs += out
    assert [line.split()[0] for line in outputs.splitlines() if line.endswith(" twice")].count("committed") == 1
    assert "rejected duplicate_image twice" in outputs
    out, err = reader.communicate(timeout=600)
    assert reader.returncode == 0, err
    assert int(out.split()[1]) > 0
    g = Gallery.open(db, analyzer=analyzer)
    stored = {t.id for s in g.subjects() for t in g.templates(s.name)}
    assert set(committed) <= stored and len(committed) >= 60
    assert g.check_consistency()
    (face,) = g.identify(shared(*FR, "obama2.jpg"))
    assert face.identity == "seed"
    g.close()


def test_verify_against_an_enrolled_subject(gallery):
    gallery.enroll("obama", [shared(*FR, "obama.jpg"), shared(*FR, "obama2.jpg")])
    sid = gallery.subject("obama").id
    same = gallery.verify_subject(shared(*FR, "obama3.jpg"), sid)
    other = gallery.verify_subject(shared(*FR, "biden.jpg"), sid, far=1e-2)
    assert same.verification.match and not other.verification.match
    assert same.face_id in {t.id for t in gallery.templates("obama")}
    doc = same.to_dict()
    assert doc["subject"] == {"id": sid, "name": "obama"} and len(doc["faces"]) == 1
    assert doc["faces"][0]["path"].endswith("obama3.jpg")
