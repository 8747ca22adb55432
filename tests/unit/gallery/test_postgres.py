"""What only the PostgreSQL store does: several processes (here: several stores) on one
database, its schema made once under a lock, search in SQL with an exact fallback for selective
filters, forget leaving no row, typed connection errors that never show the password.

The store/gallery behaviour every backend shares is tested by the parametrised ``store`` /
``gallery`` fixtures (tests/unit/gallery/stores.py), which include PostgreSQL."""

from __future__ import annotations

import logging
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
import pytest

from faceprint.errors import GalleryError, GalleryNotFoundError, InvalidArgumentError
from faceprint.gallery import Gallery
from faceprint.gallery.crypto import MasterKey
from faceprint.gallery.storage import NewFace, SearchingStore
from faceprint.gallery.storage import postgres as pg_module
from faceprint.gallery.storage.pg_schema import HNSW_INDEX, PG_SCHEMA_VERSION, SCHEMA
from faceprint.gallery.storage.postgres import PostgresStore, ef_search_for, masked_url
from tests.postgres import PostgresServer
from tests.unit.gallery.stores import DIM, MODEL, add, unit

psycopg = pytest.importorskip("psycopg", reason="the PostgreSQL store needs its extra: pip install 'faceprint[postgres]'")

SECRET = "pa55-w0rd-never-shown"


@pytest.fixture()
def pg_store(postgres_url: str) -> Iterator[PostgresStore]:
    store = PostgresStore(postgres_url)
    store.pin_model(MODEL, DIM)
    yield store
    store.close()


