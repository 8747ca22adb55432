"""The only place where paths, bytes, file objects and foreign arrays become images.

Everything inside faceprint works on ``numpy.ndarray`` of shape ``(H, W, 3)``, ``uint8``, RGB.
This module turns any supported input into that, applying EXIF orientation, and refuses
inputs that are empty, corrupt, truncated, not images, or too large -- the pixel limit is
checked against the header *before* any pixel is decoded, so decompression bombs cost nothing.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import struct
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from struct import error as struct_error  # raised by some Pillow plugins on garbage
from typing import IO, Union

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from faceprint.errors import ImageTooLargeError, InvalidImageError

ImageSource = Union[str, os.PathLike[str], bytes, bytearray, memoryview, IO[bytes], np.ndarray]

#: Formats accepted from encoded input (Pillow format names). Content is sniffed, never the
#: file extension: real-world files are often mislabelled (a WebP named .jpg).
SUPPORTED_FORMATS = frozenset(
    {"JPEG", "MPO", "PNG", "WEBP", "BMP", "DIB", "PPM", "TIFF", "GIF", "ICO"}
)


@dataclass(frozen=True, slots=True)
class ImageLimits:
    """Limits applied to every decoded input.

    ``max_bytes`` bounds the encoded size, ``max_pixels`` the decoded width x height. The
    defaults accept any photo from a current phone or camera (up to ~100 MP, 64 MiB).
    Pillow's process-wide guard also applies: above ``2 * PIL.Image.MAX_IMAGE_PIXELS`` (179 MP
    unless the application changed it) an image is refused even when ``max_pixels`` is higher.
    """

    max_bytes: int = 64 * 1024 * 1024
    max_pixels: int = 100_000_000
    #: Decode JPEGs that end early (missing final bytes) instead of refusing them. Off by
    #: default: a truncated upload usually means a broken transfer, and the grey fill a
    #: lenient decoder adds is not part of the photo.
    allow_truncated: bool = False


DEFAULT_LIMITS = ImageLimits()

# Pillow's own bomb guard (``PIL.Image.MAX_IMAGE_PIXELS``: a warning at 89 MP, an error at
# twice that) is process-wide and belongs to the application: faceprint never changes it. Our
# limit is checked from the header first; Pillow's, where lower, still applies (see ImageLimits).


def load_image(source: ImageSource, limits: ImageLimits = DEFAULT_LIMITS) -> np.ndarray:
    """Return ``source`` as an ``(H, W, 3)`` ``uint8`` RGB array.

    ``source`` may be a path, encoded bytes, a binary file object or a numpy array (HxW
    greyscale, HxWx3 RGB or HxWx4 RGBA; ``uint8``, ``uint16``, or floats in [0, 1]).
    Arrays are taken to be RGB already: convert OpenCV's BGR yourself (``img[..., ::-1]``).

    Raises :class:`~faceprint.errors.InvalidImageError` or
    :class:`~faceprint.errors.ImageTooLargeError`; never anything else for bad content.
    """
    if isinstance(source, np.ndarray):
        return _from_array(source, limits)
    data = read_bytes(source, limits)
    return decode_image(data, limits)


def read_bytes(source: ImageSource, limits: ImageLimits = DEFAULT_LIMITS) -> bytes:
    """Read the encoded bytes of a path, bytes-like or file object, within ``limits``."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
    elif isinstance(source, (str, os.PathLike)):
        path = Path(source)
        try:
            size = path.stat().st_size
        except FileNotFoundError:
            raise InvalidImageError(f"no such file: {path}", details={"path": str(path)}) from None
        except OSError as exc:
            raise InvalidImageError(f"cannot read {path}: {exc.strerror}", details={"path": str(path)}) from None
        except ValueError as exc:  # e.g. an embedded NUL byte
            raise InvalidImageError(f"invalid path {path!r}: {exc}", details={"path": str(path)}) from None
        if path.is_dir():
            raise InvalidImageError(f"{path} is a directory, not an image", details={"path": str(path)})
        if size > limits.max_bytes:
            raise _too_many_bytes(size, limits)
        try:
            # Bounded read: st_size is 0 for pipes and devices (/dev/zero, /dev/fd/N), and a
            # file can grow between stat() and read().
            with path.open("rb") as fh:
                data = fh.read(limits.max_bytes + 1)
        except OSError as exc:
            raise InvalidImageError(f"cannot read {path}: {exc.strerror}", details={"path": str(path)}) from None
    elif hasattr(source, "read"):
        try:
            data = source.read(limits.max_bytes + 1)
        except UnicodeDecodeError:  # a text-mode file holding binary data
            raise InvalidImageError("file object must be opened in binary mode") from None
        except (OSError, ValueError) as exc:  # closed file, broken stream
            raise InvalidImageError(f"cannot read file object: {exc}") from None
        if isinstance(data, memoryview):
            data = data.tobytes()
        if not isinstance(data, (bytes, bytearray)):
            raise InvalidImageError("file object must be opened in binary mode")
        data = bytes(data)
    else:
        raise InvalidImageError(f"unsupported image source type: {type(source).__name__}")
    if len(data) > limits.max_bytes:
        raise _too_many_bytes(len(data), limits)
    if not data:
        raise InvalidImageError("empty input: 0 bytes", details={"reason": "empty"})
    return data


