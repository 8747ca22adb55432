"""faceprint.evaluation.tracking: the MOT-style counts on hand-made truth and predictions with
known answers, and the synthesis's geometry and determinism (no models, no shared data)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from faceprint.evaluation.tracking import (
    FACE_BOX,
    Actor,
    Occluder,
    PredictedFace,
    Scenario,
    TruthBox,
    Waypoint,
    evaluate_tracking,
    lfw_people,
    render,
    split_photos,
    standard_scenarios,
)
from faceprint.types import Box

MAGENTA = (255, 0, 255)  # the fake photos' 'face': a colour no generated background has


def box(x: float, y: float = 0.0, size: float = 10.0) -> Box:
    return Box(x, y, x + size, y + size)


def gt(obj: int, x: float, name: str = "A", *, enrolled: bool = True, visible: float = 1.0) -> TruthBox:
    return TruthBox(obj, name, enrolled, box(x), visible)


def pred(track: int, x: float, name: str | None = None) -> PredictedFace:
    return PredictedFace(track, box(x), name)


# --- counting ----------------------------------------------------------------------------------


def test_perfect_tracking_scores_one() -> None:
    truth = [[gt(1, 0), gt(2, 50, "B")] for _ in range(5)]
    preds = [[pred(7, 0, "A"), pred(8, 50, "B")] for _ in range(5)]
    r = evaluate_tracking(truth, preds)
    assert (r.gt, r.matches, r.fn, r.fp, r.idsw, r.transfers, r.false_names) == (10, 10, 0, 0, 0, 0, 0)
    assert r.mota == 1.0
    assert r.frames_to_name() == {1: 0, 2: 0}


def test_misses_and_false_positives() -> None:
    truth = [[gt(1, 0)], [gt(1, 0)], [gt(1, 0)], [gt(1, 0)]]
    preds = [[pred(1, 0)], [], [pred(1, 3), pred(2, 80)], [pred(1, 40)]]  # frame 3: box off by 40
    r = evaluate_tracking(truth, preds)
    assert (r.gt, r.fn, r.fp, r.idsw) == (4, 2, 2, 0)
    assert r.mota == pytest.approx(1 - 4 / 4)
    assert r.objects[0].matched_frames == 2


def test_iou_threshold_decides_a_match() -> None:
    # 10x10 boxes shifted by 3: IoU 7*10/(200-70) = 0.538; shifted by 4: 60/140 = 0.43
    assert evaluate_tracking([[gt(1, 0)]], [[pred(1, 3)]]).fn == 0
    assert evaluate_tracking([[gt(1, 0)]], [[pred(1, 4)]]).fn == 1
    assert evaluate_tracking([[gt(1, 0)]], [[pred(1, 4)]], iou_min=0.4).fn == 0


def test_identity_switch_is_counted_once_per_change() -> None:
    truth = [[gt(1, 0)] for _ in range(6)]
    preds = [[pred(1, 0)], [pred(1, 0)], [pred(2, 0)], [pred(2, 0)], [pred(1, 0)], [pred(1, 0)]]
    r = evaluate_tracking(truth, preds)
    assert r.idsw == 2
    assert r.objects[0].tracks == [1, 2]
    assert r.mota == pytest.approx(1 - 2 / 6)


def test_switch_after_a_gap_still_counts() -> None:
    truth = [[gt(1, 0)], [gt(1, 0)], [gt(1, 0)]]
    preds = [[pred(1, 0)], [], [pred(2, 0)]]  # lost, then a new track: CLEAR MOT counts a switch
    r = evaluate_tracking(truth, preds)
    assert (r.fn, r.idsw) == (1, 1)


def test_previous_match_kept_while_it_holds() -> None:
    # Frame 1: track 2 overlaps object 1 better than track 1 does, but track 1 still has IoU
    # >= 0.5 with it, so the correspondence is kept (no switch), as in CLEAR MOT.
    truth = [[gt(1, 0)], [gt(1, 0)]]
    preds = [[pred(1, 0)], [pred(1, 2), pred(2, 0)]]
    r = evaluate_tracking(truth, preds)
    assert (r.idsw, r.fp) == (0, 1)


def test_track_carried_onto_another_person_is_a_transfer_and_a_false_name() -> None:
    # A cut puts B where A was; a tracker that keeps A's track (and name) on B.
    truth = [[gt(1, 0, "A")], [gt(1, 0, "A")], [gt(2, 0, "B")], [gt(2, 0, "B")]]
    preds = [[pred(5, 0, "A")] for _ in range(4)]
    r = evaluate_tracking(truth, preds)
    assert r.idsw == 0  # CLEAR MOT does not see it ...
    assert r.transfers == 1  # ... the track's side does
    assert (r.false_names, r.false_name_tracks) == (2, 1)
    assert r.frames_to_name() == {1: 0, 2: None}


def test_false_names_for_a_stranger_and_for_the_wrong_person() -> None:
    truth = [[gt(1, 0, "S", enrolled=False), gt(2, 50, "B")] for _ in range(3)]
    preds = [[pred(1, 0, None), pred(2, 50, None)],
             [pred(1, 0, "S"), pred(2, 50, "C")],  # a stranger never has a name, even "their own"
             [pred(1, 0, None), pred(2, 50, "B")]]
    r = evaluate_tracking(truth, preds)
    assert (r.false_names, r.false_name_tracks) == (2, 2)
    assert r.frames_to_name() == {2: 2}  # strangers have no frames-to-name
    assert r.name_changes == 1  # track 2: C -> B


def test_stray_name_on_a_box_with_no_face() -> None:
    r = evaluate_tracking([[gt(1, 0)]], [[pred(1, 0, "A"), pred(2, 100, "A")]])
    assert (r.fp, r.stray_names, r.false_names) == (1, 1, 0)


def test_unknown_to_named_is_not_a_name_change() -> None:
    truth = [[gt(1, 0)] for _ in range(4)]
    preds = [[pred(1, 0)], [pred(1, 0)], [pred(1, 0, "A")], [pred(1, 0, "A")]]
    r = evaluate_tracking(truth, preds)
    assert r.name_changes == 0
    assert r.frames_to_name() == {1: 2}


def test_barely_visible_faces_are_optional() -> None:
    truth = [[gt(1, 0, visible=0.3)], [gt(1, 0, visible=0.3)], [gt(1, 0)], [gt(1, 0)]]
    preds = [[], [pred(1, 0)], [pred(1, 0)], [pred(1, 0, "A")]]
    r = evaluate_tracking(truth, preds)
    assert (r.gt, r.fn, r.fp) == (2, 0, 0)  # not missed when absent, no FP when tracked
    assert r.objects[0].first_required_frame == 2
    assert r.frames_to_name() == {1: 1}
    assert evaluate_tracking(truth, preds, min_visible=0.2).gt == 4


def test_a_partly_hidden_face_matches_on_its_visible_part() -> None:
    # The left 60% of a 10x10 face is hidden: a detector's box on the visible right part has IoU
    # 0.4 with the whole box, 1.0 with the visible part.
    hidden = TruthBox(1, "A", True, box(0), 0.4, Box(6.0, 0.0, 10.0, 10.0))
    seen = PredictedFace(1, Box(6.0, 0.0, 10.0, 10.0), "A")
    assert hidden.iou(seen.box) == 1.0
    r = evaluate_tracking([[hidden]], [[seen]])
    assert (r.matches, r.fp) == (1, 0)
    whole = TruthBox(1, "A", True, box(0), 1.0, box(0))
    assert whole.iou(seen.box) == pytest.approx(0.4)


def test_a_box_over_a_face_and_one_hidden_behind_it_is_the_visible_faces() -> None:
    # B stands in front of A (A 3% visible, listed first): the box over both is B's.
    hidden = TruthBox(1, "A", True, box(0), 0.03, Box(0.0, 0.0, 1.0, 10.0))
    front = TruthBox(2, "B", True, box(0), 1.0, box(0))
    r = evaluate_tracking([[hidden, front]], [[PredictedFace(5, box(0), "B")]])
    assert (r.matches, r.false_names, r.fn) == (1, 0, 0)
    assert r.objects[1].tracks == [5] and r.objects[0].tracks == []


def test_counts_serialise() -> None:
    r = evaluate_tracking([[gt(1, 0)], [gt(1, 0)]], [[pred(1, 0, "A")], [pred(1, 0, "A")]])
    d = r.to_dict()
    assert d["mota"] == 1.0 and d["frames_to_name_max"] == 0 and d["never_named"] == 0
    assert d["objects"][0]["tracks"] == [1]


def test_frame_counts_must_agree() -> None:
    with pytest.raises(ValueError):
        evaluate_tracking([[], []], [[]])


def test_empty_video() -> None:
    assert evaluate_tracking([[], []], [[], []]).mota == 1.0


# --- synthesis -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fake_lfw(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny lfw_dev-shaped folder: identities.csv and 250x250 JPEGs (a flat colour with a
    magenta 'face' in FACE_BOX), so that synthesis runs without the shared data."""
    root = tmp_path_factory.mktemp("lfw")
    rows = ["path,identity,lfw_view2_set"]
    rng = np.random.default_rng(0)
    for person in ("Ann_A", "Bob_B", "Cid_C", "Dan_D"):
        (root / "images_deepfunneled" / person).mkdir(parents=True)
        for k in range(1, 7):
            rgb = np.full((250, 250, 3), rng.integers(0, 120, 3), dtype=np.uint8)
            rgb[int(FACE_BOX.y1):int(FACE_BOX.y2), int(FACE_BOX.x1):int(FACE_BOX.x2)] = MAGENTA
            name = f"{person}_{k:04d}.jpg"
            Image.fromarray(rgb).save(root / "images_deepfunneled" / person / name)
            rows.append(f"images/{person}/{name},{person},1")
    (root / "identities.csv").write_text("\n".join(rows) + "\n")
    return root


