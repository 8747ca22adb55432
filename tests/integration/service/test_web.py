"""The web page in real headless Chromium, driven by Playwright (Python, sync API).

Playwright launches Debian's own Chromium (``/usr/bin/chromium``): nothing is downloaded, and
``playwright install`` is never needed (the wheel ships its driver). Skips with the reason when
playwright is not importable or Chromium is absent. The faces are the public-domain images
shipped in tests/data/faces (Eileen Collins, Grace Hopper), so ../shared is not needed.

The main test saves a full-page screenshot as an artifact, under ``$FACEPRINT_TEST_ARTIFACTS``
when set (else the test's tmp_path), prints its path and checks that it is not blank.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.conftest import face_image
from tests.integration.service.conftest import browser_site, call, mirrored

CHROMIUM = Path("/usr/bin/chromium")
TIMEOUT_S = 60  # a guard against hanging on a loaded machine, not a timing assertion
DESKTOP = {"width": 1280, "height": 900}
COLLINS, COLLINS_2 = face_image("collins.jpg"), face_image("collins_2.jpg")
HOPPER, TWO = face_image("hopper.jpg"), face_image("two_people.jpg")


def launch_chromium(*extra_args: str):
    """Debian's Chromium launched by Playwright (a generator: yields the browser, then closes it);
    skips the test, saying why, without playwright or Chromium. ``extra_args``: more switches
    (the webcam panels' fake camera)."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("needs playwright (pip install -e '.[test]'; no `playwright install`: Debian's chromium is used)")
    if not CHROMIUM.exists():
        pytest.skip(f"needs Chromium at {CHROMIUM} (Debian: apt-get install chromium)")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=["--no-sandbox", *extra_args])
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def chromium():
    """Debian's Chromium, shared by this module's tests."""
    yield from launch_chromium()


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    yield from browser_site(tmp_path_factory, "web", "--keep-thumbnails")  # the main test checks a kept thumbnail


def open_page(chromium, site, **context_options):
    """A fresh context (its own sessionStorage, localStorage and cookies) and page.

    Returns (context, page, problems): uncaught page errors and any request that leaves the
    service end up in ``problems``, which the tests assert empty.
    """
    context = chromium.new_context(**context_options)
    context.set_default_timeout(TIMEOUT_S * 1000)
    page = context.new_page()
    problems: list[str] = []
    page.on("pageerror", lambda err: problems.append(f"uncaught error: {err}"))

    def on_request(request):
        url = request.url
        if not (url.startswith(site.url + "/") or url.startswith(("blob:", "data:"))):
            problems.append(f"request outside the service: {url}")

    page.on("request", on_request)
    return context, page, problems


@pytest.fixture()
def browser(chromium, site):
    context, page, problems = open_page(chromium, site, viewport=DESKTOP)
    yield page
    context.close()
    assert problems == []


def artifact_folder(tmp_path: Path) -> Path:
    """Where a test saves its screenshots: ``$FACEPRINT_TEST_ARTIFACTS`` when set, else ``tmp_path``."""
    env = os.environ.get("FACEPRINT_TEST_ARTIFACTS")
    folder = Path(env) if env else tmp_path
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture()
def artifacts(tmp_path) -> Path:
    return artifact_folder(tmp_path)


def page_state(page) -> dict:
    return page.evaluate(
        "() => ({status: document.getElementById('status').textContent,"
        " tags: [...document.querySelectorAll('#boxes .tag')].map(e => e.textContent),"
        " people: [...document.querySelectorAll('#people-list .name')].map(e => e.textContent)})")


