"""The Watcher frame by frame, with scripted detections (no models, no decoding): events and
their order, ``every`` N with predicted boxes, cuts, splits, and its refusals."""

from __future__ import annotations

import numpy as np
import pytest

from faceprint.errors import FaceprintError, InvalidArgumentError, ModelMismatchError, SubjectNotFoundError
from faceprint.video.events import EVENT_KEYS
from faceprint.video.proctor import ProctorPolicy
from faceprint.video.watch import FrameResult, TrackView, Watcher, WatchOptions, track_label
from tests.unit.video.scripted import ScriptedAnalyzer, face, frame_for, gallery_of, near, random_unit, unit


@pytest.fixture()
def rng() -> np.random.Generator:
    return np.random.default_rng(1515)


@pytest.fixture()
def people(rng):
    return {"Ada": random_unit(rng), "Grace": random_unit(rng)}


@pytest.fixture()
def gallery(people):
    return gallery_of(people)


def good(gallery) -> float:
    """Well above the model's instant-rule threshold (its card's FAR 1e-4)."""
    return (gallery.analyzer.embedder_card.threshold_for(1e-4) + 1.0) / 2


def play(watcher: Watcher, n: int, colours=None) -> tuple[list[FrameResult], list]:
    results = [watcher.process(frame_for(i, colour=(colours or {}).get(i, (0, 0, 0)))) for i in range(n)]
    return results, [e for r in results for e in r.events] + watcher.finish()


def test_a_named_track_events_in_order(gallery, people, rng):
    sim = good(gallery)
    script = {i: [face((100 + i, 50, 180 + i, 150), near(people["Ada"], sim, rng))] for i in range(30)}
    script.update({i: script[i] + [face((400, 50, 440, 100), near(people["Grace"], 0.1, rng), quality=0.0)]
                   for i in (10, 11)})  # a 2-frame false positive
    watcher = Watcher(ScriptedAnalyzer(script), gallery, WatchOptions(cuts=False))
    results, events = play(watcher, 30)
    assert [e.event for e in events] == ["track_started", "identified", "track_ended", "summary"]
    started, identified, ended, summary = events
    assert started.frame == 2 and started.extra["first_frame"] == 0 and started.track == 1
    assert identified.identity == "Ada" and identified.extra["named_at_frame"] == 0  # the instant rule
    assert identified.extra["rule"] == "instant" and identified.extra["since_frame"] == 0
    assert identified.extra["threshold"] == pytest.approx(gallery.analyzer.embedder_card.threshold_for(1e-3), abs=1e-4)
    assert ended.extra["reason"] == "end_of_stream" and ended.frame == 29 and ended.identity == "Ada"
    assert summary.extra["frames"] == 30 and summary.extra["detected_frames"] == 30
    assert [t["track"] for t in summary.extra["tracks"]] == [1] and summary.extra["identities"] == ["Ada"]
    for event in events:
        assert tuple(event.to_dict())[:len(EVENT_KEYS)] == EVENT_KEYS
    # Per frame: the track with its name, confirmed from its 3rd detection; the false positive unconfirmed.
    assert results[0].tracks == [TrackView(1, results[0].tracks[0].box, "Ada", results[0].tracks[0].similarity, False)]
    assert all(v.confirmed for r in results[2:] for v in r.tracks if v.track == 1)
    assert {v.track for v in results[10].tracks} == {1, 2} and not next(v for v in results[10].tracks if v.track == 2).confirmed
    assert results[5].to_dict()["tracks"][0]["identity"] == "Ada"


