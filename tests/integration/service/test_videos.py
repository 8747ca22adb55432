"""``POST /v1/videos/identify``: a short clip in, its tracks and their names out; over a real server
(``api``) and in this process (``app``, and services with tight limits).

The clips are written here with :class:`faceprint.video.source.VideoWriter` from the shipped
public-domain faces (tests/data/faces), so no ../shared data is needed. Bad uploads get typed
errors, each limit (bytes, seconds, pixels of a frame, pixels of the whole clip) its own, and the
temporary copy of the upload is gone after the request, whatever its outcome.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from faceprint.service import Settings
from faceprint.video.source import VideoWriter
from tests.conftest import face_image
from tests.integration.service.conftest import InProcess, envelope, make_keys

COLLINS, COLLINS_2, HOPPER = face_image("collins.jpg"), face_image("collins_2.jpg"), face_image("hopper.jpg")
UPLOAD_PREFIX = "faceprint-upload-"


def clip(path: Path, image: Path, frames: int = 15, fps: float = 5.0, size: int = 200) -> Path:
    """``image`` held for ``frames`` frames (drifting a pixel a frame, as a hand-held camera would)."""
    with Image.open(image) as im:
        face = np.asarray(im.convert("RGB").resize((size, size)))
    with VideoWriter(path, fps, (size + 32, size)) as out:
        for i in range(frames):
            canvas = np.full((size, size + 32, 3), 110, np.uint8)
            canvas[:, i % 32:i % 32 + size] = face
            out.write(canvas)
    return path


def uploads_left() -> list[str]:
    return sorted(p.name for p in Path(tempfile.gettempdir()).glob(UPLOAD_PREFIX + "*"))


def identify(service, key: str, video: Path | tuple[str, bytes], **fields: object):
    return service.call("POST", "/v1/videos/identify", key=key, form={"video": video, **fields})


def test_a_clip_gives_its_tracks_named_and_the_events_in_order(api, collins, tmp_path):
    video = clip(tmp_path / "collins.mp4", COLLINS_2)
    r = identify(api, api.keys.recognize, video, far="0.001")
    assert r.status == 200, r.body
    doc = r.json()
    assert doc["video"]["source"] == "collins.mp4"  # the upload's name, never the server's temporary path
    assert doc["video"]["frame_count"] == 15 and doc["video"]["width"] == 232 and doc["video"]["fps"] == 5.0
    kinds = [e["event"] for e in doc["events"]]
    assert kinds[0] == "video_started" and kinds[-1] == "summary"
    assert doc["events"][0]["source"] == "collins.mp4" and doc["events"][0]["far"] == 0.001
    assert kinds.count("track_started") == 1 and kinds.count("track_ended") == 1
    named = [e for e in doc["events"] if e["event"] == "identified"]
    assert [e["identity"] for e in named] == [collins]
    for event in doc["events"]:  # every event has the keys
        assert {"event", "frame", "time_s", "track", "identity", "similarity", "box"} <= set(event)
    assert [t["identity"] for t in doc["tracks"]] == [collins]
    assert doc["tracks"][0]["first_frame"] <= 2 and doc["tracks"][0]["last_frame"] == 14
    assert doc["timing"]["frames"] == 15 and doc["timing"]["seconds"] > 0


def test_an_unknown_face_is_tracked_but_not_named(app, tmp_path):
    video = clip(tmp_path / "hopper.avi", HOPPER)
    doc = identify(app, app.keys.recognize, video).json()
    assert [t["identity"] for t in doc["tracks"]] == [None]
    assert "identified" not in [e["event"] for e in doc["events"]]


def test_bad_uploads_get_typed_errors_and_leave_no_file(app, tmp_path):
    key = app.keys.recognize
    before = uploads_left()
    envelope(identify(app, key, ("notes.mp4", b"shopping list: milk, eggs\n" * 40)), 422, "video_unreadable")
    with Image.open(COLLINS) as im:  # a still image is not a video
        im.save(tmp_path / "still.png")
    envelope(identify(app, key, tmp_path / "still.png"), 422, "video_unreadable")
    envelope(identify(app, key, ("empty.mp4", b"")), 422, "invalid_argument")
    envelope(app.call("POST", "/v1/videos/identify", key=key, form={"far": "0.001"}), 422, "invalid_argument")
    envelope(identify(app, key, clip(tmp_path / "a.mp4", COLLINS_2, frames=3), far="2"), 422, "invalid_argument")
    envelope(identify(app, key, clip(tmp_path / "b.mp4", COLLINS_2, frames=3), unknown="1"), 422, "invalid_argument")
    envelope(app.call("POST", "/v1/videos/identify", key=key, json_body={"video": "AAAA"}), 415,
             "unsupported_media_type")
    envelope(app.call("POST", "/v1/videos/identify", key=app.keys.manage, form={"video": ("a.mp4", b"x")}), 403,
             "forbidden")
    assert uploads_left() == before


@pytest.fixture(scope="module")
def tight(tmp_path_factory) -> Iterator[InProcess]:
    """A service with small video limits: 200 KB, 2 s, 100,000 pixels a frame, 0.3 MP a clip."""
    gallery = tmp_path_factory.mktemp("videos-tight") / "gallery.db"
    keys = make_keys(gallery)
    service = InProcess(Settings(gallery=gallery, max_video_bytes=200_000, max_video_seconds=2.0,
                                 max_pixels=100_000, max_video_pixels=300_000))
    service.keys = keys  # type: ignore[attr-defined]
    yield service
    service.close()


def test_each_limit_has_its_error(tight, tmp_path):
    key = tight.keys.recognize
    before = uploads_left()
    # 3 s at 5 fps: over max_video_seconds, by the container's own header
    long = clip(tmp_path / "long.mp4", COLLINS_2, frames=15, size=120)
    doc = envelope(identify(tight, key, long), 413, "video_too_long")
    assert doc["error"]["details"]["max_video_seconds"] == 2.0
    # ... unless only its first seconds are asked for
    r = identify(tight, key, long, max_seconds="1")
    assert r.status == 200, r.body
    assert r.json()["timing"]["frames"] <= 6
    envelope(identify(tight, key, long, max_seconds="5"), 422, "invalid_argument")
    # frames over max_pixels (352 x 320)
    envelope(identify(tight, key, clip(tmp_path / "big.mp4", COLLINS_2, frames=3, size=320)), 413, "image_too_large")
    # within each limit alone, but 10 frames of 232 x 200 pass the clip's pixel budget
    many = clip(tmp_path / "many.mp4", COLLINS_2, frames=10, size=200)
    doc = envelope(identify(tight, key, many, max_seconds="2"), 413, "request_too_large")
    assert doc["error"]["details"]["max_video_pixels"] == 300_000
    # over max_video_bytes
    envelope(identify(tight, key, ("noise.mp4", np.random.default_rng(0).bytes(250_000))), 413, "request_too_large")
    assert uploads_left() == before