def test_lfw_people_and_disjoint_splits(fake_lfw: Path) -> None:
    people = lfw_people(fake_lfw, min_photos=6)
    assert sorted(people) == ["Ann_A", "Bob_B", "Cid_C", "Dan_D"]
    assert all(Path(p).is_file() for p in people["Ann_A"])
    enrol, video = split_photos(people["Ann_A"], n_enroll=2, n_video=3, seed=1)
    assert len(enrol) == 2 and len(video) == 3 and not set(enrol) & set(video)
    assert split_photos(people["Ann_A"], n_enroll=2, n_video=3, seed=1) == (enrol, video)
    with pytest.raises(ValueError):
        split_photos(people["Ann_A"][:2], n_enroll=2)


def scenarios(fake_lfw: Path) -> list[Scenario]:
    people = lfw_people(fake_lfw)
    cast = {n: split_photos(people[n], n_enroll=2)[1] for n in ("Ann_A", "Bob_B", "Cid_C")}
    strangers = {"Dan_D": people["Dan_D"]}
    return standard_scenarios(cast, strangers, width=320, height=180, seconds=1.0, seed=3)


def test_synthesis_is_deterministic(fake_lfw: Path) -> None:
    first, again = scenarios(fake_lfw), scenarios(fake_lfw)
    assert [s.name for s in first] == ["enter_leave", "crossing", "half_occluder", "stranger", "cut_swap", "scale"]
    assert first == again
    for a, b in zip(first, again, strict=True):
        assert a.truth() == b.truth()
        frames_a, frames_b = list(render(a)), list(render(b))
        assert len(frames_a) == a.n_frames == 30
        assert frames_a[0].shape == (180, 320, 3) and frames_a[0].dtype == np.uint8
        assert all(np.array_equal(x, y) for x, y in zip(frames_a, frames_b, strict=True))