def test_every_third_frame_with_predicted_boxes_and_detection_forced_at_a_cut(gallery, people, rng):
    sim = good(gallery)
    script = {i: [face((100 + 3 * i, 50, 180 + 3 * i, 150), near(people["Ada"], sim, rng))] for i in range(20)}
    script.update({i: [face((100, 50, 180, 150), near(people["Grace"], sim, rng))] for i in range(20, 40)})
    analyzer = ScriptedAnalyzer(script)
    colours = {i: (200, 30, 30) if i < 20 else (30, 30, 200) for i in range(40)}
    watcher = Watcher(analyzer, gallery, WatchOptions(every=3))
    results, events = play(watcher, 40, colours)
    assert analyzer.detected[:7] == [0, 3, 6, 9, 12, 15, 18]
    assert 20 in analyzer.detected  # the cut: detected at once, not at 21
    assert results[4].detected is False and results[4].tracks[0].predicted
    assert results[4].tracks[0].box.x1 == pytest.approx(112, abs=1.0)  # moved between detections 3 and 6
    kinds = [(e.event, e.frame, e.track) for e in events]
    assert ("track_ended", 18, 1) in kinds and ("scene_cut", 20, None) in kinds
    ended = next(e for e in events if e.event == "track_ended" and e.track == 1)
    assert ended.extra["reason"] == "cut"
    named = {e.track: e.identity for e in events if e.event == "identified"}
    assert named == {1: "Ada", 2: "Grace"}


def test_a_face_that_turns_into_another_splits_the_track_never_renames_it(gallery, people, rng):
    """Ada's face morphs slowly into Grace's (each step passes the tracker's gate): the track
    named Ada ends with appearance_changed; a new track gets Grace. No track has two names."""
    a, g = people["Ada"].astype(np.float64), people["Grace"].astype(np.float64)
    frames = 80
    script = {}
    for i in range(frames):
        alpha = min(1.0, max(0.0, (i - 15) / 40))
        script[i] = [face((100, 50, 180, 150), unit((1 - alpha) * a + alpha * g))]
    watcher = Watcher(ScriptedAnalyzer(script), gallery, WatchOptions(cuts=False))
    results, events = play(watcher, frames)
    names: dict[int, set] = {}
    for r in results:
        for v in r.tracks:
            names.setdefault(v.track, set()).add(v.identity)
    assert all(len(n - {None}) <= 1 for n in names.values()), names
    ended = [e for e in events if e.event == "track_ended"]
    assert ended[0].identity == "Ada" and ended[0].extra["reason"] == "appearance_changed"
    assert any(e.event == "identified" and e.identity == "Grace" and e.track != ended[0].track for e in events)


def test_without_a_gallery_tracks_are_followed_not_named(rng):
    script = {i: [face((100, 50, 180, 150), near(random_unit(np.random.default_rng(0)), 0.95, rng))] for i in range(10)}
    watcher = Watcher(ScriptedAnalyzer(script), None, WatchOptions(cuts=False))
    assert watcher.started(_info()).to_dict()["threshold"] is None
    results, events = play(watcher, 10)
    assert [e.event for e in events] == ["track_started", "track_ended", "summary"]
    assert results[-1].tracks[0].identity is None and track_label(results[-1].tracks[0]) == "#1 unknown"


def test_refusals(gallery):
    analyzer = ScriptedAnalyzer({})
    with pytest.raises(InvalidArgumentError):
        WatchOptions(every=0)
    with pytest.raises(InvalidArgumentError):
        WatchOptions(enroll_track=3)  # no name
    with pytest.raises(InvalidArgumentError):
        Watcher(analyzer, None, WatchOptions(proctor=ProctorPolicy("Ada")))  # needs a gallery
    with pytest.raises(SubjectNotFoundError):
        Watcher(analyzer, gallery, WatchOptions(proctor=ProctorPolicy("Nobody")))
    with pytest.raises(ModelMismatchError):
        Watcher(ScriptedAnalyzer({}, model_id="fr-feature@1"), gallery)
    plain = Watcher(analyzer, gallery, WatchOptions(cuts=False))
    assert plain.crops is None  # nothing kept for an enrolment nobody asked for
    with pytest.raises(InvalidArgumentError, match="keep_crops"):
        plain.enroll(1, "Ada")
    watcher = Watcher(analyzer, gallery, WatchOptions(cuts=False, keep_crops=True))
    watcher.process(frame_for(0))
    with pytest.raises(InvalidArgumentError, match="no track 7"):
        watcher.enroll(7, "Ada")
    assert [e.event for e in watcher.finish()] == ["summary"]
    assert [e.event for e in watcher.finish()] == ["summary"]  # again: nothing more ends
    with pytest.raises(InvalidArgumentError):
        watcher.process(frame_for(1))


