"""``/v1/liveness/sessions``: the protocol over a real server (``api``) and in this process
(``app``), and the checks with sequences of real photos (lfw_dev, :mod:`.live_frames`).

What the service promises, and is tested here: a session is single-use (``pending`` ->
``passed`` | ``failed`` | ``expired``); its frames come from the key that made it (another key's
session is "not found"), with sequence numbers that only go up; the server's receive time is the
only clock; a random challenge is revealed a step at a time; the verdict is a signed token that
a relying party can check. The random default is answered step by step as a person would, from
the prompts alone; the same frames replayed to a new session with another challenge fail; a
still photo fails; frames after a verdict or after expiry are refused.
"""

from __future__ import annotations

import base64
import json
import time

import pytest

from faceprint.liveness.challenge import ACTIONS
from faceprint.service import Settings
from faceprint.service.sessions import verify_token
from tests.conftest import face_image
from tests.integration.service.conftest import InProcess, envelope, make_keys
from tests.integration.service.live_frames import CLOSED, OPEN, WARM_UP, answer, jpeg

COLLINS = face_image("collins.jpg")
#: A guard against a loop that never ends on a loaded machine, not a timing assertion.
MAX_FRAMES = 200


def frame_form(image: bytes | object, seq: int | None) -> dict[str, object]:
    form: dict[str, object] = {"image": ("frame.jpg", image) if isinstance(image, bytes) else image}
    if seq is not None:
        form["seq"] = str(seq)
    return form


def create(service, key: str) -> dict:
    r = service.call("POST", "/v1/liveness/sessions", key=key)
    assert r.status == 201, r.body
    return r.json()


def send(service, key: str, sid: str, image, seq: int | None):
    return service.call("POST", f"/v1/liveness/sessions/{sid}/frames", key=key, form=frame_form(image, seq))


def in_process(tmp_path_factory, name: str, **settings) -> InProcess:
    gallery = tmp_path_factory.mktemp(name) / "gallery.db"
    keys = make_keys(gallery)
    service = InProcess(Settings(gallery=gallery, **settings))
    service.keys = keys  # type: ignore[attr-defined]
    return service


# --- the protocol (no shared data) ---------------------------------------------------------------
def test_a_session_has_a_random_challenge_a_nonce_and_an_expiry(api):
    key = api.keys.recognize
    a, b = create(api, key), create(api, key)
    assert a["session_id"] != b["session_id"] and a["nonce"] != b["nonce"]
    assert len(bytes.fromhex(a["nonce"])) == 16 and len(base64.urlsafe_b64decode(a["session_id"] + "==")) == 16
    assert a["state"] == "pending" and a["expires_in_s"] > 0 and a["expires_at"] > a["created_at"]
    # only the pending step is revealed: how many steps, and the first one's prompt
    challenge = a["challenge"]
    assert challenge["steps"] == Settings.liveness_steps and challenge["step"] == 0 and challenge["step_timeout_s"] > 0
    assert challenge["action"] in ACTIONS and challenge["prompt"]
    r = api.call("GET", f"/v1/liveness/sessions/{a['session_id']}", key=key)
    assert r.status == 200
    doc = r.json()
    assert doc["state"] == "pending" and doc["result"] is None and doc["token"] is None
    assert doc["challenge"] == challenge


def test_challenges_come_from_a_csprng_not_a_fixed_list(tmp_path):
    from faceprint.service.sessions import LiveSessions

    sessions = LiveSessions(Settings(gallery=tmp_path / "g.db"))
    drawn = {sessions.new_challenge().describe() for _ in range(60)}
    assert len(drawn) > 10  # 3 steps of 3 actions with up to 2 blinks: dozens of challenges


def test_another_keys_session_is_not_found_and_scopes_apply(api):
    sid = create(api, api.keys.recognize)["session_id"]
    for key in (api.keys.both,):  # a valid key with the scope, but not the session's owner
        envelope(api.call("GET", f"/v1/liveness/sessions/{sid}", key=key), 404, "session_not_found")
        envelope(send(api, key, sid, COLLINS, 0), 404, "session_not_found")
    envelope(api.call("GET", "/v1/liveness/sessions/no-such-session", key=api.keys.recognize), 404,
             "session_not_found")
    envelope(api.call("POST", "/v1/liveness/sessions", key=api.keys.manage), 403, "forbidden")
    envelope(api.call("POST", "/v1/liveness/sessions"), 401, "unauthorized")
    envelope(api.call("GET", f"/v1/liveness/sessions/{sid}"), 401, "unauthorized")


