"""faceprint.dask_engine without a cluster: addresses, the missing extra, the plugin's identity."""

from __future__ import annotations

import importlib
import pickle
import sys
from typing import Any

import pytest

from faceprint import settings
from faceprint.errors import InvalidArgumentError, MissingDependencyError

pytest.importorskip("distributed")


@pytest.mark.parametrize(("given", "full"), [
    ("tcp://scheduler:8786", "tcp://scheduler:8786"),
    ("tls://dask.example.org:8786", "tls://dask.example.org:8786"),
    ("10.0.0.5:8786", "tcp://10.0.0.5:8786"),
    (" tcp://[::1]:8786 ", "tcp://[::1]:8786"),
])
def test_scheduler_addresses(given: str, full: str) -> None:
    from faceprint.dask_engine import check_address

    assert check_address(given) == full


@pytest.mark.parametrize("bad", ["scheduler", "tcp://scheduler", "http://scheduler:8786", "tcp://a b:1", "tcp://h:0",
                                 "tcp://h:70000", ""])
def test_bad_scheduler_addresses_are_usage_errors(bad: str) -> None:
    from faceprint.dask_engine import check_address

    with pytest.raises(InvalidArgumentError, match="Dask scheduler address"):
        check_address(bad)


def test_without_distributed_the_error_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "distributed", None)  # import distributed -> ImportError
    monkeypatch.delitem(sys.modules, "faceprint.dask_engine", raising=False)
    with pytest.raises(MissingDependencyError, match=r"pip install 'faceprint\[dask\]'"):
        importlib.import_module("faceprint.dask_engine")


def test_the_plugin_is_named_after_the_analyzer_it_builds() -> None:
    from faceprint.batch import worker_setup
    from faceprint.dask_engine import AnalyzerPlugin
    from faceprint.pipeline import Analyzer

    a = AnalyzerPlugin(worker_setup(Analyzer(embedder="dlib-resnet34")))
    b = AnalyzerPlugin(worker_setup(Analyzer(embedder="dlib-resnet34"), transform=None))
    c = AnalyzerPlugin(worker_setup(Analyzer(embedder="dlib-resnet34", min_score=0.5)))
    assert a.name == b.name != c.name
    assert pickle.loads(pickle.dumps(a)).name == a.name  # it travels to the workers


def test_the_environment_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(settings.DASK, raising=False)
    assert settings.dask_address() is None
    monkeypatch.setenv(settings.DASK, " tcp://scheduler:8786 ")
    assert settings.dask_address() == "tcp://scheduler:8786"
    assert settings.DASK in settings.VARIABLES


def test_every_batch_command_has_the_one_dask_option() -> None:
    import typer

    from faceprint.cli import app

    found: dict[str, Any] = {}

    def walk(command: Any, path: tuple[str, ...]) -> None:
        for param in command.params:
            if param.name == "dask":
                found[" ".join(path)] = param
        for name, sub in getattr(command, "commands", {}).items():  # a group (Typer's own click or click)
            walk(sub, (*path, name))

    walk(typer.main.get_command(app), ())
    assert set(found) == {"embed", "enroll", "cluster", "eval pairs", "eval identify", "calibrate"}
    for param in found.values():
        assert param.opts == ["--dask"] and param.default is None and "FACEPRINT_DASK" in (getattr(param, "help", "") or "")
