"""faceprint demo: detect faces and verify two photos with the command-line tool.

With no arguments it uses NASA's portrait of astronaut Eileen Collins, a public-domain
photo that ships inside scikit-image (skimage/data/astronaut.png), and compares it with a
mirrored, shrunk, rotated and re-compressed copy of itself (same person, different pixels).
With arguments it runs on your photos: detect on all of them, verify the first two.
"""

from __future__ import annotations

import shlex
import subprocess
import sys
import tempfile
from importlib.resources import files
from pathlib import Path


def sample_photos(workdir: Path) -> list[Path]:
    from PIL import Image, ImageOps

    original = Path(str(files("skimage") / "data" / "astronaut.png"))
    if not original.is_file():
        sys.exit("scikit-image's sample photo is missing; install faceprint[demo] or pass your own photos")
    copy = workdir / "astronaut.png"
    copy.write_bytes(original.read_bytes())
    img = Image.open(original).convert("RGB")
    w, h = img.size
    varied = ImageOps.mirror(img).resize((int(w * 0.7), int(h * 0.7))).rotate(8, expand=True, fillcolor=(128, 128, 128))
    varied_path = workdir / "astronaut_rotated.jpg"  # mirrored too; a short name fits 80 columns
    varied.save(varied_path, quality=80)
    return [copy, varied_path]


def run(*args: str) -> None:
    cmd = [str(Path(sys.executable).with_name("faceprint")), *args]
    print(f"\n$ faceprint {shlex.join(args)}", flush=True)
    subprocess.run(cmd, check=False)


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="faceprint-demo-") as tmp:
        photos = [Path(p) for p in sys.argv[1:]] or sample_photos(Path(tmp))
        run("models")
        run("detect", *map(str, photos))
        if len(photos) >= 2:
            run("verify", str(photos[0]), str(photos[1]))
            run("verify", "--far", "1e-4", "--json", str(photos[0]), str(photos[1]))


if __name__ == "__main__":
    main()
