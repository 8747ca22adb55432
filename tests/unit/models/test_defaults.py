"""Which models run when none is named: the best installed pipeline, an embedder's own detector
and landmarks, and a gallery's pinned model (names only: no model is loaded here)."""

from __future__ import annotations

from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner

from faceprint.cli import app, common
from faceprint.errors import ModelMismatchError
from faceprint.gallery import Gallery, MemoryStore
from faceprint.models import defaults, packs
from faceprint.models.defaults import BUILTIN_MODELS, PipelineModels, default_models, resolve, upgrade_hint
from faceprint.pipeline import Analyzer
from tests.conftest import face_image

PACK_MODELS = PipelineModels("fr-detect", "fr-landmark", "fr-feature")


@pytest.fixture
def no_pack(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An empty models home: no pack is installed."""
    (tmp_path / "empty-models-home").mkdir()  # the CLI registers the ONNX files in it: it must exist
    monkeypatch.setenv("FACEPRINT_MODELS_DIR", str(tmp_path / "empty-models-home"))


@pytest.fixture
def pack_present(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A models home where the faceplugin pack's files are present (their contents are checked
    when a model loads, which these tests never do)."""
    monkeypatch.setenv("FACEPRINT_MODELS_DIR", str(tmp_path / "models-home"))
    folder = packs.pack_dir(packs.FACEPLUGIN)
    for name in packs.FACEPLUGIN.files:
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(b"not checked here")


def names(analyzer: Analyzer) -> PipelineModels:
    return PipelineModels(analyzer.detector_card.name, analyzer.landmarks_card.name, analyzer.embedder_card.name)


def test_without_the_pack_dlib_is_the_default_and_the_hint_names_the_install(no_pack):
    assert default_models() == BUILTIN_MODELS == PipelineModels("hog", "dlib5", "dlib-resnet34")
    assert names(Analyzer()) == BUILTIN_MODELS
    hint = upgrade_hint()
    assert hint is not None and "faceprint models install faceplugin" in hint


def test_with_the_pack_its_pipeline_is_the_default(pack_present):
    assert (("faceplugin", PACK_MODELS),) == defaults.PACK_MODELS
    assert default_models() == PACK_MODELS
    assert names(Analyzer()) == PACK_MODELS
    assert upgrade_hint() is None


@pytest.mark.usefixtures("pack_present")
def test_unnamed_detector_and_landmarks_follow_the_embedder():
    # dlib's embedder keeps the detector and landmarks of its calibration, whatever is installed.
    assert resolve(embedder="dlib-resnet34") == BUILTIN_MODELS
    assert names(Analyzer(embedder="dlib-resnet34")) == BUILTIN_MODELS
    assert resolve(embedder="fr-feature-flip") == PipelineModels("fr-detect", "fr-landmark", "fr-feature-flip")
    # A name given is kept; the rest follow the (default) embedder.
    assert resolve(detector="haar") == PipelineModels("haar", "fr-landmark", "fr-feature")
    assert resolve(landmarks="dlib5", embedder="dlib-resnet34") == BUILTIN_MODELS
    assert resolve(detector="hog", landmarks="dlib5", embedder="fr-feature") == PipelineModels("hog", "dlib5", "fr-feature")


@pytest.mark.usefixtures("pack_present")
def test_a_gallery_runs_its_pinned_model_not_the_new_default():
    store = MemoryStore()
    store.pin_model("dlib-resnet34@v1", 128)
    gallery = Gallery(store)
    assert names(gallery.analyzer) == BUILTIN_MODELS and gallery.model_id == "dlib-resnet34@v1"
    # An empty gallery takes the default models (its first enrolment pins them).
    assert names(Gallery(MemoryStore()).analyzer) == PACK_MODELS
    # Naming another model for a pinned gallery is refused, saying how to move it.
    with pytest.raises(ModelMismatchError) as info:
        Gallery(store, Analyzer(embedder="fr-feature"))
    assert "faceprint gallery migrate --to fr-feature" in info.value.message


def test_a_gallery_of_a_model_not_registered_here_is_a_model_mismatch():
    store = MemoryStore()
    store.pin_model("dlib-resnet34@v0", 128)  # another version than this faceprint has
    with pytest.raises(ModelMismatchError) as info:
        Gallery(store)
    assert "dlib-resnet34@v1" in info.value.message  # says which version is here


def test_the_cli_says_how_to_get_better_models_but_not_in_json(no_pack, monkeypatch):
    runner = CliRunner()
    image = str(face_image("collins.jpg"))
    piped = runner.invoke(app, ["detect", image])
    assert piped.exit_code == 0 and "install" not in piped.stderr  # a script's stderr stays its own
    # A person at a terminal (CliRunner's stderr is not one: the console is told it is).
    monkeypatch.setattr(common, "err", Console(stderr=True, force_terminal=True, width=60))
    table = runner.invoke(app, ["detect", image])
    assert table.exit_code == 0, table.output
    (note,) = [line for line in table.stderr.splitlines() if "install" in line]  # one line, even at 60 columns
    assert "faceprint models install faceplugin" in note
    as_json = runner.invoke(app, ["detect", image, "--json"])
    assert as_json.exit_code == 0 and "install" not in as_json.stderr
    named = runner.invoke(app, ["detect", image, "--detector", "hog"])
    assert named.exit_code == 0 and "install" not in named.stderr  # the user chose the models
