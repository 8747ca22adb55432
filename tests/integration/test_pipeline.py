"""The pipeline on real photos from ../shared/data, checked against each source's ground truth."""

from __future__ import annotations

import csv
import io

import numpy as np
import pytest
from PIL import Image

import faceprint
from faceprint.errors import FaceprintError, InvalidImageError, NoFaceError
from tests.conftest import shared

FR = ("face_recognition_examples", "tests", "test_images")


# --- face_recognition's own assertions ------------------------------------------------------
def test_face_recognition_pairs_hold(analyzer):
    root = shared("face_recognition_examples")
    for row in csv.DictReader(open(root / "pairs.csv")):
        result = analyzer.verify(root / row["path_a"], root / row["path_b"])
        assert result.match == (row["same"] == "1"), (row, result)
        assert result.far == 1e-3 and result.threshold_source == "calibrated"


def test_obama_box_and_landmarks_agree_with_the_reference(analyzer):
    faces = analyzer.detect(shared(*FR, "obama.jpg"))
    assert len(faces) == 1
    # face_recognition asserts this HOG box (with one upsampling); ours may differ a little.
    assert faces[0].box.iou(faceprint.Box(349, 142, 617, 409)) > 0.8
    nose = np.array(faces[0].landmarks["nose_base"])
    assert np.hypot(*(nose - (496, 295))) < 8  # the 5-point nose in face_recognition's test


def test_partial_faces_at_the_image_edge_are_found(analyzer):
    for name in ("obama_partial_face.jpg", "obama_partial_face2.jpg"):
        assert len(analyzer.detect(shared(*FR, name))) == 1


def test_rgba_png_loads_as_rgb_and_has_one_face(analyzer):
    path = shared(*FR, "32bit.png")
    assert faceprint.load_image(path).shape == (1200, 626, 3)
    (face,) = analyzer.detect(path)
    # face_recognition asserts top=290, bottom=558 from HOG with one upsampling; our policy
    # does not upsample a 1200-px image, and HOG's box scale then differs (302..611).
    overlap = min(face.box.y2, 558) - max(face.box.y1, 290)
    assert overlap / (max(face.box.y2, 558) - min(face.box.y1, 290)) > 0.75


def test_two_faces_verify_uses_the_largest_and_says_so(analyzer):
    two = shared("face_recognition_examples", "examples", "two_people.jpg")
    faces = analyzer.detect(two)
    assert len(faces) == 2 and faces[0].box.area >= faces[1].box.area
    result = analyzer.verify(two, two, face_b=1)
    assert result.faces[0].selection == "largest" and result.faces[0].faces_found == 2
    assert result.faces[1].selection == "index" and result.faces[1].face_index == 1
    assert result.match is False  # two different people in one photo
    assert analyzer.verify(two, two).similarity == pytest.approx(1.0, abs=1e-5)


# --- compreface ----------------------------------------------------------------------------
def _match_noses(faces, noses):
    """CompreFace's criterion: each box matches one nose point inside it, one to one."""
    unmatched = list(range(len(noses)))
    false_pos = 0
    for f in sorted(faces, key=lambda f: -f.score):
        hit = next((i for i in unmatched if f.box.x1 <= noses[i][0] <= f.box.x2 and f.box.y1 <= noses[i][1] <= f.box.y2), None)
        if hit is None:
            false_pos += 1
        else:
            unmatched.remove(hit)
    return len(noses) - len(unmatched), false_pos


def _compreface_truth():
    root = shared("compreface_samples")
    noses: dict[str, list[tuple[float, float]]] = {}
    for row in csv.DictReader(open(root / "noses.csv")):
        noses.setdefault(row["path"], []).append((float(row["nose_x"]), float(row["nose_y"])))
    counts = {row["path"]: int(row["face_count"]) for row in csv.DictReader(open(root / "face_counts.csv"))}
    return root, counts, noses


