"""The web page in real headless Chromium (Debian's chromium + chromedriver, nothing downloaded).

Skips with the reason when Chromium, its driver or selenium is missing.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.integration.service.conftest import Server, call, image, new_key

CHROMIUM = next((p for p in ("/usr/bin/chromium", shutil.which("chromium") or "", shutil.which("chromium-browser") or "")
                 if p and Path(p).exists()), None)
DRIVER = next((p for p in ("/usr/bin/chromedriver", shutil.which("chromedriver") or "") if p and Path(p).exists()), None)


def _browser(width: int, height: int):
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        pytest.skip("needs selenium (pip install -e '.[test]')")
    if CHROMIUM is None:
        pytest.skip("needs Chromium (Debian: apt-get install chromium)")
    if DRIVER is None:
        pytest.skip("needs chromedriver (Debian: apt-get install chromium-driver)")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                f"--window-size={width},{height}", "--disable-extensions", "--no-first-run"):
        options.add_argument(arg)
    # An explicit driver path: selenium's own manager never looks for (or downloads) one.
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    driver.set_page_load_timeout(120)
    return driver


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    image("obama.jpg")
    root = tmp_path_factory.mktemp("web")
    gallery = root / "gallery.db"
    key = new_key(gallery, "recognize,manage", name="browser")
    server = Server(gallery, root / "server.log")
    server.key = key  # type: ignore[attr-defined]
    yield server
    server.stop()


@pytest.fixture()
def browser():
    driver = _browser(1280, 900)
    yield driver
    driver.quit()


def wait(driver, condition, timeout: float = 60):
    """Until ``condition`` holds (a guard against hanging, not a timing assertion)."""
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.support.ui import WebDriverWait

    try:
        return WebDriverWait(driver, timeout).until(condition)
    except TimeoutException:
        state = driver.execute_script(
            "return {status: document.getElementById('status').textContent,"
            " tags: [...document.querySelectorAll('#boxes .tag')].map(e => e.textContent),"
            " people: [...document.querySelectorAll('#people-list .name')].map(e => e.textContent)}")
        raise AssertionError(f"the page did not reach the expected state: {state}") from None


def status(driver) -> str:
    return driver.find_element("id", "status").text


def enter_key(driver, site) -> None:
    driver.get(site.url + "/")
    box = driver.find_element("id", "api-key")
    box.send_keys(site.key)
    driver.find_element("id", "key-save").click()
    wait(driver, lambda d: status(d) == "Key accepted.")
    # kept in this tab's sessionStorage only, never in localStorage or a cookie
    assert driver.execute_script("return sessionStorage.getItem('faceprint.apiKey')") == site.key
    assert driver.execute_script("return localStorage.length") == 0
    assert driver.get_cookies() == []


def pick(driver, element_id: str, path: Path) -> None:
    driver.find_element("id", element_id).send_keys(str(path))


def face_tags(driver) -> list[str]:
    # read in one script: the page re-renders these lists, so element handles go stale
    return driver.execute_script("return [...document.querySelectorAll('#boxes .face-box .tag')].map(e => e.textContent)")


def people(driver) -> list[str]:
    return driver.execute_script("return [...document.querySelectorAll('#people-list .person .name')].map(e => e.textContent)")


def person(driver, name: str):
    for li in driver.find_elements("css selector", "#people-list .person"):
        if li.find_element("css selector", ".name").text == name:
            return li
    raise AssertionError(f"{name} is not listed: {people(driver)}")


def test_page_identify_enrol_rename_forget_verify(site, browser):
    d = browser
    enter_key(d, site)
    assert d.execute_script("return document.querySelectorAll('script[src^=\"http\"], link[href^=\"http\"]').length") == 0
    # Before a photo is chosen there is no (broken) result image to show.
    assert not d.find_element("id", "result").is_displayed()

    # a photo: one box, unknown
    pick(d, "photo-input", image("obama.jpg"))
    wait(d, lambda d: len(face_tags(d)) == 1 and "face(s) found" in status(d))
    assert face_tags(d)[0].startswith("1. Unknown")
    box = d.find_element("css selector", "#boxes .face-box")
    assert box.size["width"] > 20 and box.size["height"] > 20

    # enrol that face under a name: the person is listed with a thumbnail, the box named
    d.find_element("id", "enrol-name-0").send_keys("Barack Obama")
    d.find_element("css selector", "#faces form.enrol button").click()
    wait(d, lambda d: "Barack Obama" in people(d) and status(d).startswith("Enrolled face 1"))
    wait(d, lambda d: face_tags(d) and "Barack Obama" in face_tags(d)[0])
    assert "known" in d.find_element("css selector", "#boxes .face-box").get_attribute("class")
    wait(d, lambda d: d.execute_script(
        "const i = document.querySelector('#people-list img.thumb'); return !!i && i.complete && i.naturalWidth > 0"))

    # a photo of two people: two boxes, one named with its similarity, one unknown
    pick(d, "photo-input", image("two_people.jpg"))
    wait(d, lambda d: len(face_tags(d)) == 2)
    tags = face_tags(d)
    named = [t for t in tags if "Barack Obama" in t]
    assert len(named) == 1 and "0.9" in named[0]
    assert sum("Unknown" in t for t in tags) == 1

    # enrol the unknown face of the group photo (cropped in the page) under a new name
    unknown = next(i for i, t in enumerate(tags) if "Unknown" in t)
    d.find_element("id", f"enrol-name-{unknown}").send_keys("Joe Biden")
    d.find_elements("css selector", "#faces form.enrol button")[unknown].click()
    wait(d, lambda d: "Joe Biden" in people(d))
    wait(d, lambda d: sorted(t.split(". ", 1)[1].rsplit(" ", 1)[0] for t in face_tags(d)) == ["Barack Obama", "Joe Biden"])

    # rename
    field = person(d, "Joe Biden").find_element("css selector", "input[id^=rename-]")
    field.clear()
    field.send_keys("Joseph R. Biden")
    field.submit()
    wait(d, lambda d: "Joseph R. Biden" in people(d) and "Joe Biden" not in people(d))
    wait(d, lambda d: any("Joseph R. Biden" in t for t in face_tags(d)))

    # forget, with a confirmation: cancel keeps the person, confirm removes them
    def forget_button(name):
        return person(d, name).find_element("css selector", "button.danger")

    forget_button("Barack Obama").click()
    dialog = d.find_element("id", "confirm")
    wait(d, lambda d: dialog.is_displayed())
    assert "Barack Obama" in d.find_element("id", "confirm-text").text
    d.find_element("id", "confirm-cancel").click()
    wait(d, lambda d: not dialog.is_displayed())
    assert "Barack Obama" in people(d)
    forget_button("Barack Obama").click()
    wait(d, lambda d: dialog.is_displayed())
    d.find_element("id", "confirm-ok").click()
    wait(d, lambda d: "Barack Obama" not in people(d) and status(d).startswith("Forgot Barack Obama"))
    wait(d, lambda d: not any("Barack Obama" in t for t in face_tags(d)))
    # and the service agrees: identify never returns the forgotten person
    probe = call("POST", site.url + "/v1/identify", key=site.key, form={"image": image("obama3.jpg")}).json()
    assert [f["identity"] for f in probe["faces"]] == [None]

    # verify two photos side by side
    pick(d, "verify-a", image("obama.jpg"))
    pick(d, "verify-b", image("obama2.jpg"))
    d.find_element("id", "verify-go").click()
    wait(d, lambda d: d.find_element("id", "verify-result").text.startswith("Same person"))
    pick(d, "verify-b", image("biden.jpg"))
    d.find_element("id", "verify-go").click()
    wait(d, lambda d: d.find_element("id", "verify-result").text.startswith("Not the same person"))


def test_wrong_key_is_reported_and_the_page_is_keyboard_usable(site, browser):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.keys import Keys

    d = browser
    d.get(site.url + "/")
    d.find_element("id", "api-key").send_keys("fp_00000000_" + "x" * 43 + Keys.ENTER)
    wait(d, lambda d: "not valid" in status(d) and "unauthorized" in status(d))
    # keyboard: from the key field, Tab reaches the buttons, the photo picker and the forms in order
    d.find_element("id", "api-key").click()
    order = []
    for _ in range(12):
        ActionChains(d).send_keys(Keys.TAB).perform()  # to the page: a file input takes send_keys as a path
        order.append(d.switch_to.active_element.get_attribute("id") or d.switch_to.active_element.tag_name)
    assert order[:2] == ["key-save", "key-clear"]
    assert "photo-input" in order and "people-refresh" in order
    # the focused file picker shows a visible focus ring on its drop zone
    d.execute_script("document.getElementById('photo-input').focus()")
    assert d.execute_script(
        "return getComputedStyle(document.getElementById('drop')).outlineStyle") != "none"


def test_phone_width(site):
    d = _browser(800, 900)
    try:
        # a phone's viewport (a desktop window cannot be made this narrow)
        d.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                          {"width": 390, "height": 844, "deviceScaleFactor": 3, "mobile": True})
        enter_key(d, site)
        pick(d, "photo-input", image("obama2.jpg"))
        wait(d, lambda d: len(face_tags(d)) == 1)
        width = d.execute_script("return window.innerWidth")
        assert width == 390
        # nothing wider than the screen: no sideways scrolling
        assert d.execute_script("return document.documentElement.scrollWidth") <= width
        for element_id in ("api-key", "drop", "photo", "verify-a", "verify-b", "people-refresh"):
            rect = d.execute_script(f"return document.getElementById('{element_id}').getBoundingClientRect().toJSON()")
            assert rect["left"] >= 0 and rect["right"] <= width + 1, (element_id, rect)
        # the two verify photos stack instead of squeezing side by side
        a = d.execute_script("return document.getElementById('verify-a').getBoundingClientRect().top")
        b = d.execute_script("return document.getElementById('verify-b').getBoundingClientRect().top")
        assert b > a
    finally:
        d.quit()