def test_bad_frames_get_typed_errors(api, tmp_path):
    key = api.keys.both
    sid = create(api, key)["session_id"]
    envelope(send(api, key, sid, COLLINS, None), 422, "invalid_argument")  # no seq
    envelope(send(api, key, sid, COLLINS, -1), 422, "invalid_argument")
    envelope(api.call("POST", f"/v1/liveness/sessions/{sid}/frames", key=key, form={"seq": "0"}), 422,
             "invalid_argument")  # no image
    envelope(api.call("POST", f"/v1/liveness/sessions/{sid}/frames", key=key, data=b"x",
                      headers={"Content-Type": "text/plain"}), 415, "unsupported_media_type")
    # none of these took a sequence number: seq 0 is still free
    r = send(api, key, sid, COLLINS, 0)
    assert r.status == 200, r.body
    assert r.json()["state"] == "pending" and r.json()["progress"]["state"] == "pending"
    # a frame whose image cannot be read has used its number (taken on arrival, like a dropped frame)
    envelope(send(api, key, sid, b"not an image at all", 1), 422, "invalid_image")
    envelope(send(api, key, sid, COLLINS, 1), 409, "frame_out_of_order")
    assert send(api, key, sid, COLLINS, 2).status == 200


def test_sequence_numbers_only_go_up(app):
    key = app.keys.recognize
    sid = create(app, key)["session_id"]
    assert send(app, key, sid, COLLINS, 5).status == 200
    envelope(send(app, key, sid, COLLINS, 5), 409, "frame_out_of_order")  # a replayed frame
    envelope(send(app, key, sid, COLLINS, 3), 409, "frame_out_of_order")
    r = send(app, key, sid, COLLINS, 9)  # gaps are allowed (a dropped frame)
    assert r.status == 200 and r.json()["seq"] == 9
    body = {"image": base64.b64encode(COLLINS.read_bytes()).decode(), "seq": 10}  # JSON with base64 works too
    assert app.call("POST", f"/v1/liveness/sessions/{sid}/frames", key=key, json_body=body).status == 200


def test_a_key_holds_a_bounded_number_of_open_sessions(tmp_path_factory):
    service = in_process(tmp_path_factory, "liveness-bounded", max_sessions_per_key=2)
    try:
        key = service.keys.recognize
        create(service, key), create(service, key)
        doc = envelope(service.call("POST", "/v1/liveness/sessions", key=key), 429, "too_many_sessions")
        assert doc["error"]["details"]["max_sessions_per_key"] == 2
        create(service, service.keys.both)  # another key has its own room
    finally:
        service.close()


def test_a_forged_token_is_not_valid(app):
    r = app.call("POST", "/v1/liveness/verify", key=app.keys.recognize, json_body={"token": "a.b.c"})
    assert r.status == 200 and r.json() == {"valid": False, "claims": None}


# --- the checks, with real photos ------------------------------------------------------------------
@pytest.fixture(scope="module")
def fixed(tmp_path_factory):
    """A service whose sessions all get ``blink,turn_left`` (the test-only setting), with a
    lenient step time for a loaded machine."""
    service = in_process(tmp_path_factory, "liveness-fixed", liveness_challenge="blink,turn_left",
                         liveness_step_timeout_s=6.0, liveness_session_s=60.0)
    yield service
    service.close()


@pytest.fixture(scope="module")
def randomised(tmp_path_factory):
    """A service with the default random challenges (three steps), a lenient step time."""
    service = in_process(tmp_path_factory, "liveness-random", liveness_step_timeout_s=15.0, liveness_session_s=90.0)
    yield service
    service.close()


def run_frames(service, key: str, sid: str, names: list[str], seq: int = 0) -> tuple[dict | None, int]:
    """Sends ``names``' frames until the session is decided; (the last answer, the next seq)."""
    doc = None
    for name in names:
        r = send(service, key, sid, jpeg(name), seq)
        seq += 1
        assert r.status == 200, r.body
        doc = r.json()
        if doc["state"] != "pending":
            break
    return doc, seq


@pytest.mark.shared_data
def test_frames_that_answer_the_challenge_pass_and_the_result_is_signed(fixed):
    key = fixed.keys.recognize
    session = create(fixed, key)
    sid = session["session_id"]
    assert session["challenge"]["action"] == "blink" and session["challenge"]["steps"] == 2
    doc, seq = run_frames(fixed, key, sid, WARM_UP + answer("blink"))
    assert doc["state"] == "pending" and doc["progress"]["step"] == 1, doc["progress"]
    assert doc["progress"]["action"] == "turn_left" and "left" in doc["progress"]["prompt"]
    doc, seq = run_frames(fixed, key, sid, answer("turn_left"), seq)
    assert doc["state"] == "passed", doc
    assert doc["result"]["passed"] is True and doc["result"]["reason"] is None
    assert [s["done"] for s in doc["result"]["steps"]] == [True, True]

    status = fixed.call("GET", f"/v1/liveness/sessions/{sid}", key=key).json()
    assert status["state"] == "passed" and status["challenge"]["challenge"] == "blink,turn_left"
    claims = status["claims"]
    assert claims["sub"] == sid and claims["nonce"] == session["nonce"] and claims["passed"] is True
    assert claims["challenge"] == "blink,turn_left" and claims["state"] == "passed"
    # the token is a JWT (HS256) over exactly these claims, checked by the service ...
    token = status["token"]
    assert token == doc["token"]
    check = fixed.call("POST", "/v1/liveness/verify", key=fixed.keys.recognize, json_body={"token": token}).json()
    assert check == {"valid": True, "claims": claims}
    # ... or by anyone holding the secret; a changed claim breaks it
    secret = fixed.app.state.sessions.secret
    assert verify_token(token, secret) == claims
    header, body, mac = token.split(".")
    forged = json.loads(base64.urlsafe_b64decode(body + "=="))
    forged["sub"] = "another-session"
    forged_body = base64.urlsafe_b64encode(json.dumps(forged, separators=(",", ":"), sort_keys=True).encode())
    assert verify_token(f"{header}.{forged_body.decode().rstrip('=')}.{mac}", secret) is None

    # single use: the same frames, or new ones, are refused now
    envelope(send(fixed, key, sid, jpeg(OPEN), seq), 409, "session_closed")
    envelope(send(fixed, key, sid, jpeg(OPEN), 0), 409, "session_closed")


