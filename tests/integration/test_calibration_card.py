"""``--calibration CARD.json``: a card written by ``faceprint calibrate`` decides ``--far``
thresholds with a built-in model (verify, identify, eval, the service), every result names it,
and a card of another model is refused (``model_mismatch``)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from faceprint import Analyzer
from faceprint.errors import InvalidArgumentError, ModelMismatchError
from faceprint.evaluation.calibrate import read_card
from faceprint.pipeline import resolve_threshold
from tests.conftest import default_model_id, default_threshold, face_image
from tests.integration.service.conftest import InProcess, make_keys

FACEPRINT = str(Path(sys.executable).with_name("faceprint"))
COLLINS, COLLINS_2 = face_image("collins.jpg"), face_image("collins_2.jpg")
HOPPER, HOPPER_2 = face_image("hopper.jpg"), face_image("hopper_2.jpg")


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([FACEPRINT, *args], capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def card(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A card `faceprint calibrate` writes for the default model, from the shipped photos (two
    people, two photos each: 4 impostor pairs, so FAR 0.25 and 0.5 can be resolved)."""
    root = tmp_path_factory.mktemp("card")
    ids = root / "ids.csv"
    ids.write_text("path,identity\n" + "".join(f"{p},{who}\n" for p, who in [
        (COLLINS, "collins"), (COLLINS_2, "collins"), (HOPPER, "hopper"), (HOPPER_2, "hopper")]))
    out = root / "mycard.json"
    run = _run("calibrate", str(ids), "--out", str(out), "--far", "0.5", "--far", "0.25", "--json")
    assert run.returncode == 0, run.stderr
    return out


def _other_model_card(tmp_path: Path) -> Path:
    doc = {"calibration": {"model": "someone-else@9", "dataset": "theirs", "thresholds": {"1e-3": 0.5}}}
    path = tmp_path / "other.json"
    path.write_text(json.dumps(doc))
    return path


def test_calibrate_writes_the_model_into_the_card(card: Path) -> None:
    doc = json.loads(card.read_text())
    assert doc["calibration"]["model"] == default_model_id()
    calibration = read_card(card)
    assert calibration.model == default_model_id() and calibration.origin == str(card)
    assert set(calibration.thresholds) == {0.5, 0.25}


def test_the_card_changes_the_threshold_and_is_named(card: Path) -> None:
    analyzer = Analyzer()
    built_in = resolve_threshold(analyzer.embedder_card, far=None, threshold=None)
    with pytest.raises(InvalidArgumentError):  # the built-in card has no FAR 0.25
        resolve_threshold(analyzer.embedder_card, far=0.25, threshold=None)
    analyzer.use_calibration(read_card(card))
    limit, far, source = resolve_threshold(analyzer.embedder_card, far=0.25, threshold=None)
    assert far == 0.25 and source == f"card:{card}"
    assert limit == read_card(card).thresholds[0.25] and built_in[2] == "calibrated"
    result = analyzer.verify(COLLINS, COLLINS_2, far=0.25)
    assert result.threshold == limit and result.threshold_source == f"card:{card}"
    assert result.to_dict()["threshold_source"] == f"card:{card}"


def test_cli_verify_with_a_card(card: Path) -> None:
    run = _run("verify", str(COLLINS), str(COLLINS_2), "--calibration", str(card), "--far", "0.25", "--json")
    assert run.returncode == 0, run.stderr
    doc = json.loads(run.stdout)
    assert doc["threshold_source"] == f"card:{card}" and doc["far"] == 0.25
    assert doc["threshold"] == pytest.approx(read_card(card).thresholds[0.25], abs=1e-6)
    table = _run("verify", str(COLLINS), str(COLLINS_2), "--calibration", str(card), "--far", "0.5")
    assert table.returncode == 0 and f"thresholds from {card}" in " ".join(table.stdout.split())
    plain = json.loads(_run("verify", str(COLLINS), str(COLLINS_2), "--json").stdout)
    assert plain["threshold_source"] == "calibrated"
    assert plain["threshold"] == pytest.approx(default_threshold(1e-3), abs=1e-6)


def test_cli_identify_with_a_card(card: Path, tmp_path: Path) -> None:
    gallery = tmp_path / "g.db"
    assert _run("--gallery", str(gallery), "enroll", "Eileen Collins", str(COLLINS)).returncode == 0
    run = _run("--gallery", str(gallery), "identify", str(COLLINS_2), "--calibration", str(card), "--far", "0.25",
               "--json")
    assert run.returncode == 0, run.stderr
    doc = json.loads(run.stdout)
    assert doc["threshold_source"] == f"card:{card}"
    [face] = doc["results"][0]["faces"]
    assert face["threshold"] == pytest.approx(read_card(card).thresholds[0.25], abs=1e-6)


def test_a_card_of_another_model_is_refused(tmp_path: Path) -> None:
    other = _other_model_card(tmp_path)
    with pytest.raises(ModelMismatchError):
        Analyzer().use_calibration(read_card(other))
    run = _run("verify", str(COLLINS), str(COLLINS_2), "--calibration", str(other), "--json")
    assert run.returncode != 0
    assert json.loads(run.stdout)["error"]["code"] == "model_mismatch"
    unnamed = tmp_path / "unnamed.json"
    unnamed.write_text(json.dumps({"calibration": {"dataset": "x", "thresholds": {"1e-3": 0.5}}}))
    with pytest.raises(InvalidArgumentError, match="does not name the model"):
        read_card(unnamed)


def test_the_service_decides_with_its_card_and_names_it(card: Path, tmp_path: Path) -> None:
    from faceprint.service import Settings

    gallery = tmp_path / "service.db"
    keys = make_keys(gallery)
    app = InProcess(Settings(gallery=gallery, calibration=str(card)))
    try:
        answer = app.call("POST", "/v1/verify", key=keys.recognize,
                          form={"image_a": COLLINS, "image_b": COLLINS_2, "far": "0.25"})
        assert answer.status == 200, answer.body
        doc = answer.json()
        assert doc["threshold_source"] == f"card:{card.name}"  # the file, not where it lies on the server
        assert doc["threshold"] == pytest.approx(read_card(card).thresholds[0.25], abs=1e-6)
        found = app.call("POST", "/v1/identify", key=keys.recognize, form={"image": COLLINS, "far": "0.25"})
        assert found.status == 200, found.body
        assert found.json()["threshold_source"] == f"card:{card.name}"
    finally:
        app.close()
    with pytest.raises(ModelMismatchError):
        InProcess(Settings(gallery=gallery, calibration=str(_other_model_card(tmp_path))))


def test_serve_refuses_another_models_card_before_starting(tmp_path: Path) -> None:
    gallery = tmp_path / "serve.db"
    assert _run("--gallery", str(gallery), "keys", "create", "--scope", "recognize").returncode == 0
    run = _run("--gallery", str(gallery), "serve", "--port", "0", "--calibration", str(_other_model_card(tmp_path)))
    assert run.returncode == 1 and "model_mismatch" in run.stderr
