"""The pipeline on real photos: the small public-domain faces shipped in tests/data/faces (these
run on any machine), and the photos in ../shared/data checked against each source's own ground
truth (these skip when ../shared is absent)."""

from __future__ import annotations

import csv
import io

import numpy as np
import pytest
from PIL import Image

import faceprint
from faceprint.errors import FaceprintError, InvalidImageError, NoFaceError
from tests.conftest import face_image, needs_pack, shared

FR = ("face_recognition_examples", "tests", "test_images")
COLLINS, COLLINS_2 = face_image("collins.jpg"), face_image("collins_2.jpg")
HOPPER, HOPPER_2 = face_image("hopper.jpg"), face_image("hopper_2.jpg")
TWO, NO_FACE = face_image("two_people.jpg"), face_image("no_face.png")


def _encode(img: Image.Image, fmt: str, **options: object) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **options)
    return buf.getvalue()


# --- the shipped faces -----------------------------------------------------------------------
def test_shipped_pairs_match_and_strangers_do_not(analyzer):
    # The "second photo" is the same photograph transformed (tests/data/faces/README.md).
    for a, b, same in ((COLLINS, COLLINS_2, True), (HOPPER, HOPPER_2, True), (COLLINS, HOPPER, False),
                       (COLLINS_2, HOPPER_2, False)):
        result = analyzer.verify(a, b)
        assert result.match is same, (a.name, b.name, result)
        assert result.far == 1e-3 and result.threshold_source == "calibrated"
        assert [f.faces_found for f in result.faces] == [1, 1]


# --- face_recognition's own assertions ------------------------------------------------------
def test_face_recognition_pairs_hold(analyzer):
    root = shared("face_recognition_examples")
    for row in csv.DictReader(open(root / "pairs.csv")):
        result = analyzer.verify(root / row["path_a"], root / row["path_b"])
        assert result.match == (row["same"] == "1"), (row, result)
        assert result.far == 1e-3 and result.threshold_source == "calibrated"


def test_obama_box_and_landmarks_agree_with_the_reference(dlib_analyzer):
    faces = dlib_analyzer.detect(shared(*FR, "obama.jpg"))
    assert len(faces) == 1
    # face_recognition asserts this HOG box (with one upsampling); ours may differ a little.
    assert faces[0].box.iou(faceprint.Box(349, 142, 617, 409)) > 0.8
    nose = np.array(faces[0].landmarks["nose_base"])
    assert np.hypot(*(nose - (496, 295))) < 8  # the 5-point nose in face_recognition's test


def test_partial_faces_at_the_image_edge_are_found(analyzer):
    for name in ("obama_partial_face.jpg", "obama_partial_face2.jpg"):
        assert len(analyzer.detect(shared(*FR, name))) == 1


def test_a_face_cut_by_the_image_edge_is_found(analyzer):
    photo = Image.open(COLLINS).convert("RGB")
    (whole,) = analyzer.detect(COLLINS)
    # A quarter of the face outside the frame, on the left and (mirrored) on the right.
    cut = round(whole.box.x1 + 0.25 * whole.box.width)
    (left,) = analyzer.detect(np.asarray(photo.crop((cut, 0, photo.width, photo.height))))
    assert left.box.x1 <= 2 and left.box.iou(faceprint.Box(0, whole.box.y1, whole.box.x2 - cut, whole.box.y2)) > 0.6
    mirrored = photo.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    cut = photo.width - cut
    (right,) = analyzer.detect(np.asarray(mirrored.crop((0, 0, cut, photo.height))))
    assert right.box.x2 >= cut - 2


def test_rgba_png_loads_as_rgb_on_white_and_has_one_face(analyzer, tmp_path):
    rgb = Image.open(COLLINS).convert("RGB")
    rgba = rgb.convert("RGBA")
    # A transparent border whose hidden colour is red: it must come out white, not red.
    alpha = Image.new("L", rgb.size, 0)
    alpha.paste(255, (20, 20, rgb.width - 20, rgb.height - 20))
    rgba.paste((255, 0, 0, 0), (0, 0, rgb.width, 20))
    rgba.putalpha(alpha)
    path = tmp_path / "collins_rgba.png"
    rgba.save(path)
    assert Image.open(path).mode == "RGBA"
    img = faceprint.load_image(path)
    assert img.shape == (rgb.height, rgb.width, 3) and img.dtype == np.uint8
    assert (img[:20] == 255).all() and (img[-20:] == 255).all()
    assert np.array_equal(img[20:-20, 20:-20], np.asarray(rgb)[20:-20, 20:-20])
    (face,) = analyzer.detect(path)
    assert face.box.iou(analyzer.detect(COLLINS)[0].box) > 0.8


