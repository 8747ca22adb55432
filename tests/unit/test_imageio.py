"""Unit tests for faceprint.imageio: every input kind, every format, and a bad-input corpus.

All images are generated here in memory or under ``tmp_path`` (no downloads, no shared data).
"""

from __future__ import annotations

import io
import os
import struct
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from faceprint.errors import FaceprintError, ImageTooLargeError, InvalidImageError
from faceprint.imageio import (
    DEFAULT_LIMITS,
    SUPPORTED_FORMATS,
    ImageLimits,
    decode_image,
    describe_source,
    image_dimensions,
    load_image,
    read_bytes,
)

RED = (255, 0, 0)
GREEN = (0, 255, 0)
BLUE = (0, 0, 255)


# --- helpers ---------------------------------------------------------------------------------
def encode(img: Image.Image, fmt: str, **kwargs: Any) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kwargs)
    return buf.getvalue()


def photo(h: int = 128, w: int = 160, seed: int = 0) -> np.ndarray:
    """A smooth gradient with noise: compresses like a photo (most JPEG bytes are scan data)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    base = np.stack([xx * 255 / w, yy * 255 / h, (xx + yy) * 127 / (h + w)], axis=2)
    noise = rng.normal(0, 25, size=(h, w, 3))
    return np.clip(base + noise, 0, 255).astype(np.uint8)


def halves(h: int = 20, w: int = 40, left=RED, right=BLUE) -> Image.Image:
    """An asymmetric picture: left half one colour, right half another."""
    arr = np.zeros((h, w, 3), np.uint8)
    arr[:, : w // 2] = left
    arr[:, w // 2 :] = right
    return Image.fromarray(arr)


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def crafted_png(width: int, height: int, idat: bytes | None = None) -> bytes:
    """A PNG whose IHDR claims ``width`` x ``height`` (8-bit RGB) but carries almost no data."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    if idat is None:
        idat = zlib.compress(b"\x00" * 16)
    return PNG_SIGNATURE + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", idat) + png_chunk(b"IEND", b"")


def ico_wrapping(frame: bytes) -> bytes:
    """A one-entry ICO whose directory says 16x16 and whose frame is ``frame``."""
    header = struct.pack("<HHH", 0, 1, 1)
    entry = struct.pack("<BBBBHHII", 16, 16, 0, 0, 1, 32, len(frame), 6 + 16)
    return header + entry + frame


def assert_invalid(exc: pytest.ExceptionInfo, reason: str | None = None) -> None:
    assert type(exc.value) is InvalidImageError
    assert exc.value.code == "invalid_image"
    if reason is not None:
        assert exc.value.details.get("reason") == reason, exc.value.details


def assert_rgb(out: np.ndarray, shape: tuple[int, int]) -> None:
    assert isinstance(out, np.ndarray)
    assert out.shape == (*shape, 3)
    assert out.dtype == np.uint8
    assert out.flags["C_CONTIGUOUS"]


@pytest.fixture(scope="module")
def photo_jpeg() -> bytes:
    return encode(Image.fromarray(photo()), "JPEG", quality=90)


@pytest.fixture(scope="module")
def small_png() -> bytes:
    return encode(Image.fromarray(photo(24, 32, seed=1)), "PNG")


# --- empty, truncated, garbage ---------------------------------------------------------------
def test_empty_file_is_invalid(tmp_path: Path) -> None:
    path = tmp_path / "empty.jpg"
    path.write_bytes(b"")
    with pytest.raises(InvalidImageError) as exc:
        load_image(path)
    assert_invalid(exc, "empty")
    with pytest.raises(InvalidImageError) as exc:
        load_image(b"")
    assert_invalid(exc, "empty")
    with pytest.raises(InvalidImageError) as exc:
        decode_image(b"")
    assert_invalid(exc, "empty")


