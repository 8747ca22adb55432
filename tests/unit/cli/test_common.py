"""The CLI's shared parts: the one --jobs rule, errors -> exit status, the global --gallery,
and the command tree the root assembles (no model or image is loaded here)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from faceprint import settings
from faceprint.cli import app, common
from faceprint.errors import (
    GalleryNotFoundError,
    InvalidArgumentError,
    SubjectNotFoundError,
    UnknownModelError,
    VideoNotFoundError,
)

runner = CliRunner()

#: What `faceprint --help` lists, in this order (README "Command line" and the sections after it).
COMMANDS = ["detect", "embed", "verify", "models", "enroll", "identify", "calibrate", "serve", "cluster",
            "watch", "liveness", "people", "gallery", "eval", "keys"]


def _tree(command: Any, path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], Any]]:
    """Every command and group under ``command`` with its path of names."""
    found = [(path, command)]
    for name, sub in getattr(command, "commands", {}).items():  # a group (Typer's own click or click)
        found += _tree(sub, (*path, name))
    return found


ALL = _tree(typer.main.get_command(app))


@pytest.mark.parametrize(
    "jobs,n_files,expected",
    [
        (3, 1, 3),  # given: as given, whatever the batch
        (1, 100, 1),
        (None, 7, 1),  # a few files: starting workers would cost more than it saves
        (0, 7, 1),  # 0 is the default
        (None, 8, 5),
        (0, 1000, 5),
        (None, None, 5),  # size not known here (eval, calibrate): the cores
    ],
)
def test_one_jobs_rule(monkeypatch, jobs, n_files, expected):
    monkeypatch.setattr(settings, "usable_cores", lambda: 5)
    assert common.jobs_for(jobs, n_files) == expected


def test_every_jobs_option_is_the_same_one():
    with_jobs = [(path, p) for path, cmd in ALL for p in cmd.params if p.name == "jobs"]
    assert {path[-1] for path, _ in with_jobs} >= {"detect", "embed", "enroll", "cluster", "pairs", "identify", "calibrate"}
    for path, param in with_jobs:
        assert param.opts == ["--jobs", "-j"], path
        assert param.default is None and param.help == with_jobs[0][1].help, path


def test_faceprint_error_is_one_json_document_and_exit_1(capsys):
    with pytest.raises(typer.Exit) as exit_, common.errors_to_exit(as_json=True):
        raise SubjectNotFoundError("no subject named 'Ada'")
    assert exit_.value.exit_code == common.EXIT_FAILED
    captured = capsys.readouterr()
    assert json.loads(captured.out) == {"error": {"code": "subject_not_found", "message": "no subject named 'Ada'"}}
    assert captured.err == ""


def test_faceprint_error_without_json_is_one_line_on_stderr(capsys):
    with pytest.raises(typer.Exit) as exit_, common.errors_to_exit(as_json=False):
        raise SubjectNotFoundError("no subject named 'Ada'")
    assert exit_.value.exit_code == common.EXIT_FAILED
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.strip() == "error (subject_not_found): no subject named 'Ada'"


def test_a_long_message_stays_one_line(capsys):
    with pytest.raises(typer.Exit), common.errors_to_exit(as_json=False):
        raise SubjectNotFoundError("no subject named " + "x" * 300)
    assert len(capsys.readouterr().err.strip().splitlines()) == 1


@pytest.mark.parametrize("error", [InvalidArgumentError("bad value"), UnknownModelError("unknown model 'x'"),
                                   GalleryNotFoundError("no gallery at x.db"), VideoNotFoundError("no video file at x.mp4")],
                         ids=lambda e: e.code)
def test_usage_errors_of_the_library_exit_2(capsys, error):
    with pytest.raises(typer.Exit) as exit_, common.errors_to_exit(as_json=True):
        raise error
    assert exit_.value.exit_code == common.EXIT_USAGE
    assert json.loads(capsys.readouterr().out)["error"]["code"] == error.code


def test_unexpected_error_exits_3_unless_debugging(monkeypatch, capsys):
    monkeypatch.delenv(settings.DEBUG, raising=False)
    with pytest.raises(typer.Exit) as exit_, common.errors_to_exit(as_json=True):
        raise RuntimeError("boom")
    assert exit_.value.exit_code == common.EXIT_INTERNAL
    error = json.loads(capsys.readouterr().out)["error"]
    assert error["code"] == "internal_error" and "RuntimeError: boom" in error["message"]
    monkeypatch.setenv(settings.DEBUG, "1")
    with pytest.raises(RuntimeError, match="boom"), common.errors_to_exit(as_json=True):
        raise RuntimeError("boom")


def test_exits_and_interrupts_pass_through():
    for exc in (typer.Exit(5), KeyboardInterrupt()):
        with pytest.raises(type(exc)), common.errors_to_exit(as_json=True):
            raise exc


def test_help_lists_every_command_in_order():
    result = runner.invoke(app, ["--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    listing = result.output[result.output.index("Commands"):]
    # a command's row starts with its name after the border ("people" is also a word of cluster's help)
    positions = [re.search(rf"^\W* {name} ", listing, re.MULTILINE).start() for name in COMMANDS]
    assert positions == sorted(positions)
    assert [path[0] for path, _ in ALL if len(path) == 1] == COMMANDS


@pytest.mark.parametrize("path", [path for path, _ in ALL], ids=lambda p: " ".join(p) or "faceprint")
def test_every_command_has_help(path):
    result = runner.invoke(app, [*path, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.output


def test_usage_errors_exit_2():
    assert runner.invoke(app, ["frobnicate"]).exit_code == common.EXIT_USAGE
    assert runner.invoke(app, ["verify", "only-one.jpg"]).exit_code == common.EXIT_USAGE
    assert runner.invoke(app, ["detect", "x.jpg", "--jobs", "-1"]).exit_code == common.EXIT_USAGE


def test_detect_with_no_image_files_is_a_usage_error(tmp_path):
    result = runner.invoke(app, ["detect", str(tmp_path), "--json"])
    assert result.exit_code == common.EXIT_USAGE
    assert json.loads(result.stdout)["error"]["code"] == "invalid_argument"


@pytest.mark.parametrize("how", ["option", "environment"])
def test_the_global_gallery_chooses_the_file(tmp_path, monkeypatch, how):
    db = tmp_path / f"{how}.db"
    monkeypatch.setenv(settings.GALLERY, str(db) if how == "environment" else str(tmp_path / "not-this.db"))
    args = ["--gallery", str(db)] if how == "option" else []
    # a command that adds to a gallery creates it (and says so); one that reads it needs it to exist
    created = runner.invoke(app, [*args, "keys", "create", "--scope", "admin", "--json"])
    assert created.exit_code == 0, created.output
    assert json.loads(created.stdout)["scopes"] == ["admin"] and "created a new gallery at" in created.stderr
    result = runner.invoke(app, [*args, "gallery", "stats", "--json"])
    assert result.exit_code == 0, result.output
    assert Path(json.loads(result.stdout)["path"]) == db and db.is_file()
    assert not (tmp_path / "not-this.db").exists()


def test_gallery_path_defaults_to_the_settings(tmp_path, monkeypatch):
    monkeypatch.setenv(settings.GALLERY, str(tmp_path / "env.db"))
    ctx = typer.Context(typer.main.get_command(app))
    assert common.gallery_path(ctx) == tmp_path / "env.db"
    assert common.gallery_path(ctx, tmp_path / "own.db") == tmp_path / "own.db"  # serve --gallery wins
    ctx.obj = common.GlobalOptions(gallery=tmp_path / "global.db")
    assert common.gallery_path(ctx) == tmp_path / "global.db"


@pytest.mark.parametrize("named", [True, False], ids=["named", "default"])
def test_a_gallery_that_must_exist_is_never_created(tmp_path, monkeypatch, named):
    db = tmp_path / "work" / "typo.db"
    monkeypatch.setenv(settings.GALLERY, str(db))
    ctx = typer.Context(typer.main.get_command(app))
    if named:
        ctx.obj = common.GlobalOptions(gallery=db)
    with pytest.raises(GalleryNotFoundError) as info:
        common.existing_gallery_path(ctx)
    message = info.value.message
    assert info.value.code == "gallery_not_found" and info.value.details == {"path": str(db)}
    assert str(db) in message and f"faceprint --gallery {db} enroll" in message
    assert ("the default" in message) is not named
    with pytest.raises(GalleryNotFoundError):
        common.open_gallery(ctx)  # must exist unless asked to create
    assert not (tmp_path / "work").exists()


def test_read_only_commands_fail_before_loading_anything(tmp_path):
    db = tmp_path / "work" / "typo.db"
    for args in (["people", "list"], ["gallery", "stats"], ["keys", "list"], ["people", "forget", "Ada"]):
        result = runner.invoke(app, ["--gallery", str(db), *args, "--json"])
        assert result.exit_code == common.EXIT_USAGE, result.output
        assert json.loads(result.stdout)["error"]["code"] == "gallery_not_found"
    assert not (tmp_path / "work").exists()


def test_the_library_behind_it_creates_nothing_either(tmp_path):
    """The second line of defence (a file removed after the CLI looked; `serve`'s own open):
    SQLiteStore(create=False) raises the typed error before making any folder."""
    from faceprint.errors import GalleryError
    from faceprint.gallery.storage import SQLiteStore

    with pytest.raises(GalleryNotFoundError) as info:
        SQLiteStore(tmp_path / "a" / "b.db", create=False)
    assert isinstance(info.value, GalleryError) and str(tmp_path / "a" / "b.db") in info.value.message
    assert not (tmp_path / "a").exists()
    with pytest.raises(GalleryError, match="is a folder"):
        SQLiteStore(tmp_path, create=True)
    with pytest.raises(GalleryError, match="cannot create a gallery"):
        SQLiteStore("/proc/nope/x.db")
