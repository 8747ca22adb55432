"""The IoU + embedding tracker with scripted boxes and random unit embeddings (no models)."""

from __future__ import annotations

import numpy as np
import pytest

from faceprint.video.track import FaceTracker, TrackerConfig, associate
from tests.unit.video.scripted import face, near, random_unit

FPS = 30.0


@pytest.fixture()
def rng() -> np.random.Generator:
    return np.random.default_rng(15)


def run(tracker: FaceTracker, frames: dict[int, list]) -> dict[int, object]:
    """Feed ``frames`` (index -> faces) in order; each frame's TrackUpdate."""
    return {i: tracker.update(i, i / FPS, faces) for i, faces in sorted(frames.items())}


def test_one_face_moving_is_one_track_confirmed_at_its_third_detection(rng):
    person = random_unit(rng)
    tracker = FaceTracker()
    updates = run(tracker, {i: [face((100 + 2 * i, 50, 180 + 2 * i, 150), near(person, 0.9, rng))] for i in range(10)})
    assert [t.id for t in updates[0].started] == [1]
    assert [t.id for t in updates[2].confirmed] == [1]
    assert all(not u.confirmed for i, u in updates.items() if i != 2)
    (track,) = tracker.tracks
    assert (track.id, track.first_frame, track.last_frame, track.hits) == (1, 0, 9, 10)
    assert not any(u.ended for u in updates.values())


def test_a_cut_to_another_person_in_the_same_place_starts_a_new_track(rng):
    """The hamilton clip's frame 211: Obama's box overlaps Miranda's (IoU ~0.4), the cosine
    between them is ~0; a box-only tracker joins them, the cosine gate must not."""
    miranda, obama = random_unit(rng), random_unit(rng)
    tracker = FaceTracker()
    run(tracker, {i: [face((277, 29, 362, 152), near(miranda, 0.9, rng))] for i in range(5)})
    update = tracker.update(5, 5 / FPS, [face((316, 33, 376, 133), near(obama, 0.9, rng))])
    assert [t.id for t in update.started] == [2]
    assert update.matched[0][0].id == 2
    # The old track coasts until max_age, then ends as lost.
    later = run(tracker, {i: [face((316, 33, 376, 133), near(obama, 0.9, rng))] for i in range(6, 30)})
    ended = [(t.id, reason, i) for i, u in later.items() for t, reason in u.ended]
    assert ended and ended[0][:2] == (1, "lost")
    assert ended[0][2] / FPS - 4 / FPS > TrackerConfig().max_age_s


def test_two_faces_crossing_keep_their_tracks_by_embedding(rng):
    a, b = random_unit(rng), random_unit(rng)
    tracker = FaceTracker(TrackerConfig(iou_min=0.1))
    ids: dict[str, set[int]] = {"a": set(), "b": set()}
    for i in range(20):
        xa, xb = 100 + 10 * i, 290 - 10 * i  # they pass each other around frame 9-10
        faces = [face((xb, 50, xb + 80, 150), near(b, 0.85, rng)), face((xa, 50, xa + 80, 150), near(a, 0.85, rng))]
        update = tracker.update(i, i / FPS, faces)
        for track, matched in update.matched:
            who = "a" if float(matched.embedding @ a) > 0.5 else "b"
            ids[who].add(track.id)
    assert len(ids["a"]) == 1 and len(ids["b"]) == 1 and ids["a"] != ids["b"]


def test_a_short_gap_keeps_the_track_a_long_one_ends_it(rng):
    person = random_unit(rng)
    config = TrackerConfig(max_age_s=0.5)
    tracker = FaceTracker(config)
    box = (100, 50, 180, 150)
    run(tracker, {i: [face(box, near(person, 0.9, rng))] for i in range(5)})
    run(tracker, {i: [] for i in range(5, 15)})  # 0.33 s unseen
    update = tracker.update(15, 15 / FPS, [face(box, near(person, 0.9, rng))])
    assert update.matched[0][0].id == 1 and not update.started
    gone = run(tracker, {i: [] for i in range(16, 40)})
    ended = [(t.id, reason, i) for i, u in gone.items() for t, reason in u.ended]
    assert [(tid, reason) for tid, reason, _ in ended] == [(1, "lost")]
    assert (ended[0][2] - 15) / FPS > config.max_age_s


def test_a_two_frame_false_positive_is_never_confirmed(rng):
    """The clip's hand/microphone detections last 1-2 frames: min_hits 3 keeps them out."""
    person, hand = random_unit(rng), random_unit(rng)
    tracker = FaceTracker()
    frames = {i: [face((100, 50, 180, 150), near(person, 0.9, rng))] for i in range(8)}
    for i in (3, 4):
        frames[i].append(face((300, 200, 340, 260), near(hand, 0.9, rng), quality=0.0, reasons=("indistinct",)))
    updates = run(tracker, frames)
    hand_track = updates[3].started[0]
    assert not hand_track.confirmed and hand_track.distinct_hits == 0
    assert (hand_track, "lost") in updates[5].ended  # an unconfirmed track ends at its first miss
    assert [t.id for u in updates.values() for t in u.confirmed] == [1]


