"""``/v1/streams``: a webcam seen frame by frame, over a real server (``api``) and in this process
(``app``). The faces are the shipped public-domain images (tests/data/faces): no ../shared needed.

A stream names a face per track once the track's frames agree, keeps the name on the frames
after, reports ``track_started``/``identified`` events, ends with a summary; it belongs to the key
that made it (another key's stream is "not found"), is dropped after its idle time, and a key
holds a bounded number of them.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from faceprint.service import Settings
from tests.conftest import face_image
from tests.integration.service.conftest import InProcess, envelope, make_keys

COLLINS, COLLINS_2, HOPPER = face_image("collins.jpg"), face_image("collins_2.jpg"), face_image("hopper.jpg")


def new_stream(service, key: str, **body) -> str:
    r = service.call("POST", "/v1/streams", key=key, json_body=body)
    assert r.status == 201, r.body
    doc = r.json()
    assert doc["idle_timeout_s"] > 0 and doc["model"]
    return str(doc["stream_id"])


def send(service, key: str, stream_id: str, image: Path):
    return service.call("POST", f"/v1/streams/{stream_id}/frames", key=key, form={"image": image})


def test_a_stream_names_the_enrolled_face_per_track_and_ends_with_a_summary(api, collins):
    key = api.keys.recognize
    stream = new_stream(api, key)
    answers = []
    for i in range(6):
        r = send(api, key, stream, COLLINS_2)  # another photo of her, held in front of the camera
        assert r.status == 200, r.body
        doc = r.json()
        assert doc["stream_id"] == stream and doc["frame"] == i and doc["image_size"] == [200, 200]
        answers.append(doc)
    tracks = [t for doc in answers for t in doc["tracks"]]
    assert tracks and {t["track"] for t in tracks} == {tracks[0]["track"]}  # one face, one track throughout
    last = answers[-1]["tracks"][0]
    assert last["identity"] == collins and last["confirmed"] and last["similarity"] > 0
    assert len(last["box"]) == 4
    events = [e for doc in answers for e in doc["events"]]
    kinds = [e["event"] for e in events]
    assert "track_started" in kinds and "identified" in kinds
    named = next(e for e in events if e["event"] == "identified")
    assert named["identity"] == collins and named["track"] == last["track"]
    # once named, the name holds on every later frame (no flicker)
    first = next(i for i, doc in enumerate(answers) if doc["tracks"] and doc["tracks"][0]["identity"])
    assert all(doc["tracks"][0]["identity"] == collins for doc in answers[first:])

    r = api.call("DELETE", f"/v1/streams/{stream}", key=key)
    assert r.status == 200, r.body
    ended = r.json()
    assert ended["frames"] == 6 and ended["events"][-1]["event"] == "summary"
    assert [e["event"] for e in ended["events"][:-1]] == ["track_ended"]
    assert ended["events"][-1]["identities"] == [collins]
    envelope(send(api, key, stream, COLLINS_2), 404, "session_not_found")
    envelope(api.call("DELETE", f"/v1/streams/{stream}", key=key), 404, "session_not_found")


def test_an_unknown_face_stays_unknown(api, collins):
    key = api.keys.recognize
    stream = new_stream(api, key)
    for _ in range(4):
        doc = send(api, key, stream, HOPPER).json()
    assert doc["tracks"] and doc["tracks"][0]["identity"] is None
    assert api.call("DELETE", f"/v1/streams/{stream}", key=key).status == 200


def test_another_keys_stream_is_not_found_and_bad_frames_get_typed_errors(app):
    stream = new_stream(app, app.keys.recognize)
    envelope(send(app, app.keys.both, stream, COLLINS), 404, "session_not_found")
    envelope(app.call("DELETE", f"/v1/streams/{stream}", key=app.keys.both), 404, "session_not_found")
    envelope(app.call("POST", "/v1/streams", key=app.keys.manage, json_body={}), 403, "forbidden")
    envelope(app.call("POST", "/v1/streams"), 401, "unauthorized")
    key = app.keys.recognize
    envelope(app.call("POST", f"/v1/streams/{stream}/frames", key=key, form={"image": ("f.jpg", b"no image")}), 422,
             "invalid_image")
    envelope(app.call("POST", f"/v1/streams/{stream}/frames", key=key, form={"other": "x"}), 422, "invalid_argument")
    envelope(app.call("POST", "/v1/streams", key=key, json_body={"far": 2}), 422, "invalid_argument")
    # the stream took none of them: its first frame is still frame 0
    assert send(app, key, stream, COLLINS).json()["frame"] == 0
    assert app.call("DELETE", f"/v1/streams/{stream}", key=key).status == 200


@pytest.fixture(scope="module")
def tight(tmp_path_factory) -> Iterator[InProcess]:
    """A service whose streams idle out after half a second, two per key."""
    gallery = tmp_path_factory.mktemp("streams-tight") / "gallery.db"
    keys = make_keys(gallery)
    service = InProcess(Settings(gallery=gallery, stream_idle_s=0.5, max_sessions_per_key=2))
    service.keys = keys  # type: ignore[attr-defined]
    yield service
    service.close()


def test_an_idle_stream_is_dropped(tight):
    key = tight.keys.recognize
    stream = new_stream(tight, key)
    assert send(tight, key, stream, COLLINS).status == 200
    time.sleep(0.8)
    envelope(send(tight, key, stream, COLLINS), 404, "session_not_found")


def test_a_key_holds_a_bounded_number_of_streams(tight):
    key = tight.keys.both
    first = new_stream(tight, key)
    new_stream(tight, key)
    doc = envelope(tight.call("POST", "/v1/streams", key=key, json_body={}), 429, "too_many_sessions")
    assert doc["error"]["details"]["max_sessions_per_key"] == 2
    assert tight.call("DELETE", f"/v1/streams/{first}", key=key).status == 200
    new_stream(tight, key)  # room again