def wait(page, condition, timeout: float = TIMEOUT_S):
    """Until ``condition(page)`` holds; on timeout, fail with what the page shows."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition(page)
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"the page did not reach the expected state: {page_state(page)}")
        page.wait_for_timeout(100)


def status(page) -> str:
    return page.locator("#status").inner_text()


def enter_key(page, site) -> None:
    page.goto(site.url + "/")
    page.fill("#api-key", site.key)
    page.click("#key-save")
    wait(page, lambda p: status(p) == "Key accepted.")
    # kept in this tab's sessionStorage only, never in localStorage or a cookie
    assert page.evaluate("sessionStorage.getItem('faceprint.apiKey')") == site.key
    assert page.evaluate("localStorage.length") == 0
    assert page.context.cookies() == []


def pick(page, element_id: str, path: Path) -> None:
    page.set_input_files(f"#{element_id}", str(path))


def face_tags(page) -> list[str]:
    # read in one script: the page re-renders these lists
    return page.evaluate("[...document.querySelectorAll('#boxes .face-box .tag')].map(e => e.textContent)")


def people(page) -> list[str]:
    return page.evaluate("[...document.querySelectorAll('#people-list .person .name')].map(e => e.textContent)")


def person(page, name: str):
    """The people-list entry whose name is exactly ``name`` (a lazy locator: survives re-renders)."""
    assert name in people(page), f"{name} is not listed: {people(page)}"
    return page.locator("#people-list .person").filter(has=page.locator(f".name:text-is({json.dumps(name)})"))


def box_names(page) -> list[str]:
    """The names on the boxes ("1. Eileen Collins 0.967" -> "Eileen Collins"; unknown faces -> "Unknown")."""
    return ["Unknown" if t.split(". ", 1)[1].startswith("Unknown") else t.split(". ", 1)[1].rsplit(" ", 1)[0]
            for t in face_tags(page)]


def check_screenshot(path: Path, page, box_selector: str) -> None:
    """The saved full-page screenshot is the page, not a blank image, and shows the named box."""
    width, height = page.evaluate(
        "[document.documentElement.scrollWidth, document.documentElement.scrollHeight]")
    with Image.open(path) as im:
        assert im.size == (width, height), (im.size, width, height)
        assert im.size[0] == DESKTOP["width"] and im.size[1] >= DESKTOP["height"]
        rgb = np.asarray(im.convert("RGB")).astype(np.int16)
    gray = rgb.mean(axis=2)
    assert gray.std() > 20, f"the screenshot looks blank (pixel std {gray.std():.1f})"
    dark = float((gray < 80).mean())
    assert dark > 0.002, f"hardly any dark pixels (text, the photo): {dark:.4%}"
    # the box border is drawn in the "known" green (#1b8a3a) where the page says the box is
    rect = page.evaluate(
        f"(() => {{ const r = document.querySelector({json.dumps(box_selector)}).getBoundingClientRect();"
        " return [r.left + scrollX, r.top + scrollY, r.right + scrollX, r.bottom + scrollY]; })()")
    x1, y1, x2, y2 = (int(round(v)) for v in rect)
    region = rgb[max(0, y1):y2, max(0, x1):x2]
    green = (np.abs(region - np.array([0x1B, 0x8A, 0x3A])).max(axis=2) <= 24).sum()
    perimeter = 2 * ((x2 - x1) + (y2 - y1))
    assert green >= perimeter, f"the box border is not in the screenshot: {green} green pixels, perimeter {perimeter}"


def test_page_identify_enrol_rename_forget_verify(browser, site, artifacts):
    page = browser
    enter_key(page, site)
    assert page.evaluate("document.querySelectorAll('script[src^=\"http\"], link[href^=\"http\"]').length") == 0
    # Before a photo is chosen there is no (broken) result image to show.
    assert not page.locator("#result").is_visible()
    assert page.evaluate("getComputedStyle(document.getElementById('result')).display") == "none"

    # a photo: one box, unknown
    pick(page, "photo-input", COLLINS)
    wait(page, lambda p: len(face_tags(p)) == 1 and "face(s) found" in status(p))
    assert face_tags(page)[0].startswith("1. Unknown")
    assert page.locator("#result").is_visible()
    box = page.locator("#boxes .face-box").bounding_box()
    assert box["width"] > 20 and box["height"] > 20

    # enrol that face under a name: the person is listed with a thumbnail, the box named
    page.fill("#enrol-name-0", "Eileen Collins")
    page.locator("#faces form.enrol button").first.click()
    wait(page, lambda p: "Eileen Collins" in people(p) and status(p).startswith("Enrolled face 1"))
    wait(page, lambda p: face_tags(p) and "Eileen Collins" in face_tags(p)[0])
    assert "known" in page.locator("#boxes .face-box").get_attribute("class").split()
    wait(page, lambda p: p.evaluate(
        "(() => { const i = document.querySelector('#people-list img.thumb');"
        " return !!i && i.complete && i.naturalWidth > 0; })()"))

    # a second, different photo of the same person: recognised, the name on its box
    pick(page, "photo-input", COLLINS_2)
    wait(page, lambda p: box_names(p) == ["Eileen Collins"] and "1 face(s) found, 1 recognised" in status(p))
    assert "known" in page.locator("#boxes .face-box").get_attribute("class").split()
    assert page.locator("#faces .who").first.inner_text().startswith("Eileen Collins")
    wait(page, lambda p: p.evaluate(
        "(() => { const i = document.getElementById('photo'); return i.complete && i.naturalWidth > 0; })()"))
    # the artifact: the whole page with the named box and the listed person
    shot = artifacts / "web-identify-second-photo.png"
    page.screenshot(path=str(shot), full_page=True)
    print(f"screenshot: {shot}")
    check_screenshot(shot, page, "#boxes .face-box")

    # a photo of two people: two boxes, one named with its similarity, one unknown
    pick(page, "photo-input", TWO)
    wait(page, lambda p: len(face_tags(p)) == 2)
    tags = face_tags(page)
    named = [t for t in tags if "Eileen Collins" in t]
    assert len(named) == 1 and float(named[0].rsplit(" ", 1)[1]) >= 0.9  # the similarity, shown
    assert sum("Unknown" in t for t in tags) == 1

    # enrol the unknown face of the group photo (cropped in the page) under a new name
    unknown = next(i for i, t in enumerate(tags) if "Unknown" in t)
    page.fill(f"#enrol-name-{unknown}", "Grace Hopper")
    page.locator("#faces form.enrol button").nth(unknown).click()
    wait(page, lambda p: "Grace Hopper" in people(p))
    wait(page, lambda p: sorted(box_names(p)) == ["Eileen Collins", "Grace Hopper"])

    # rename (Enter in the field submits its form)
    field = person(page, "Grace Hopper").locator("input[id^=rename-]")
    field.fill("Grace B. Hopper")
    field.press("Enter")
    wait(page, lambda p: "Grace B. Hopper" in people(p) and "Grace Hopper" not in people(p))
    wait(page, lambda p: "Grace B. Hopper" in box_names(p))

    # forget, with a confirmation: cancel keeps the person, confirm removes them
    dialog = page.locator("#confirm")
    person(page, "Eileen Collins").locator("button.danger").click()
    dialog.wait_for(state="visible")
    assert "Eileen Collins" in page.locator("#confirm-text").inner_text()
    page.click("#confirm-cancel")
    dialog.wait_for(state="hidden")
    wait(page, lambda p: status(p) == "Eileen Collins kept.")
    assert "Eileen Collins" in people(page)
    person(page, "Eileen Collins").locator("button.danger").click()
    dialog.wait_for(state="visible")
    page.click("#confirm-ok")
    wait(page, lambda p: "Eileen Collins" not in people(p) and status(p).startswith("Forgot Eileen Collins"))
    # the group photo on screen is identified again: her face is unknown now
    wait(page, lambda p: sorted(box_names(p)) == ["Grace B. Hopper", "Unknown"])
    # and a new identification of the second photo no longer names him
    pick(page, "photo-input", COLLINS_2)
    wait(page, lambda p: box_names(p) == ["Unknown"] and "1 face(s) found, 0 recognised" in status(p))
    assert "unknown" in page.locator("#boxes .face-box").get_attribute("class").split()
    # and the service agrees: identify never returns the forgotten person
    probe = call("POST", site.url + "/v1/identify", key=site.key, form={"image": mirrored(COLLINS)}).json()
    assert [f["identity"] for f in probe["faces"]] == [None]

    # verify two photos side by side
    pick(page, "verify-a", COLLINS)
    pick(page, "verify-b", COLLINS_2)
    wait(page, lambda p: p.locator("#preview-a").is_visible() and p.locator("#preview-b").is_visible())
    page.click("#verify-go")
    wait(page, lambda p: p.locator("#verify-result").inner_text().startswith("Same person"))
    pick(page, "verify-b", HOPPER)
    page.click("#verify-go")
    wait(page, lambda p: p.locator("#verify-result").inner_text().startswith("Not the same person"))


def test_wrong_key_is_reported_and_the_page_is_keyboard_usable(browser, site):
    page = browser
    page.goto(site.url + "/")
    page.fill("#api-key", "fp_00000000_" + "x" * 43)
    page.press("#api-key", "Enter")
    wait(page, lambda p: "not valid" in status(p) and "unauthorized" in status(p))
    # keyboard: from the key field, Tab reaches the buttons, the photo picker and the forms in order
    page.click("#api-key")
    order = []
    for _ in range(12):
        page.keyboard.press("Tab")
        order.append(page.evaluate("document.activeElement.id || document.activeElement.tagName.toLowerCase()"))
        if order[-1] == "key-save":
            # a keyboard-focused button shows its focus ring
            assert page.evaluate("getComputedStyle(document.activeElement).outlineStyle") != "none"
    assert order[:2] == ["key-save", "key-clear"], order
    assert "photo-input" in order and "people-refresh" in order, order
    assert order.index("photo-input") < order.index("people-refresh"), order
    # the focused file picker shows a visible focus ring on its drop zone
    page.focus("#photo-input")
    assert page.evaluate("getComputedStyle(document.getElementById('drop')).outlineStyle") != "none"


def test_phone_width(chromium, site):
    # a phone's viewport, as a phone reports it (meta viewport honoured, touch, 3x pixels)
    context, page, problems = open_page(chromium, site, viewport={"width": 390, "height": 844},
                                        device_scale_factor=3, is_mobile=True, has_touch=True)
    try:
        enter_key(page, site)
        pick(page, "photo-input", COLLINS_2)
        wait(page, lambda p: len(face_tags(p)) == 1)
        width = page.evaluate("window.innerWidth")
        assert width == 390
        # nothing wider than the screen: no sideways scrolling
        assert page.evaluate("document.documentElement.scrollWidth") <= width
        for element_id in ("api-key", "drop", "photo", "verify-a", "verify-b", "people-refresh"):
            rect = page.evaluate(f"document.getElementById('{element_id}').getBoundingClientRect().toJSON()")
            assert rect["left"] >= 0 and rect["right"] <= width + 1, (element_id, rect)
        # the two verify photos stack instead of squeezing side by side
        a = page.evaluate("document.getElementById('verify-a').getBoundingClientRect().top")
        b = page.evaluate("document.getElementById('verify-b').getBoundingClientRect().top")
        assert b > a
    finally:
        context.close()
    assert problems == []


# --- no face picture kept (the default) --------------------------------------------------------
#: The placeholder's colours (style.css .nothumb): the tile and the head-and-shoulders figure.
PLACEHOLDER_TILE, PLACEHOLDER_FIGURE = (0xE8, 0xEB, 0xF0), (0xC3, 0xC9, 0xD3)


@pytest.fixture(scope="module")
def bare_site(tmp_path_factory):
    """A service started without --keep-thumbnails, as by default: no face picture is kept."""
    yield from browser_site(tmp_path_factory, "web-bare")


def enrol(server, name: str, image) -> int:
    """``name`` created and enrolled with ``image`` through the API; the subject's id."""
    sid = call("POST", server.url + "/v1/subjects", key=server.key, json_body={"name": name}).json()["id"]
    report = call("POST", f"{server.url}/v1/subjects/{sid}/faces", key=server.key, form={"images": [image]})
    assert report.status == 200 and len(report.json()["enrolled"]) == 1, report.body
    return int(sid)


