"""Property tests of :mod:`faceprint.imageio`: whatever the bytes, decoding ends in a typed error
(``invalid_image`` / ``image_too_large``) or a valid image within the limits -- never another
exception, never more memory than the limits imply.

Inputs: arbitrary bytes; real images (a shipped face photo, small, in every supported format
and several pixel modes) mutated by truncation, bit flips, inserted and deleted runs, spliced
headers of another format, and header dimensions rewritten to anything up to 2^32 (the header
fields of PNG, JPEG, GIF, WebP, TIFF, BMP, ICO and PPM are rewritten where they are, checksums
fixed, so the decoder believes them); arrays of any shape and dtype.

Memory: each decode's peak resident memory above what the process held before is measured
(Linux: the peak is reset through /proc/self/clear_refs) and must stay under
:data:`BYTES_PER_PIXEL` bytes per pixel of the limit, plus the input's size and a fixed slack.
"""

from __future__ import annotations

import io
import json
import os
import re
import struct
import subprocess
import sys
import zlib
from collections.abc import Callable
from functools import cache
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from PIL import Image

from faceprint.errors import ImageTooLargeError, InvalidImageError
from faceprint.imageio import ImageLimits, load_image
from tests.conftest import face_image
from tests.fuzz.conftest import FuzzRun, record

#: Small limits, so that a decoder ignoring them is seen at once (a bomb is many times larger).
LIMITS = ImageLimits(max_bytes=256 * 1024, max_pixels=1_000_000)
LENIENT = ImageLimits(max_bytes=256 * 1024, max_pixels=1_000_000, allow_truncated=True)

#: What one decoded pixel may cost at the peak: Pillow's decoded image (up to 4 bytes: RGBA, I,
#: F) and its bytes for numpy (up to 4), the white image a transparent one is pasted onto (4),
#: the returned array (3) and numpy's temporaries (bounded by band). Measured: 13-19
#: (bench/decode_memory.py); 17-32 before issue 13's fixes.
BYTES_PER_PIXEL = 24
#: Allocator noise: arenas, Pillow's block cache, the first use of a code path.
SLACK_BYTES = 48 * 1024 * 1024

EXAMPLES = {"bytes": 300, "mutated": 700, "dimensions": 400, "arrays": 200}


# --- seeds: one real photo in every format and several modes ----------------------------------
def encode(img: Image.Image, fmt: str, **kwargs: object) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kwargs)
    return buf.getvalue()


@cache
def seeds() -> dict[str, bytes]:
    with Image.open(face_image("collins.jpg")) as im:
        rgb = im.convert("RGB").resize((40, 48))
    grey = rgb.convert("L")
    rgba = rgb.copy()
    rgba.putalpha(Image.linear_gradient("L").resize(rgb.size))
    grey16 = Image.fromarray((np.asarray(grey, dtype=np.uint16) * 257).astype(np.uint16))
    floats = Image.fromarray(np.asarray(grey, dtype=np.float32) / 255.0)
    return {
        "png": encode(rgb, "PNG"),
        "png_rgba": encode(rgba, "PNG"),
        "png_palette": encode(rgb.convert("P"), "PNG"),
        "png_16bit": encode(grey16, "PNG"),
        "jpeg": encode(rgb, "JPEG", quality=80),
        "jpeg_progressive": encode(grey, "JPEG", progressive=True),
        "gif": encode(rgb.convert("P"), "GIF"),
        "webp_lossy": encode(rgb, "WEBP", quality=70),
        "webp_lossless": encode(rgba, "WEBP", lossless=True),
        "tiff": encode(rgb, "TIFF"),
        "tiff_deflate": encode(rgba, "TIFF", compression="tiff_adobe_deflate"),
        "tiff_float": encode(floats, "TIFF"),
        "bmp": encode(rgb, "BMP"),
        "ico": encode(rgb, "ICO", sizes=[(32, 32)]),
        "ppm": encode(rgb, "PPM"),
        "pgm_16bit": encode(grey16, "PPM"),
    }


SEED_NAMES = sorted(seeds())


# --- rewriting the dimensions a header declares ------------------------------------------------
def png_fix_ihdr(data: bytearray, w: int, h: int) -> None:
    if data[12:16] == b"IHDR" and len(data) >= 33:
        struct.pack_into(">II", data, 16, w, h)
        struct.pack_into(">I", data, 29, zlib.crc32(bytes(data[12:29])))


def jpeg_dims(data: bytearray, w: int, h: int) -> None:
    i = 2
    while i + 9 <= len(data) and data[i] == 0xFF:
        marker, length = data[i + 1], struct.unpack_from(">H", data, i + 2)[0]
        if marker in (0xC0, 0xC1, 0xC2):
            struct.pack_into(">HH", data, i + 5, h & 0xFFFF, w & 0xFFFF)
            return
        i += 2 + length


