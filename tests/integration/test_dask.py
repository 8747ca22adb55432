"""The batch pipeline on a real Dask cluster (``faceprint.dask_engine``): a
``distributed.LocalCluster`` of 2 worker processes, started once for these tests.

The local path (``jobs=1``) is the reference: same inputs, same faces, same order, same errors,
embeddings within 1e-5. A worker killed mid-run loses nothing and stores nothing twice."""

from __future__ import annotations

import collections
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from faceprint.batch import Prepared, prepare_many, using_engine
from faceprint.errors import ClusterUnavailableError, InvalidArgumentError
from faceprint.gallery import Enrolled, Gallery
from faceprint.imageio import ImageSource
from faceprint.pipeline import Analyzer
from faceprint.types import ImageAnalysis
from tests.conftest import face_image, shared

distributed = pytest.importorskip("distributed")
from faceprint.dask_engine import DaskEngine  # noqa: E402

#: A few people of lfw_dev with several photos each (the enrolment tests' folder tree).
PEOPLE = ("Adam_Herbert", "Adrien_Brody", "Al_Sharpton", "Alan_Ball", "Alberto_Fujimori", "Alejandro_Atchugarry")


# Module scope: started once (only these tests use it), and stopped before the other modules
# run, which check that no worker process of theirs is left (multiprocessing.active_children).
@pytest.fixture(scope="module")
def cluster() -> Iterator[distributed.LocalCluster]:
    local = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                     dashboard_address=None)
    try:
        yield local
    finally:
        local.close()


@pytest.fixture(scope="module")
def engine(cluster: distributed.LocalCluster) -> Iterator[DaskEngine]:
    # Small chunks, so that even these few images make several tasks to put back in order.
    with DaskEngine.connect(cluster.scheduler_address) as connected:
        connected.chunk_size = 3
        yield connected


def lfw_people(n_people: int = len(PEOPLE), per_person: int = 4) -> dict[str, list[Path]]:
    root = shared("lfw_dev", "images")
    return {p: sorted((root / p).glob("*.jpg"))[:per_person] for p in PEOPLE[:n_people]}


def assert_same(got: list[tuple[Prepared, ImageAnalysis]], want: list[tuple[Prepared, ImageAnalysis]]) -> None:
    assert [a.source for _, a in got] == [a.source for _, a in want]
    for (p, a), (q, b) in zip(got, want):
        assert p.sha256 == q.sha256 and a.image_size == b.image_size, a.source
        assert (a.error is None) == (b.error is None), a.source
        if a.error is not None and b.error is not None:
            assert (a.error.code, a.error.message) == (b.error.code, b.error.message)
        assert len(a.faces) == len(b.faces), a.source
        for f, g in zip(a.faces, b.faces):
            assert np.allclose(f.face.box.to_list(), g.face.box.to_list(), atol=1e-3)
            assert np.abs(f.embedding - g.embedding).max() < 1e-5, a.source
        if p.chips is not None and q.chips is not None:
            assert np.array_equal(p.chips, q.chips)


def test_same_results_as_the_local_path(engine: DaskEngine, tmp_path: Path) -> None:
    corrupt = tmp_path / "corrupt.jpg"
    corrupt.write_bytes(face_image("hopper.jpg").read_bytes()[:300])  # a truncated JPEG
    lfw = [f for files in lfw_people(3, 3).values() for f in files]
    rgb = np.asarray(Analyzer().load(face_image("collins.jpg")))
    images: list[ImageSource] = [
        face_image("collins.jpg"), corrupt, *lfw[:4], face_image("two_people.jpg"), face_image("no_face.png"),
        tmp_path / "missing.jpg", face_image("hopper_2.jpg").read_bytes(), rgb, *lfw[4:],
    ]
    analyzer = Analyzer()
    local = list(prepare_many(analyzer, images, embed=True, jobs=1, digest=True))
    remote = list(prepare_many(analyzer, images, embed=True, digest=True, engine=engine))
    assert_same(remote, local)
    errors = [a.error.code for _, a in remote if a.error is not None]
    assert errors == ["invalid_image", "invalid_image"]  # the truncated file and the missing one
    assert sum(len(a.faces) for _, a in remote) >= len(lfw) + 4

    # The same through the engine of a `using_engine` block, detection only.
    with using_engine(engine):
        detected = list(prepare_many(analyzer, images[:5], embed=False))
    assert [len(a.faces) for _, a in detected] == [len(a.faces) for _, a in local[:5]]