def decode_image(data: bytes, limits: ImageLimits = DEFAULT_LIMITS) -> np.ndarray:
    """Decode encoded image bytes to RGB ``uint8``, honouring EXIF orientation."""
    _check_bytes(data, limits)
    with _typed_errors(data, limits):
        img = _open_checked(data, limits)
        fmt = img.format
        try:
            img.load()
        except OSError as exc:
            if "truncated" in str(exc).lower() and img.format in {"JPEG", "MPO"}:
                if not limits.allow_truncated:
                    raise InvalidImageError(
                        "truncated image: the file ends before the picture does",
                        details={"reason": "truncated", "format": img.format},
                    ) from None
                return _decode_truncated_jpeg(data, img)
            raise
        oriented = _apply_exif_orientation(img)
        return _to_rgb_array(oriented, fmt)


def image_dimensions(data: bytes, limits: ImageLimits = DEFAULT_LIMITS) -> tuple[int, int]:
    """``(width, height)`` of encoded image bytes, from the header: no pixel is decoded (except
    an ICO's frames, which Pillow decodes to open the file; they are checked against
    ``max_pixels`` first). The header is checked as :func:`decode_image` checks it, with the
    same errors; the pixel data is not, so a truncated or corrupt body is found only when
    decoding. What ``decode_image`` decodes has ``width * height`` pixels (EXIF orientation
    may swap the two sides, never their product). The HTTP service sums these to bound a
    request's work before decoding any of its images."""
    _check_bytes(data, limits)
    with _typed_errors(data, limits), _open_checked(data, limits) as img:
        return img.size


def _check_bytes(data: bytes, limits: ImageLimits) -> None:
    if not data:
        raise InvalidImageError("empty input: 0 bytes", details={"reason": "empty"})
    if len(data) > limits.max_bytes:
        raise _too_many_bytes(len(data), limits)


def _open_checked(data: bytes, limits: ImageLimits) -> Image.Image:
    """The image opened lazily (header read), of a supported format and within the pixel limit."""
    if data[:4] == _ICO_MAGIC:
        _check_ico_sizes(data, limits)  # Pillow decodes ICO frames inside open()
    img = Image.open(io.BytesIO(data))
    _check_format_and_size(img, limits)
    return img


@contextlib.contextmanager
def _typed_errors(data: bytes, limits: ImageLimits) -> Iterator[None]:
    """Whatever Pillow and its codecs raise on bad content, as InvalidImageError or ImageTooLargeError."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Pillow warns on odd EXIF/metadata; not our concern
            yield
    except (InvalidImageError, ImageTooLargeError):
        raise
    except UnidentifiedImageError:
        raise InvalidImageError(
            "not a recognised image format", details={"reason": "unrecognised_format"}
        ) from None
    except Image.DecompressionBombError as exc:
        raise _pillow_refused(exc, limits) from None
    except (OSError, ValueError, SyntaxError, EOFError, IndexError, TypeError, struct_error) as exc:
        if isinstance(exc, OSError) and "truncated" in str(exc).lower() and data[:3] == b"\xff\xd8\xff":
            # A JPEG that ends inside its header segments ("Truncated File Read" from open()).
            raise InvalidImageError(
                "truncated image: the file ends before the picture does",
                details={"reason": "truncated", "format": "JPEG"},
            ) from None
        raise InvalidImageError(
            f"corrupt or unreadable image: {exc}", details={"reason": "corrupt"}
        ) from None
    except MemoryError:
        raise ImageTooLargeError("not enough memory to decode this image") from None


def _pillow_refused(exc: Exception, limits: ImageLimits) -> ImageTooLargeError:
    """Pillow's own guard refused the header (inside ``Image.open``, before ours could look)."""
    found = re.search(r"\((\d+) pixels\)", str(exc))
    pixels = int(found.group(1)) if found else None
    if pixels is not None and pixels > limits.max_pixels:
        message = f"image is {pixels:,} pixels; the limit is {limits.max_pixels:,}"
    else:  # within our limit but above the application's Pillow limit
        message = f"{exc} (Pillow's process-wide PIL.Image.MAX_IMAGE_PIXELS; faceprint's limit is {limits.max_pixels:,})"
    return ImageTooLargeError(
        message, details={"pixels": pixels, "max_pixels": limits.max_pixels, "pillow_max_pixels": Image.MAX_IMAGE_PIXELS}
    )