def raw(url: str, sql: str, params: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
    """A query on the database as an administrator sees it (faceprint's schema first)."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"SET search_path TO {SCHEMA}, public")
        return list(conn.execute(sql, params).fetchall())  # type: ignore[arg-type]


def rows_of(url: str, table: str) -> int:
    return int(raw(url, f"SELECT COUNT(*) FROM {table}")[0][0])  # type: ignore[arg-type]


def test_it_is_a_searching_store_with_an_hnsw_index(pg_store: PostgresStore, postgres_url: str) -> None:
    assert isinstance(pg_store, SearchingStore) and pg_store.searches_in_database
    (definition,) = raw(postgres_url, "SELECT indexdef FROM pg_indexes WHERE indexname = %s", (HNSW_INDEX,))
    assert "hnsw" in str(definition[0]) and "vector_ip_ops" in str(definition[0]) and "m='16'" in str(definition[0])
    assert raw(postgres_url, "SELECT format_type(atttypid, atttypmod), attstorage FROM pg_attribute WHERE attrelid ="
                             " 'faces'::regclass AND attname = 'embedding'") == [(f"vector({DIM})", "p")]  # inline
    assert pg_store.schema_version() == PG_SCHEMA_VERSION and pg_store.size_bytes() > 0
    assert ef_search_for(1) == 200 and ef_search_for(150) == 300 and ef_search_for(10_000) == 1000


def test_two_stores_on_one_database_see_each_others_changes_at_once(postgres_url: str) -> None:
    """Two service processes: an enrolment or a forget in one is in the other's next search."""
    one, two = PostgresStore(postgres_url), PostgresStore(postgres_url)
    try:
        one.pin_model(MODEL, DIM)
        a, b = Gallery(one), Gallery(two)
        rng = np.random.default_rng(3)
        vec = unit(rng.normal(size=DIM))
        assert b.search(vec[None], top_k=3)[0] == []
        version = two.data_version()
        face = add(a, "ann", vec, "a" * 64)
        assert two.data_version() != version
        (hit,) = b.search(vec[None], top_k=3)[0]
        assert hit.subject == "ann" and hit.face_id == face and hit.similarity > 0.999
        add(b, "bob", unit(rng.normal(size=DIM)), "b" * 64)
        assert {s.name for s in a.subjects()} == {"ann", "bob"}
        a.forget("ann")
        assert all(c.subject != "ann" for c in b.search(vec[None], top_k=5)[0])
        assert two.search_faces(vec[None], 5).face_ids[0].tolist().count(face) == 0
    finally:
        one.close()
        two.close()


def test_concurrent_first_opens_make_the_schema_once(postgres_url: str) -> None:
    """Several processes opening a fresh database at once: one migrates (under the advisory
    lock), the others wait and find it done; none fails."""
    start = threading.Barrier(6)
    stores: list[PostgresStore] = []
    errors: list[BaseException] = []

    def open_one() -> None:
        try:
            start.wait()
            stores.append(PostgresStore(postgres_url, pool_size=1))
        except BaseException as exc:  # noqa: BLE001 (reported below)
            errors.append(exc)

    threads = [threading.Thread(target=open_one) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for s in stores:
        s.close()
    assert not errors, errors[0]
    assert len(stores) == 6
    assert raw(postgres_url, "SELECT value FROM meta WHERE key = 'schema_version'") == [(str(PG_SCHEMA_VERSION),)]


def test_concurrent_pins_and_writes_from_several_stores(postgres_url: str) -> None:
    """Writers in several "processes" at once: every template lands once, ids never repeat,
    the change log is in commit order."""
    stores = [PostgresStore(postgres_url, pool_size=2) for _ in range(3)]
    errors: list[BaseException] = []
    rng = np.random.default_rng(5)
    vectors = unit(rng.normal(size=(60, DIM)))

    def enrol(i: int) -> None:
        try:
            store = stores[i]
            store.pin_model(MODEL, DIM)
            for j in range(i, 60, 3):
                store.add_face(f"s{j % 7}", {"n": j % 7}, NewFace(embedding=vectors[j], image_sha256=f"{j:064x}"))
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=enrol, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    try:
        assert not errors, errors[0]
        ids, subjects, vecs, seq = stores[0].all_templates()
        assert len(ids) == 60 == len(set(ids.tolist())) and seq == 60
        assert stores[0].count().subjects == 7
        assert [c.face_id for c in stores[1].changes_since(0)[0]] == sorted(ids.tolist())  # type: ignore[index]
    finally:
        for s in stores:
            s.close()


def test_a_selective_filter_returns_the_exact_answer(pg_store: PostgresStore, monkeypatch: pytest.MonkeyPatch) -> None:
    """HNSW filters after its scan: with 0.5% of subjects matching, the index alone returns
    too few rows. The store then searches exactly, in SQL: the answer equals brute force."""
    rng = np.random.default_rng(11)
    n = 600
    vectors = unit(rng.normal(size=(n, DIM)))
    rare = np.array([i % 200 == 0 for i in range(n)])  # 3 of 600: 0.5%
    with pg_store.transaction():
        for i in range(n):
            pg_store.add_face(f"p{i}", {"team": "rare" if rare[i] else "common", "i": i},
                              NewFace(embedding=vectors[i], image_sha256=f"{i:064x}"))
    ids, _, _, _ = pg_store.all_templates()
    queries = unit(rng.normal(size=(4, DIM)))
    expected = [ids[rare][np.argsort(-(vectors[rare] @ q), kind="stable")].tolist() for q in queries]
    # the index first, whatever the size (the exact-below rule would answer exactly anyway here)
    monkeypatch.setattr(pg_module, "EXACT_SEARCH_BELOW", 1)
    found = pg_store.search_faces(queries, 10, {"team": "rare"})
    assert [row[row >= 0].tolist() for row in found.face_ids] == expected
    assert np.all(found.face_ids[:, 3:] == -1) and np.all(np.isneginf(found.similarities[:, 3:]))
    np.testing.assert_allclose(found.similarities[:, :3], np.sort(queries @ vectors[rare].T, axis=1)[:, ::-1], atol=1e-5)
    # unfiltered: the index answers (a probe near a stored template finds it)
    near = unit(vectors[[5, 50, 500]] + 0.01 * rng.normal(size=(3, DIM)))
    assert pg_store.search_faces(near, 1).face_ids[:, 0].tolist() == ids[[5, 50, 500]].tolist()
    monkeypatch.setattr(pg_module, "EXACT_SEARCH_BELOW", 20_000)
    assert pg_store.search_faces(queries, 10, {"team": "rare"}).face_ids.tolist() == found.face_ids.tolist()


def test_forget_leaves_no_row_and_search_never_returns_it(pg_store: PostgresStore, postgres_url: str) -> None:
    g = Gallery(pg_store)
    rng = np.random.default_rng(2)
    vec = unit(rng.normal(size=DIM))
    faces = [add(g, "ann", unit(vec + 0.01 * rng.normal(size=DIM)), f"{i:064x}") for i in range(3)]
    add(g, "bob", unit(rng.normal(size=DIM)), "f" * 64)
    subject_id = g.subject("ann").id
    removed = pg_store.forget("ann")
    assert removed == faces
    assert raw(postgres_url, "SELECT COUNT(*) FROM faces WHERE id = ANY(%s) OR subject_id = %s", (faces, subject_id)) == [(0,)]
    assert raw(postgres_url, "SELECT COUNT(*) FROM subjects WHERE id = %s OR name = 'ann'", (subject_id,)) == [(0,)]
    # the VACUUM after the commit left no dead row version behind
    assert raw(postgres_url, "SELECT n_dead_tup FROM pg_stat_user_tables WHERE relname = 'faces'")[0][0] == 0
    found = pg_store.search_faces(vec[None], 10)
    assert not set(found.face_ids.ravel().tolist()) & set(faces)
    assert all(c.subject != "ann" for c in g.search(vec[None], top_k=5)[0])


def test_the_password_is_never_shown(postgres_server: PostgresServer, postgres_url: str,
                                     caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    database = urlsplit(postgres_url).path.lstrip("/")
    url = postgres_server.url(database, password=SECRET)
    store = PostgresStore(url)  # (the test server trusts its socket: the password is not checked)
    try:
        assert store.location == url.replace(SECRET, "***") and SECRET not in store.location
        assert SECRET not in repr(store.encryption()) and SECRET not in store.location
    finally:
        store.close()
    with pytest.raises(GalleryNotFoundError) as missing:
        PostgresStore(postgres_server.url("no_such_db", password=SECRET))
    with pytest.raises(GalleryError) as unreachable:
        PostgresStore(f"postgresql://ann:{SECRET}@/db?host=/nonexistent/socket/dir")
    with pytest.raises(GalleryError) as in_query:
        PostgresStore(f"postgresql:///db?host=/nonexistent/socket/dir&password={SECRET}")
    for info in (missing, unreachable, in_query):
        assert SECRET not in str(info.value) and SECRET not in repr(info.value.details)
        assert "***" in str(info.value)
    assert SECRET not in caplog.text
    assert masked_url("postgresql://u:p%40ss@h:5432/d?password=x&sslmode=require") == \
        "postgresql://u:***@h:5432/d?password=***&sslmode=require"
    assert masked_url("postgresql://u@h/d") == "postgresql://u@h/d"
    # split as libpq splits it: "?", "#" and "/" may be in a password; sslpassword is a secret too
    for url, shown in ((f"postgresql://u:{SECRET}?x@127.0.0.1:1/db", "postgresql://u:***@127.0.0.1:1/db"),
                       (f"postgresql://u:{SECRET}#x@h/d", "postgresql://u:***@h/d"),
                       (f"postgresql://u:pa/{SECRET}@h/d", "postgresql://u:***@h/d"),
                       (f"postgresql://h/d?sslpassword={SECRET}", "postgresql://h/d?sslpassword=***")):
        assert masked_url(url) == shown
    with pytest.raises(GalleryError) as question_mark:
        PostgresStore(f"postgresql://ann:{SECRET}?x@/db?host=/nonexistent/socket/dir")
    assert SECRET not in str(question_mark.value) and SECRET not in repr(question_mark.value.details)
    with pytest.raises(InvalidArgumentError) as not_a_url:
        PostgresStore(f"host=/tmp dbname=db password={SECRET}")
    assert SECRET not in str(not_a_url.value)


def test_create_false_on_an_empty_database_creates_nothing(postgres_url: str) -> None:
    with pytest.raises(GalleryNotFoundError) as info:
        PostgresStore(postgres_url, create=False)
    assert info.value.code == "gallery_not_found"
    assert raw(postgres_url, "SELECT to_regnamespace(%s)", (SCHEMA,)) == [(None,)]
    PostgresStore(postgres_url).close()  # made now
    PostgresStore(postgres_url, create=False).close()  # and found


def test_a_role_that_may_not_create_the_extension_gets_a_clear_error(postgres_server: PostgresServer) -> None:
    name = "fp_no_vector"
    postgres_server.execute(f"DROP DATABASE IF EXISTS {name}")
    postgres_server.execute(f"CREATE DATABASE {name} TEMPLATE template0")  # no vector extension
    postgres_server.execute("DROP ROLE IF EXISTS fp_plain")
    postgres_server.execute("CREATE ROLE fp_plain LOGIN")
    try:
        url = postgres_server.url(name).replace("//postgres@", "//fp_plain@")
        with pytest.raises(GalleryError) as info:
            PostgresStore(url)
        assert "CREATE EXTENSION vector" in str(info.value)
    finally:
        postgres_server.drop_database(name)
        postgres_server.execute("DROP ROLE IF EXISTS fp_plain")


def test_an_encrypted_gallery_keeps_only_ciphertext_and_its_keyring_out_of_the_database(
        postgres_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FACEPRINT_KEYRING_DIR", str(tmp_path / "rings"))
    key = MasterKey.generate()
    store = PostgresStore(postgres_url, master_key=key, encrypt=True)
    try:
        store.pin_model(MODEL, DIM)
        info = store.encryption()
        assert info is not None and Path(info.keyring) == tmp_path / "rings" / f"{info.keyring_id}.keys"
        assert Path(info.keyring).is_file() and not store.searches_in_database
        g = Gallery(store)
        vec = unit(np.random.default_rng(4).normal(size=DIM))
        add(g, "ann", vec, "a" * 64)
        assert raw(postgres_url, "SELECT COUNT(*) FROM faces WHERE embedding IS NOT NULL") == [(0,)]
        assert g.search(vec[None], top_k=1)[0][0].subject == "ann"  # the in-process index
        with pytest.raises(InvalidArgumentError):
            store.search_faces(vec[None], 1)
        other = PostgresStore(postgres_url, master_key=key)  # another process: finds the keyring the same way
        try:
            seen = Gallery(other)
            assert seen.search(vec[None], top_k=1)[0][0].subject == "ann"
            bob = unit(np.random.default_rng(5).normal(size=DIM))
            add(g, "bob", bob, "b" * 64)  # its index follows the change log at its next search
            assert seen.search(bob[None], top_k=1)[0][0].subject == "bob"
            g.forget("bob")
            assert all(c.subject != "bob" for c in seen.search(bob[None], top_k=5)[0])
        finally:
            other.close()
    finally:
        store.close()


def test_nul_characters_in_metadata_round_trip_and_filter(pg_store: PostgresStore) -> None:
    """jsonb cannot hold U+0000; SQLite can. The store keeps such text escaped, invisibly."""
    metadata = {"a\x00b": "x\x00y", "esc": "\ue000\ue0000", "n": [1.0, 1, 1e300, -2.5e-7, True]}
    pg_store.create_subject("ann", metadata)
    assert pg_store.subject("ann").metadata == metadata
    got = pg_store.subject("ann").metadata["n"]
    assert [type(v) for v in got] == [float, int, float, float, bool]
    face = pg_store.add_face("ann", None, NewFace(embedding=unit(np.ones(DIM)), image_sha256="a" * 64))[1]
    assert pg_store.face_ids_where({"esc": "\ue000\ue0000"}).tolist() == [face]
    assert pg_store.face_ids_where({"n": [1.0, 1, 1e300, -2.5e-7, True]}).tolist() == [face]
    assert pg_store.face_ids_where({"n": [1, 1, 1e300, -2.5e-7, True]}).tolist() == []  # 1.0 and 1 differ inside


def test_without_the_driver_the_store_names_its_extra() -> None:
    """The module imports without psycopg (the CLI imports it only for a postgresql:// URL);
    opening a store then says which extra to install."""
    code = ("import sys\nfor m in ('psycopg', 'psycopg_pool', 'pgvector.psycopg'): sys.modules[m] = None\n"
            "from faceprint.errors import MissingDependencyError\n"
            "from faceprint.gallery.storage.postgres import PostgresStore\n"
            "try:\n    PostgresStore('postgresql://u@/db')\nexcept MissingDependencyError as exc:\n"
            "    print(exc.code, exc.details['extra'], exc)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("missing_dependency postgres") and "pip install 'faceprint[postgres]'" in done.stdout


def test_a_keyring_id_from_the_database_cannot_leave_the_keyring_folder(postgres_url: str, tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FACEPRINT_KEYRING_DIR", str(tmp_path / "keyrings"))
    store = PostgresStore(postgres_url, master_key=MasterKey.generate(), encrypt=True)
    store.close()
    raw(postgres_url, f"UPDATE {SCHEMA}.meta SET value = %s WHERE key = 'keyring_id' RETURNING key", ("../../elsewhere",))
    reopened = PostgresStore(postgres_url, master_key=MasterKey.generate())
    try:
        with pytest.raises(GalleryError, match="not a keyring id"):
            reopened.unlock()
    finally:
        reopened.close()