def test_an_enrolment_asked_for_a_track_never_seen_is_an_event_with_its_error(gallery):
    watcher = Watcher(ScriptedAnalyzer({}), gallery, WatchOptions(cuts=False, enroll_track=5, enroll_name="Zoe"))
    watcher.process(frame_for(0))
    events = watcher.finish()
    enrolled = next(e for e in events if e.event == "enrolled")
    assert enrolled.extra["error"]["code"] == "invalid_argument" and enrolled.extra["face_ids"] == []
    assert watcher.enroll_error is not None and events[-1].event == "summary"


def _info():
    from faceprint.video.types import VideoInfo

    return VideoInfo("frames", 64, 36, 30.0, 10, False)


def test_frames_out_of_order_are_refused():
    """An index going back would stop detection until it caught up; a time going back would
    keep lost tracks alive: both are refused, as is a time that is not a number."""
    from faceprint.video.types import Frame

    watcher = Watcher(ScriptedAnalyzer({}), None, WatchOptions(cuts=False))
    watcher.process(frame_for(5))
    later = frame_for(6)
    for bad in (frame_for(5), frame_for(2), Frame(6, 0.01, later.rgb), Frame(6, float("nan"), later.rgb)):
        with pytest.raises(InvalidArgumentError):
            watcher.process(bad)
    assert watcher.process(later).frame == 6  # the refused frames changed nothing


@pytest.mark.parametrize(("rgb", "error"), [
    (np.zeros((0, 0, 3), np.uint8), "InvalidImageError"),
    (np.zeros((36, 64, 3, 2), np.uint8), "InvalidImageError"),
    (np.zeros((36, 64), np.int64), "InvalidImageError"),
    ([[0, 0, 0]], "InvalidImageError"),
    ("huge", "ImageTooLargeError"),
])
def test_bad_frames_get_typed_errors(rgb, error):
    """What the Analyzer refuses in an image it refuses in a frame (not a cv2 or numpy error)."""
    from faceprint.video.types import Frame

    if isinstance(rgb, str):  # a frame of more pixels than the limit, without allocating it
        rgb = np.broadcast_to(np.zeros((1, 1, 3), np.uint8), (10_001, 10_001, 3))
    watcher = Watcher(ScriptedAnalyzer({}), None, WatchOptions())
    with pytest.raises(FaceprintError) as exc:
        watcher.process(Frame(0, 0.0, rgb))
    assert type(exc.value).__name__ == error
    assert watcher.frames == 0


def test_a_track_that_ends_unconfirmed_leaves_no_crops(gallery, people, rng):
    """A hand or microphone (a track never confirmed, never reported) would take one of the
    recent tracks' places among the kept enrolment crops."""
    script = {i: [face((100, 50, 180, 150), near(people["Ada"], good(gallery), rng))] for i in range(10)}
    script.update({i: script[i] + [face((400, 50, 440, 100), near(people["Grace"], 0.1, rng))] for i in (3, 4)})
    watcher = Watcher(ScriptedAnalyzer(script), gallery, WatchOptions(cuts=False, keep_crops=True))
    play(watcher, 10)
    assert watcher.crops is not None and list(watcher.crops.crops) == [1]


class _Source:
    """A VideoSource of scripted frames that says whether it was closed."""

    def __init__(self, n: int) -> None:
        from faceprint.video.types import VideoInfo

        self.frames = [frame_for(i) for i in range(n)]
        self.info = VideoInfo("scripted", 64, 36, 30.0, n, False)
        self.closed = False

    def __iter__(self):
        return iter(self.frames)

    def close(self) -> None:
        self.closed = True


def test_watch_closes_its_source_when_the_watcher_refuses_or_is_abandoned(gallery):
    from faceprint.video.watch import watch

    source = _Source(3)
    with pytest.raises(SubjectNotFoundError):
        next(watch(source, ScriptedAnalyzer({}), gallery, WatchOptions(proctor=ProctorPolicy("Nobody"))))
    assert source.closed
    source = _Source(3)
    events = watch(source, ScriptedAnalyzer({}), gallery)
    assert next(events).event == "video_started"
    events.close()  # the caller stops reading after the first event
    assert source.closed
    source = _Source(3)
    assert [e.event for e in watch(source, ScriptedAnalyzer({}), gallery)] == ["video_started", "summary"]
    assert source.closed
