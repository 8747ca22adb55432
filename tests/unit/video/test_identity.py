"""Identity per track: aggregation, the naming rules and their hysteresis, with scripted
similarities against an in-memory gallery. Thresholds come from the model card (never a
number written here), as in a real run."""

from __future__ import annotations

import numpy as np
import pytest

from faceprint.errors import InvalidArgumentError
from faceprint.video.identity import IdentityKeeper, IdentityPolicy, aggregate
from faceprint.video.track import FaceTracker
from tests.unit.video.scripted import face, gallery_of, near, random_unit


@pytest.fixture()
def rng() -> np.random.Generator:
    return np.random.default_rng(150)


@pytest.fixture()
def people(rng):
    return {"Ada": random_unit(rng), "Grace": random_unit(rng)}


@pytest.fixture()
def keeper(people):
    return IdentityKeeper(gallery_of(people))


def feed(keeper: IdentityKeeper, tracker: FaceTracker, frames: list, box=(100, 50, 180, 150)):
    """Each (embedding, quality) as one detection of one track (forced: the tracker's gate is
    not asked, as if the face changed slowly); each frame's Observation."""
    out = []
    track = None
    for i, (vector, quality) in enumerate(frames):
        detected = face(box, vector, quality=quality)
        if track is None:
            track = tracker.start(i, i / 30.0, detected)
        else:
            track.add(i, i / 30.0, detected)
        out.append(keeper.observe([(track, detected)], i)[track.id])
    return out


def test_thresholds_come_from_the_card(keeper):
    card = keeper.gallery.analyzer.embedder_card
    assert keeper.threshold == card.threshold_for(1e-3) and keeper.far == 1e-3
    assert keeper.instant_threshold == card.threshold_for(1e-4) > keeper.threshold
    assert keeper.split_threshold == card.threshold_for(1e-2) < keeper.threshold
    strict = IdentityKeeper(keeper.gallery, far=1e-4)
    assert strict.threshold == card.threshold_for(1e-4)
    given = IdentityKeeper(keeper.gallery, threshold=0.5)
    assert given.threshold == 0.5 and given.threshold_source == "user"
    with pytest.raises(InvalidArgumentError):
        IdentityKeeper(keeper.gallery, far=1e-3, threshold=0.5)


def test_aggregate_weighs_by_quality():
    a, b = np.eye(4, dtype=np.float32)[0], np.eye(4, dtype=np.float32)[1]
    mean = aggregate([face((0, 0, 10, 10), a, quality=0.9), face((0, 0, 10, 10), b, quality=0.1)])
    assert np.linalg.norm(mean) == pytest.approx(1.0)
    assert mean[0] == pytest.approx(0.9 / np.hypot(0.9, 0.1))
    nearly_nothing = aggregate([face((0, 0, 10, 10), a, quality=1.0), face((0, 0, 10, 10), b, quality=0.0)])
    assert nearly_nothing[1] == pytest.approx(0.01, abs=1e-3)  # quality 0 still weighs 0.01
    with pytest.raises(ValueError):
        aggregate([])


def test_unknown_to_a_name_after_min_frames(keeper, people, rng):
    t = keeper.threshold
    # Above the threshold, under the instant one: named by the aggregate at the 3rd face.
    sim = (t + keeper.instant_threshold) / 2
    seen = feed(keeper, FaceTracker(), [(near(people["Ada"], sim, rng), 0.9) for _ in range(5)])
    assert [o.identity.identity for o in seen] == [None, None, "Ada", "Ada", "Ada"]
    assert [o.newly_named for o in seen] == [False, False, True, False, False]
    assert seen[2].identity.rule == "aggregate" and seen[2].identity.named_at_frame == 2
    assert seen[0].identity.similarity is not None  # the best candidate's, while unknown


def test_the_instant_rule_names_at_the_first_good_face(keeper, people, rng):
    strong = near(people["Ada"], keeper.instant_threshold + 0.05, rng)
    (seen,) = feed(keeper, FaceTracker(), [(strong, 0.9)])
    assert seen.newly_named and seen.identity.identity == "Ada" and seen.identity.rule == "instant"
    # A poor-quality face does not qualify, however similar.
    (poor,) = feed(IdentityKeeper(keeper.gallery), FaceTracker(), [(strong, 0.2)])
    assert poor.identity.identity is None