def _check_format_and_size(img: Image.Image, limits: ImageLimits) -> None:
    if img.format not in SUPPORTED_FORMATS:
        raise InvalidImageError(
            f"unsupported image format {img.format}",
            details={"reason": "unsupported_format", "format": img.format},
        )
    w, h = img.size
    if w <= 0 or h <= 0:
        raise InvalidImageError(f"image has no pixels ({w}x{h})", details={"reason": "empty"})
    if w * h > limits.max_pixels:
        raise ImageTooLargeError(
            f"image is {w}x{h} = {w * h:,} pixels; the limit is {limits.max_pixels:,}",
            details={"width": w, "height": h, "pixels": w * h, "max_pixels": limits.max_pixels},
        )


_ICO_MAGIC = b"\x00\x00\x01\x00"
_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _check_ico_sizes(data: bytes, limits: ImageLimits) -> None:
    """Refuse an ICO whose embedded PNG/BMP frames exceed the pixel limit.

    The ICO directory only holds sizes up to 256x256; the real size is in each embedded frame's
    own header, and Pillow decodes the largest frame while opening the file (only its own, process-wide
    bomb check applies there), so check the frames' headers first.
    """
    count = struct.unpack_from("<H", data, 4)[0] if len(data) >= 6 else 0
    for i in range(count):
        entry = 6 + 16 * i
        if entry + 16 > len(data):
            return  # Pillow will call it corrupt
        offset = struct.unpack_from("<I", data, entry + 12)[0]
        frame = data[offset : offset + 24]
        if frame[:8] == _PNG_MAGIC and len(frame) >= 24:
            w, h = struct.unpack_from(">II", frame, 16)
        elif len(frame) >= 12:
            if struct.unpack_from("<I", frame, 0)[0] == 12:  # BITMAPCOREHEADER
                w, h = struct.unpack_from("<HH", frame, 4)
            else:
                w, h = struct.unpack_from("<ii", frame, 4)
            w, h = abs(w), abs(h) // 2  # the height covers the XOR image and the AND mask
        else:
            continue
        if w * h > limits.max_pixels:
            raise ImageTooLargeError(
                f"icon frame is {w}x{h} = {w * h:,} pixels; the limit is {limits.max_pixels:,}",
                details={"width": w, "height": h, "pixels": w * h, "max_pixels": limits.max_pixels},
            )


def _apply_exif_orientation(img: Image.Image) -> Image.Image:
    try:
        return ImageOps.exif_transpose(img) or img
    except Exception:  # a broken EXIF block must not make a good picture unreadable
        return img


def _to_rgb_array(img: Image.Image, fmt: str | None = None) -> np.ndarray:
    mode = img.mode
    if mode in {"I;16", "I;16B", "I;16L", "I;16N", "I"}:
        # 16-bit (or 32-bit int) greyscale: scale the actual range to 8 bits. Pillow's PPM/PGM
        # decoder always rescales samples to 0..65535 in mode "I", so a dark 16-bit PGM must
        # not be mistaken for 8-bit data.
        arr = np.asarray(img)  # int32 ("I") or uint16: no widened copy of the whole image
        top = 65535 if mode != "I" or fmt == "PPM" or arr.max() > 255 else 255
        return _grey_to_rgb(_scaled_to_uint8(arr, 255.0 / top))
    if mode == "F":
        arr = np.asarray(img, dtype=np.float32)
        return _from_array(arr, DEFAULT_LIMITS)
    if mode in {"RGBA", "LA", "PA"} or (mode in {"P", "L", "RGB"} and "transparency" in img.info):
        # Composite transparent areas onto white rather than exposing whatever colour
        # the encoder left under alpha = 0: pasted through its alpha onto a white RGB image,
        # the same pixels as alpha_composite onto white without its two more RGBA images.
        rgba = img if mode == "RGBA" else img.convert("RGBA")
        img = Image.new("RGB", rgba.size, (255, 255, 255))
        img.paste(rgba, mask=rgba.getchannel("A"))
    rgb = img if img.mode == "RGB" else img.convert("RGB")  # (convert would copy an RGB image)
    return np.ascontiguousarray(np.asarray(rgb, dtype=np.uint8))


#: Rows of a band scaled at once: the float temporaries stay about 8 MiB whatever the image.
_SCALE_BAND_PIXELS = 1 << 20