def test_rgba_png_loads_as_rgb_and_has_one_face(analyzer, dlib_analyzer):
    path = shared(*FR, "32bit.png")
    assert faceprint.load_image(path).shape == (1200, 626, 3)
    assert len(analyzer.detect(path)) == 1
    (face,) = dlib_analyzer.detect(path)
    # face_recognition asserts top=290, bottom=558 from HOG with one upsampling; our policy
    # does not upsample a 1200-px image, and HOG's box scale then differs (302..611).
    overlap = min(face.box.y2, 558) - max(face.box.y1, 290)
    assert overlap / (max(face.box.y2, 558) - min(face.box.y1, 290)) > 0.75


def test_two_faces_verify_uses_the_largest_and_says_so(analyzer):
    faces = analyzer.detect(TWO)
    assert len(faces) == 2 and faces[0].box.area >= faces[1].box.area
    # Hopper is pasted larger than Collins in two_people.jpg: the largest face is hers.
    assert faces[0].box.x1 > faces[1].box.x2
    result = analyzer.verify(TWO, TWO, face_b=1)
    assert result.faces[0].selection == "largest" and result.faces[0].faces_found == 2
    assert result.faces[1].selection == "index" and result.faces[1].face_index == 1
    assert result.match is False  # two different people in one photo
    assert analyzer.verify(TWO, TWO).similarity == pytest.approx(1.0, abs=1e-5)
    assert analyzer.verify(TWO, HOPPER_2).match is True
    assert analyzer.verify(TWO, COLLINS_2).match is False
    assert analyzer.verify(TWO, COLLINS_2, face_a=1).match is True


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


