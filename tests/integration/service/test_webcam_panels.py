"""The web page's webcam panels in real headless Chromium, with Chromium's fake camera playing a
y4m file made from real lfw_dev photos (:mod:`.live_frames`; written with
:func:`faceprint.video.source.write_y4m`).

Chromium is started with ``--use-fake-device-for-media-stream
--use-file-for-fake-video-capture=FILE.y4m --use-fake-ui-for-media-stream``: getUserMedia gets
the file, played in real time from its first frame when the camera opens, and looped. The page
draws the camera's frames to a canvas and sends them as JPEGs, one after another, for as long as
a panel runs; so each photo is held for a second or so, long enough to be seen in several frames,
except the closed eyes of a blink (half a second: a longer closure is a photo held up, not a
blink).

Because the file is fixed and a service's challenge is random, the service here is started with
``--liveness-challenge turn_left,blink`` (the setting for tests and demos only). The random
default is tested over the API (test_liveness_api.py).

- "Live identify": the enrolled person's name appears over the face.
- "Liveness": the page shows the prompts and PASSED for a file that turns to the user's left and
  then blinks; FAILED for a file of one still photo.
"""

from __future__ import annotations

import pytest

from faceprint.video.source import write_y4m
from tests.integration.service.conftest import browser_site, call
from tests.integration.service.live_frames import CLOSED, ENROL, LEFT, OPEN, frame, jpeg
from tests.integration.service.test_web import DESKTOP, artifact_folder, launch_chromium, open_page, status, wait

pytestmark = pytest.mark.shared_data

FPS = 10
CHALLENGE = "turn_left,blink"
PERSON = "Hugo Chavez"
#: One loop of the answering camera (photo, seconds): the face frontal, turned to the user's left,
#: frontal again, then three blinks (any one answers), each closure half a second.
ANSWER = [(OPEN, 2.0), (LEFT, 1.2), (OPEN, 1.5), (CLOSED, 0.5), (OPEN, 1.2), (CLOSED, 0.5), (OPEN, 1.2),
          (CLOSED, 0.5), (OPEN, 1.5)]
#: A still photo: the same frame for ever.
STILL = [(OPEN, 2.0)]
#: How long a panel may take to reach its verdict on a loaded machine (not a timing assertion).
VERDICT_TIMEOUT_S = 90


def fake_camera(path, script) -> str:
    frames = [frame(name) for name, seconds in script for _ in range(round(seconds * FPS))]
    write_y4m(path, frames, fps=FPS)
    return str(path)


def camera_args(y4m: str) -> tuple[str, ...]:
    return ("--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
            f"--use-file-for-fake-video-capture={y4m}")


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """A service with the fixed test challenge and Hugo Chavez enrolled (from other photos of him)."""
    frame(OPEN)  # skips now, before a server starts, without ../shared
    for server in browser_site(tmp_path_factory, "webcam", "--liveness-challenge", CHALLENGE):
        sid = call("POST", server.url + "/v1/subjects", key=server.key, json_body={"name": PERSON}).json()["id"]
        report = call("POST", f"{server.url}/v1/subjects/{sid}/faces", key=server.key,
                      form={"images": [(f"{name}.jpg", jpeg(name)) for name in ENROL]})
        assert report.status == 200 and len(report.json()["enrolled"]) == len(ENROL), report.body
        yield server


def page_for(chromium, site):
    context, page, problems = open_page(chromium, site, viewport=DESKTOP)
    page.goto(site.url + "/")
    page.fill("#api-key", site.key)
    page.click("#key-save")
    wait(page, lambda p: status(p) == "Key accepted.")
    return context, page, problems


def live_names(page) -> list[str]:
    return page.evaluate("[...document.querySelectorAll('#live-boxes .tag')].map(e => e.textContent)")


def verdict(page) -> str:
    return page.locator("#liveness-verdict").inner_text().strip()


# One browser per test: its camera file is fixed at launch, and Playwright runs one at a time.
@pytest.fixture()
def answering(site, tmp_path):
    yield from launch_chromium(*camera_args(fake_camera(tmp_path / "answer.y4m", ANSWER)))


@pytest.fixture()
def still(site, tmp_path):
    yield from launch_chromium(*camera_args(fake_camera(tmp_path / "still.y4m", STILL)))


def test_live_identify_shows_the_enrolled_name_over_the_face(answering, site, tmp_path):
    context, page, problems = page_for(answering, site)
    page.click("#live-start")
    wait(page, lambda p: any(t.startswith(PERSON) for t in live_names(p)), VERDICT_TIMEOUT_S)
    assert page.locator("#live-stage").is_visible()
    # the preview is mirrored by CSS (the frames sent are the camera's own), the names read normally
    assert page.evaluate("getComputedStyle(document.getElementById('live-stage')).transform") == "matrix(-1, 0, 0, 1, 0, 0)"
    assert any(t.startswith(PERSON) for t in page.locator("#live-names").all_inner_texts()[0].splitlines())
    page.screenshot(path=str(artifact_folder(tmp_path) / "webcam-live.png"), full_page=True)
    page.click("#live-stop")
    wait(page, lambda p: not p.locator("#live-stage").is_visible() and "stopped" in status(p))
    context.close()
    assert problems == []


def test_liveness_passes_for_a_camera_that_answers_the_prompts(answering, site, tmp_path):
    context, page, problems = page_for(answering, site)
    page.click("#liveness-start")
    wait(page, lambda p: "left" in p.locator("#liveness-prompt").inner_text())  # the first step's prompt
    wait(page, lambda p: verdict(p) in ("PASSED", "FAILED"), VERDICT_TIMEOUT_S)
    shown = page.locator("#liveness-detail").inner_text()
    page.screenshot(path=str(artifact_folder(tmp_path) / "webcam-liveness-passed.png"), full_page=True)
    assert verdict(page) == "PASSED", shown
    steps = page.locator("#liveness-steps li").all_inner_texts()
    assert len(steps) == 2 and all(s.startswith("✓") for s in steps), steps
    context.close()
    assert problems == []
    # the fixed challenge is said to be for tests and demos, when the service starts
    assert "WARNING faceprint.service.sessions: every liveness session gets the fixed challenge 'turn_left,blink'" in site.log()


def test_liveness_fails_for_a_still_photo(still, site, tmp_path):
    context, page, problems = page_for(still, site)
    page.click("#liveness-start")
    wait(page, lambda p: verdict(p) in ("PASSED", "FAILED"), VERDICT_TIMEOUT_S)
    shown = page.locator("#liveness-detail").inner_text()
    page.screenshot(path=str(artifact_folder(tmp_path) / "webcam-liveness-failed.png"), full_page=True)
    assert verdict(page) == "FAILED" and "time" in shown, shown
    context.close()
    assert problems == []
