"""The eval commands' argument handling (errors happen before any model or image is loaded)."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from faceprint.cli import app

runner = CliRunner()


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


def test_help_lists_eval_and_calibrate():
    result = run("--help")
    assert result.exit_code == 0 and "eval" in result.output and "calibrate" in result.output
    result = run("eval", "--help")
    assert result.exit_code == 0 and "pairs" in result.output and "identify" in result.output


@pytest.mark.parametrize(
    "args,code",
    [
        (["--perturb", "rain:3"], "invalid_argument"),
        (["--perturb", "jpeg:500"], "invalid_argument"),
        (["--group-by", "age"], "invalid_argument"),
        (["--select", "middle"], "invalid_argument"),
        (["--model", "nope"], "unknown_model"),
        (["--time-budget-ms", "-1"], "invalid_argument"),
    ],
)
def test_eval_pairs_errors_are_one_json_document(tmp_path, args, code):
    pairs = tmp_path / "pairs.csv"
    pairs.write_text("path_a,path_b,same\na.jpg,b.jpg,1\n")
    result = run("eval", "pairs", pairs, "--json", *args)
    assert result.exit_code == 2  # a usage error
    assert json.loads(result.stdout)["error"]["code"] == code


def test_missing_file_and_wrong_columns(tmp_path):
    result = run("eval", "pairs", tmp_path / "none.csv", "--json")
    assert result.exit_code == 2 and "does not exist" in json.loads(result.stdout)["error"]["message"]
    ids = tmp_path / "ids.csv"
    ids.write_text("file,who\na.jpg,x\n")
    result = run("eval", "identify", ids, "--json")
    assert result.exit_code == 2 and "identity" in json.loads(result.stdout)["error"]["message"]
    result = run("calibrate", ids, "--out", tmp_path / "c.json", "--json")
    assert result.exit_code == 2 and "expected columns" in json.loads(result.stdout)["error"]["message"]
    assert not (tmp_path / "c.json").exists()


def test_calibrate_needs_out_and_valid_fars(tmp_path):
    ids = tmp_path / "ids.csv"
    ids.write_text("path,identity\na.jpg,x\n")
    assert run("calibrate", ids).exit_code == 2  # --out is required: a usage error
    result = run("calibrate", ids, "--out", tmp_path / "c.json", "--far", "2", "--json")
    assert result.exit_code == 2 and json.loads(result.stdout)["error"]["code"] == "invalid_argument"