def _scaled_to_uint8(arr: np.ndarray, scale: float) -> np.ndarray:
    """``round(clip(arr * scale, 0, 255))`` as ``uint8``, a band of rows at a time: a float64
    copy of a whole 40 MP image would be 320 MB per temporary (issue 13: never more memory than
    the limits imply)."""
    out = np.empty(arr.shape, np.uint8)
    rows = max(1, _SCALE_BAND_PIXELS // max(1, arr.shape[1]))
    for start in range(0, arr.shape[0], rows):
        band = arr[start : start + rows].astype(np.float64)
        band *= scale
        np.clip(band, 0, 255, out=band)
        np.rint(band, out=band)
        out[start : start + rows] = band
    return out


def _grey_to_rgb(grey: np.ndarray) -> np.ndarray:
    rgb = np.empty((*grey.shape, 3), np.uint8)
    rgb[...] = grey[:, :, None]
    return rgb


def _decode_truncated_jpeg(data: bytes, header: Image.Image) -> np.ndarray:
    # Close the stream with an EOI marker and decode again: libjpeg fills the missing part and
    # finishes, per call (Pillow's LOAD_TRUNCATED_IMAGES switch is process-global and would
    # leak into other threads' strict decodes). OpenCV is no help here: the installed 4.14's
    # imdecode returns None for any JPEG without an EOI marker.
    try:
        img = Image.open(io.BytesIO(data + b"\xff\xd9"))
        img.load()
    except Exception:
        img = None
    if img is None or img.size != header.size:
        raise InvalidImageError(
            "truncated image could not be decoded", details={"reason": "truncated", "format": header.format}
        )
    fmt = img.format
    return _to_rgb_array(_apply_exif_orientation(img), fmt)


def _from_array(arr: np.ndarray, limits: ImageLimits) -> np.ndarray:
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] not in (3, 4)):
        raise InvalidImageError(
            f"array of shape {arr.shape} is not an image (expected HxW, HxWx3 or HxWx4)",
            details={"reason": "bad_shape", "shape": list(arr.shape)},
        )
    h, w = arr.shape[:2]
    if h == 0 or w == 0:
        raise InvalidImageError(f"image has no pixels ({w}x{h})", details={"reason": "empty"})
    if h * w > limits.max_pixels:
        raise ImageTooLargeError(
            f"image is {w}x{h} = {w * h:,} pixels; the limit is {limits.max_pixels:,}",
            details={"width": w, "height": h, "pixels": w * h, "max_pixels": limits.max_pixels},
        )
    if arr.dtype == np.uint8:
        out = arr
    elif arr.dtype == np.uint16:
        out = (arr.astype(np.float32) * (255.0 / 65535.0)).round().astype(np.uint8)
    elif arr.dtype == np.bool_:
        out = arr.astype(np.uint8) * 255
    elif np.issubdtype(arr.dtype, np.floating):
        if not np.isfinite(arr).all():
            raise InvalidImageError("float image contains NaN or infinity", details={"reason": "bad_values"})
        lo, hi = float(arr.min()), float(arr.max())
        if lo < 0.0 or hi > 1.0:
            raise InvalidImageError(
                f"float images must hold values in [0, 1]; got [{lo:.3g}, {hi:.3g}]",
                details={"reason": "bad_values"},
            )
        out = _scaled_to_uint8(arr, 255.0)
    else:
        raise InvalidImageError(f"unsupported array dtype {arr.dtype}", details={"reason": "bad_dtype"})
    if out.ndim == 2:
        out = np.repeat(out[:, :, None], 3, axis=2)
    elif out.shape[2] == 4:
        out = out[:, :, :3]
    return np.ascontiguousarray(out)


def _too_many_bytes(size: int, limits: ImageLimits) -> ImageTooLargeError:
    return ImageTooLargeError(
        f"input is {size:,} bytes; the limit is {limits.max_bytes:,}",
        details={"bytes": size, "max_bytes": limits.max_bytes},
    )


def describe_source(source: ImageSource) -> str:
    """A short human label for a source, used in results and messages."""
    if isinstance(source, (str, os.PathLike)):
        return os.fspath(source)
    if isinstance(source, np.ndarray):
        return f"<array {'x'.join(map(str, source.shape))}>"
    if isinstance(source, (bytes, bytearray, memoryview)):
        return f"<{len(source)} bytes>"
    return getattr(source, "name", None) or f"<{type(source).__name__}>"


#: File name endings treated as images when a folder is searched (content is still sniffed).
IMAGE_SUFFIXES = frozenset(
    {".jpg", ".jpeg", ".jpe", ".png", ".webp", ".bmp", ".dib", ".pgm", ".ppm", ".pnm", ".pbm", ".tif", ".tiff", ".gif", ".ico"}
)


def find_images(paths: Iterable[str | os.PathLike[str]]) -> list[str]:
    """Files as given; folders become the image files below them (recursive, sorted)."""
    found: list[str] = []
    for p in map(Path, paths):
        if p.is_dir():
            found.extend(str(f) for f in sorted(p.rglob("*")) if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES)
        else:
            found.append(str(p))
    return found
