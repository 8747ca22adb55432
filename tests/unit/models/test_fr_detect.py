"""fr-detect's decoding, tiling and merging on synthetic inputs: no model pack needed."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from faceprint.errors import InvalidArgumentError, ModelUnavailableError
from faceprint.models.faceplugin import detect
from faceprint.models.faceplugin.detect import (
    INPUT_H,
    INPUT_W,
    N_PRIORS,
    FrDetectPolicy,
    Window,
    axis_starts,
    cut_by_inner_edge,
    decode,
    inside_fraction,
    merge,
    network_input,
    plan_windows,
    to_image,
    whole_image,
)
from faceprint.models.packs import FACEPLUGIN


def outputs(rows: list[tuple[float, tuple[float, float, float, float]]]) -> tuple[np.ndarray, np.ndarray]:
    """Network outputs with the given (score, box as input fractions) rows first, the rest 0."""
    scores = np.zeros((1, N_PRIORS, 2), np.float32)
    scores[..., 0] = 1.0
    boxes = np.zeros((1, N_PRIORS, 4), np.float32)
    for i, (s, b) in enumerate(rows):
        scores[0, i] = (1 - s, s)
        boxes[0, i] = b
    return scores, boxes


# --- decoding -----------------------------------------------------------------------------
def test_decode_keeps_rows_at_or_above_the_threshold_in_input_pixels() -> None:
    scores, boxes = outputs([(0.9, (0.5, 0.5, 0.75, 1.0)), (0.75, (0.0, 0.0, 0.1, 0.1)), (0.74, (0.2, 0.2, 0.3, 0.3))])
    b, s = decode(scores, boxes, 0.745)
    assert s.tolist() == pytest.approx([0.9, 0.75])
    assert b[0].tolist() == pytest.approx([160, 120, 240, 240])
    assert b[1].tolist() == pytest.approx([0, 0, 32, 24])


def test_decode_refuses_mismatched_outputs() -> None:
    with pytest.raises(Exception, match="scores but"):
        decode(np.zeros((1, 10, 2)), np.zeros((1, 9, 4)), 0.5)


# --- windows ------------------------------------------------------------------------------
def test_whole_image_letterbox_keeps_the_aspect_and_squeeze_does_not() -> None:
    lb = whole_image(800, 400, "letterbox")
    assert lb.sx == lb.sy == pytest.approx(0.4)
    sq = whole_image(800, 400, "squeeze")
    assert (sq.sx, sq.sy) == pytest.approx((0.4, 0.6))


@pytest.mark.parametrize("length,window,overlap", [(1000, 400, 100), (1600, 800, 200), (401, 400, 100), (3000, 300, 75)])
def test_axis_starts_cover_the_axis_with_the_overlap(length: int, window: int, overlap: int) -> None:
    starts = axis_starts(length, window, overlap)
    assert starts[0] == 0 and starts[-1] + window == length
    for a, b in zip(starts, starts[1:]):
        assert b > a and a + window - b >= overlap  # neighbours share at least `overlap`


def test_axis_starts_one_window_when_it_covers_everything() -> None:
    assert axis_starts(300, 400, 100) == [0]


def test_plan_small_image_is_one_pass() -> None:
    # a 320x240 image is already at scale 1: a finer level would upsample
    windows = plan_windows(320, 240, FrDetectPolicy())
    assert len(windows) == 1 and windows[0].level == 0


def test_plan_levels_double_the_scale_and_stop_at_max_scale() -> None:
    policy = FrDetectPolicy(levels=3, max_scale=1.0)
    windows = plan_windows(1600, 1200, policy)
    levels = sorted({w.level for w in windows})
    assert levels == [0, 1, 2]  # scales 0.2, 0.4, 0.8; 1.6 would exceed max_scale
    for w in windows:
        assert w.sx == pytest.approx(0.2 * 2**w.level)
    assert windows[0].level == 0  # the whole image first


def test_plan_tiles_cover_the_image_inside_it() -> None:
    width, height = 1600, 1067
    windows = [w for w in plan_windows(width, height, FrDetectPolicy()) if w.level == 2]
    covered = np.zeros((height, width), bool)
    for w in windows:
        assert 0 <= w.x0 and w.x0 + w.width <= width and 0 <= w.y0 and w.y0 + w.height <= height
        assert round(w.width * w.sx) <= INPUT_W and round(w.height * w.sy) <= INPUT_H
        covered[w.y0 : w.y0 + w.height, w.x0 : w.x0 + w.width] = True
        assert w.inner[0] == (w.x0 > 0) and w.inner[2] == (w.x0 + w.width < width)
    assert covered.all()


def test_single_pass_policy_runs_one_window() -> None:
    assert len(plan_windows(4000, 3000, detect.SINGLE_PASS)) == 1


@pytest.mark.parametrize(
    "kwargs",
    [{"score_threshold": 0.0}, {"tile_score_threshold": 1.5}, {"levels": -1}, {"overlap": 1.0},
     {"fit": "stretch"}, {"colour": "grey"}, {"tile_face": (50.0, 10.0)}, {"max_scale": 0.0}],
)
def test_policy_refuses_bad_settings(kwargs: dict[str, object]) -> None:
    with pytest.raises(InvalidArgumentError):
        FrDetectPolicy(**kwargs)  # type: ignore[arg-type]


# --- pixels -------------------------------------------------------------------------------
def test_network_input_letterboxes_on_neutral_grey_in_the_chosen_colour_order() -> None:
    image = np.zeros((100, 200, 3), np.uint8)
    image[..., 0] = 255  # pure red
    window = whole_image(200, 100, "letterbox")  # scale 1.6 -> 320x160, padded below
    rgb = network_input(image, window, "rgb")
    assert rgb.shape == (1, 3, INPUT_H, INPUT_W) and rgb.dtype == np.float32
    assert rgb[0, 0, :160].mean() == pytest.approx((255 - 127) / 128)
    assert rgb[0, 2, :160].mean() == pytest.approx(-127 / 128)
    assert np.abs(rgb[0, :, 161:]).max() == 0.0  # the padding is zero after normalisation
    bgr = network_input(image, window, "bgr")
    assert bgr[0, 2, :160].mean() == pytest.approx((255 - 127) / 128)


def test_network_input_of_a_tile_takes_its_region() -> None:
    image = np.zeros((480, 640, 3), np.uint8)
    image[240:, 320:] = 200
    tile = Window(320, 240, 320, 240, 1.0, 1.0, (True, True, False, False), 1)
    blob = network_input(image, tile, "rgb")
    assert blob.min() == pytest.approx((200 - 127) / 128)


def test_to_image_undoes_the_window_mapping() -> None:
    window = Window(100, 50, 800, 600, 0.4, 0.4, level=1)
    boxes = np.array([[40.0, 20.0, 80.0, 60.0]])
    assert to_image(boxes, window).tolist() == [[200.0, 100.0, 300.0, 200.0]]


def test_cut_faces_are_those_touching_an_inner_edge() -> None:
    window = Window(100, 0, 200, 200, 1.0, 1.0, (True, False, True, False), 1)
    boxes = np.array([
        [100.0, 10, 150, 60],  # touches the inner left edge: cut
        [150.0, 0, 200, 40],  # touches the top, which is the image's border: whole
        [250.0, 100, 300, 150],  # touches the inner right edge: cut
        [150.0, 150, 200, 200],  # touches the image's bottom border: whole
    ])
    assert cut_by_inner_edge(boxes, window).tolist() == [True, False, True, False]


# --- merging ------------------------------------------------------------------------------
def test_merge_keeps_one_box_per_face_across_passes() -> None:
    boxes = np.array([[10.0, 10, 60, 70], [12.0, 11, 61, 72], [200.0, 200, 230, 240]])
    scores = np.array([0.9, 0.99, 0.97])
    levels = np.array([0, 1, 1])
    found = merge(boxes, scores, levels, 300, 300, FrDetectPolicy())
    assert len(found) == 2
    assert [d.score for d in found] == pytest.approx([0.99, 0.97])


def test_merge_drops_a_part_of_a_face_found_whole_by_a_coarser_pass() -> None:
    # a tile saw the top half of a big face as a face: IoU is low, containment is not
    boxes = np.array([[0.0, 0, 200, 260], [20.0, 10, 180, 120]])
    found = merge(boxes, np.array([0.9, 0.99]), np.array([0, 2]), 400, 400, FrDetectPolicy())
    assert len(found) == 1 and found[0].box.height == pytest.approx(260)


def test_merge_keeps_neighbouring_faces() -> None:
    boxes = np.array([[0.0, 0, 100, 120], [90.0, 0, 190, 120]])  # 10% overlap
    assert len(merge(boxes, np.array([0.9, 0.9]), np.array([0, 0]), 400, 400, FrDetectPolicy())) == 2


def test_merge_clips_to_the_image() -> None:
    found = merge(np.array([[-5.0, -3, 50, 60]]), np.array([0.8]), np.array([0]), 40, 50, FrDetectPolicy())
    b = found[0].box
    assert (b.x1, b.y1, b.x2, b.y2) == (0.0, 0.0, 40.0, 50.0)


def test_inside_fraction() -> None:
    big, small = np.array([0.0, 0, 100, 100]), np.array([10.0, 10, 30, 30])
    assert inside_fraction(big, small) == pytest.approx(1.0)
    assert inside_fraction(small, big) == pytest.approx(1.0)
    assert inside_fraction(big, np.array([200.0, 200, 210, 210])) == 0.0


# --- the card and a missing pack ----------------------------------------------------------
def test_card_is_registrable_without_the_pack() -> None:
    [(card, factory, aliases)] = detect.BUILTIN
    assert card.name == "fr-detect" and card.kind == "detector" and card.version == FACEPLUGIN.version == "0.0.1"
    assert card.licence == FACEPLUGIN.licence and card.extra["provenance"] == FACEPLUGIN.provenance
    assert card.extra["sha256"] == FACEPLUGIN.files[detect.MODEL_PATH]
    assert "320x240" in card.input
    assert factory is detect.FrDetector and aliases


def test_loading_without_the_pack_says_how_to_install_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FACEPRINT_MODELS_DIR", str(tmp_path))
    with pytest.raises(ModelUnavailableError, match="faceprint models install faceplugin"):
        detect.FrDetector(detect.FR_DETECT_CARD)