@pytest.mark.shared_data
def test_a_still_photo_fails(fixed):
    key = fixed.keys.both
    sid = create(fixed, key)["session_id"]
    doc, seq = run_frames(fixed, key, sid, [OPEN] * MAX_FRAMES)
    assert doc["state"] == "failed" and doc["result"]["reason"] == "timeout", doc["progress"]
    assert doc["result"]["failed_step"] == 0
    envelope(send(fixed, key, sid, jpeg(OPEN), seq), 409, "session_closed")


@pytest.mark.shared_data
def test_a_closed_eyed_photo_held_up_is_not_a_blink(fixed):
    key = fixed.keys.recognize
    sid = create(fixed, key)["session_id"]
    # eyes closed for good (a photo with closed eyes) after the open ones: never reopened, no blink
    doc, _ = run_frames(fixed, key, sid, WARM_UP + [CLOSED] * MAX_FRAMES)
    assert doc["state"] == "failed" and doc["result"]["steps"][0]["seen"] == 0


@pytest.mark.shared_data
def test_frames_after_expiry_are_refused(tmp_path_factory):
    service = in_process(tmp_path_factory, "liveness-expiry", liveness_session_s=1.5)
    try:
        key = service.keys.recognize
        sid = create(service, key)["session_id"]
        assert send(service, key, sid, jpeg(OPEN), 0).status == 200
        time.sleep(1.6)
        envelope(send(service, key, sid, jpeg(OPEN), 1), 410, "session_expired")
        status = service.call("GET", f"/v1/liveness/sessions/{sid}", key=key).json()
        assert status["state"] == "expired" and status["result"]["reason"] == "expired"
        assert status["claims"]["passed"] is False and status["claims"]["reason"] == "expired"
        assert verify_token(status["token"], service.app.state.sessions.secret) == status["claims"]
        envelope(send(service, key, sid, jpeg(OPEN), 2), 410, "session_expired")
    finally:
        service.close()


def actions(challenge: dict) -> list[str]:
    return [step["action"] for step in challenge["steps"]]


def answer_as_prompted(service, key: str, sid: str) -> tuple[dict, list[str]]:
    """Answers whatever the session prompts, step by step, as a person reading the prompts would;
    the final answer and every frame sent, in order."""
    sent: list[str] = []
    doc, seq = run_frames(service, key, sid, WARM_UP)
    sent += WARM_UP
    while doc["state"] == "pending" and len(sent) < MAX_FRAMES:
        progress = doc["progress"]
        names = answer(progress["action"], progress["count"] - progress["seen"])
        doc, seq = run_frames(service, key, sid, names, seq)
        sent += names
    return doc, sent


@pytest.mark.shared_data
def test_the_random_default_is_answered_from_its_prompts_and_a_replay_fails(randomised):
    key = randomised.keys.recognize
    first = create(randomised, key)
    doc, sent = answer_as_prompted(randomised, key, first["session_id"])
    assert doc["state"] == "passed", doc
    answered = actions(doc["result"]["challenge"])
    assert len(answered) == Settings.liveness_steps

    # the same frames (a recording of that session) against new sessions: each new challenge
    # whose actions come in another order fails. (One with the same order and no more blinks
    # in any step is answered by the recording: surplus blinks while a turn is pending are
    # ignored, as people blink unasked. So the order, not the blink counts, defeats a replay.)
    replays = 0
    for _ in range(8):
        sid = create(randomised, key)["session_id"]
        doc, _ = run_frames(randomised, key, sid, sent + [OPEN] * MAX_FRAMES)
        status = randomised.call("GET", f"/v1/liveness/sessions/{sid}", key=key).json()
        if actions(status["challenge"]) == answered:
            continue
        replays += 1
        assert doc["state"] == "failed", (answered, status["challenge"]["challenge"], doc["result"])
        if replays == 2:
            break
    assert replays >= 1
