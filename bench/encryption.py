"""What encryption at rest costs (faceprint.gallery.crypto): the same work on a plain and on an
encrypted SQLite gallery, with faces from real photos (lfw_dev).

1. ``store``: the part encryption changes, without the models: ``--faces`` templates embedded
   once from lfw_dev photos (identities in name order, up to 4 photos each, thumbnails kept),
   then stored with ``add_face`` (templates/s), the gallery opened again and its index built
   (seconds), searched (queries/s; the index is plaintext in memory: the same either way),
   and ``--forget`` subjects forgotten (ms each: the encrypted store also destroys a data key).
2. ``scale``: open + index build of a gallery of ``--scale`` templates (the real embeddings
   repeated with small noise, written in one transaction): what a service restart costs.
3. ``end_to_end``: ``Gallery.enroll`` and ``Gallery.identify`` on ``--images`` photo files,
   models included (what a user sees; the models dominate).

    python bench/encryption.py [--faces 400] [--scale 20000] [--images 40] > bench/results_encryption.json

Needs ../shared/data. The default models (the faceplugin pack when installed, else dlib's).
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from faceprint import Analyzer, settings
from faceprint.gallery import Gallery, MasterKey, thumbnail_jpeg
from faceprint.gallery.storage import NewFace
from machine import machine

ROOT = Path(__file__).resolve().parents[1]
DATA = settings.shared_data(ROOT)
KINDS = ("plain", "encrypted")


def lfw_photos(limit: int) -> list[tuple[str, Path]]:
    """(identity, photo) pairs of lfw_dev, identities with 2+ photos in name order, 4 photos each."""
    by_person: dict[str, list[Path]] = {}
    with open(DATA / "lfw_dev" / "identities.csv", newline="") as f:
        for row in csv.DictReader(f):
            by_person.setdefault(row["identity"], []).append(DATA / "lfw_dev" / row["path"])
    pairs = [(person, p) for person in sorted(by_person) if len(by_person[person]) > 1
             for p in sorted(by_person[person])[:4]]
    return pairs[:limit]


def embed(analyzer: Analyzer, pairs: list[tuple[str, Path]]) -> list[tuple[str, NewFace]]:
    """One template per photo (its largest face) with a thumbnail, as enrolment would store it."""
    out: list[tuple[str, NewFace]] = []
    for i, (person, path) in enumerate(pairs):
        rgb = analyzer.load(path)
        faces = analyzer.embed_faces(rgb, analyzer.detect_array(rgb))
        if faces:
            chip = analyzer.aligned_chip(rgb, faces[0].face)
            out.append((person, NewFace(faces[0].embedding, f"{path.name}#{i}", faces[0].face.box,
                                        float(faces[0].face.score), 0.9, str(path), thumbnail_jpeg(chip))))
        print(f"embedding {i + 1}/{len(pairs)}", file=sys.stderr, end="\r")
    print(file=sys.stderr)
    return out


def open_gallery(path: Path, kind: str, key: MasterKey, analyzer: Analyzer, *, new: bool = False) -> Gallery:
    if kind == "encrypted":
        return Gallery.open(path, analyzer=analyzer, master_key=key, encrypt=new)
    return Gallery.open(path, analyzer=analyzer)


def timed(fn: Callable[..., object], *args: Any) -> float:
    """Seconds ``fn(*args)`` takes (called at once: no closure over a loop variable)."""
    start = time.perf_counter()
    fn(*args)
    return time.perf_counter() - start


def add_all(g: Gallery, faces: list[tuple[str, NewFace]]) -> None:
    for person, face in faces:
        g.store.add_face(person, None, face)


def search_times(g: Gallery, queries: np.ndarray, times: int) -> None:
    for _ in range(times):
        g.search(queries)


def read_thumbnail(g: Gallery, face_id: int, times: int) -> None:
    for _ in range(times):
        g.thumbnail(face_id)


def forget_all(g: Gallery, names: list[str]) -> None:
    for name in names:
        g.forget(name)


def enrol_and_identify(g: Gallery, pairs: list[tuple[str, Path]]) -> tuple[float, float]:
    enrol = timed(list, g.enroll_many(pairs))
    identify = timed(lambda: [g.identify(p) for _, p in pairs])
    return enrol, identify


def store_bench(faces: list[tuple[str, NewFace]], analyzer: Analyzer, key: MasterKey, forget: int,
                tmp: Path) -> dict[str, Any]:
    queries = np.stack([f.embedding for _, f in faces]).astype(np.float32)
    out: dict[str, Any] = {"templates": len(faces), "subjects": len({p for p, _ in faces})}
    for kind in KINDS:
        path = tmp / f"store-{kind}.db"
        g = open_gallery(path, kind, key, analyzer, new=True)
        g.store.pin_model(analyzer.model_id, queries.shape[1])
        # A new subject's first template (the encrypted store also makes and commits its data
        # key), then the rest (a subject that has one).
        seen: set[str] = set()
        first = [pf for pf in faces if pf[0] not in seen and not seen.add(pf[0])]  # type: ignore[func-returns-value]
        rest = [pf for pf in faces if not any(pf[1] is f for _, f in first)]
        new_subjects, existing = timed(add_all, g, first), timed(add_all, g, rest)
        g.close()
        row: dict[str, Any] = {
            "enrol_templates_per_s": round(len(faces) / (new_subjects + existing), 1),
            "new_subject_ms_each": round(1000 * new_subjects / len(first), 2),
            "existing_subject_templates_per_s": round(len(rest) / existing, 1),
        }
        g = open_gallery(path, kind, key, analyzer)
        row["open_and_index_s"] = round(timed(g.search, queries[:1]), 4)  # the first search builds the index
        row["search_queries_per_s"] = round(3 * len(queries) / timed(search_times, g, queries, 3), 1)
        first = g.store.templates(g.subjects()[0].id)[0].id
        row["thumbnail_reads_per_s"] = round(200 / timed(read_thumbnail, g, first, 200), 1)
        names = [s.name for s in g.subjects()[:forget]]
        row["forget_ms_each"] = round(1000 * timed(forget_all, g, names) / max(1, len(names)), 2)
        row["file_bytes"] = sum(p.stat().st_size for p in tmp.iterdir() if p.name.startswith(path.name))
        g.close()
        out[kind] = row
    out["overhead"] = {
        "enrol": round(out["plain"]["enrol_templates_per_s"] / out["encrypted"]["enrol_templates_per_s"], 2),
        "enrol_new_subject": round(out["encrypted"]["new_subject_ms_each"] / out["plain"]["new_subject_ms_each"], 2),
        "enrol_existing_subject": round(out["plain"]["existing_subject_templates_per_s"]
                                        / out["encrypted"]["existing_subject_templates_per_s"], 2),
        "open_and_index": round(out["encrypted"]["open_and_index_s"] / out["plain"]["open_and_index_s"], 2),
        "search": round(out["plain"]["search_queries_per_s"] / out["encrypted"]["search_queries_per_s"], 2),
    }
    return out


def scale_bench(faces: list[tuple[str, NewFace]], analyzer: Analyzer, key: MasterKey, size: int,
                tmp: Path) -> dict[str, Any]:
    rng = np.random.default_rng(0)
    base = np.stack([f.embedding for _, f in faces]).astype(np.float32)
    out: dict[str, Any] = {"templates": size, "subjects": size // 4, "note": "real embeddings repeated with noise"}
    for kind in KINDS:
        path = tmp / f"scale-{kind}.db"
        g = open_gallery(path, kind, key, analyzer, new=True)
        g.store.pin_model(analyzer.model_id, base.shape[1])
        with g.store.transaction():
            for i in range(size):
                v = base[i % len(base)] + rng.normal(scale=0.01, size=base.shape[1]).astype(np.float32)
                g.store.add_face(f"person {i // 4:06d}", None, NewFace((v / np.linalg.norm(v)).astype(np.float32), f"s{i}"))
        g.close()
        g = open_gallery(path, kind, key, analyzer)
        out[kind] = {"open_and_index_s": round(timed(g.search, base[:1]), 3)}
        g.close()
    out["overhead"] = round(out["encrypted"]["open_and_index_s"] / out["plain"]["open_and_index_s"], 2)
    return out


def end_to_end(pairs: list[tuple[str, Path]], analyzer: Analyzer, key: MasterKey, tmp: Path) -> dict[str, Any]:
    out: dict[str, Any] = {"images": len(pairs)}
    for kind in KINDS:
        g = open_gallery(tmp / f"e2e-{kind}.db", kind, key, analyzer, new=True)
        g.thumbnails = True
        seconds, found = enrol_and_identify(g, pairs)
        out[kind] = {"enrol_images_per_s": round(len(pairs) / seconds, 2), "identify_images_per_s": round(len(pairs) / found, 2),
                     "templates": g.store.count().faces}
        g.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--faces", type=int, default=400)
    parser.add_argument("--scale", type=int, default=20000)
    parser.add_argument("--images", type=int, default=40)
    parser.add_argument("--forget", type=int, default=20)
    args = parser.parse_args()
    analyzer = Analyzer()
    key = MasterKey.generate()
    pairs = lfw_photos(max(args.faces, args.images))
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        faces = embed(analyzer, pairs[: args.faces])
        doc = {
            "machine": machine(model=analyzer.model_id),
            "data": f"lfw_dev: {len(pairs[: args.faces])} photos of identities with 2+ photos (name order, 4 each)",
            "store": store_bench(faces, analyzer, key, args.forget, tmp),
            "scale": scale_bench(faces, analyzer, key, args.scale, tmp),
            "end_to_end": end_to_end(pairs[: args.images], analyzer, key, tmp),
        }
    print(json.dumps(doc, indent=2))


if __name__ == "__main__":
    main()
