"""Proctoring conditions with start, end and duration, from scripted tracks (no models)."""

from __future__ import annotations

import numpy as np
import pytest

from faceprint.errors import InvalidArgumentError
from faceprint.video.identity import TrackIdentity
from faceprint.video.proctor import Proctor, ProctorPolicy, is_person
from faceprint.video.track import Track
from tests.unit.video.scripted import face

FPS = 10.0
SUBJECT = "Ada"


def track(track_id: int, *, yaw: float = 0.0, distinct: int = 3, confirmed: bool = True) -> Track:
    detected = face((100, 50, 180, 150), np.eye(8, dtype=np.float32)[0], yaw=yaw)
    return Track(track_id, 0, 0.0, 0, 0.0, detected.face.box, detected, hits=3, distinct_hits=distinct, confirmed=confirmed)


def named(t: Track, name: str | None) -> tuple[Track, TrackIdentity]:
    return t, TrackIdentity(name, 0.6 if name else None)


def play(proctor: Proctor, script: list[list]) -> list:
    """Frame i (at FPS) shows script[i]; every event, then those of the end."""
    events = []
    for i, tracks in enumerate(script):
        events += proctor.observe(i, i / FPS, tracks)
    return events + proctor.finish(len(script) - 1, (len(script) - 1) / FPS)


def test_no_face_has_start_end_and_duration():
    subject = named(track(1), SUBJECT)
    script = [[subject]] * 10 + [[]] * 20 + [[subject]] * 10
    events = play(Proctor(ProctorPolicy(SUBJECT)), script)
    started, ended = events
    assert started.event == "proctor_started" and started.extra["kind"] == "no_face"
    assert started.extra["start_frame"] == 10 and started.frame == 20  # reported once it lasted 1 s
    assert ended.event == "proctor_ended" and ended.extra["start_frame"] == 10 and ended.extra["end_frame"] == 30
    assert ended.extra["duration_s"] == pytest.approx(2.0)
    for event in events:
        assert set(event.to_dict()) >= {"event", "frame", "time_s", "track", "identity", "similarity", "box"}


def test_a_flicker_shorter_than_min_duration_is_not_reported():
    subject = named(track(1), SUBJECT)
    script = [[subject]] * 10 + [[]] * 5 + [[subject]] * 10
    assert play(Proctor(ProctorPolicy(SUBJECT)), script) == []


def test_a_gap_shorter_than_grace_does_not_end_a_condition():
    subject = named(track(1), SUBJECT)
    script = [[]] * 15 + [[subject]] * 2 + [[]] * 15  # the face for 0.2 s: still one no_face interval
    events = play(Proctor(ProctorPolicy(SUBJECT, grace_s=0.5)), script)
    assert [e.event for e in events] == ["proctor_started", "proctor_ended"]
    assert events[1].extra["start_frame"] == 0 and events[1].extra["end_frame"] == 31  # open at the end


def test_multiple_faces_counts_people_not_hands():
    subject = named(track(1), SUBJECT)
    hand = named(track(2, distinct=0), None)  # confirmed, but every detection indistinct
    stranger = named(track(3), None)
    assert not is_person(hand[0], 3) and is_person(stranger[0], 3)
    assert play(Proctor(ProctorPolicy(SUBJECT)), [[subject, hand]] * 30) == []
    events = play(Proctor(ProctorPolicy(SUBJECT)), [[subject, stranger]] * 30)
    kinds = [(e.event, e.extra["kind"]) for e in events]
    assert ("proctor_started", "multiple_faces") in kinds and ("proctor_started", "not_subject") in kinds
    not_subject = next(e for e in events if e.extra["kind"] == "not_subject")
    assert not_subject.track == 3


def test_a_face_followed_for_half_a_second_is_a_person_even_if_indistinct():
    """The audience's small, blurred faces are mostly flagged indistinct (the hamilton clip's
    four audience tracks: 2, 6, 12 and 31 distinct faces of 64): time in view makes them people,
    while a hand or microphone detection (at most 0.2 s there) stays out."""
    detected = face((100, 50, 180, 150), np.eye(8, dtype=np.float32)[0])
    blurred = Track(2, 0, 0.0, 6, 0.6, detected.face.box, detected, hits=7, distinct_hits=1, confirmed=True)
    hand = Track(3, 0, 0.0, 2, 0.2, detected.face.box, detected, hits=3, distinct_hits=0, confirmed=True)
    assert is_person(blurred, 3) and not is_person(hand, 3)
    assert not is_person(blurred, 3, min_seen_s=1.0)
    subject = named(track(1), SUBJECT)
    events = play(Proctor(ProctorPolicy(SUBJECT)), [[subject, named(blurred, None)]] * 30)
    assert ("proctor_started", "multiple_faces") in [(e.event, e.extra["kind"]) for e in events]
    with pytest.raises(InvalidArgumentError):
        ProctorPolicy(SUBJECT, min_seen_s=-1)


def test_someone_else_alone_is_not_subject():
    other = named(track(4), "Grace")
    events = play(Proctor(ProctorPolicy(SUBJECT)), [[other]] * 20)
    assert [(e.event, e.extra["kind"]) for e in events] == [("proctor_started", "not_subject"),
                                                            ("proctor_ended", "not_subject")]


def test_looking_away_beyond_the_limits():
    ahead, away = named(track(1, yaw=10), SUBJECT), named(track(1, yaw=45), SUBJECT)
    events = play(Proctor(ProctorPolicy(SUBJECT, yaw_limit=30)), [[ahead]] * 5 + [[away]] * 20 + [[ahead]] * 10)
    assert [(e.event, e.extra["kind"]) for e in events] == [("proctor_started", "looking_away"),
                                                            ("proctor_ended", "looking_away")]
    assert events[1].extra["start_frame"] == 5 and events[1].extra["end_frame"] == 25
    proctor = Proctor(ProctorPolicy(SUBJECT, yaw_limit=50))
    assert play(proctor, [[away]] * 30) == [] and proctor.intervals == []


def test_policy_is_checked():
    with pytest.raises(InvalidArgumentError):
        ProctorPolicy(" ")
    with pytest.raises(InvalidArgumentError):
        ProctorPolicy(SUBJECT, yaw_limit=0)