def test_truncated_jpeg_is_refused_by_default(photo_jpeg: bytes, tmp_path: Path) -> None:
    half = photo_jpeg[: len(photo_jpeg) // 2]
    path = tmp_path / "half.jpg"
    path.write_bytes(half)
    for source in (half, path):
        with pytest.raises(InvalidImageError) as exc:
            load_image(source)
        assert_invalid(exc, "truncated")
    # Even a JPEG missing only its last few bytes is refused unless allowed.
    with pytest.raises(InvalidImageError) as exc:
        load_image(photo_jpeg[:-6])
    assert_invalid(exc, "truncated")


def test_jpeg_truncated_inside_its_header_is_reported_as_truncated() -> None:
    # A tiny flat JPEG is mostly header (tables); cutting it in half ends inside the header.
    data = encode(Image.new("RGB", (40, 20), RED), "JPEG")
    with pytest.raises(InvalidImageError) as exc:
        load_image(data[: len(data) // 2])
    assert_invalid(exc, "truncated")
    with pytest.raises(InvalidImageError) as exc:
        load_image(data[: len(data) // 2], ImageLimits(allow_truncated=True))
    assert_invalid(exc)


def test_truncated_jpeg_allowed_decodes_to_right_shape(photo_jpeg: bytes) -> None:
    limits = ImageLimits(allow_truncated=True)
    full = load_image(photo_jpeg)
    out = load_image(photo_jpeg[:-6], limits)
    assert_rgb(out, (128, 160))
    # The part that was present is the same picture.
    diff = np.abs(out[:64].astype(int) - full[:64].astype(int))
    assert diff.mean() < 3


def test_truncated_jpeg_allowed_still_honours_exif_orientation() -> None:
    upright = halves(40, 80)
    stored = upright.transpose(Image.Transpose.ROTATE_90)
    exif = stored.getexif()
    exif[0x0112] = 6
    data = encode(stored, "JPEG", exif=exif.tobytes(), quality=95)
    out = load_image(data[:-4], ImageLimits(allow_truncated=True))
    assert_rgb(out, (40, 80))
    assert out[20, 10, 0] > 200 and out[20, 10, 2] < 60  # red on the left
    assert out[20, 70, 2] > 200 and out[20, 70, 0] < 60  # blue on the right


def test_random_bytes_are_invalid() -> None:
    data = np.random.default_rng(1234).integers(0, 256, 4096, dtype=np.uint8).tobytes()
    with pytest.raises(InvalidImageError) as exc:
        load_image(data)
    assert_invalid(exc)


def test_text_file_named_jpg_is_invalid(tmp_path: Path) -> None:
    path = tmp_path / "notes.jpg"
    path.write_text("this is not a picture, just some text\n" * 20)
    with pytest.raises(InvalidImageError) as exc:
        load_image(path)
    assert_invalid(exc, "unrecognised_format")


def test_corrupt_png_is_invalid() -> None:
    garbage = np.random.default_rng(7).integers(0, 256, 512, dtype=np.uint8).tobytes()
    with pytest.raises(InvalidImageError) as exc:
        load_image(PNG_SIGNATURE + garbage)
    assert_invalid(exc)


def test_png_with_corrupt_pixel_data_is_invalid() -> None:
    # Valid header and CRCs, but the IDAT is not a zlib stream.
    with pytest.raises(InvalidImageError) as exc:
        load_image(crafted_png(8, 8, idat=b"definitely not deflate data"))
    assert_invalid(exc, "corrupt")


def test_truncated_png_is_invalid(small_png: bytes) -> None:
    with pytest.raises(InvalidImageError) as exc:
        load_image(small_png[: len(small_png) // 2])
    assert_invalid(exc)


# --- size limits -----------------------------------------------------------------------------
def test_one_pixel_image() -> None:
    out = load_image(encode(Image.new("RGB", (1, 1), (10, 20, 30)), "PNG"))
    assert_rgb(out, (1, 1))
    assert out[0, 0].tolist() == [10, 20, 30]


def test_png_header_bomb_is_refused_before_decoding(tmp_path: Path) -> None:
    data = crafted_png(100_000, 100_000)
    assert len(data) < 200
    with pytest.raises(ImageTooLargeError) as exc:
        load_image(data)
    assert exc.value.code == "image_too_large"
    assert exc.value.details["pixels"] == 100_000 * 100_000  # by Pillow's guard or ours, from the header
    path = tmp_path / "bomb.png"
    path.write_bytes(data)
    with pytest.raises(ImageTooLargeError):
        load_image(path)


def test_max_pixels_limit_is_configurable(small_png: bytes) -> None:
    assert load_image(small_png, ImageLimits(max_pixels=24 * 32)).shape == (24, 32, 3)
    with pytest.raises(ImageTooLargeError) as exc:
        load_image(small_png, ImageLimits(max_pixels=24 * 32 - 1))
    assert exc.value.code == "image_too_large"


def test_importing_faceprint_keeps_pillows_own_bomb_guard() -> None:
    # The guard is process-wide: another library in the same process relies on it.
    import subprocess
    import sys

    code = (
        "from PIL import Image; d = Image.MAX_IMAGE_PIXELS; "
        "import faceprint, faceprint.imageio, faceprint.gallery; print(Image.MAX_IMAGE_PIXELS == d)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "True"


def test_pillows_lower_limit_is_a_typed_error(small_png: bytes, monkeypatch: pytest.MonkeyPatch) -> None:
    # An application that lowered Pillow's limit below ours: still image_too_large, never a crash.
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)  # error above 200 pixels; the image has 768
    with pytest.raises(ImageTooLargeError) as exc:
        load_image(small_png)
    assert exc.value.code == "image_too_large"
    assert exc.value.details["pillow_max_pixels"] == 100


def test_ico_with_oversized_embedded_png_is_refused() -> None:
    # The ICO directory says 16x16; the embedded PNG's own header says 20000x20000.
    data = ico_wrapping(crafted_png(20_000, 20_000))
    with pytest.raises(ImageTooLargeError) as exc:
        load_image(data, ImageLimits(max_pixels=1_000_000))
    assert exc.value.code == "image_too_large"
    with pytest.raises(ImageTooLargeError):
        load_image(ico_wrapping(crafted_png(100_000, 100_000)))


def test_max_bytes_limit_for_bytes_path_and_file_object(small_png: bytes, tmp_path: Path) -> None:
    path = tmp_path / "img.png"
    path.write_bytes(small_png)
    tight = ImageLimits(max_bytes=len(small_png) - 1)
    exact = ImageLimits(max_bytes=len(small_png))
    sources: list[Callable[[], Any]] = [
        lambda: small_png,
        lambda: bytearray(small_png),
        lambda: memoryview(small_png),
        lambda: path,
        lambda: str(path),
        lambda: io.BytesIO(small_png),
    ]
    for make in sources:
        with pytest.raises(ImageTooLargeError) as exc:
            load_image(make(), tight)
        assert exc.value.code == "image_too_large"
        assert exc.value.details["max_bytes"] == len(small_png) - 1
        assert load_image(make(), exact).shape == (24, 32, 3)
    with pytest.raises(ImageTooLargeError):
        decode_image(small_png, tight)
    with pytest.raises(ImageTooLargeError):
        read_bytes(io.BytesIO(small_png), tight)


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="needs /dev/zero")
def test_endless_device_is_read_within_max_bytes() -> None:
    # st_size is 0 for a device; the read must still stop at the limit.
    with pytest.raises(ImageTooLargeError):
        load_image("/dev/zero", ImageLimits(max_bytes=4096))


# --- pixel formats ---------------------------------------------------------------------------
def test_16bit_greyscale_png_is_scaled_to_8_bits() -> None:
    arr = np.array([[0, 65535, 32768, 1000], [257, 12850, 50000, 65535]], dtype=np.uint16)
    img = Image.fromarray(arr)
    assert img.mode == "I;16"
    for fmt in ("PNG", "TIFF"):
        out = load_image(encode(img, fmt))
        assert_rgb(out, (2, 4))
        assert (out[..., 0] == out[..., 1]).all() and (out[..., 0] == out[..., 2]).all()
        grey = out[..., 0].astype(int)
        assert grey[0, 0] == 0
        assert grey[0, 1] == 255
        assert abs(grey[0, 2] - 128) <= 1
        assert abs(grey[0, 3] - 4) <= 1
        assert grey[1, 0] == 1
        assert abs(grey[1, 1] - 50) <= 1
        assert abs(grey[1, 2] - 195) <= 1


def test_16bit_pgm_scaling_does_not_depend_on_the_content() -> None:
    # A dark 16-bit PGM (all samples <= 255 of 65535) is dark, not full brightness.
    dark = np.full((4, 4), 200, np.uint16)
    dark[0, 0] = 0
    data = encode(Image.fromarray(dark), "PPM")
    assert data.startswith(b"P5") and b"65535" in data[:20]
    out = load_image(data)
    assert out[0, 0, 0] == 0
    assert out[1, 1, 0] == 1  # 200 / 65535 * 255 = 0.78
    dark[2, 2] = 256
    out2 = load_image(encode(Image.fromarray(dark), "PPM"))
    assert out2[1, 1, 0] == out[1, 1, 0]
    bright = np.full((2, 2), 65535, np.uint16)
    assert (load_image(encode(Image.fromarray(bright), "PPM")) == 255).all()


def test_cmyk_jpeg_decodes_to_rgb() -> None:
    cmyk = Image.new("RGB", (32, 24), RED).convert("CMYK")
    data = encode(cmyk, "JPEG", quality=95)
    assert Image.open(io.BytesIO(data)).mode == "CMYK"
    out = load_image(data)
    assert_rgb(out, (24, 32))
    r, g, b = (int(c) for c in out[12, 16])
    assert r > 200 and g < 60 and b < 60


def test_rgba_png_is_composited_on_white() -> None:
    arr = np.zeros((4, 6, 4), np.uint8)
    arr[:, :3] = (0, 0, 255, 255)  # opaque blue
    arr[:, 3:] = (255, 0, 0, 0)  # fully transparent red
    arr[0, 5] = (0, 0, 0, 128)  # half-transparent black
    out = load_image(encode(Image.fromarray(arr, "RGBA"), "PNG"))
    assert_rgb(out, (4, 6))
    assert (out[:, :3] == BLUE).all()
    assert (out[1:, 3:] == 255).all()
    assert (out[0, 3:5] == 255).all()
    assert all(abs(int(c) - 127) <= 2 for c in out[0, 5])


def test_la_png_is_composited_on_white() -> None:
    img = Image.new("LA", (2, 1))
    img.putpixel((0, 0), (50, 255))
    img.putpixel((1, 0), (50, 0))
    out = load_image(encode(img, "PNG"))
    assert out[0, 0].tolist() == [50, 50, 50]
    assert out[0, 1].tolist() == [255, 255, 255]


def _palette_image() -> Image.Image:
    img = Image.new("P", (3, 2))
    img.putpalette([*RED, *GREEN, *BLUE] + [0] * (253 * 3))
    img.putdata([0, 1, 2, 2, 1, 0])
    return img


def test_palette_png() -> None:
    out = load_image(encode(_palette_image(), "PNG"))
    assert_rgb(out, (2, 3))
    assert out[0].tolist() == [list(RED), list(GREEN), list(BLUE)]
    assert out[1].tolist() == [list(BLUE), list(GREEN), list(RED)]


def test_palette_png_with_transparency() -> None:
    data = encode(_palette_image(), "PNG", transparency=2)  # blue is transparent
    assert "transparency" in Image.open(io.BytesIO(data)).info
    out = load_image(data)
    assert out[0].tolist() == [list(RED), list(GREEN), [255, 255, 255]]
    assert out[1].tolist() == [[255, 255, 255], list(GREEN), list(RED)]


def test_greyscale_and_rgb_png_with_trns_colour_key() -> None:
    grey = Image.fromarray(np.array([[10, 200]], np.uint8))
    out = load_image(encode(grey, "PNG", transparency=10))
    assert out[0].tolist() == [[255, 255, 255], [200, 200, 200]]
    rgb = Image.fromarray(np.array([[RED, GREEN]], np.uint8))
    out = load_image(encode(rgb, "PNG", transparency=GREEN))
    assert out[0].tolist() == [list(RED), [255, 255, 255]]


def test_pgm_and_ppm() -> None:
    grey = photo(16, 12)[..., 0]
    pgm = encode(Image.fromarray(grey), "PPM")
    assert pgm.startswith(b"P5")
    out = load_image(pgm)
    assert_rgb(out, (16, 12))
    assert (out[..., 0] == grey).all() and (out[..., 1] == grey).all() and (out[..., 2] == grey).all()
    rgb = photo(16, 12)
    ppm = encode(Image.fromarray(rgb), "PPM")
    assert ppm.startswith(b"P6")
    assert (load_image(ppm) == rgb).all()


@pytest.mark.parametrize(
    ("fmt", "kwargs", "lossless"),
    [
        ("WEBP", {"lossless": True}, True),
        ("WEBP", {"quality": 90}, False),
        ("BMP", {}, True),
        ("TIFF", {}, True),
        ("TIFF", {"compression": "tiff_lzw"}, True),
        ("PNG", {}, True),
        ("JPEG", {"quality": 95}, False),
    ],
)
def test_other_formats_decode(fmt: str, kwargs: dict, lossless: bool) -> None:
    rgb = photo(20, 30, seed=3)
    data = encode(Image.fromarray(rgb), fmt, **kwargs)
    assert Image.open(io.BytesIO(data)).format == fmt
    out = load_image(data)
    assert_rgb(out, (20, 30))
    diff = np.abs(out.astype(int) - rgb.astype(int))
    if lossless:
        assert diff.max() == 0
    else:
        assert diff.mean() < 20


def test_animated_gif_decodes_first_frame() -> None:
    first = halves(10, 12, RED, GREEN)
    second = halves(10, 12, BLUE, BLUE)
    data = encode(first, "GIF", save_all=True, append_images=[second], duration=100, loop=0)
    assert getattr(Image.open(io.BytesIO(data)), "n_frames", 1) == 2
    out = load_image(data)
    assert_rgb(out, (10, 12))
    assert (out[:, :6] == RED).all()
    assert (out[:, 6:] == GREEN).all()


def test_ico_decodes() -> None:
    data = encode(halves(32, 32).convert("RGBA"), "ICO", sizes=[(32, 32)])
    out = load_image(data)
    assert_rgb(out, (32, 32))
    assert (out[:, :16] == RED).all() and (out[:, 16:] == BLUE).all()


def test_content_is_sniffed_not_the_extension(small_png: bytes, tmp_path: Path) -> None:
    path = tmp_path / "really_a_png.jpg"
    path.write_bytes(small_png)
    expected = np.asarray(Image.open(io.BytesIO(small_png)).convert("RGB"))
    assert (load_image(path) == expected).all()


@pytest.mark.parametrize(
    ("orientation", "stored_as"),
    [
        (3, Image.Transpose.ROTATE_180),
        (6, Image.Transpose.ROTATE_90),  # stored 90 deg anticlockwise: display turns clockwise
        (8, Image.Transpose.ROTATE_270),
        (2, Image.Transpose.FLIP_LEFT_RIGHT),
    ],
)
def test_exif_orientation_is_applied(orientation: int, stored_as: Image.Transpose, tmp_path: Path) -> None:
    upright = halves(20, 40)  # 40 wide, 20 high, red left half
    stored = upright.transpose(stored_as)
    exif = stored.getexif()
    exif[0x0112] = orientation
    data = encode(stored, "JPEG", exif=exif.tobytes(), quality=95)
    assert Image.open(io.BytesIO(data)).getexif().get(0x0112) == orientation
    path = tmp_path / "rotated.jpg"
    path.write_bytes(data)
    for source in (data, path):
        out = load_image(source)
        assert_rgb(out, (20, 40))
        red = (out[..., 0] > 200) & (out[..., 2] < 60)
        blue = (out[..., 2] > 200) & (out[..., 0] < 60)
        assert red[:, :18].all() and not red[:, 22:].any()
        assert blue[:, 22:].all()


def test_broken_exif_does_not_make_a_good_picture_unreadable() -> None:
    data = encode(halves(), "JPEG", exif=b"Exif\x00\x00II*\x00\xff\xff\xff\x7fgarbage")
    out = load_image(data)
    assert_rgb(out, (20, 40))


# --- input kinds -----------------------------------------------------------------------------
def test_every_encoded_source_kind(small_png: bytes, tmp_path: Path) -> None:
    path = tmp_path / "img.png"
    path.write_bytes(small_png)
    expected = np.asarray(Image.open(io.BytesIO(small_png)).convert("RGB"))
    with open(path, "rb") as fh:
        from_handle = load_image(fh)
    outs = [
        load_image(str(path)),
        load_image(path),
        load_image(small_png),
        load_image(bytearray(small_png)),
        load_image(memoryview(small_png)),
        load_image(io.BytesIO(small_png)),
        from_handle,
    ]
    for out in outs:
        assert_rgb(out, (24, 32))
        assert (out == expected).all()
    assert read_bytes(path) == small_png
    assert read_bytes(memoryview(small_png)) == small_png


def test_text_mode_and_closed_file_objects_are_invalid(small_png: bytes, tmp_path: Path) -> None:
    path = tmp_path / "img.png"
    path.write_bytes(small_png)
    with open(path, encoding="utf-8") as fh:
        with pytest.raises(InvalidImageError) as exc:
            load_image(fh)
    assert_invalid(exc)
    with pytest.raises(InvalidImageError) as exc:
        load_image(io.StringIO("P5 1 1 255 x"))
    assert_invalid(exc)
    closed = open(path, "rb")
    closed.close()
    with pytest.raises(InvalidImageError) as exc:
        load_image(closed)
    assert_invalid(exc)


def test_array_greyscale_and_single_channel() -> None:
    grey = np.arange(12, dtype=np.uint8).reshape(3, 4)
    for arr in (grey, grey[:, :, None]):
        out = load_image(arr)
        assert_rgb(out, (3, 4))
        for c in range(3):
            assert (out[..., c] == grey).all()


def test_array_rgb_and_rgba() -> None:
    rgb = photo(5, 7)
    assert (load_image(rgb) == rgb).all()
    rgba = np.concatenate([rgb, np.full((5, 7, 1), 9, np.uint8)], axis=2)
    out = load_image(rgba)
    assert_rgb(out, (5, 7))
    assert (out == rgb).all()  # alpha dropped
    bgr_view = rgb[..., ::-1]  # not contiguous
    out = load_image(bgr_view)
    assert_rgb(out, (5, 7))
    assert (out == bgr_view).all()


def test_array_uint16_float_and_bool() -> None:
    u16 = np.array([[0, 65535, 32768]], np.uint16)
    assert load_image(u16)[0, :, 0].tolist() == [0, 255, 128]
    f = np.array([[0.0, 1.0, 0.5, 0.2]], np.float32)
    assert load_image(f)[0, :, 0].tolist() == [0, 255, 128, 51]
    assert load_image(f.astype(np.float64))[0, :, 1].tolist() == [0, 255, 128, 51]
    b = np.array([[True, False]])
    out = load_image(b)
    assert_rgb(out, (1, 2))
    assert out[0].tolist() == [[255, 255, 255], [0, 0, 0]]


@pytest.mark.parametrize(
    ("arr", "reason"),
    [
        (np.array([[0.0, 1.5]]), "bad_values"),
        (np.array([[-0.1, 0.5]]), "bad_values"),
        (np.array([[np.nan, 0.5]]), "bad_values"),
        (np.array([[np.inf, 0.5]]), "bad_values"),
        (np.zeros((4, 4, 2), np.uint8), "bad_shape"),
        (np.zeros(16, np.uint8), "bad_shape"),
        (np.zeros((1, 4, 4, 3), np.uint8), "bad_shape"),
        (np.zeros((0, 5, 3), np.uint8), "empty"),
        (np.zeros((5, 0), np.uint8), "empty"),
        (np.zeros((4, 4), np.int32), "bad_dtype"),
        (np.zeros((4, 4), np.complex64), "bad_dtype"),
    ],
    ids=["over1", "negative", "nan", "inf", "2chan", "1d", "4d", "zero_rows", "zero_cols", "int32", "complex"],
)
def test_bad_arrays_are_invalid(arr: np.ndarray, reason: str) -> None:
    with pytest.raises(InvalidImageError) as exc:
        load_image(arr)
    assert_invalid(exc, reason)


def test_array_pixel_limit() -> None:
    with pytest.raises(ImageTooLargeError):
        load_image(np.zeros((10, 10, 3), np.uint8), ImageLimits(max_pixels=99))
    assert load_image(np.zeros((10, 10, 3), np.uint8), ImageLimits(max_pixels=100)).shape == (10, 10, 3)


def test_missing_path_directory_and_bad_source_types(tmp_path: Path) -> None:
    for source in (tmp_path / "nope.jpg", str(tmp_path / "nope.jpg"), tmp_path, str(tmp_path)):
        with pytest.raises(InvalidImageError) as exc:
            load_image(source)
        assert_invalid(exc)
        assert exc.value.details["path"] == str(Path(source))
    for source in (42, None, 3.5, ["a.jpg"], object()):
        with pytest.raises(InvalidImageError) as exc:
            load_image(source)  # type: ignore[arg-type]
        assert_invalid(exc)
    with pytest.raises(InvalidImageError) as exc:
        load_image(str(tmp_path / "bad\x00name.jpg"))
    assert_invalid(exc)


@pytest.mark.parametrize("fmt", ["PCX", "TGA", "SGI"])
def test_format_pillow_reads_but_we_do_not_support(fmt: str) -> None:
    assert fmt not in SUPPORTED_FORMATS
    data = encode(Image.fromarray(photo(8, 8)), fmt)
    assert Image.open(io.BytesIO(data)).format == fmt  # Pillow itself would read it
    with pytest.raises(InvalidImageError) as exc:
        load_image(data)
    assert_invalid(exc, "unsupported_format")
    assert exc.value.details["format"] == fmt


def test_public_constants_and_describe_source(tmp_path: Path) -> None:
    assert {"JPEG", "PNG", "WEBP", "BMP", "PPM", "TIFF", "GIF"} <= SUPPORTED_FORMATS
    assert DEFAULT_LIMITS == ImageLimits()
    assert DEFAULT_LIMITS.allow_truncated is False
    assert describe_source("a/b.jpg") == "a/b.jpg"
    assert describe_source(Path("a") / "b.jpg") == os.path.join("a", "b.jpg")
    assert describe_source(np.zeros((2, 3, 3))) == "<array 2x3x3>"
    assert describe_source(b"abcd") == "<4 bytes>"
    assert describe_source(io.BytesIO(b"")) == "<BytesIO>"
    path = tmp_path / "x.png"
    path.write_bytes(b"")
    with open(path, "rb") as fh:
        assert describe_source(fh) == str(path)


# --- the whole bad-input corpus: only FaceprintErrors, with the right code -------------------
def _corpus() -> list[tuple[str, Callable[[Path], Any], ImageLimits, str]]:
    """(id, make_source(tmp_path), limits, expected code)."""
    jpeg = encode(Image.fromarray(photo()), "JPEG", quality=90)
    png = encode(Image.fromarray(photo(24, 32)), "PNG")
    invalid, too_large = "invalid_image", "image_too_large"

    def file_with(name: str, data: bytes) -> Callable[[Path], Path]:
        def make(tmp: Path) -> Path:
            path = tmp / name
            path.write_bytes(data)
            return path

        return make

    def closed_file(tmp: Path) -> Any:
        fh = open(file_with("c.png", png)(tmp), "rb")
        fh.close()
        return fh

    rand = np.random.default_rng(99).integers(0, 256, 2048, dtype=np.uint8).tobytes()
    return [
        ("empty_bytes", lambda t: b"", DEFAULT_LIMITS, invalid),
        ("empty_file", file_with("e.jpg", b""), DEFAULT_LIMITS, invalid),
        ("empty_stream", lambda t: io.BytesIO(b""), DEFAULT_LIMITS, invalid),
        ("truncated_jpeg", lambda t: jpeg[: len(jpeg) // 2], DEFAULT_LIMITS, invalid),
        ("truncated_jpeg_allowed", lambda t: jpeg[: len(jpeg) // 20], ImageLimits(allow_truncated=True), invalid),
        ("truncated_png", lambda t: png[: len(png) // 2], DEFAULT_LIMITS, invalid),
        ("jpeg_header_only", lambda t: jpeg[:4], DEFAULT_LIMITS, invalid),
        ("random_bytes", lambda t: rand, DEFAULT_LIMITS, invalid),
        ("text_as_jpg", file_with("t.jpg", b"hello, world\n" * 50), DEFAULT_LIMITS, invalid),
        ("corrupt_png", lambda t: PNG_SIGNATURE + rand, DEFAULT_LIMITS, invalid),
        ("png_bad_idat", lambda t: crafted_png(8, 8, idat=b"not zlib"), DEFAULT_LIMITS, invalid),
        ("png_zero_width", lambda t: crafted_png(0, 8), DEFAULT_LIMITS, invalid),
        ("png_bad_crc", lambda t: png[:20] + bytes([png[20] ^ 0xFF]) + png[21:], DEFAULT_LIMITS, invalid),
        ("png_bomb", lambda t: crafted_png(100_000, 100_000), DEFAULT_LIMITS, too_large),
        ("png_bomb_file", file_with("b.png", crafted_png(100_000, 100_000)), DEFAULT_LIMITS, too_large),
        ("ico_bomb", lambda t: ico_wrapping(crafted_png(100_000, 100_000)), DEFAULT_LIMITS, too_large),
        ("ico_garbage", lambda t: b"\x00\x00\x01\x00\x05\x00" + rand[:40], DEFAULT_LIMITS, invalid),
        ("max_bytes", lambda t: png, ImageLimits(max_bytes=100), too_large),
        ("max_bytes_file", file_with("m.png", png), ImageLimits(max_bytes=100), too_large),
        ("max_bytes_stream", lambda t: io.BytesIO(png), ImageLimits(max_bytes=100), too_large),
        ("max_pixels", lambda t: png, ImageLimits(max_pixels=100), too_large),
        ("pcx", lambda t: encode(Image.new("RGB", (4, 4)), "PCX"), DEFAULT_LIMITS, invalid),
        ("tga", lambda t: encode(Image.new("RGB", (4, 4)), "TGA"), DEFAULT_LIMITS, invalid),
        ("missing_path", lambda t: t / "missing.png", DEFAULT_LIMITS, invalid),
        ("missing_str_path", lambda t: str(t / "missing.png"), DEFAULT_LIMITS, invalid),
        ("directory", lambda t: t, DEFAULT_LIMITS, invalid),
        ("nul_in_path", lambda t: str(t / "a\x00b.png"), DEFAULT_LIMITS, invalid),
        ("int_source", lambda t: 7, DEFAULT_LIMITS, invalid),
        ("none_source", lambda t: None, DEFAULT_LIMITS, invalid),
        ("text_stream", lambda t: io.StringIO("not binary"), DEFAULT_LIMITS, invalid),
        ("closed_file", closed_file, DEFAULT_LIMITS, invalid),
        ("array_nan", lambda t: np.full((2, 2), np.nan), DEFAULT_LIMITS, invalid),
        ("array_range", lambda t: np.full((2, 2), 2.0), DEFAULT_LIMITS, invalid),
        ("array_2chan", lambda t: np.zeros((2, 2, 2), np.uint8), DEFAULT_LIMITS, invalid),
        ("array_1d", lambda t: np.zeros(4, np.uint8), DEFAULT_LIMITS, invalid),
        ("array_4d", lambda t: np.zeros((1, 2, 2, 3), np.uint8), DEFAULT_LIMITS, invalid),
        ("array_empty", lambda t: np.zeros((0, 0, 3), np.uint8), DEFAULT_LIMITS, invalid),
        ("array_object", lambda t: np.array([[None, 1]], dtype=object), DEFAULT_LIMITS, invalid),
        ("array_too_big", lambda t: np.zeros((20, 20), np.uint8), ImageLimits(max_pixels=399), too_large),
    ]


CORPUS = _corpus()


@pytest.mark.parametrize(("make", "limits", "code"), [c[1:] for c in CORPUS], ids=[c[0] for c in CORPUS])
def test_bad_input_corpus_raises_only_faceprint_errors(
    make: Callable[[Path], Any], limits: ImageLimits, code: str, tmp_path: Path
) -> None:
    source = make(tmp_path)
    try:
        load_image(source, limits)
    except FaceprintError as exc:
        assert type(exc) in (InvalidImageError, ImageTooLargeError)
        assert isinstance(exc.code, str) and exc.code
        assert exc.code == code, exc
        as_dict = exc.to_dict()
        assert as_dict["code"] == code
        assert isinstance(as_dict["message"], str) and as_dict["message"]
    except BaseException as exc:  # pragma: no cover - the point of this test
        pytest.fail(f"{type(exc).__name__} escaped instead of a FaceprintError: {exc!r}")
    else:
        pytest.fail("bad input was accepted")


# --- image_dimensions: the header only -------------------------------------------------------
def test_image_dimensions_reads_the_header_without_decoding() -> None:
    for fmt in ("PNG", "JPEG", "WEBP", "BMP", "GIF", "TIFF"):
        assert image_dimensions(encode(Image.new("RGB", (40, 20)), fmt)) == (40, 20), fmt
    # A 6000x6000 header with no pixel data behind it: its size, where decoding fails.
    hollow = crafted_png(6000, 6000, idat=b"not zlib")
    assert image_dimensions(hollow) == (6000, 6000)
    with pytest.raises(InvalidImageError):
        decode_image(hollow)
    with pytest.raises(ImageTooLargeError) as info:
        image_dimensions(crafted_png(100_000, 100_000))
    assert info.value.details["pixels"] == 100_000 * 100_000
    with pytest.raises(ImageTooLargeError):
        image_dimensions(ico_wrapping(crafted_png(100_000, 100_000)))


def test_image_dimensions_give_the_decoded_pixel_count_of_a_rotated_photo() -> None:
    stored = halves(20, 40)
    exif = stored.getexif()
    exif[0x0112] = 6  # shown turned a quarter: 20 wide, 40 high
    data = encode(stored, "JPEG", exif=exif.tobytes())
    width, height = image_dimensions(data)
    decoded = decode_image(data)
    assert width * height == decoded.shape[0] * decoded.shape[1]


@pytest.mark.parametrize(("make", "limits", "code"), [c[1:] for c in CORPUS], ids=[c[0] for c in CORPUS])
def test_image_dimensions_of_the_bad_corpus_raise_only_faceprint_errors(
    make: Callable[[Path], Any], limits: ImageLimits, code: str, tmp_path: Path
) -> None:
    source = make(tmp_path)
    if not isinstance(source, bytes):
        return  # paths, streams and arrays are load_image's; image_dimensions takes bytes
    try:
        image_dimensions(source, limits)
    except FaceprintError as exc:
        assert type(exc) in (InvalidImageError, ImageTooLargeError)
    except BaseException as exc:  # pragma: no cover - the point of this test
        pytest.fail(f"{type(exc).__name__} escaped instead of a FaceprintError: {exc!r}")
