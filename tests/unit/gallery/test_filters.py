"""Metadata and metadata filters (``where``) at the storage boundary: what SQLite cannot store or
compare (NaN, Infinity, integers over 64 bits, a thousand filter keys, deep nesting) is refused
with ``invalid_argument`` by every backend alike, and a gallery that already holds such
metadata does not fail its searches."""

from __future__ import annotations

import json
import math
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from faceprint.errors import InvalidArgumentError
from faceprint.gallery import Gallery, SQLiteStore
from faceprint.gallery.storage.base import (
    INT64_MAX,
    INT64_MIN,
    MAX_FILTER_KEYS,
    MAX_METADATA_BYTES,
    MAX_METADATA_DEPTH,
    check_filter_keys,
    metadata_json,
)
from tests.unit.gallery.stores import DIM, MODEL, add, unit


def nested(depth: int) -> object:
    value: object = 1
    for _ in range(depth):
        value = [value]
    return value


NOT_STORABLE = [
    {"x": math.nan},
    {"x": math.inf},
    {"x": [1, {"y": -math.inf}]},
    {"x": INT64_MAX + 1},
    {"x": INT64_MIN - 1},
    {"x": nested(MAX_METADATA_DEPTH + 1)},
    {"x": "a" * MAX_METADATA_BYTES},
]


@pytest.mark.parametrize("metadata", NOT_STORABLE, ids=["nan", "inf", "nested-inf", "int-over", "int-under",
                                                        "deep", "large"])
def test_metadata_sqlite_cannot_use_is_refused_by_every_store(gallery, metadata):
    with pytest.raises(InvalidArgumentError):
        gallery.create_subject("ann", metadata)
    gallery.create_subject("bob")
    with pytest.raises(InvalidArgumentError):
        gallery.update_metadata("bob", metadata)
    with pytest.raises(InvalidArgumentError):  # enrolment with metadata too
        add(gallery, "cid", unit(np.ones(DIM)), "a" * 64, metadata)
    assert gallery.subject("bob").metadata == {}
    assert [s.name for s in gallery.subjects()] == ["bob"]


def test_metadata_at_the_limits_is_stored(gallery):
    metadata = {"big": INT64_MAX, "small": INT64_MIN, "deep": nested(MAX_METADATA_DEPTH - 1), "f": 1.5}
    assert gallery.create_subject("ann", metadata).metadata == metadata
    assert json.loads(metadata_json(metadata)) == metadata


@pytest.mark.parametrize("where", [{"x": math.nan}, {"x": math.inf}, {"x": 2**63}, {"x": -(2**63) - 1},
                                   {"x": nested(MAX_METADATA_DEPTH + 1)}, {"bad key": 1}, {"k" * 129: 1}])
def test_filter_values_sqlite_cannot_compare_are_refused(gallery, where):
    add(gallery, "ann", unit(np.ones(DIM)), "a" * 64, {"x": 1})
    with pytest.raises(InvalidArgumentError):
        gallery.store.face_ids_where(where)


def test_at_most_max_filter_keys(gallery):
    face = add(gallery, "ann", unit(np.ones(DIM)), "a" * 64, {f"k{i}": i for i in range(MAX_FILTER_KEYS)})
    within = {f"k{i}": i for i in range(MAX_FILTER_KEYS)}
    assert gallery.store.face_ids_where(within).tolist() == [face]
    with pytest.raises(InvalidArgumentError) as info:
        gallery.store.face_ids_where({f"k{i}": i for i in range(999)})
    assert info.value.details == {"keys": 999, "max_keys": MAX_FILTER_KEYS}


def test_integers_at_the_64_bit_limits_filter(gallery):
    face = add(gallery, "ann", unit(np.ones(DIM)), "a" * 64, {"big": INT64_MAX, "small": INT64_MIN})
    assert gallery.store.face_ids_where({"big": INT64_MAX, "small": INT64_MIN}).tolist() == [face]


def test_check_filter_keys_wants_an_object():
    with pytest.raises(InvalidArgumentError):
        check_filter_keys([("a", 1)])  # type: ignore[arg-type]


def test_a_gallery_already_holding_nan_metadata_still_filters(tmp_path: Path):
    """Metadata written before these checks (here: straight into SQLite) that SQLite's JSON
    functions reject makes its subject match no filter; the other subjects still match."""
    path = tmp_path / "g.db"
    store = SQLiteStore(path)
    store.pin_model(MODEL, DIM)
    g = Gallery(store)
    good = add(g, "ann", unit(np.ones(DIM)), "a" * 64, {"team": "red"})
    bad = add(g, "bob", unit(np.arange(DIM, dtype=np.float32) + 1), "b" * 64, {"team": "red"})
    with sqlite3.connect(path) as raw:
        raw.execute("UPDATE subjects SET metadata = ? WHERE name = 'bob'", ('{"team": "red", "x": NaN}',))
    raw.close()
    assert g.store.face_ids_where({"team": "red"}).tolist() == [good]
    assert bad not in g.store.face_ids_where({"x": 1}).tolist()
    found = g.search(unit(np.ones((1, DIM), np.float32)), top_k=5, where={"team": "red"})
    assert [c.subject for c in found[0]] == ["ann"]
    assert math.isnan(g.subject("bob").metadata["x"])  # still readable, and forgettable
    g.forget("bob")
    store.close()


def test_non_ascii_keys_and_object_values_filter(gallery):
    """Metadata is stored with its non-ASCII text as is (an escaped key never matched SQLite's
    JSON path), and an object or array filter value compares as the minified text SQLite gives."""
    metadata = {"名": "x", "tags": ["a", "b"], "o": {"k": 1.5, "é": "名"}}
    face = add(gallery, "ann", unit(np.ones(DIM)), "a" * 64, metadata)
    assert gallery.store.face_ids_where({"名": "x"}).tolist() == [face]
    assert gallery.store.face_ids_where({"tags": ["a", "b"]}).tolist() == [face]
    assert gallery.store.face_ids_where({"o": {"k": 1.5, "é": "名"}}).tolist() == [face]
    assert gallery.store.face_ids_where({"tags": ["b", "a"]}).tolist() == []
    assert json.loads(metadata_json(metadata)) == metadata and "名" in metadata_json(metadata)


@pytest.mark.parametrize("metadata", [{"x": "\ud800"}, {"\udfff": 1}, {"x": [{"y": "a\udc00"}]}],
                         ids=["value", "key", "nested"])
def test_lone_surrogates_are_refused(gallery, metadata):
    with pytest.raises(InvalidArgumentError) as info:
        gallery.create_subject("ann", metadata)
    assert info.value.details["reason"] == "invalid_unicode"
    with pytest.raises(InvalidArgumentError):
        gallery.store.face_ids_where({"x": "\ud800"})


def test_a_name_that_is_not_unicode_is_refused(gallery):
    with pytest.raises(InvalidArgumentError) as info:
        gallery.create_subject("ann\udcff")  # what argv gives for an undecodable byte
    assert info.value.details["reason"] == "invalid_unicode"