def gif_dims(data: bytearray, w: int, h: int) -> None:
    if len(data) < 13:
        return
    struct.pack_into("<HH", data, 6, w & 0xFFFF, h & 0xFFFF)  # the logical screen
    i = 13 + (3 << ((data[10] & 7) + 1) if data[10] & 0x80 else 0)
    while i < len(data):
        if data[i] == 0x2C and i + 9 <= len(data):  # the first image descriptor
            struct.pack_into("<HH", data, i + 5, w & 0xFFFF, h & 0xFFFF)
            return
        if data[i] != 0x21 or i + 2 >= len(data):  # not an extension: give up
            return
        i += 2
        while i < len(data) and data[i]:  # the extension's sub-blocks
            i += data[i] + 1
        i += 1


def webp_dims(data: bytearray, w: int, h: int) -> None:
    kind = bytes(data[12:16])
    if kind == b"VP8 " and len(data) >= 30:
        struct.pack_into("<HH", data, 26, w & 0x3FFF, h & 0x3FFF)
    elif kind == b"VP8L" and len(data) >= 25:
        bits = struct.unpack_from("<I", data, 21)[0] & ~0x0FFFFFFF
        struct.pack_into("<I", data, 21, bits | ((w - 1) & 0x3FFF) | (((h - 1) & 0x3FFF) << 14))
    elif kind == b"VP8X" and len(data) >= 30:
        data[24:27] = ((w - 1) & 0xFFFFFF).to_bytes(3, "little")
        data[27:30] = ((h - 1) & 0xFFFFFF).to_bytes(3, "little")


def tiff_dims(data: bytearray, w: int, h: int) -> None:
    order = "<" if data[:2] == b"II" else ">"
    if len(data) < 8:
        return
    ifd = struct.unpack_from(order + "I", data, 4)[0]
    if ifd + 2 > len(data):
        return
    for n in range(struct.unpack_from(order + "H", data, ifd)[0]):
        entry = ifd + 2 + 12 * n
        if entry + 12 > len(data):
            return
        tag, kind = struct.unpack_from(order + "HH", data, entry)
        if tag in (256, 257):
            value = w if tag == 256 else h
            if kind == 3:  # SHORT
                struct.pack_into(order + "H", data, entry + 8, value & 0xFFFF)
            else:  # LONG
                struct.pack_into(order + "I", data, entry + 8, value & 0xFFFFFFFF)


def bmp_dims(data: bytearray, w: int, h: int) -> None:
    if len(data) >= 26:
        struct.pack_into("<ii", data, 18, min(w, 2**31 - 1), min(h, 2**31 - 1))


def ico_dims(data: bytearray, w: int, h: int) -> None:
    if len(data) < 22:
        return
    offset = struct.unpack_from("<I", data, 18)[0]
    frame = data[offset:]
    if frame[:8] == b"\x89PNG\r\n\x1a\n":
        png_fix_ihdr(frame, w, h)
    elif len(frame) >= 12:
        struct.pack_into("<ii", frame, 4, min(w, 2**31 - 1), min(2 * h, 2**31 - 1))
    data[offset:] = frame


def pnm_dims(data: bytearray, w: int, h: int) -> None:
    found = re.match(rb"(P[1-6]\s+)(\d+)(\s+)(\d+)", bytes(data))
    if found:
        data[found.start(2) : found.end(4)] = b"%d%s%d" % (w, found.group(3), h)


DIMS: dict[bytes, Callable[[bytearray, int, int], None]] = {
    b"\x89PNG": png_fix_ihdr, b"\xff\xd8\xff": jpeg_dims, b"GIF8": gif_dims, b"RIFF": webp_dims,
    b"II*\x00": tiff_dims, b"MM\x00*": tiff_dims, b"BM": bmp_dims, b"\x00\x00\x01\x00": ico_dims,
    b"P5": pnm_dims, b"P6": pnm_dims,
}


def with_dimensions(data: bytes, w: int, h: int) -> bytes:
    out = bytearray(data)
    for magic, rewrite in DIMS.items():
        if out.startswith(magic):
            rewrite(out, w, h)
            break
    return bytes(out)


# --- the property ------------------------------------------------------------------------------
@cache
def can_reset_peak() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return "VmHWM" in Path("/proc/self/status").read_text()
    except OSError:
        return False


def resident_kib() -> tuple[int, int]:
    """(current, peak) resident memory of this process, KiB."""
    fields = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines() if ":" in line)
    return int(fields["VmRSS"].split()[0]), int(fields["VmHWM"].split()[0])