def test_truth_box_is_where_the_face_is_pasted(fake_lfw: Path) -> None:
    people = lfw_people(fake_lfw)
    actor = Actor(1, "Ann_A", True, (people["Ann_A"][0],), (Waypoint(0, 100.0, 90.0, 62.0),))
    scene = Scenario("one", 200, 180, 1, (actor,), noise=0)
    (t,) = scene.frame_truth(0)
    assert t.visible == 1.0
    assert t.box.center == pytest.approx((100.0, 90.0))
    assert t.box.height == pytest.approx(62.0) and t.box.width == pytest.approx(62.0 * FACE_BOX.width / FACE_BOX.height)
    # the magenta 'face' of the fake photo fills the truth box and nothing much outside it
    frame = next(render(scene)).astype(int)
    ys, xs = np.nonzero(np.abs(frame - np.array(MAGENTA)).max(axis=2) < 40)
    found = Box(float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1))
    assert found.iou(t.box) > 0.85


def test_a_measured_face_box_is_scaled_onto_the_truth_box(tmp_path: Path) -> None:
    # A photo whose face is small and off-centre: given its box, the sprite puts it on the truth.
    rgb = np.full((250, 250, 3), 30, dtype=np.uint8)
    face = Box(40.0, 50.0, 100.0, 124.0)  # 60 x 74: FACE_BOX's aspect
    rgb[50:124, 40:100] = MAGENTA
    Image.fromarray(rgb).save(tmp_path / "small.png")
    actor = Actor(1, "X", True, (str(tmp_path / "small.png"),), (Waypoint(0, 120.0, 90.0, 80.0),), faces=(face,))
    scene = Scenario("measured", 240, 180, 1, (actor,), noise=0)
    (t,) = scene.frame_truth(0)
    frame = next(render(scene)).astype(int)
    ys, xs = np.nonzero(np.abs(frame - np.array(MAGENTA)).max(axis=2) < 40)
    found = Box(float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1))
    assert found.iou(t.box) > 0.85