def test_bad_files_are_invalid_image_not_a_crash(tmp_path):
    jpeg = COLLINS.read_bytes()
    png = _encode(Image.open(COLLINS), "PNG")
    broken = {"empty.png": b"", "corrupted.png": png[:16] + bytes(len(png) - 16), "text.jpg": b"not a picture"}
    for name, content in broken.items():
        (tmp_path / name).write_bytes(content)
        with pytest.raises(InvalidImageError) as info:
            faceprint.load_image(tmp_path / name)
        assert info.value.code == "invalid_image", name
    truncated = jpeg[: len(jpeg) // 2]
    with pytest.raises(InvalidImageError):
        faceprint.load_image(truncated)
    lenient = faceprint.load_image(truncated, faceprint.ImageLimits(allow_truncated=True))
    assert lenient.shape == (240, 240, 3)


def test_one_picture_in_every_format_decodes_the_same(analyzer):
    photo = Image.open(COLLINS).convert("RGB")
    ref = np.asarray(photo).astype(np.int16)
    (face,) = analyzer.detect(COLLINS)
    encodings = {fmt: _encode(photo, fmt) for fmt in ("PNG", "JPEG", "WEBP", "BMP", "GIF", "TIFF")}
    encodings["ICO"] = _encode(photo, "ICO", sizes=[photo.size])
    for fmt, data in encodings.items():
        img = faceprint.load_image(data)
        assert img.shape == ref.shape and img.dtype == np.uint8, fmt
        # Lossy formats and GIF's palette differ a little; the picture is the same.
        assert np.abs(img.astype(np.int16) - ref).mean() < 12, fmt
        (found,) = analyzer.detect(data)
        assert found.box.iou(face.box) > 0.8, fmt


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
def test_no_face_and_verify_says_no_face(analyzer):
    assert analyzer.detect(NO_FACE) == []
    assert analyzer.embed(NO_FACE) == []
    for a, b in ((NO_FACE, COLLINS), (COLLINS, NO_FACE)):
        with pytest.raises(NoFaceError) as info:
            analyzer.verify(a, b)
        assert info.value.code == "no_face"


def test_real_scenery_has_no_face(analyzer):
    # A photograph, not a gradient: texture that a detector could take for a face.
    view = shared("inspireface_tests", "images", "bulk", "view.jpg")
    assert analyzer.detect(view) == []
    assert analyzer.embed(view) == []
    with pytest.raises(NoFaceError) as info:
        analyzer.verify(view, COLLINS)
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


def test_inspireface_impostor_pairs_at_far_1e3_with_the_pack_pipeline():
    # Issue 12's regression test (a strict xfail while dlib was the default): the default pipeline
    # of the Faceplugin pack rejects the East-Asian impostor pairs at FAR 1e-3 and accepts the
    # genuine pair.
    needs_pack()
    default = faceprint.Analyzer(embedder="fr-feature")
    root, rows = _inspireface_pairs()
    for row in rows:
        result = default.verify(root / row["path_a"], root / row["path_b"])
        assert result.match == (row["same"] == "1"), (row, result)


def test_dlib_falsely_matches_the_east_asian_impostors_at_far_1e3():
    # dlib-resnet34's known weakness, kept measured so that README and model card stay true:
    # it scores these impostor pairs at 0.94-0.95 cosine, far above its LFW impostors (mean
    # 0.84), so its LFW-calibrated FAR 1e-3 threshold (0.926) accepts them. A demographic
    # differential of the model; the pack's pipeline (above) does not have it.
    dlib = faceprint.Analyzer(embedder="dlib-resnet34")
    root, rows = _inspireface_pairs()
    impostors = [row for row in rows if row["same"] != "1"]
    accepted = [row for row in impostors if dlib.verify(root / row["path_a"], root / row["path_b"]).match]
    assert impostors and accepted == impostors, "dlib now rejects them: update README's note on dlib and this test"


# --- EXIF ----------------------------------------------------------------------------------
@pytest.mark.parametrize("orientation,transpose", [(6, Image.Transpose.ROTATE_90), (8, Image.Transpose.ROTATE_270), (3, Image.Transpose.ROTATE_180)])
def test_exif_rotated_photo_is_found_upright(analyzer, orientation, transpose):
    # A non-square crop, so that a picture left sideways would have the wrong shape.
    upright = Image.open(COLLINS).convert("RGB").crop((0, 0, 240, 200))
    (expected,) = analyzer.detect(_encode(upright, "JPEG", quality=92))
    # Store the pixels sideways and let the EXIF tag say how to turn them back, as phones do.
    stored = upright.transpose(transpose)
    exif = Image.Exif()
    exif[0x0112] = orientation
    data = _encode(stored, "JPEG", quality=92, exif=exif.tobytes())
    img = faceprint.load_image(data)
    assert img.shape[:2] == (upright.height, upright.width)
    faces = analyzer.detect(data)
    assert len(faces) == 1 and faces[0].box.iou(expected.box) > 0.7
    assert abs(faces[0].pose.roll) < 15


# --- batch ---------------------------------------------------------------------------------
def test_batch_results_equal_one_at_a_time(analyzer, tmp_path):
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 not really")
    paths = [COLLINS, HOPPER, bad, TWO]
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
    (face,) = faceprint.detect(COLLINS)
    with open(COLLINS, "rb") as file:
        (emb,) = faceprint.embed(file)
    assert emb.embedding.dtype == np.float32 and abs(np.linalg.norm(emb.embedding) - 1) < 1e-5
    assert emb.face.box == face.box
    result = faceprint.verify(COLLINS, COLLINS_2)
    assert result.match and set(result.to_dict()) >= {"similarity", "threshold", "far", "match", "model", "faces"}
    assert not faceprint.verify(COLLINS, HOPPER).match


@pytest.mark.parametrize("name", ["hog", "haar", "mmod"])
def test_every_detector_finds_the_face(name):
    detector = faceprint.Analyzer(detector=name)
    for path in (COLLINS, HOPPER_2):
        (face,) = detector.detect(path)
        assert face.detector == name
        # Each detector draws its own box; all of them around the same face.
        assert face.box.iou(faceprint.Analyzer().detect(path)[0].box) > 0.5, (name, path.name, face.box)


@pytest.mark.parametrize("embedder", [None, "dlib-resnet34"])  # the default's landmarks, and dlib's
def test_68_landmarks_on_request(analyzer, embedder):
    assert analyzer.detect(COLLINS)[0].landmarks68 is None  # only when asked for
    (face,) = faceprint.Analyzer(embedder=embedder, landmarks68=True).detect(COLLINS)
    assert face.landmarks68 is not None
    points = face.landmarks68.points
    assert points.shape == (68, 2)
    # dlib's 68-point layout: jaw 0-16 from the face's left to its right, brows 17-26, nose
    # 27-35, eyes 36-47, mouth 48-67; every point near the face box.
    box = face.box
    assert ((points >= (box.x1 - 0.3 * box.width, box.y1 - 0.3 * box.height))
            & (points <= (box.x2 + 0.3 * box.width, box.y2 + 0.3 * box.height))).all()
    assert points[0, 0] < points[8, 0] < points[16, 0] and points[8, 1] > points[0, 1]
    brows, eyes, nose_tip, mouth = points[17:27, 1].mean(), points[36:48, 1].mean(), points[30, 1], points[48:68, 1].mean()
    assert brows < eyes < nose_tip < mouth < points[8, 1]
    # The 5-point landmarks' nose sits near the 68-point one: the base (33) for dlib5, the tip
    # (30) for arcface5.
    nose, index = ("nose_base", 33) if face.landmarks.scheme == "dlib5" else ("nose_tip", 30)
    assert np.hypot(*(np.array(face.landmarks[nose]) - points[index])) < 0.1 * box.width


def test_68_landmarks_agree_with_the_reference():
    # dlib68 on HOG's box, as face_recognition computes them.
    (face,) = faceprint.Analyzer(embedder="dlib-resnet34", landmarks68=True).detect(shared(*FR, "obama.jpg"))
    assert face.landmarks68 is not None and face.landmarks68.points.shape == (68, 2)
    # face_recognition's test asserts 68-point landmark #10 of obama.jpg at (552, 399).
    assert np.hypot(*(face.landmarks68.points[10] - (552, 399))) < 8


def test_errors_never_escape_untyped(analyzer, tmp_path):
    for content in (b"", b"GIF89a", b"\x89PNG\r\n\x1a\n" + b"\0" * 30, bytes(range(256)) * 10):
        with pytest.raises(FaceprintError):
            analyzer.embed(content)