def test_compreface_face_counts(analyzer):
    root, counts, noses = _compreface_truth()
    exact, found, false_pos = 0, 0, 0
    for path, count in counts.items():
        faces = analyzer.detect(root / path)
        exact += len(faces) == count
        hits, fp = _match_noses(faces, noses.get(path, []))
        found, false_pos = found + hits, false_pos + fp
    total = sum(counts.values())
    # Measured with the default (hog, default policy): 15 of 18 images exact; 44 of 46 faces
    # found, 1 false positive. HOG is a frontal detector: it misses one turned face in
    # 000_5.jpg and one small face in 016_8.jpg, and takes a 43-px patch of 013_4.jpg (score
    # 0.11) for a face. These bounds are the measurement; a regression breaks them.
    assert total == 46
    assert exact >= 15 and found >= 44 and false_pos <= 1, (exact, found, false_pos)


def test_compreface_mmod_gets_the_images_hog_misses():
    root, counts, noses = _compreface_truth()
    mmod = faceprint.Analyzer(detector="mmod")
    for path in ("images/000_5.jpg", "images/013_4.jpg"):
        faces = mmod.detect(root / path)
        assert len(faces) == counts[path]
        assert _match_noses(faces, noses[path]) == (counts[path], 0)


def test_compreface_bad_files_are_invalid_image_not_a_crash():
    root = shared("compreface_samples", "format_edge_cases")
    for name in ("empty.png", "corrupted.png"):
        with pytest.raises(InvalidImageError) as info:
            faceprint.load_image(root / name)
        assert info.value.code == "invalid_image"
    truncated = root / "truncated.jpg"
    with pytest.raises(InvalidImageError):
        faceprint.load_image(truncated)
    lenient = faceprint.load_image(truncated, faceprint.ImageLimits(allow_truncated=True))
    assert lenient.shape == (225, 225, 3)


def test_compreface_einstein_formats_decode_to_the_same_picture(analyzer):
    root = shared("compreface_samples", "format_edge_cases")
    ref = faceprint.load_image(root / "einstein.png").astype(np.int16)
    for ext in ("jpeg", "webp", "bmp", "gif", "tiff", "ico"):
        img = faceprint.load_image(root / f"einstein.{ext}")
        assert img.shape == ref.shape and img.dtype == np.uint8, ext
        # Lossy formats and GIF's palette differ a little; the picture is the same.
        assert np.abs(img.astype(np.int16) - ref).mean() < 12, ext
        assert len(analyzer.detect(img)) == 1, ext


# --- inspireface ---------------------------------------------------------------------------
def test_scenery_has_no_face_and_verify_says_no_face(analyzer):
    view = shared("inspireface_tests", "images", "bulk", "view.jpg")
    assert analyzer.detect(view) == []
    assert analyzer.embed(view) == []
    with pytest.raises(NoFaceError) as info:
        analyzer.verify(view, shared(*FR, "obama.jpg"))
    assert info.value.code == "no_face"
    assert analyzer.detect(shared("inspireface_tests", "images", "crop", "no_face.png")) == []


def _inspireface_pairs():
    root = shared("inspireface_tests")
    return root, list(csv.DictReader(open(root / "pairs.csv")))


def test_inspireface_pairs_at_far_1e5(analyzer):
    # kun.jpg and jntm.jpg are PNGs named .jpg: content is sniffed, not the extension.
    root, rows = _inspireface_pairs()
    for row in rows:
        result = analyzer.verify(root / row["path_a"], root / row["path_b"], far=1e-5)
        assert result.match == (row["same"] == "1"), (row, result)


@pytest.mark.xfail(strict=True, reason=(
    "known weakness: dlib-resnet34 scores these East-Asian impostor pairs at 0.94-0.95 cosine, "
    "far above its LFW impostors (mean 0.84), so at the LFW-calibrated FAR 1e-3 threshold "
    "(0.926) they falsely match. A demographic differential of the model, not of the pipeline; "
    "strict so that a better model makes this test fail loudly and gets it removed."))