def check_decode(data: bytes, limits: ImageLimits = LIMITS, *, source: object = None) -> str:
    """Decode and check the outcome (returns its kind); the peak memory is checked too."""
    measure = can_reset_peak()
    if measure:
        Path("/proc/self/clear_refs").write_text("5")
        before, _ = resident_kib()
    try:
        image = load_image(source if source is not None else data, limits)
    except (InvalidImageError, ImageTooLargeError) as exc:
        assert exc.code in {"invalid_image", "image_too_large"}
        assert isinstance(exc.message, str) and exc.message
        assert isinstance(exc.details, dict)
        outcome = exc.code
    else:
        assert isinstance(image, np.ndarray)
        assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3, (image.dtype, image.shape)
        h, w = image.shape[:2]
        assert 0 < h * w <= limits.max_pixels, image.shape
        assert image.flags.c_contiguous
        outcome = "image"
    if measure:
        _, peak = resident_kib()
        grown = (peak - before) * 1024
        bound = BYTES_PER_PIXEL * limits.max_pixels + 4 * len(data) + SLACK_BYTES
        assert grown <= bound, f"decoding {len(data)} bytes took {grown / 2**20:.0f} MiB (bound {bound / 2**20:.0f} MiB)"
    return outcome


class Tally:
    """Counts the outcomes of one fuzzer's cases."""

    def __init__(self) -> None:
        self.outcomes: dict[str, int] = {}

    def add(self, outcome: str) -> None:
        self.outcomes[outcome] = self.outcomes.get(outcome, 0) + 1

    def into(self, run: FuzzRun) -> None:
        run.cases += sum(self.outcomes.values())
        for outcome, n in self.outcomes.items():
            run.extra[outcome] = run.extra.get(outcome, 0) + n
        run.extra["memory_checked"] = can_reset_peak()


# --- strategies --------------------------------------------------------------------------------
@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(seeds()[draw(st.sampled_from(SEED_NAMES))])
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["truncate", "flip", "overwrite", "insert", "delete", "splice", "dimensions"]))
        pos = draw(st.integers(0, max(0, len(data) - 1)))
        if op == "truncate":
            del data[pos:]
        elif op == "flip" and data:
            data[pos] ^= draw(st.integers(1, 255))
        elif op == "overwrite":
            chunk = draw(st.binary(min_size=1, max_size=16))
            data[pos : pos + len(chunk)] = chunk
        elif op == "insert":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=64))
        elif op == "delete":
            del data[pos : pos + draw(st.integers(1, 64))]
        elif op == "splice":  # another format's header on this body
            other = seeds()[draw(st.sampled_from(SEED_NAMES))]
            cut = draw(st.integers(1, 64))
            data[:cut] = other[:cut]
        else:
            data = bytearray(with_dimensions(bytes(data), *draw(dimensions)))
    return bytes(data)


#: Declared sizes: small, around the limit, and huge (up to what each header field holds).
dimensions = st.tuples(
    st.one_of(st.integers(1, 64), st.integers(900, 1100), st.integers(1, 2**32 - 1)),
    st.one_of(st.integers(1, 64), st.integers(900, 1100), st.integers(1, 2**32 - 1)),
)


# --- the fuzzers -------------------------------------------------------------------------------
def test_seeds_decode() -> None:
    """Every seed is a valid image to begin with (else the mutations prove little)."""
    for name, data in seeds().items():
        assert check_decode(data) == "image", name


def test_arbitrary_bytes() -> None:
    tally = Tally()

    @settings(settings.get_profile("faceprint-fuzz"), max_examples=EXAMPLES["bytes"])
    @given(st.one_of(
        st.binary(max_size=2048),
        # a real format's magic, then anything
        st.tuples(st.sampled_from([s[:16] for s in seeds().values()]), st.binary(max_size=512)).map(b"".join),
    ))
    def fuzz(data: bytes) -> None:
        tally.add(check_decode(data))

    with record("imageio.arbitrary_bytes") as run:
        fuzz()
        tally.into(run)