def broken_images(page) -> int:
    """Images on the page with a source that did not decode (a broken-image icon)."""
    return page.evaluate("[...document.images].filter(i => i.getAttribute('src') && i.complete"
                         " && i.naturalWidth === 0).length")


def assert_placeholder(page, name: str, path: Path) -> None:
    """``name``'s entry shows the drawn placeholder, no image, and it is on screen as drawn."""
    entry = person(page, name)
    assert entry.locator("img").count() == 0
    holder = entry.locator(".nothumb")
    assert holder.count() == 1 and holder.get_attribute("role") == "img"
    assert name in (holder.get_attribute("aria-label") or "")
    box = holder.bounding_box()
    assert box is not None and 60 <= box["width"] <= 68 and 60 <= box["height"] <= 68
    holder.screenshot(path=str(path))
    with Image.open(path) as im:
        rgb = np.asarray(im.convert("RGB")).astype(np.int16)
    for colour in (PLACEHOLDER_TILE, PLACEHOLDER_FIGURE):  # both drawn, each over a good part of it
        share = float((np.abs(rgb - np.array(colour)).max(axis=2) <= 6).mean())
        assert share > 0.15, (colour, share)


def test_people_without_a_kept_thumbnail_show_a_drawn_placeholder(chromium, bare_site, artifacts):
    enrol(bare_site, "Eileen Collins", COLLINS)
    context, page, problems = open_page(chromium, bare_site, viewport=DESKTOP)
    thumbnail_requests: list[str] = []
    page.on("request", lambda r: thumbnail_requests.append(r.url) if r.url.endswith("/thumbnail") else None)
    try:
        enter_key(page, bare_site)
        wait(page, lambda p: "Eileen Collins" in people(p))
        assert_placeholder(page, "Eileen Collins", artifacts / "web-placeholder.png")
        assert thumbnail_requests == []  # thumbnail_face_id is null: nothing asked for
        assert broken_images(page) == 0
    finally:
        context.close()
    assert problems == []


