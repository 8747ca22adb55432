"""The error taxonomy: every error class is listed, and codes are unique and stable."""

from __future__ import annotations

import inspect

import pytest

from faceprint import errors


def _defined() -> list[type[errors.FaceprintError]]:
    return [
        obj
        for _, obj in inspect.getmembers(errors, inspect.isclass)
        if issubclass(obj, errors.FaceprintError) and obj is not errors.FaceprintError and obj.__module__ == errors.__name__
    ]


def test_every_error_class_is_in_all_errors() -> None:
    assert set(_defined()) == set(errors.ALL_ERRORS)


def test_codes_are_unique_snake_case() -> None:
    codes = [cls.code for cls in errors.ALL_ERRORS]
    assert len(codes) == len(set(codes))
    assert all(c.replace("_", "").isalpha() and c == c.lower() for c in codes)


def test_import_optional_names_the_extra() -> None:
    assert errors.import_optional("json", "service").dumps([]) == "[]"
    with pytest.raises(errors.MissingDependencyError) as exc:
        errors.import_optional("faceprint_no_such_module.sub", "service")
    assert exc.value.code == "missing_dependency"
    assert "pip install 'faceprint[service]'" in exc.value.message
    assert isinstance(exc.value, ImportError)
