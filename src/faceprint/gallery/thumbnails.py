"""Thumbnails kept with templates and photo faces: the aligned face chip as a small JPEG."""

from __future__ import annotations

import io

import numpy as np
import numpy.typing as npt

#: JPEG quality of stored thumbnails (a 150 px chip: ~5-8 kB).
THUMBNAIL_QUALITY = 85


def thumbnail_jpeg(chip: npt.NDArray[np.uint8]) -> bytes:
    """An RGB face chip (H x W x 3, uint8) encoded as the JPEG stored beside its template."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(chip).save(buf, format="JPEG", quality=THUMBNAIL_QUALITY)
    return buf.getvalue()


__all__ = ["THUMBNAIL_QUALITY", "thumbnail_jpeg"]
