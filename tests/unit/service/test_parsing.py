"""Base64 images in JSON bodies and form fields: limits checked before decoding."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from faceprint.errors import ImageTooLargeError, InvalidArgumentError, InvalidImageError
from faceprint.service import Settings
from faceprint.service.parsing import Parsed, Upload, body_doc, decode_base64
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