def test_visible_fraction_counts_edges_occluders_and_people_in_front(fake_lfw: Path) -> None:
    people = lfw_people(fake_lfw)
    photos = (people["Ann_A"][0],)
    half_out = Actor(1, "Ann_A", True, photos, (Waypoint(0, 0.0, 90.0, 62.0),))
    behind = Actor(2, "Bob_B", True, photos, (Waypoint(0, 150.0, 90.0, 62.0),), z=0)
    in_front = Actor(3, "Cid_C", True, photos, (Waypoint(0, 150.0, 90.0, 62.0),), z=1)
    bar = Occluder(0, 0, Box(250.0, 0.0, 275.0, 180.0))
    clear = Actor(4, "Dan_D", True, photos, (Waypoint(0, 275.0, 90.0, 62.0),))
    scene = Scenario("vis", 400, 180, 1, (half_out, behind, in_front, clear), occluders=(bar,))
    by_id = {t.object_id: t for t in scene.frame_truth(0)}
    assert by_id[1].visible == pytest.approx(0.5, abs=0.03)
    assert by_id[1].box.x1 == 0.0  # clipped to the frame
    assert by_id[2].visible == 0.0  # exactly behind person 3
    assert by_id[3].visible == 1.0
    assert by_id[4].visible == pytest.approx(0.5, abs=0.03)  # left half under the bar
    assert by_id[4].visible_box is not None and by_id[4].visible_box.x1 == 275.0
    assert by_id[4].visible_box.x2 == pytest.approx(by_id[4].box.x2, abs=1)
    assert by_id[2].visible_box is None
    assert by_id[3].visible_box is not None and by_id[3].visible_box.iou(by_id[3].box) > 0.95


def test_actors_are_on_stage_between_their_waypoints_only() -> None:
    a = Actor(1, "A", True, ("p1", "p2"), (Waypoint(5, 0.0, 0.0, 10.0), Waypoint(15, 100.0, 50.0, 30.0)), hold_frames=4)
    assert a.at(4) is None and a.at(16) is None
    mid = a.at(10)
    assert mid is not None and (mid.x, mid.y, mid.face_height) == (50.0, 25.0, 20.0)
    assert [a.photo(f)[0] for f in (5, 8, 9, 13)] == ["p1", "p1", "p2", "p1"]
    assert a.photo(5)[1] == FACE_BOX
    with pytest.raises(ValueError):
        Actor(1, "A", True, ("p",), (Waypoint(5, 0, 0, 1), Waypoint(5, 1, 1, 1)))
    with pytest.raises(ValueError):
        Actor(1, "A", True, ("p", "q"), (Waypoint(5, 0, 0, 1),), faces=(FACE_BOX,))


def test_scenarios_cover_what_they_promise(fake_lfw: Path) -> None:
    by_name = {s.name: s for s in scenarios(fake_lfw)}
    # entering at an edge: barely visible first, fully visible later
    first = by_name["enter_leave"].truth()
    assert first[0][0].visible < 0.5 and max(t.visible for f in first for t in f) == 1.0
    # crossing: someone is hidden at some point
    assert min(t.visible for f in by_name["crossing"].truth() for t in f) < 0.2
    # half occluder: about half of one face for a while
    occluded = [t.visible for f in by_name["half_occluder"].truth() for t in f if t.visible < 1.0]
    assert occluded and all(0.5 <= v <= 0.65 for v in occluded)
    # the stranger is not enrolled
    assert by_name["stranger"].enrolled() == ["Bob_B"]
    # the cut: new people, a new background
    cut = by_name["cut_swap"]
    (at,) = cut.shots
    assert {t.object_id for t in cut.frame_truth(at - 1)} == {1, 2}
    assert {t.object_id for t in cut.frame_truth(at)} == {3, 4}
    frames = list(render(cut))
    assert np.abs(frames[at].astype(int) - frames[at - 1].astype(int)).mean() > 10
    # scale: the face grows
    sizes = [f[0].box.height for f in by_name["scale"].truth()]
    assert sizes[-1] > 3 * sizes[0]