def test_a_thumbnail_that_cannot_be_loaded_leaves_the_placeholder(chromium, site, artifacts):
    sid = enrol(site, "Thumbnail Test", mirrored(HOPPER))  # site keeps thumbnails
    context, page, problems = open_page(chromium, site, viewport=DESKTOP)
    envelope = json.dumps({"error": {"code": "template_not_found", "message": "no thumbnail", "details": {}},
                           "request_id": "test"})
    page.route("**/thumbnail", lambda route: route.fulfill(status=404, content_type="application/json", body=envelope))
    try:
        with page.expect_response(lambda r: r.url.endswith("/thumbnail") and r.status == 404):
            enter_key(page, site)
        wait(page, lambda p: "Thumbnail Test" in people(p))
        assert_placeholder(page, "Thumbnail Test", artifacts / "web-placeholder-failed.png")
        assert broken_images(page) == 0
        # once it can be loaded, the kept thumbnail takes the placeholder's place
        page.unroute("**/thumbnail")
        page.click("#people-refresh")
        wait(page, lambda p: p.evaluate(
            f"(() => {{ const i = document.querySelector('#people-list [data-subject=\"{sid}\"] img.thumb');"
            " return !!i && i.complete && i.naturalWidth > 0; })()"))
        assert person(page, "Thumbnail Test").locator(".nothumb").count() == 0
        assert broken_images(page) == 0
    finally:
        context.close()
        call("DELETE", f"{site.url}/v1/subjects/{sid}", key=site.key)
    assert problems == []