def mirrored(label: str, rgb: np.ndarray) -> np.ndarray:
    """A transform (it must pickle: a module-level function)."""
    return np.ascontiguousarray(rgb[:, ::-1])


def test_a_transform_runs_on_the_workers(engine: DaskEngine) -> None:
    images = [face_image("collins.jpg"), face_image("two_people.jpg"), *lfw_people(2, 2)["Adrien_Brody"]]
    analyzer = Analyzer()
    local = list(prepare_many(analyzer, images, embed=True, jobs=1, transform=mirrored))
    remote = list(prepare_many(analyzer, images, embed=True, transform=mirrored, engine=engine))
    assert_same(remote, local)
    plain = list(prepare_many(analyzer, images[:1], embed=True, jobs=1))
    assert plain[0][1].faces[0].face.box != remote[0][1].faces[0].face.box  # it was applied


def test_closing_early_cancels_the_rest(engine: DaskEngine) -> None:
    images = [f for files in lfw_people(6, 4).values() for f in files]
    results = prepare_many(Analyzer(), images, embed=True, engine=engine)
    first = next(results)
    assert first[1].source == str(images[0])
    results.close()  # type: ignore[attr-defined]  # a generator
    deadline = time.monotonic() + 10
    while (left := engine.client.run_on_scheduler(_our_tasks)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not left  # cancelled, not left running or queued


def _our_tasks(dask_scheduler: distributed.Scheduler) -> list[str]:
    return [str(key) for key in dask_scheduler.tasks if str(key).startswith("faceprint-")]


def test_ctrl_c_cancels_the_chunks_on_the_cluster(cluster: distributed.LocalCluster, tmp_path: Path) -> None:
    """Ctrl-C in `faceprint embed --dask`: exit 130 with the partial JSON document, and nothing of
    the run left queued or running on the cluster."""
    folder = tmp_path / "many"
    folder.mkdir()
    for i in range(2000):  # far more than get done before the interrupt
        (folder / f"{i:05d}.jpg").symlink_to(face_image("collins.jpg"))
    proc = subprocess.Popen([sys.executable, "-m", "faceprint", "embed", str(folder), "--dask", cluster.scheduler_address,
                             "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    with distributed.Client(cluster.scheduler_address, set_as_default=False) as client:
        try:
            deadline = time.monotonic() + 60
            while not client.run_on_scheduler(_our_tasks) and time.monotonic() < deadline and proc.poll() is None:
                time.sleep(0.1)
            assert client.run_on_scheduler(_our_tasks), "the run never reached the cluster"
            os.killpg(proc.pid, signal.SIGINT)  # what a terminal does
            stdout, stderr = proc.communicate(timeout=60)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.communicate()
        assert proc.returncode == 130, stderr
        assert "Traceback" not in stderr and "interrupted" in stderr
        doc = json.loads(stdout)
        assert doc["interrupted"] is True and len(doc["results"]) < 2000
        deadline = time.monotonic() + 10
        while (left := client.run_on_scheduler(_our_tasks)) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not left


def test_enroll_folders_cli_gives_the_same_gallery(cluster: distributed.LocalCluster, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from faceprint.cli.root import app

    tree = tmp_path / "people"
    for person, files in lfw_people().items():
        (tree / person).mkdir(parents=True)
        for f in files:
            (tree / person / f.name).symlink_to(f)
    runner = CliRunner()
    galleries, reports = {}, {}
    for how, extra in (("local", ["-j", "2"]), ("dask", ["--dask", cluster.scheduler_address])):
        db = tmp_path / f"{how}.db"
        result = runner.invoke(app, ["--gallery", str(db), "enroll", "--folders", str(tree), "--json", *extra])
        assert result.exit_code in (0, 1), result.output  # 1: an image rejected (lfw has group photos)
        reports[how] = (result.exit_code, json.loads(result.stdout.splitlines()[-1]))
        with Gallery.open(db, create=False) as g:
            galleries[how] = {(f.subject, f.image_sha256): f.embedding for f in g.store.export_faces()}
    assert reports["dask"] == reports["local"]
    assert galleries["dask"].keys() == galleries["local"].keys()
    assert len({subject for subject, _ in galleries["dask"]}) == len(PEOPLE)
    worst = max(float(np.abs(galleries["dask"][k] - galleries["local"][k]).max()) for k in galleries["local"])
    assert worst < 1e-5


def test_cluster_and_eval_commands_give_the_same_results(cluster: distributed.LocalCluster, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from faceprint.cli.root import app

    photos = tmp_path / "photos"
    photos.mkdir()
    for files in lfw_people(4, 3).values():
        for f in files:
            (photos / f.name).symlink_to(f)
    pairs = shared("lfw_dev", "pairs.csv")
    runner = CliRunner()
    docs: dict[str, list[dict[str, object]]] = {"local": [], "dask": []}
    for how, extra in (("local", ["-j", "1"]), ("dask", ["--dask", cluster.scheduler_address])):
        result = runner.invoke(app, ["--gallery", str(tmp_path / f"{how}.db"), "cluster", str(photos), "--json", *extra])
        assert result.exit_code == 0, result.output
        docs[how].append(json.loads(result.stdout.splitlines()[-1]))
        result = runner.invoke(app, ["eval", "pairs", str(pairs), "--max-pairs", "12", "--perturb", "blur:medium",
                                     "--json", *extra])
        assert result.exit_code == 0, result.output
        docs[how].append(measured(json.loads(result.stdout)))
    local_people, dask_people = (sorted(sorted(f["path"] for f in p["faces"]) for p in d[0]["people"])
                                 for d in (docs["local"], docs["dask"]))
    assert dask_people == local_people
    assert docs["dask"][1] == docs["local"][1]


def measured(doc: object) -> object:
    """An evaluation's document without its timings and worker counts, its numbers to 4 places."""
    if isinstance(doc, dict):
        return {k: measured(v) for k, v in doc.items()
                if not any(w in k for w in ("per_s", "second", "time", "_ms", "jobs"))}
    if isinstance(doc, list):
        return [measured(v) for v in doc]
    return round(doc, 4) if isinstance(doc, float) else doc


def test_the_dask_environment_variable_and_bad_addresses(cluster: distributed.LocalCluster, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from faceprint.cli.root import app

    runner = CliRunner()
    monkeypatch.setenv("FACEPRINT_DASK", cluster.scheduler_address)
    images = [str(face_image("collins.jpg")), str(face_image("no_face.png"))]
    result = runner.invoke(app, ["embed", *images, "--json"])
    assert result.exit_code == 0, result.output
    monkeypatch.setenv("FACEPRINT_DASK", "scheduler-without-port")
    result = runner.invoke(app, ["embed", *images, "--json"])
    assert result.exit_code == 2 and "invalid_argument" in result.output and "scheduler-without-port" in result.output
    with pytest.raises(InvalidArgumentError):
        DaskEngine.connect("http://scheduler:8786").__enter__()
    with pytest.raises(ClusterUnavailableError, match="127.0.0.1:9"):  # nothing listens on the discard port
        with DaskEngine.connect("127.0.0.1:9", timeout=1):
            pass


def test_a_killed_worker_loses_nothing_and_stores_nothing_twice(cluster: distributed.LocalCluster,
                                                                tmp_path: Path) -> None:
    """Kill a worker (SIGKILL: no goodbye) once the first result is in: its chunks run again on
    the other worker (or its replacement) and every image is enrolled exactly once."""
    items = [(person, f) for person, files in lfw_people().items() for f in files]
    with DaskEngine.connect(cluster.scheduler_address, chunk_size=2) as engine, \
            Gallery.open(tmp_path / "g.db") as gallery:
        pids = list(engine.client.run(os.getpid).values())
        outcomes = []
        with using_engine(engine):
            for outcome in gallery.enroll_many(items):
                if not outcomes:
                    os.kill(pids[0], signal.SIGKILL)
                outcomes.append(outcome)
        faces = list(gallery.store.export_faces())
        engine.client.wait_for_workers(2, timeout=60)  # the nanny restarts it, for the tests after
        assert pids[0] not in engine.client.run(os.getpid).values()
        rerun = engine.client.run_on_scheduler(_started_twice)
    assert rerun, "no chunk was running on the killed worker: nothing was tested"
    assert [o.path for o in outcomes] == [str(f) for _, f in items]
    enrolled = [o for o in outcomes if isinstance(o, Enrolled)]
    assert len(enrolled) >= len(items) - 3  # (lfw has a few photos with two faces of a size)
    per_image = collections.Counter(f.image_sha256 for f in faces)
    assert len(faces) == len(enrolled) and set(per_image.values()) == {1}
    assert {f.source for f in faces} == {o.path for o in enrolled}


def _started_twice(dask_scheduler: distributed.Scheduler) -> list[str]:
    """The faceprint chunks the scheduler sent to a worker more than once (a lost worker's)."""
    starts = collections.Counter(str(t[0]) for t in dask_scheduler.transition_log
                                 if str(t[0]).startswith("faceprint-") and t[2] == "processing")
    return [key for key, n in starts.items() if n > 1]
