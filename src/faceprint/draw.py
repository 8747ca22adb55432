"""Pictures of results, for people who would rather look than read: a photo with its faces'
boxes and labels (``faceprint detect|identify --draw``), and face crops as JPEG files
(``detect --crops``).

Labels never cover one another: each goes below its box (or inside its top edge, or above it)
wherever it overlaps no label placed before it, else it is stacked below the nearest free
place, so that close faces in a group photo keep readable names.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from faceprint.types import Box

logger = logging.getLogger(__name__)

#: Box colours: a face found (detect), a known person (identify), an unknown face (identify).
FOUND = (0, 200, 255)
KNOWN = (40, 220, 40)
UNKNOWN = (255, 160, 0)

Rect = tuple[float, float, float, float]  # x1, y1, x2, y2


@dataclass(frozen=True, slots=True)
class Mark:
    """One face to draw: its box, the text beside it and the colour of both."""

    box: Box
    label: str
    colour: tuple[int, int, int] = FOUND


def _overlaps(a: Rect, b: Rect) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def place_labels(boxes: Sequence[Box], sizes: Sequence[tuple[float, float]], width: int,
                 height: int) -> list[Rect]:
    """Where each label goes: a rectangle of its ``(width, height)`` size inside the image,
    overlapping no other label. Tried in order: below the box, inside its top edge, above it;
    when all three overlap a label already placed, it moves down below that label (stacking)
    until it is free. Labels are placed largest box first, so big faces keep the nearest place."""
    order = sorted(range(len(boxes)), key=lambda i: -boxes[i].area)
    placed: dict[int, Rect] = {}

    def fit(x: float, y: float, w: float, h: float) -> Rect:
        x = min(max(0.0, x), max(0.0, width - w))
        y = min(max(0.0, y), max(0.0, height - h))
        return (x, y, x + w, y + h)

    for i in order:
        box, (w, h) = boxes[i], sizes[i]
        candidates = [fit(box.x1, box.y2 + 1, w, h), fit(box.x1 + 2, box.y1 + 2, w, h), fit(box.x1, box.y1 - h - 1, w, h)]
        rect = next((c for c in candidates if not any(_overlaps(c, p) for p in placed.values())), None)
        if rect is None:
            rect = candidates[0]
            for _ in range(len(placed) + 1):  # each step passes one label, so this ends
                hit = [p for p in placed.values() if _overlaps(rect, p)]
                if not hit:
                    break
                below = max(p[3] for p in hit) + 1
                rect = (rect[0], below, rect[2], below + h)  # may leave the image: free beats visible
        placed[i] = rect
    return [placed[i] for i in range(len(boxes))]


def draw_faces(rgb: np.ndarray, marks: Sequence[Mark]) -> Image.Image:
    """A copy of the RGB image ``rgb`` with each mark's box and label drawn on it (Pillow's
    default font, sized to the image)."""
    image = Image.fromarray(np.ascontiguousarray(rgb[..., :3]).astype(np.uint8), "RGB")
    draw = ImageDraw.Draw(image)
    side = min(image.size)
    font = ImageFont.load_default(size=max(11, round(side / 45)))
    line = max(2, round(side / 300))
    pad = 2
    sizes = []
    for m in marks:
        left, top, right, bottom = draw.textbbox((0, 0), m.label, font=font)
        sizes.append((right - left + 2 * pad, bottom - top + 2 * pad))
    rects = place_labels([m.box for m in marks], sizes, image.width, image.height)
    for m in marks:
        draw.rectangle([m.box.x1, m.box.y1, m.box.x2, m.box.y2], outline=m.colour, width=line)
    for m, rect in zip(marks, rects):  # labels last: no box line crosses a label
        draw.rectangle(rect, fill=m.colour)
        left, top, _, _ = draw.textbbox((0, 0), m.label, font=font)
        draw.text((rect[0] + pad - left, rect[1] + pad - top), m.label, fill=(0, 0, 0), font=font)
    return image


def save_jpeg(image: Image.Image | np.ndarray, path: str | os.PathLike[str], quality: int = 92) -> None:
    """Write ``image`` (a Pillow image or an RGB array) as a JPEG file, creating its folder."""
    picture = image if isinstance(image, Image.Image) else Image.fromarray(np.ascontiguousarray(image).astype(np.uint8), "RGB")
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    picture.convert("RGB").save(path, "JPEG", quality=quality)
    logger.debug("wrote %s (%dx%d)", path, picture.width, picture.height)


def output_path(target: str | os.PathLike[str], source: str, many: bool, used: dict[str, int],
                suffix: str = "") -> str:
    """Where the picture of image ``source`` goes: ``target`` itself for one image (unless it is
    a folder), else ``target/<stem><suffix>.jpg``; a stem already ``used`` in this run gets
    ``-2``, ``-3``... so that two ``photo.jpg`` of different folders keep both pictures."""
    if not many and not os.path.isdir(target):
        return os.fspath(target)
    stem = os.path.splitext(os.path.basename(source))[0] or "image"
    used[stem] = used.get(stem, 0) + 1
    unique = stem if used[stem] == 1 else f"{stem}-{used[stem]}"
    return os.path.join(os.fspath(target), f"{unique}{suffix}.jpg")
