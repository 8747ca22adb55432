"""Image degradations for robustness sweeps, applied to the probe side of a benchmark.

``KIND:STRENGTH`` names one degradation; ``KIND`` alone (or ``KIND:all``) the whole ladder of
that kind. Strengths may be numbers or the names ``low``, ``medium``, ``high``:

==========  ==========================================================  ==================
kind        strength                                                    low / medium / high
==========  ==========================================================  ==================
blur        Gaussian blur, sigma in pixels of the image as given        1 / 2 / 4
jpeg        re-encoded as JPEG at this quality (1-100)                  50 / 20 / 8
downscale   shrunk by this factor (area), then back to the original     2 / 4 / 8
            size (bilinear): resolution lost, geometry kept
noise       additive Gaussian noise, sigma in grey levels (0-255)       5 / 15 / 30
occlusion   this fraction of the face box, from its bottom up, painted  0.2 / 0.4 / 0.6
            mid-grey (a mask-like occluder); the box is the face found
            on the clean image, else the expected centre box
==========  ==========================================================  ==================

Every degradation is deterministic: noise is seeded from the image's name.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass

import numpy as np

from faceprint.errors import InvalidArgumentError
from faceprint.types import Box

__all__ = ["KINDS", "LADDERS", "Perturbation", "apply", "parse_perturbations"]

LADDERS: dict[str, dict[str, float]] = {
    "blur": {"low": 1.0, "medium": 2.0, "high": 4.0},
    "jpeg": {"low": 50.0, "medium": 20.0, "high": 8.0},
    "downscale": {"low": 2.0, "medium": 4.0, "high": 8.0},
    "noise": {"low": 5.0, "medium": 15.0, "high": 30.0},
    "occlusion": {"low": 0.2, "medium": 0.4, "high": 0.6},
}
KINDS = tuple(LADDERS)
_RANGES = {
    "blur": (0.0, 100.0),
    "jpeg": (1.0, 100.0),
    "downscale": (1.0, 64.0),
    "noise": (0.0, 255.0),
    "occlusion": (0.0, 1.0),
}


@dataclass(frozen=True, slots=True)
class Perturbation:
    kind: str
    strength: float
    name: str = ""  # "low" / "medium" / "high" when given by name

    @property
    def label(self) -> str:
        return f"{self.kind}:{self.strength:g}"

    def to_dict(self) -> dict:
        return {"kind": self.kind, "strength": self.strength, "label": self.label, "level": self.name or None}

    def apply(self, rgb: np.ndarray, *, face_box: Box | None = None, seed_text: str = "") -> np.ndarray:
        return apply(rgb, self, face_box=face_box, seed_text=seed_text)


def parse_perturbations(specs: list[str] | tuple[str, ...]) -> list[Perturbation]:
    """``["blur:2", "jpeg", "occlusion:high"]`` -> perturbations, in order, without repeats."""
    out: list[Perturbation] = []
    for spec in specs:
        for part in str(spec).split(","):
            part = part.strip()
            if not part:
                continue
            kind, _, strength = part.partition(":")
            kind = kind.strip().lower()
            if kind not in LADDERS:
                raise InvalidArgumentError(
                    f"unknown perturbation {kind!r}; choose from: {', '.join(KINDS)}",
                    details={"perturbation": part, "choices": list(KINDS)},
                )
            strength = strength.strip().lower()
            if strength in ("", "all"):
                items = [Perturbation(kind, v, n) for n, v in LADDERS[kind].items()]
            elif strength in LADDERS[kind]:
                items = [Perturbation(kind, LADDERS[kind][strength], strength)]
            else:
                try:
                    value = float(strength)
                except ValueError:
                    raise InvalidArgumentError(
                        f"perturbation strength {strength!r} is not a number nor one of low, medium, high",
                        details={"perturbation": part},
                    ) from None
                lo, hi = _RANGES[kind]
                if not lo <= value <= hi:
                    raise InvalidArgumentError(
                        f"{kind} strength must be between {lo:g} and {hi:g}; got {value:g}",
                        details={"perturbation": part},
                    )
                items = [Perturbation(kind, value)]
            for item in items:
                if all(item.label != o.label for o in out):
                    out.append(item)
    return out


def apply(rgb: np.ndarray, p: Perturbation, *, face_box: Box | None = None, seed_text: str = "") -> np.ndarray:
    """The degraded copy of an RGB uint8 image (the input is not modified)."""
    import cv2

    img = np.ascontiguousarray(rgb)
    h, w = img.shape[:2]
    if p.kind == "blur":
        if p.strength <= 0:
            return img.copy()
        return cv2.GaussianBlur(img, (0, 0), sigmaX=p.strength, sigmaY=p.strength, borderType=cv2.BORDER_REFLECT)
    if p.kind == "jpeg":
        from PIL import Image

        buf = io.BytesIO()
        Image.fromarray(img).save(buf, format="JPEG", quality=int(round(p.strength)))
        buf.seek(0)
        return np.asarray(Image.open(buf).convert("RGB"))
    if p.kind == "downscale":
        if p.strength <= 1:
            return img.copy()
        small = (max(1, round(w / p.strength)), max(1, round(h / p.strength)))
        low = cv2.resize(img, small, interpolation=cv2.INTER_AREA)
        return cv2.resize(low, (w, h), interpolation=cv2.INTER_LINEAR)
    if p.kind == "noise":
        seed = int.from_bytes(hashlib.sha256(seed_text.encode()).digest()[:8], "little")
        noise = np.random.default_rng(seed).normal(0.0, p.strength, img.shape)
        return np.clip(img.astype(np.float64) + noise, 0, 255).round().astype(np.uint8)
    if p.kind == "occlusion":
        box = face_box or centre_box(w, h)
        out = img.copy()
        x1, x2 = int(round(max(0, box.x1))), int(round(min(w, box.x2)))
        y2 = int(round(min(h, box.y2)))
        y1 = int(round(y2 - p.strength * box.height))
        out[max(0, y1):y2, x1:x2] = 128
        return out
    raise InvalidArgumentError(f"unknown perturbation {p.kind!r}")


def centre_box(width: int, height: int, fraction: float = 0.45, offset: tuple[float, float] = (0.0, 0.0)) -> Box:
    """A square box of side ``fraction * min(width, height)`` at the image centre, shifted by
    ``offset`` (fractions of width and height)."""
    side = fraction * min(width, height)
    cx = width / 2.0 + offset[0] * width
    cy = height / 2.0 + offset[1] * height
    return Box(cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2)