def test_inspireface_impostor_pairs_at_far_1e3(analyzer):
    root, rows = _inspireface_pairs()
    for row in rows:
        result = analyzer.verify(root / row["path_a"], root / row["path_b"])
        assert result.match == (row["same"] == "1"), (row, result)


# --- EXIF ----------------------------------------------------------------------------------
@pytest.mark.parametrize("orientation,transpose", [(6, Image.Transpose.ROTATE_90), (8, Image.Transpose.ROTATE_270), (3, Image.Transpose.ROTATE_180)])
def test_exif_rotated_photo_is_found_upright(analyzer, orientation, transpose):
    upright = Image.open(shared(*FR, "obama.jpg")).convert("RGB")
    # Store the pixels sideways and let the EXIF tag say how to turn them back, as phones do.
    stored = upright.transpose(transpose)
    exif = Image.Exif()
    exif[0x0112] = orientation
    buf = io.BytesIO()
    stored.save(buf, format="JPEG", quality=92, exif=exif.tobytes())
    data = buf.getvalue()
    img = faceprint.load_image(data)
    assert img.shape[:2] == (upright.height, upright.width)
    faces = analyzer.detect(data)
    assert len(faces) == 1 and faces[0].box.iou(faceprint.Box(349, 142, 617, 409)) > 0.7
    assert abs(faces[0].pose.roll) < 15


# --- batch ---------------------------------------------------------------------------------
def test_batch_results_equal_one_at_a_time(analyzer, tmp_path):
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 not really")
    paths = [shared(*FR, n) for n in ("obama.jpg", "biden.jpg")] + [bad, shared("face_recognition_examples", "examples", "two_people.jpg")]
    small_batches = faceprint.Analyzer(batch_size=1)
    for batch in (list(analyzer.embed_many(paths)), list(small_batches.embed_many(paths))):
        assert [r.source for r in batch] == [str(p) for p in paths]
        assert [len(r.faces) for r in batch] == [1, 1, 0, 2]
        assert batch[2].error is not None and batch[2].error.code == "invalid_image"
        for r, p in zip(batch, paths):
            if r.error is None:
                single = analyzer.embed(p)
                for a, b in zip(r.faces, single):
                    assert np.abs(a.embedding - b.embedding).max() < 1e-5
                    assert a.face.box == b.face.box


def test_module_level_api(tmp_path):
    path = shared(*FR, "obama.jpg")
    (face,) = faceprint.detect(path)
    (emb,) = faceprint.embed(open(path, "rb"))
    assert emb.embedding.dtype == np.float32 and abs(np.linalg.norm(emb.embedding) - 1) < 1e-5
    assert emb.face.box == face.box
    result = faceprint.verify(path, shared(*FR, "obama3.jpg"))
    assert result.match and set(result.to_dict()) >= {"similarity", "threshold", "far", "match", "model", "faces"}


def test_every_detector_finds_obama():
    path = shared("face_recognition_examples", "examples", "obama-480p.jpg")
    for name in ("hog", "haar", "mmod"):
        faces = faceprint.Analyzer(detector=name).detect(path)
        assert len(faces) >= 1, name
        assert faces[0].detector == name


def test_68_landmarks_on_request(analyzer):
    (face,) = faceprint.Analyzer(landmarks68=True).detect(shared(*FR, "obama.jpg"))
    assert face.landmarks68 is not None and face.landmarks68.points.shape == (68, 2)
    # face_recognition's test asserts 68-point landmark #10 of obama.jpg at (552, 399).
    assert np.hypot(*(face.landmarks68.points[10] - (552, 399))) < 8


def test_errors_never_escape_untyped(analyzer, tmp_path):
    for content in (b"", b"GIF89a", b"\x89PNG\r\n\x1a\n" + b"\0" * 30, bytes(range(256)) * 10):
        with pytest.raises(FaceprintError):
            analyzer.embed(content)