def test_boxes_are_predicted_between_detections(rng):
    person = random_unit(rng)
    tracker = FaceTracker()
    for i in range(0, 9, 3):  # every 3rd frame, moving 6 px a frame
        tracker.update(i, i / FPS, [face((100 + 6 * i, 50, 180 + 6 * i, 150), near(person, 0.9, rng))])
    ((track, box),) = tracker.predict(7 / FPS)
    assert track.box.x1 == pytest.approx(136)  # detected at frame 6
    assert box.x1 == pytest.approx(136 + 6, abs=1.0) and box.y1 == pytest.approx(50, abs=1.0)
    (_, still) = tracker.predict(6 / FPS)[0]
    assert still == track.box


def test_association_is_one_to_one_and_gated(rng):
    a = random_unit(rng)
    tracker = FaceTracker()
    tracker.update(0, 0.0, [face((100, 50, 180, 150), a)])
    same_place = [face((102, 50, 182, 150), near(a, 0.95, rng)), face((98, 50, 178, 150), near(a, 0.9, rng))]
    pairs = associate(tracker.tracks, same_place, TrackerConfig())
    assert pairs == [(0, 0)]  # the better pair only; the other face will start a track
    stranger = [face((100, 50, 180, 150), near(a, 0.1, rng))]
    assert associate(tracker.tracks, stranger, TrackerConfig()) == []
    far_away = [face((400, 50, 480, 150), a)]
    assert associate(tracker.tracks, far_away, TrackerConfig()) == []


def test_ids_are_the_same_on_every_run(rng):
    faces = {i: [face((100 + i, 50, 180 + i, 150), near(v, 0.9, np.random.default_rng(i)))
                 for v in (np.eye(128, dtype=np.float32)[0], np.eye(128, dtype=np.float32)[1])] for i in range(6)}
    for i in range(6):  # the second face elsewhere
        faces[i][1] = face((300, 50, 380, 150), faces[i][1].embedding)
    first, second = FaceTracker(), FaceTracker()
    assert [[t.id for t, _ in u.matched] for u in run(first, faces).values()] == \
        [[t.id for t, _ in u.matched] for u in run(second, faces).values()]


def test_split_and_end_all(rng):
    tracker = FaceTracker()
    run(tracker, {i: [face((100, 50, 180, 150), near(random_unit(rng), 0.99, rng))] for i in range(1)})
    (old,) = tracker.tracks
    fresh = tracker.split(old)
    assert fresh.id == 2 and fresh.hits == 1 and tracker.tracks == [fresh]
    assert tracker.end_all("cut") == [(fresh, "cut")] and tracker.tracks == []


def test_config_is_checked():
    with pytest.raises(ValueError):
        TrackerConfig(min_hits=0)
    with pytest.raises(ValueError):
        TrackerConfig(iou_min=1.5)


def test_a_face_that_jumped_between_detections_is_found_again_by_its_embedding(rng):
    """The clip's frame 112 with --every 3: Miranda ducks, his box drops by most of its height
    (IoU under 0.3), and the predicted box overshoots; the second pass joins him by the
    stricter cosine gate within a box size."""
    person, stranger = random_unit(rng), random_unit(rng)
    tracker = FaceTracker()
    run(tracker, {i: [face((200, 30 + 10 * i, 280, 140 + 10 * i), near(person, 0.9, rng))] for i in (0, 3, 6)})
    jumped = tracker.update(9, 9 / FPS, [face((205, 120, 285, 230), near(person, 0.85, rng))])
    assert not jumped.started and jumped.matched[0][0].id == 1
    elsewhere = tracker.update(12, 12 / FPS, [face((500, 120, 580, 230), near(person, 0.85, rng))])
    assert elsewhere.started  # too far away: a new track
    impostor = FaceTracker()
    run(impostor, {i: [face((200, 30, 280, 140), near(person, 0.9, rng))] for i in (0, 3)})
    assert impostor.update(6, 6 / FPS, [face((205, 120, 285, 230), near(stranger, 0.9, rng))]).started


def test_the_gates_come_from_the_embedders_card():
    from faceprint import models

    for name in ("fr-feature", "dlib-resnet34"):
        card = models.get_card(name, "embedder")
        config = TrackerConfig().for_model(card.threshold_for)
        assert config.cos_min == pytest.approx(card.threshold_for(0.03))
        assert config.reid_cos == pytest.approx(card.threshold_for(1e-3))
    assert TrackerConfig(cos_min=0.4).for_model(None).cos_min == 0.4
    assert TrackerConfig().for_model(None).cos_min == 0.2  # no card: the gate measured on the clip
