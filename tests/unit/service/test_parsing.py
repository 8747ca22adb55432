"""Base64 images in JSON bodies and form fields: limits checked before decoding."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from faceprint.errors import ImageTooLargeError, InvalidArgumentError, InvalidImageError
from faceprint.service import Settings
from faceprint.service.parsing import MAX_JSON_DEPTH, Parsed, Upload, body_doc, decode_base64, loads_strict
from faceprint.service.schemas import IdentifyJSON, IdentifyParams

SETTINGS = Settings(gallery=Path("unused.db"), max_image_bytes=100)


def test_plain_base64_a_data_url_and_whitespace():
    data = bytes(range(60))
    text = base64.b64encode(data).decode()
    assert decode_base64(text, "image", SETTINGS) == Upload("image", data)
    assert decode_base64("data:image/png;base64," + text, "image", SETTINGS).data == data
    assert decode_base64(text[:20] + "\n " + text[20:], "image", SETTINGS).data == data


@pytest.mark.parametrize("value", ["***", "abc", 12, None])
def test_not_base64_is_an_invalid_image(value):
    with pytest.raises(InvalidImageError):
        decode_base64(value, "image", SETTINGS)


def test_too_large_is_refused_before_decoding():
    with pytest.raises(ImageTooLargeError) as info:
        decode_base64("A" * 200, "image", SETTINGS)
    assert info.value.details["max_bytes"] == 100


def test_required_and_optional_images():
    parsed = Parsed({}, {"image_a": [Upload("a.jpg", b"a")]})
    assert parsed.one("image_a").label == "a.jpg" and parsed.optional("image_b") is None
    with pytest.raises(InvalidArgumentError):
        parsed.one("image_b")


def test_the_documented_body_offers_both_forms():
    doc = body_doc(IdentifyParams, IdentifyJSON, {"image": False}, ["image"], ("where",))
    content = doc["requestBody"]["content"]
    form = content["multipart/form-data"]["schema"]
    assert form["properties"]["image"]["format"] == "binary" and form["properties"]["where"]["type"] == "string"
    assert form["required"] == ["image"] and "image" in content["application/json"]["schema"]["properties"]


# --- strict JSON ----------------------------------------------------------------------------------
@pytest.mark.parametrize("text", ['{"x": NaN}', '{"x": Infinity}', '[-Infinity]', '{"x": 1e999}', '[-1e400]'])
def test_non_finite_numbers_are_refused(text):
    with pytest.raises(InvalidArgumentError) as info:
        loads_strict(text)
    assert info.value.details["reason"] == "non_finite_number"


@pytest.mark.parametrize("depth", [MAX_JSON_DEPTH + 1, 100_000])
def test_nesting_over_the_limit_is_refused(depth):
    with pytest.raises(InvalidArgumentError) as info:
        loads_strict("[" * depth + "]" * depth)
    assert info.value.details == {"reason": "too_deep", "max_depth": MAX_JSON_DEPTH}


def test_json_within_the_limits_and_what_is_not_json():
    assert loads_strict(b'{"a": [1, 2.5e300, -0.0, "NaN"], "b": {"c": null}}') == {
        "a": [1, 2.5e300, -0.0, "NaN"], "b": {"c": None}}
    assert loads_strict("[" * MAX_JSON_DEPTH + "]" * MAX_JSON_DEPTH) is not None
    for bad in (b"{", b"\xff\xfe", "1" * 5000, ""):
        with pytest.raises(InvalidArgumentError) as info:
            loads_strict(bad, "where")
        assert info.value.details["reason"] == "invalid_json" and "where" in info.value.message


def test_lone_surrogates_are_refused_and_pairs_kept():
    for text in ('{"x": "\\ud800"}', '{"\\udfff": 1}', '[["a\\udc00"]]'):
        with pytest.raises(InvalidArgumentError) as info:
            loads_strict(text)
        assert info.value.details["reason"] == "invalid_unicode"
    assert loads_strict('{"x": "\\ud83d\\ude00"}') == {"x": "\U0001f600"}
