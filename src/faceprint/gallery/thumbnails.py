"""Pictures of faces: the JPEG kept with a template or photo face when asked, and, when none
was kept, the face cut from its photo at display time, or a neutral placeholder.

A face picture is raw biometric data, so a gallery keeps none unless asked
(``Gallery(..., thumbnails=True)``, ``--keep-thumbnails``). Whatever must show a face without
one (clustering's contact sheets) re-reads the photo from its stored path, checks that it is
still the same image (its SHA-256) and crops the face from its box; a photo that is gone or
changed gives the placeholder.
"""

from __future__ import annotations

import io
import logging

import numpy as np
import numpy.typing as npt

from faceprint.batch import image_sha256
from faceprint.errors import FaceprintError
from faceprint.imageio import DEFAULT_LIMITS, ImageLimits, decode_image, read_bytes
from faceprint.types import Box

logger = logging.getLogger(__name__)

RGB = npt.NDArray[np.uint8]

#: JPEG quality of stored thumbnails (a 150 px chip: ~5-8 kB).
THUMBNAIL_QUALITY = 85
#: Room kept around a face's box when it is cut from its photo, as a fraction of the box's side.
CROP_MARGIN = 0.25
#: The placeholder's colours: a light grey tile with a darker head-and-shoulders outline.
PLACEHOLDER_BACKGROUND = (232, 235, 240)
PLACEHOLDER_FIGURE = (195, 201, 211)


def thumbnail_jpeg(chip: RGB) -> bytes:
    """An RGB face chip (H x W x 3, uint8) encoded as the JPEG stored beside its template."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(chip).save(buf, format="JPEG", quality=THUMBNAIL_QUALITY)
    return buf.getvalue()


def read_photo(path: str, sha256: str | None, limits: ImageLimits = DEFAULT_LIMITS) -> RGB | None:
    """The photo a face was found in, read again from ``path`` (as RGB, EXIF-oriented like
    the detector saw it); ``None`` when it is gone, unreadable, or no longer the image whose
    SHA-256 is ``sha256`` (a stored box would then point at something else)."""
    try:
        data = read_bytes(path, limits)
        if sha256 and image_sha256(data) != sha256:
            logger.debug("photo %s changed since its faces were found: not cropped", path)
            return None
        rgb: RGB = decode_image(data, limits)
    except FaceprintError as exc:
        logger.debug("photo %s cannot be read for a face picture: %s", path, exc.message)
        return None
    return rgb


def crop_face(rgb: RGB, box: Box, size: int) -> RGB:
    """A ``size`` x ``size`` picture of the face in ``box``: a square around it with
    :data:`CROP_MARGIN` of room, padded with the placeholder grey where it leaves the photo."""
    from PIL import Image

    side = max(box.width, box.height, 1.0) * (1 + 2 * CROP_MARGIN)
    cx, cy = (box.x1 + box.x2) / 2, (box.y1 + box.y2) / 2
    left, top = round(cx - side / 2), round(cy - side / 2)
    n = max(1, round(side))
    square = Image.new("RGB", (n, n), PLACEHOLDER_BACKGROUND)
    photo = Image.fromarray(rgb)
    # The part of the square inside the photo, pasted at its place in the square.
    x1, y1 = max(0, left), max(0, top)
    x2, y2 = min(photo.width, left + n), min(photo.height, top + n)
    if x2 > x1 and y2 > y1:
        square.paste(photo.crop((x1, y1, x2, y2)), (x1 - left, y1 - top))
    out: RGB = np.asarray(square.resize((size, size), Image.Resampling.BILINEAR), dtype=np.uint8)
    return out


def placeholder(size: int) -> RGB:
    """A neutral ``size`` x ``size`` tile (a grey head-and-shoulders outline) shown where a
    face has no picture: none was kept and its photo is gone or changed."""
    from PIL import Image, ImageDraw

    img = Image.new("RGB", (size, size), PLACEHOLDER_BACKGROUND)
    draw = ImageDraw.Draw(img)
    head, cx, cy = size * 0.2, size / 2, size * 0.4
    draw.ellipse((cx - head, cy - head, cx + head, cy + head), fill=PLACEHOLDER_FIGURE)
    draw.ellipse((size * 0.18, size * 0.68, size * 0.82, size * 1.3), fill=PLACEHOLDER_FIGURE)
    out: RGB = np.asarray(img, dtype=np.uint8)
    return out


__all__ = ["CROP_MARGIN", "THUMBNAIL_QUALITY", "crop_face", "placeholder", "read_photo", "thumbnail_jpeg"]
