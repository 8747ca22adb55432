"""One client's big request must not stall everyone's recognition (issue 13, failure 2), over a
real server: an identify sent while another client's enrolment of many large images is being
analysed is answered before that enrolment; a request whose images decode to more pixels than
``max_request_pixels`` is refused from their headers, in the error envelope.

Ordering only, never durations: the enrolment logs (at debug level) each image it has analysed,
and the identify is sent once the first one is.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import face_image
from tests.integration.service.conftest import Keys, Resp, Server, envelope, make_keys, png

#: The service's budget in these tests, and the big images' side: 12 of them fit in it.
BUDGET = 60_000_000
SIDE = 2200
FIT = 12


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("stall")
    gallery = root / "gallery.db"
    keys = make_keys(gallery)
    server = Server(gallery, root / "server.log", "--max-request-pixels", str(BUDGET), "--rate-limit", "0",
                    "--log-level", "debug")
    server.keys = keys  # type: ignore[attr-defined]
    yield server
    server.stop()


def keys_of(server: Server) -> Keys:
    keys: Keys = server.keys  # type: ignore[attr-defined]
    return keys


def new_subject(server: Server, name: str) -> int:
    made = server.call("POST", "/v1/subjects", key=keys_of(server).manage, json_body={"name": name})
    assert made.status == 201, made.body
    return int(made.json()["id"])


def test_identify_is_answered_while_another_clients_big_enrolment_runs(server: Server) -> None:
    keys = keys_of(server)
    sid = new_subject(server, "big grey")
    big = png(SIDE, SIDE)
    images = [(f"big{i}.png", big) for i in range(FIT)]
    answered: list[str] = []
    enrolment: list[Resp] = []

    def enrol() -> None:
        enrolment.append(server.call("POST", f"/v1/subjects/{sid}/faces", key=keys.manage, form={"images": images}))
        answered.append("enrolment")

    enroller = threading.Thread(target=enrol)
    enroller.start()
    try:
        # The enrolment is under way: its first image went through the models.
        first = f"enrolment for subject {sid}: big0.png analysed"
        while first not in server.log():
            assert enroller.is_alive(), "the enrolment ended before its first image was logged"
            time.sleep(0.01)
        found = server.call("POST", "/v1/identify", key=keys.recognize, form={"image": face_image("collins.jpg")})
        answered.append("identify")
        assert found.status == 200, found.body
        assert len(found.json()["faces"]) == 1
    finally:
        enroller.join()
    assert answered == ["identify", "enrolment"]
    (report,) = enrolment
    assert report.status == 200, report.body
    doc = report.json()
    assert doc["enrolled"] == [] and len(doc["rejected"]) == FIT
    assert {r["reason"]["code"] for r in doc["rejected"]} == {"no_face"}
    log = server.log()
    assert all(f"{name} analysed" in log for name, _ in images)  # one turn of the models per image


def test_a_request_over_the_pixel_budget_is_refused_before_decoding(server: Server) -> None:
    keys = keys_of(server)
    sid = new_subject(server, "too many pixels")
    # The request: 20 grey 6300x6300 PNGs, about 1 MB of body, within every other limit.
    huge = png(6300, 6300)
    refused = server.call("POST", f"/v1/subjects/{sid}/faces", key=keys.manage,
                          form={"images": [(f"huge{i}.png", huge) for i in range(20)]})
    doc = envelope(refused, 413, "request_too_large")
    assert doc["error"]["details"] == {"pixels": 20 * 6300 * 6300, "max_request_pixels": BUDGET, "images": 20}
    assert "max_request_pixels" in doc["error"]["message"]
    assert f"for subject {sid}: huge0.png analysed" not in server.log()  # nothing was decoded
    # Two images of a verify count together; each alone is within max_pixels.
    two = server.call("POST", "/v1/verify", key=keys.recognize,
                      form={"image_a": ("a.png", huge), "image_b": ("b.png", huge)})
    assert envelope(two, 413, "request_too_large")["error"]["details"]["pixels"] == 2 * 6300 * 6300
    # An image the service refuses on its own (unreadable) costs nothing and counts nothing.
    fits = [(f"ok{i}.png", png(SIDE, SIDE)) for i in range(FIT)] + [("notes.txt", b"not an image")]
    within = server.call("POST", f"/v1/subjects/{sid}/faces", key=keys.manage, form={"images": fits})
    assert within.status == 200, within.body
    reasons = {r["path"]: r["reason"]["code"] for r in within.json()["rejected"]}
    assert reasons["notes.txt"] == "invalid_image" and reasons["ok0.png"] == "no_face"


def test_enrolment_still_enrols_a_face(server: Server, tmp_path: Path) -> None:
    """Decoding, the models and the commit now run as separate steps: a real face is enrolled
    and identified, and sending it again is a duplicate."""
    keys = keys_of(server)
    sid = new_subject(server, "Eileen Collins")
    report = server.call("POST", f"/v1/subjects/{sid}/faces", key=keys.manage,
                         form={"images": [face_image("collins.jpg"), face_image("two_people.jpg")]}).json()
    assert [e["path"] for e in report["enrolled"]] == ["collins.jpg"]
    assert report["subject"]["face_count"] == 1
    assert [r["reason"]["code"] for r in report["rejected"]] == ["multiple_faces"]
    again = server.call("POST", f"/v1/subjects/{sid}/faces", key=keys.manage,
                        form={"images": [face_image("collins.jpg")]}).json()
    assert [r["reason"]["code"] for r in again["rejected"]] == ["duplicate_image"]
    found = server.call("POST", "/v1/identify", key=keys.recognize, form={"image": face_image("collins_2.jpg")})
    assert found.json()["faces"][0]["subject_id"] == sid
