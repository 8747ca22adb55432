"""Batch processing: worker processes give the one-at-a-time results, in order, with bad files
reported in place, bounded look-ahead, a streamed CLI JSON document and a clean Ctrl-C."""

from __future__ import annotations

import io
import json
import multiprocessing
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from faceprint import Analyzer
from faceprint.batch import analyze_many
from faceprint.errors import InvalidArgumentError
from faceprint.settings import usable_cores
from tests.conftest import default_dim, default_model_id, face_image, shared

#: The shipped faces that have one face each (tests/data/faces/README.md).
ONE_FACE = ("collins.jpg", "hopper.jpg", "collins_2.jpg", "hopper_2.jpg")


@pytest.fixture(scope="module")
def handful(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """Shipped images: two faces, one face, no face, a WebP named .jpg; 7 faces in all."""
    webp = tmp_path_factory.mktemp("handful") / "hopper_webp.jpg"
    Image.open(face_image("hopper.jpg")).save(webp, format="WEBP")
    names = ("two_people.jpg", "collins.jpg", "hopper_2.jpg", "no_face.png", "collins_2.jpg")
    return [*(str(face_image(n)) for n in names), str(webp), str(face_image("hopper.jpg"))]


def _shared_handful() -> list[str]:
    """Real photos from ../shared: 8 faces, a couple, no face, small LFW crops, a WebP named .jpg."""
    deepface = shared("deepface_tests", "images")
    compreface = shared("compreface_samples", "images")
    lfw = shared("lfw_dev", "images")
    return [
        str(compreface / "016_8.jpg"),  # 8 faces
        str(lfw / "Tony_Blair" / "Tony_Blair_0001.jpg"),
        str(deepface / "couple.jpg"),
        str(compreface / "017_0.jpg"),  # no face
        str(lfw / "Hugo_Chavez" / "Hugo_Chavez_0001.jpg"),
        str(deepface / "img47.jpg"),  # WebP content
        str(lfw / "Tony_Blair" / "Tony_Blair_0002.jpg"),
    ]


@pytest.fixture(scope="module")
def small_batches():
    return Analyzer(batch_size=3)  # several embedding batches, one split across images


def _assert_embed_many_equals_one_at_a_time(analyzer: Analyzer, paths: list[str], jobs: int) -> int:
    """Checks embed_many against embed, image by image; returns the number of faces found."""
    results = list(analyzer.embed_many(paths, jobs=jobs))
    assert [r.source for r in results] == paths
    for r in results:
        assert r.error is None
        expected = analyzer.embed(r.source)
        assert len(r.faces) == len(expected), r.source
        for got, want in zip(r.faces, expected):
            assert got.face.box == want.face.box and got.face.score == pytest.approx(want.face.score)
            np.testing.assert_allclose(got.face.landmarks.points, want.face.landmarks.points)
            np.testing.assert_allclose(got.embedding, want.embedding, atol=1e-5)
            assert got.model == want.model
    return sum(len(r.faces) for r in results)


@pytest.mark.parametrize("jobs", [1, 2])
def test_embed_many_equals_one_at_a_time(small_batches, handful, jobs):
    assert _assert_embed_many_equals_one_at_a_time(small_batches, handful, jobs) == 7


@pytest.mark.shared_data
def test_embed_many_equals_one_at_a_time_on_real_photos(small_batches):
    assert _assert_embed_many_equals_one_at_a_time(small_batches, _shared_handful(), jobs=2) >= 12


def test_detect_many_with_workers_equals_detect(small_batches, handful):
    paths = handful
    results = list(small_batches.detect_many(paths, jobs=2))
    assert [r.source for r in results] == paths
    for r in results:
        expected = small_batches.detect(r.source)
        assert [f.box for f in r.faces] == [f.box for f in expected]
        assert r.image_size is not None
    assert [len(r.faces) for r in results] == [2, 1, 1, 0, 1, 1, 1]


def test_bad_inputs_are_reported_in_place_and_the_rest_go_on(tmp_path, small_batches, handful):
    good = handful[:3]
    (tmp_path / "text.jpg").write_text("not a picture")
    (tmp_path / "empty.png").write_bytes(b"")
    jpeg = Path(good[1]).read_bytes()
    (tmp_path / "truncated.jpg").write_bytes(jpeg[: len(jpeg) // 2])
    array = np.asarray(small_batches.load(good[1]))
    inputs = [
        str(tmp_path / "text.jpg"),
        good[0],
        str(tmp_path / "missing.jpg"),
        str(tmp_path / "empty.png"),
        jpeg,  # bytes
        good[1],
        io.BytesIO(b"GIF89a broken"),  # a file object
        str(tmp_path / "truncated.jpg"),
        array,  # a decoded array
        good[2],
        tmp_path,  # a folder
    ]
    bad = {0: "invalid_image", 2: "invalid_image", 3: "invalid_image", 6: "invalid_image", 7: "invalid_image",
           10: "invalid_image"}
    results = list(small_batches.embed_many(inputs, jobs=2))
    assert len(results) == len(inputs)
    for i, r in enumerate(results):
        if i in bad:
            assert r.error is not None and r.error.code == bad[i] and r.error.message, (i, r)
            assert r.faces == ()
        else:
            assert r.error is None and len(r.faces) >= 1, (i, r)
    assert [r.source for r in results][:4] == [str(inputs[0]), good[0], str(inputs[2]), str(inputs[3])]
    assert results[4].source == f"<{len(jpeg)} bytes>" and results[8].source.startswith("<array ")
    # the same picture as a path, as bytes and as an array gives the same face
    np.testing.assert_allclose(results[4].faces[0].embedding, results[5].faces[0].embedding, atol=1e-5)
    np.testing.assert_allclose(results[8].faces[0].embedding, results[5].faces[0].embedding, atol=1e-5)


def test_input_is_read_only_a_bounded_way_ahead_and_closing_stops_the_workers():
    paths = [str(face_image(ONE_FACE[i % len(ONE_FACE)])) for i in range(40)]
    pulled = 0

    def source():
        nonlocal pulled
        for p in paths:
            pulled += 1
            yield p

    analyzer = Analyzer(batch_size=4)
    results = analyze_many(analyzer, source(), embed=True, jobs=2, in_flight=6)
    for taken, r in enumerate(results, start=1):
        assert r.error is None
        assert pulled <= taken + 6
        if taken == 10:
            break
    assert multiprocessing.active_children()  # the pool is running
    results.close()  # the caller stops early: the workers are terminated
    deadline = time.monotonic() + 10
    while multiprocessing.active_children() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not multiprocessing.active_children()


def test_workers_rebuild_models_registered_at_run_time(tmp_path):
    """ONNX files registered in the parent are registered in each worker too."""
    pytest.importorskip("onnx")
    from faceprint import models
    from faceprint.models.onnx import register_onnx_model
    from tests.unit.test_onnx_models import embedder_onnx, random_image, scrfd_onnx

    det = register_onnx_model(scrfd_onnx(tmp_path / "det.onnx"), kind="detector")
    emb = register_onnx_model(embedder_onnx(tmp_path / "emb.onnx", dim=16), kind="embedder")
    try:
        analyzer = Analyzer(detector=det.name, embedder=emb.name)
        images = [random_image(128, 96), random_image(160, 120), b"not an image", random_image(128, 96)]
        serial = list(analyzer.embed_many(images, jobs=1))
        pooled = list(analyzer.embed_many(images, jobs=2))
        assert [r.error is None for r in pooled] == [True, True, False, True]
        for a, b in zip(serial, pooled):
            assert len(a.faces) == len(b.faces)
            for fa, fb in zip(a.faces, b.faces):
                assert fb.model == emb.id and fb.face.detector == det.name and fa.face.box == fb.face.box
                np.testing.assert_allclose(fa.embedding, fb.embedding, atol=1e-5)
    finally:
        models.unregister(det.name)
        models.unregister(emb.name)


def test_jobs_is_checked():
    analyzer = Analyzer()
    for bad in (0, -1, 1.5, True):
        with pytest.raises(InvalidArgumentError):
            analyzer.embed_many([], jobs=bad)
    assert usable_cores() >= 1
    assert list(analyzer.detect_many([], jobs=2)) == []


# --- the CLI ---------------------------------------------------------------------------------
def _cli(*args: str) -> list[str]:
    exe = Path(sys.executable).with_name("faceprint")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "faceprint"]
    return [*cmd, *args]


def test_cli_embed_folder_with_jobs_streams_one_json_document(tmp_path, handful):
    folder = tmp_path / "photos"
    (folder / "sub").mkdir(parents=True)
    good = handful
    for i, p in enumerate(good):
        (folder / ("sub" if i % 2 else "") / f"{i:02d}_{Path(p).name}").write_bytes(Path(p).read_bytes())
    (folder / "sub" / "zz_broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    (folder / "notes.txt").write_text("not an image suffix: not searched")
    proc = subprocess.run(_cli("embed", str(folder), "--jobs", "2", "--json"), capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 1, proc.stderr  # one file failed; every file has its entry
    assert "Traceback" not in proc.stderr
    doc = json.loads(proc.stdout)  # exactly one document
    results = doc["results"]
    expected = sorted(str(p) for p in folder.rglob("*") if p.is_file() and p.suffix != ".txt")
    assert [r["path"] for r in results] == expected
    assert doc["model"] == default_model_id() and "interrupted" not in doc
    broken = [r for r in results if r["error"]]
    assert [r["path"] for r in broken] == [str(folder / "sub" / "zz_broken.png")]
    assert broken[0]["error"]["code"] == "invalid_image"
    assert sum(len(r["faces"]) for r in results) == 7
    for r in results:
        for face in r["faces"]:
            assert len(face["embedding"]) == default_dim()


def _children(pid: int) -> list[int]:
    kids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                kids.append(int(entry))
    return kids


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


_WORKER_SIGNALS = """
import multiprocessing, os, signal, sys
from pathlib import Path
from faceprint import Analyzer
from faceprint.batch import analyze_many

def masks(pid):
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines())
    return int(fields["SigBlk"], 16), int(fields["SigIgn"], 16)

if __name__ == "__main__":
    bit = 1 << (signal.SIGINT - 1)
    results = analyze_many(Analyzer(), sys.argv[1:], embed=False, jobs=2)
    next(results)
    for child in multiprocessing.active_children():
        blocked, ignored = masks(child.pid)
        print(child.pid, bool(blocked & bit), bool(ignored & bit))
    assert masks(os.getpid())[0] & bit == 0, "SIGINT left blocked in the parent"
    results.close()
"""


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads /proc for the workers' signal masks")
def test_workers_start_with_sigint_blocked_and_then_ignore_it(tmp_path, handful):
    """The cause of a traceback on an early Ctrl-C: a worker must never be able to take SIGINT,
    not even while it starts (before its initializer runs). It is born with SIGINT blocked --
    the first one too, which the start of multiprocessing's resource tracker used to unblock
    -- and keeps it blocked and ignored. A fresh interpreter, so that nothing ran before."""
    script = tmp_path / "signals.py"
    script.write_text(_WORKER_SIGNALS)
    proc = subprocess.run([sys.executable, str(script), *handful[:4]], capture_output=True, text=True,
                          timeout=120, cwd=Path(__file__).resolve().parents[2])
    assert proc.returncode == 0, proc.stderr
    rows = [line.split() for line in proc.stdout.splitlines()]
    assert rows  # the workers started so far (not the resource tracker: not a Process)
    assert all(blocked == "True" and ignored == "True" for _, blocked, ignored in rows), proc.stdout


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads /proc to find the worker processes")
@pytest.mark.parametrize(
    "to_group,delay",
    [(True, 1.5), (True, 0.0), (False, 1.5)],
    ids=["ctrl-c-at-a-terminal", "ctrl-c-while-workers-start", "sigint-to-the-parent"],
)
def test_ctrl_c_stops_cleanly_with_exit_130(tmp_path, to_group, delay):
    image = face_image("collins.jpg")
    folder = tmp_path / "many"
    folder.mkdir()
    for i in range(5000):  # far more than get done before the interrupt
        (folder / f"{i:05d}.jpg").symlink_to(image)
    proc = subprocess.Popen(_cli("embed", str(folder), "--jobs", "2", "--json"), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        kids: list[int] = []
        while len(kids) < 2 and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.01)
            kids = _children(proc.pid)
        assert len(kids) >= 2, "the worker processes never started"
        time.sleep(delay)  # 0: while they are still starting up (importing, loading models)
        kids = _children(proc.pid)
        if to_group:  # what a terminal does: every process in the foreground group gets it
            os.killpg(proc.pid, signal.SIGINT)
        else:
            proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr and "interrupted" in stderr
    doc = json.loads(stdout)  # the partial output is still one JSON document
    assert doc["interrupted"] is True and len(doc["results"]) < 5000
    deadline = time.monotonic() + 10
    while any(_alive(k) for k in kids) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not [k for k in kids if _alive(k)], "worker processes left behind"