@pytest.mark.parametrize("limits", [LIMITS, LENIENT], ids=["strict", "allow_truncated"])
def test_mutated_images(limits: ImageLimits) -> None:
    tally = Tally()

    @settings(settings.get_profile("faceprint-fuzz"), max_examples=EXAMPLES["mutated"] // 2)
    @given(mutated(), st.booleans())
    def fuzz(data: bytes, as_file: bool) -> None:
        tally.add(check_decode(data, limits, source=io.BytesIO(data) if as_file else None))

    with record(f"imageio.mutated[{'allow_truncated' if limits.allow_truncated else 'strict'}]") as run:
        fuzz()
        tally.into(run)


def test_declared_dimensions() -> None:
    """Every format's header claiming any size (the pixels stay what they were)."""
    tally = Tally()

    @settings(settings.get_profile("faceprint-fuzz"), max_examples=EXAMPLES["dimensions"])
    @given(st.sampled_from(SEED_NAMES), dimensions)
    def fuzz(seed: str, size: tuple[int, int]) -> None:
        tally.add(check_decode(with_dimensions(seeds()[seed], *size)))

    with record("imageio.declared_dimensions") as run:
        fuzz()
        tally.into(run)


def test_arrays() -> None:
    """Arrays of any shape and dtype: a typed error or a valid image."""
    tally = Tally()
    dtypes = st.sampled_from([np.uint8, np.uint16, np.int32, np.int64, np.float16, np.float32, np.float64,
                              np.bool_, np.complex64, np.object_])

    image_shapes = st.tuples(st.integers(0, 6), st.integers(0, 6)).flatmap(
        lambda hw: st.sampled_from([hw, (*hw, 1), (*hw, 3), (*hw, 4)]))
    shapes = st.one_of(image_shapes, hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=6))

    @settings(settings.get_profile("faceprint-fuzz"), max_examples=EXAMPLES["arrays"])
    @given(st.tuples(dtypes, shapes).flatmap(
        lambda ds: hnp.arrays(ds[0], ds[1], elements=st.none() if ds[0] is np.object_ else None)))
    def fuzz(array: np.ndarray) -> None:
        tally.add(check_decode(b"", source=array))

    with record("imageio.arrays") as run:
        fuzz()
        tally.into(run)


def at_the_limit(side: int) -> dict[str, bytes]:
    """Noisy (so nothing compresses away) side x side images of every decoding path: 8-bit RGB,
    RGBA (composited onto white), palette with transparency, 16-bit grey (PNG, PGM), 32-bit int
    and float grey (TIFF), JPEG."""
    rng = np.random.default_rng(0)
    grey = rng.integers(0, 256, (side, side), dtype=np.uint8)
    rgb = Image.fromarray(np.stack([grey, grey[::-1], grey[:, ::-1]], axis=2))
    rgba = Image.fromarray(np.dstack([np.asarray(rgb), grey]))
    wide = Image.fromarray(grey.astype(np.uint16) * 257)
    return {
        "png_rgb": encode(rgb, "PNG", compress_level=1),
        "png_rgba": encode(rgba, "PNG", compress_level=1),
        "png_palette_transparent": encode(Image.fromarray(grey).convert("P"), "PNG", transparency=0, compress_level=1),
        "png_16bit": encode(wide, "PNG", compress_level=1),
        "pgm_16bit": encode(wide, "PPM"),
        "tiff_int32": encode(Image.fromarray(grey.astype(np.int32) * 1000), "TIFF"),
        "tiff_float": encode(Image.fromarray(grey.astype(np.float32) / 255), "TIFF"),
        "jpeg": encode(rgb, "JPEG", quality=90),
    }


def measure_costs(side: int) -> dict[str, float]:
    """Peak bytes a pixel of decoding each :func:`at_the_limit` image (run in a fresh process)."""
    limits = ImageLimits(max_bytes=64 * 1024 * 1024, max_pixels=side * side)
    costs = {}
    for name, data in at_the_limit(side).items():
        Path("/proc/self/clear_refs").write_text("5")
        before, _ = resident_kib()
        image = load_image(data, limits)
        _, peak = resident_kib()
        assert image.shape == (side, side, 3), name
        del image
        costs[name] = round((peak - before) * 1024 / limits.max_pixels, 1)
    return costs


@pytest.mark.skipif(not can_reset_peak(), reason="needs Linux's /proc/self/clear_refs to measure peak memory")
def test_decoding_at_the_limit_stays_within_the_memory_bound() -> None:
    """An image of exactly ``max_pixels`` in every decoding path costs at most BYTES_PER_PIXEL
    bytes a pixel at the peak (RGBA and 16/32-bit grey took 29-32 before issue 13's fixes).
    Measured in a fresh process whose allocator returns every large block (a fixed mmap
    threshold), so that memory freed by earlier tests does not hide a peak."""
    side = 1600
    script = f"import json; from tests.fuzz.test_imageio_properties import measure_costs; print(json.dumps(measure_costs({side})))"
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "131072"}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300, env=env,
                          cwd=Path(__file__).parents[2])
    assert done.returncode == 0, done.stderr
    costs = json.loads(done.stdout.splitlines()[-1])
    with record("imageio.at_the_limit") as run:
        run.cases += len(costs)
        run.extra.update({f"{k}_bytes_per_pixel": v for k, v in costs.items()})
    assert max(costs.values()) <= BYTES_PER_PIXEL + (8 * 1024 * 1024) / (side * side), costs