def test_a_stranger_below_the_threshold_stays_unknown(keeper, people, rng):
    # A stranger's faces agree with each other (their own identity), so the aggregate tends to
    # the stranger's face, not to the gallery's: it stays under the threshold however long.
    stranger = near(people["Ada"], keeper.threshold - 0.1, rng)
    seen = feed(keeper, FaceTracker(), [(near(stranger, 0.95, rng), 0.9) for _ in range(30)])
    assert all(o.identity.identity is None for o in seen)
    assert max(o.identity.similarity for o in seen) < keeper.threshold


def test_too_close_a_second_subject_leaves_the_track_unknown(rng):
    ada = random_unit(rng)
    twin = near(ada, 0.98, rng)  # two templates nearly alike: no margin between them
    keeper = IdentityKeeper(gallery_of({"Ada": ada, "Twin": twin}), IdentityPolicy(instant_far=None))
    seen = feed(keeper, FaceTracker(), [(ada, 0.9) for _ in range(5)])
    assert all(o.identity.identity is None for o in seen)


def good(keeper: IdentityKeeper) -> float:
    """A similarity well above every threshold of the model (0.97 for dlib's, 0.71 for fr-feature's)."""
    return (keeper.instant_threshold + 1.0) / 2


def test_a_name_never_changes_to_another_the_track_splits_instead(keeper, people, rng):
    policy = keeper.policy
    frames = [(near(people["Ada"], good(keeper), rng), 0.9) for _ in range(6)]
    frames += [(near(people["Grace"], good(keeper), rng), 0.9) for _ in range(policy.split_after + policy.window)]
    tracker = FaceTracker()
    seen = feed(keeper, tracker, frames)
    names = {o.identity.identity for o in seen} - {None}
    assert names == {"Ada"}  # never Grace on this track
    first_split = next(i for i, o in enumerate(seen) if o.must_split)
    assert 6 < first_split <= 6 + policy.split_after + policy.window


def test_a_short_dip_does_not_split(keeper, people, rng):
    frames = [(near(people["Ada"], good(keeper), rng), 0.9) for _ in range(10)]
    frames += [(near(people["Ada"], 0.0, rng), 0.9) for _ in range(2)]  # two odd frames (a hand over the face)
    frames += [(near(people["Ada"], good(keeper), rng), 0.9) for _ in range(10)]
    seen = feed(keeper, FaceTracker(), frames)
    assert not any(o.must_split for o in seen)
    assert all(o.identity.identity == "Ada" for o in seen[2:])


def test_one_name_is_held_by_one_live_track(keeper, people, rng):
    tracker = FaceTracker()
    strong = keeper.instant_threshold + 0.05
    update = tracker.update(0, 0.0, [face((100, 50, 180, 150), near(people["Ada"], strong, rng)),
                                     face((400, 50, 480, 150), near(people["Ada"], strong - 0.02, rng))])
    seen = keeper.observe(update.matched, 0)
    first, second = (t for t, _ in update.matched)
    assert seen[first.id].identity.identity == "Ada" and seen[second.id].identity.identity is None
    keeper.forget(first.id)
    update = tracker.update(1, 1 / 30, [face((400, 50, 480, 150), near(people["Ada"], strong, rng))])
    assert keeper.observe(update.matched, 1)[second.id].identity.identity == "Ada"


def test_forget_returns_the_last_identity(keeper, people, rng):
    tracker = FaceTracker()
    feed(keeper, tracker, [(near(people["Grace"], good(keeper), rng), 0.9)])
    (track,) = tracker.tracks
    assert keeper.forget(track.id).identity == "Grace"
    assert keeper.identity(track.id).identity is None and "Grace" not in keeper.holders


def test_an_empty_gallery_names_nobody(rng):
    keeper = IdentityKeeper(gallery_of({}))
    seen = feed(keeper, FaceTracker(), [(random_unit(rng), 0.9) for _ in range(4)])
    assert all(o.identity.identity is None and o.identity.similarity is None for o in seen)
