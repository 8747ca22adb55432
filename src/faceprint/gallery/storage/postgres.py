"""A gallery in PostgreSQL with the pgvector extension: many processes on many machines, one
gallery, searched in the database.

``PostgresStore("postgresql://user@host/db")`` (the ``postgres`` extra: psycopg 3, psycopg-pool,
pgvector) keeps the same tables as :mod:`~faceprint.gallery.storage.sqlite`, in a schema of their
own (:mod:`~faceprint.gallery.storage.pg_schema`), and answers
:meth:`~faceprint.gallery.storage.base.SearchingStore.search_faces` itself: an enrolment or a
forget committed by one process is seen by every other process's next search, with no index kept
in memory anywhere.

**Connections and transactions.** A pool of connections (``pool_size``); a thread inside
``with store.transaction():`` keeps one connection until the outermost block ends (inner blocks
are savepoints), other threads use other connections. Every write transaction first takes one
transaction-level advisory lock (:data:`~faceprint.gallery.storage.pg_schema.WRITE_LOCK`): one
writer at a time, as SQLite's ``BEGIN IMMEDIATE``. That keeps SQLite's semantics exactly
(duplicate checks, merges, renames never race) and makes the change log's sequence numbers
commit in order, so a reader following it never skips an entry a slower transaction commits
later. Reads take no lock.

**Search.** Templates are unit vectors in a pgvector ``vector(DIM)`` column (DIM is fixed when the
gallery is pinned to a model) with an HNSW index over the inner product (``vector_ip_ops``;
similarity = ``-(a <#> b)``). One SQL query per query vector, the metadata filter (``where``)
inside it (``JOIN subjects ... WHERE``: typed JSONB comparisons with SQLite's semantics).
pgvector 0.6 filters *after* the index scan, so a selective filter leaves too few rows; hence
the rule (:data:`EXACT_SEARCH_BELOW`): when fewer than that many templates match, or when the
index returns fewer rows than ``min(k, matching)``, the query runs exactly (a scan ordered by an
expression the index cannot serve). ``hnsw.ef_search`` is set per query to
:func:`ef_search_for` (``max(200, 2k)``), or to :data:`FILTERED_EF_SEARCH` (1000) with a filter,
and the index walk is forced (``enable_sort`` off: the planner cannot estimate a JSONB filter).

**Encrypted at rest** (``encrypt=True``; see :mod:`faceprint.gallery.crypto`): templates and
thumbnails are sealed (``bytea``) under per-subject data keys, the vector column stays NULL and
:attr:`PostgresStore.searches_in_database` is false: the :class:`~faceprint.gallery.Gallery`
then keeps its in-process index of the decrypted templates, following the change log, as with
SQLite. The keyring is a *file* (:class:`~faceprint.gallery.storage.keyring.Keyring`), never in
the database, so the database's WAL, replicas and backups hold ciphertext only: ``keyring=`` or
``$FACEPRINT_KEYRING_DIR/<keyring id>.keys`` (default: ``keyrings/`` in the user data folder).

**What forgetting a subject removes, and when** (PostgreSQL never overwrites data in place):

* *at commit*: its subject, template, thumbnail, person and photo-face rows are deleted in one
  transaction; no query, search or other process sees them from then on. In an encrypted
  gallery its data keys are destroyed in the keyring file *before* the rows are deleted.
* *at the VACUUM that follows* (run at once, best effort, on the affected tables): the dead row
  versions and their HNSW / B-tree index entries are removed and their space freed for reuse. A
  transaction still open elsewhere (an old snapshot) can hold them back until the next VACUUM
  or autovacuum.
* *not by faceprint*: the write-ahead log keeps the deleted rows' bytes until its segments are
  recycled (after checkpoints; longer when WAL is archived or replicated), base backups and
  replicas keep theirs as long as they are kept, and a freed page's bytes are not guaranteed to
  be overwritten until PostgreSQL reuses the space.

So on a plain gallery a forgotten template's vector can outlive the forget in WAL segments,
archives, backups and unreused page space. Encryption at rest is the real guarantee: once the
data key is destroyed, every such copy is ciphertext that nothing can decrypt.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

import numpy as np

from faceprint import settings
from faceprint.errors import (
    DuplicateImageError,
    GalleryError,
    GalleryNotFoundError,
    InvalidArgumentError,
    MissingDependencyError,
    ModelMismatchError,
    SubjectExistsError,
    SubjectNotFoundError,
    import_optional,
)
from faceprint.gallery.crypto import (
    SCHEME,
    MasterKey,
    master_key_from_settings,
    photo_face_aad,
    seal,
    template_aad,
)
from faceprint.gallery.storage.base import (
    EncryptionInfo,
    FaceMatches,
    FloatArray,
    IdArray,
    NewFace,
    NewPhotoFace,
    PhotoAssignment,
    TemplateVectors,
    box_to_json,
    check_filter_keys,
    check_subject_name,
    json_merge_patch,
    metadata_json,
    utc_now,
    vectors_from_bytes,
)
from faceprint.gallery.storage.keyring import (
    Keyring,
    open_templates,
    require_master_key,
    seal_photo_face,
)
from faceprint.gallery.storage.locate import masked_url, url_secrets
from faceprint.gallery.storage.pg_schema import (
    MIGRATION_LOCK,
    PG_MIGRATIONS,
    PG_SCHEMA_VERSION,
    SCHEMA,
    TABLES,
    WRITE_LOCK,
    hnsw_statements,
)
from faceprint.gallery.storage.sql import SqlStore
from faceprint.gallery.types import ApiKey, Subject

try:  # the ``postgres`` extra; PostgresStore() names it when missing
    import psycopg
    from pgvector.psycopg import register_vector
    from psycopg_pool import ConnectionPool, PoolTimeout
except ImportError as missing:  # pragma: no cover - exercised without the extra
    psycopg = None  # type: ignore[assignment]
    #: Which of the extra's modules is missing (each is checked again, by name, when a store opens).
    _EXTRA_MODULES = ("psycopg", "pgvector.psycopg", "psycopg_pool")
    _IMPORT_FAILURE = str(missing)

logger = logging.getLogger(__name__)

#: A search runs exactly (every matching template compared) when fewer templates than this
#: match its filter (or the gallery holds fewer): at 20,000 512-D templates that costs about
#: 50 ms and has recall 1, while HNSW (about 8 ms at ef_search 40, recall@1 0.95 on 100k
#: fr-feature-shaped templates) filters after its scan and misses matches of a selective filter
#: (bench/README.md, "PostgreSQL: vectors inline, and the exact search"). Above it the index
#: answers, and a query it leaves short of ``min(k, matching)`` rows is run exactly too.
EXACT_SEARCH_BELOW = 20_000
#: ``hnsw.ef_search`` per query: ``max(MIN_EF_SEARCH, 2 * k)``, at most pgvector's maximum. 200:
#: recall@1 0.994 at 100k templates (40: 0.95, 100: 0.985; 1M: 0.91, index m 16), p50 28 ms on
#: 2 busy cores (bench/README.md, "pgvector in PostgreSQL against the in-process index").
MIN_EF_SEARCH = 200
MAX_EF_SEARCH = 1000
#: A filtered search the index answers (at least EXACT_SEARCH_BELOW templates match) walks the
#: graph this far: pgvector 0.6 filters after the walk, so it sees about ef_search x (the
#: filter's share) matching candidates; at 1000 (its maximum) a 5% filter's answers are complete
#: (recall@10 0.98) and a 50% one's 0.996, for ~80-120 ms a query at 100k.
FILTERED_EF_SEARCH = MAX_EF_SEARCH
#: Seconds to wait for a connection (opening, and from the pool).
CONNECT_TIMEOUT_S = 10
#: VACUUM the affected tables after a delete commits (what makes a forget leave the heap and
#: the indexes; see the module docstring).
VACUUM_AFTER_DELETE = True

# A JSON string in jsonb cannot hold U+0000, which SQLite (and so every other store) can: such
# text is kept with U+0000 as _ESC "0" (and _ESC itself as _ESC _ESC), undone when read.
_ESC = "\ue000"

Connection = Any  # psycopg.Connection[tuple[Any, ...]] (psycopg is optional at import time)


def ef_search_for(k: int) -> int:
    """The ``hnsw.ef_search`` a query for ``k`` neighbours runs with."""
    return min(MAX_EF_SEARCH, max(MIN_EF_SEARCH, 2 * k))


def _passwords(url: str) -> list[str]:
    """The secrets in ``url`` (:func:`~faceprint.gallery.storage.locate.url_secrets`), as
    written, decoded and re-encoded (to scrub them from any text, the driver's included)."""
    found: list[str] = []
    for secret in url_secrets(url):
        found += [secret, unquote(secret), quote(unquote(secret), safe="")]
    return sorted({p for p in found if p}, key=len, reverse=True)


class PostgresStore(SqlStore):
    """A :class:`~faceprint.gallery.storage.base.GalleryStore` and
    :class:`~faceprint.gallery.storage.base.SearchingStore` in a PostgreSQL database with pgvector.

    ``create=False``: :class:`GalleryNotFoundError` when the database holds no gallery (nothing
    is created). ``master_key`` / ``encrypt``: as :class:`~faceprint.gallery.storage.sqlite.SQLiteStore`;
    ``keyring``: the keyring file of an encrypted gallery (default: ``<keyring id>.keys`` in
    :func:`faceprint.settings.keyring_dir`). ``pool_size``: connections at most."""

    PLACEHOLDER = "%s"
    METADATA_TEXT = "s.metadata::text"
    SEALED_EMBEDDING = "sealed_embedding"  # (the vector column is NULL then)
    CODE_POINT_ORDER = ' COLLATE "C"'  # as SQLite sorts (the database's collation may not)

    def __init__(
        self,
        url: str,
        *,
        create: bool = True,
        master_key: MasterKey | None = None,
        keyring: str | os.PathLike[str] | None = None,
        encrypt: bool = False,
        pool_size: int = 4,
    ) -> None:
        if psycopg is None:  # raises MissingDependencyError naming the module and the extra
            for module in _EXTRA_MODULES:
                import_optional(module, "postgres")
            raise MissingDependencyError(f"the PostgreSQL driver could not be loaded ({_IMPORT_FAILURE}); it comes with "
                                         "faceprint's 'postgres' extra: pip install 'faceprint[postgres]'",
                                         details={"extra": "postgres", "reason": _IMPORT_FAILURE})
        if not isinstance(url, str) or not url.lower().startswith(settings.DATABASE_URL_SCHEMES):
            # (a key=value connection string is refused: its password could not be masked)
            raise InvalidArgumentError("a PostgreSQL gallery is named by a postgresql://user@host/database URL")
        self._url = url
        self._location = masked_url(url)
        self._secrets = _passwords(url)
        self._master = master_key
        self._keyring_path = Path(keyring) if keyring is not None else None
        self._keyring: Keyring | None = None
        self._keyring_id: str | None = None
        self._lock = threading.RLock()  # the keyring and the cached keyring id
        self._local = threading.local()  # per thread: the connection of its open transaction
        self._prepare(create)
        self._pool = ConnectionPool(
            url, min_size=1, max_size=max(1, int(pool_size)), open=False, configure=self._configure,
            kwargs={"autocommit": True, "connect_timeout": CONNECT_TIMEOUT_S}, timeout=CONNECT_TIMEOUT_S,
            check=ConnectionPool.check_connection, name="faceprint-gallery",
        )
        try:
            with self._errors():
                self._pool.open(wait=True, timeout=CONNECT_TIMEOUT_S)
        except BaseException:
            self._pool.close()
            raise
        logger.info("gallery %s: opened (PostgreSQL, pool of %d)", self._location, pool_size)
        if encrypt:
            try:
                self._enable_encryption()
            except BaseException:
                self.close()
                raise

    # --- plumbing ---------------------------------------------------------------------------
    def _scrub(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text.replace(self._url, self._location)

    @contextmanager
    def _errors(self) -> Iterator[None]:
        """Driver errors as faceprint's, never with the password in them."""
        where = {"location": self._location}
        try:
            yield
        except psycopg.OperationalError as exc:
            message = self._scrub(str(exc).strip())
            if "does not exist" in message and "database" in message:
                raise GalleryNotFoundError(f"no database at {self._location}: {message}", details=where) from None
            raise GalleryError(f"cannot reach the gallery database {self._location}: {message}", details=where) from None
        except PoolTimeout as exc:
            raise GalleryError(f"no connection to the gallery database {self._location} within "
                               f"{CONNECT_TIMEOUT_S} s: {self._scrub(str(exc))}", details=where) from None
        except psycopg.DataError as exc:  # e.g. text with U+0000, a vector of the wrong size
            raise InvalidArgumentError(f"the gallery database refused a value: {self._scrub(str(exc).strip())}",
                                       details=where) from None
        except psycopg.Error as exc:
            raise GalleryError(f"gallery database {self._location}: {self._scrub(str(exc).strip())}",
                               details=where) from None

    def _configure(self, conn: Connection) -> None:
        """Each new pool connection: faceprint's schema first on the search path, vectors as numpy."""
        conn.execute("SELECT set_config('search_path', %s || ', ' || current_setting('search_path'), false)", (SCHEMA,))
        register_vector(conn)

    def _prepare(self, create: bool) -> None:
        """Check (``create=False``) or make the schema and bring it to :data:`PG_SCHEMA_VERSION`,
        one migration a transaction, under :data:`MIGRATION_LOCK`."""
        where = {"location": self._location}
        with self._errors(), psycopg.connect(self._url, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S) as conn:
            found = conn.execute("SELECT to_regclass(%s)", (f"{SCHEMA}.meta",)).fetchone()
            if not create and (found is None or found[0] is None):
                raise GalleryNotFoundError(
                    f"no gallery in the database {self._location} (nothing was created; open it with create=True to "
                    "make a new one)", details=where)
            while True:
                with conn.transaction():
                    conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
                    self._ensure_extension(conn)
                    if _value_in(conn, "SELECT to_regnamespace(%s)", SCHEMA) is None:
                        conn.execute(f"CREATE SCHEMA {SCHEMA}")  # (only then: it needs the CREATE privilege)
                    conn.execute("SELECT set_config('search_path', %s || ', ' || current_setting('search_path'), true)",
                                 (SCHEMA,))
                    version = self._schema_version_in(conn)
                    if version > PG_SCHEMA_VERSION:
                        raise GalleryError(
                            f"{self._location} has schema version {version}; this faceprint reads up to "
                            f"{PG_SCHEMA_VERSION}", details={**where, "schema_version": version})
                    pending = [m for m in PG_MIGRATIONS if m.version > version]
                    if not pending:
                        return
                    step = pending[0]
                    for statement in step.statements:
                        conn.execute(statement)
                    if version == 0:
                        self._set_meta_in(conn, "created_at", utc_now())
                    self._set_meta_in(conn, "schema_version", str(step.version))
                logger.info("gallery %s: schema %d -> %d (%s)", self._location, version, step.version, step.description)

    def _schema_version_in(self, conn: Connection) -> int:
        if conn.execute("SELECT to_regclass(%s)", (f"{SCHEMA}.meta",)).fetchone()[0] is None:
            return 0
        value = self._meta_in(conn, "schema_version")
        return int(value) if value is not None else 0

    def _ensure_extension(self, conn: Connection) -> None:
        if conn.execute("SELECT 1 FROM pg_extension WHERE extname = 'vector'").fetchone():
            return
        try:
            with conn.transaction():
                conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
        except psycopg.errors.InsufficientPrivilege:
            raise GalleryError(
                f"the database {self._location} lacks the pgvector extension and this role may not create it: ask its "
                "administrator to run CREATE EXTENSION vector; in it", details={"location": self._location}) from None
        except (psycopg.errors.UndefinedFile, psycopg.errors.FeatureNotSupported) as exc:
            raise GalleryError(f"the PostgreSQL server of {self._location} has no pgvector extension installed: "
                               f"{self._scrub(str(exc).strip())}", details={"location": self._location}) from None
        logger.info("gallery %s: created the pgvector extension", self._location)

    def _conn(self) -> Connection | None:
        """This thread's connection while it is inside a transaction."""
        return getattr(self._local, "conn", None)

    @contextmanager
    def _write(self) -> Iterator[Connection]:
        """One write transaction (nested: a savepoint of the outer one). After-commit actions
        (key destruction, VACUUM) run once the outermost block has committed."""
        outer = self._conn()
        if outer is not None:
            # a savepoint rolled back takes its after-commit actions along (destroying a data key
            # its rolled-back rows no longer need would make the kept rows undecryptable)
            kept = len(self._local.after)
            try:
                with outer.transaction():
                    yield outer
            except BaseException:
                del self._local.after[kept:]
                raise
            return
        with self._errors(), self._pool.connection() as conn:
            self._local.conn, self._local.after, self._local.vacuum = conn, [], set()
            try:
                with conn.transaction():
                    conn.execute("SELECT pg_advisory_xact_lock(%s)", (WRITE_LOCK,))
                    yield conn
            finally:
                self._local.conn = None
                after: list[Callable[[], object]] = self._local.after
                vacuum: set[str] = self._local.vacuum
                self._local.after, self._local.vacuum = [], set()
            # reached only when the transaction committed
            for action in after:
                action()
            if vacuum:
                self._vacuum(conn, sorted(vacuum))

    def _after_commit(self, action: Callable[[], object]) -> None:
        self._local.after.append(action)

    def _erase_after_commit(self, *tables: str) -> None:
        """VACUUM ``tables`` once the transaction commits (rows were deleted from them)."""
        self._local.vacuum.update(tables)

    def _execute_many(self, db: Connection, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        with db.cursor() as cur:
            cur.executemany(sql, rows)

    def _json_from_db(self, text: str) -> Any:
        return _load_json(text)

    def _vector_from_db(self, value: Any) -> FloatArray:
        return np.asarray(value.to_numpy(), dtype=np.float32)

    @contextmanager
    def _snapshot(self) -> Iterator[Connection]:
        """A read-only transaction whose statements all see one snapshot (inside a write
        transaction: that transaction)."""
        outer = self._conn()
        if outer is not None:
            yield outer
            return
        with self._errors(), self._pool.connection() as conn, conn.transaction():
            conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            self._local.conn = conn
            try:
                yield conn
            finally:
                self._local.conn = None

    def _query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        conn = self._conn()
        if conn is not None:
            return list(conn.execute(sql, params).fetchall())
        with self._errors(), self._pool.connection() as c:
            return list(c.execute(sql, params).fetchall())

    def _value(self, sql: str, params: Sequence[Any] = ()) -> Any:
        rows = self._query(sql, params)
        return rows[0][0] if rows else None

    def _meta(self, key: str) -> str | None:
        value = self._value("SELECT value FROM meta WHERE key = %s", (key,))
        return None if value is None else str(value)

    def _vacuum(self, conn: Connection, tables: Sequence[str]) -> None:
        """Best effort: remove deleted rows' dead versions and index entries now (see the
        module docstring); a failure is logged, never raised (the delete has committed)."""
        if not VACUUM_AFTER_DELETE:
            return
        try:
            conn.execute(f"VACUUM {', '.join(tables)}")
        except psycopg.Error as exc:
            logger.warning("gallery %s: VACUUM after a delete failed: %s", self._location, self._scrub(str(exc).strip()))

    @property
    def location(self) -> str:
        return self._location

    def size_bytes(self) -> int:
        return int(self._value(
            "SELECT COALESCE(SUM(pg_total_relation_size(c.oid)), 0) FROM pg_class c JOIN pg_namespace n"
            " ON n.oid = c.relnamespace WHERE n.nspname = %s AND c.relname = ANY(%s) AND c.relkind = 'r'",
            (SCHEMA, list(TABLES))) or 0)

    def data_version(self) -> int:
        """The change log's last position: every change to the set of templates, by any
        process, is logged in its transaction (and the log's positions commit in order)."""
        return int(self._value("SELECT COALESCE(MAX(seq), 0) FROM changes") or 0)

    def schema_version(self) -> int:
        return int(self._meta("schema_version") or 0)

    def close(self) -> None:
        with self._lock:
            if self._keyring is not None:
                self._keyring.close()
                self._keyring = None
        self._pool.close()

    # --- encryption at rest -----------------------------------------------------------------
    def _keyring_id_now(self) -> str | None:
        if self._keyring_id is None:  # (once encrypted, a gallery stays so: cache it)
            self._keyring_id = self._meta("keyring_id")
        return self._keyring_id

    def keyring_path(self, keyring_id: str) -> Path:
        """Where this gallery's keyring file is: ``keyring=``, else in :func:`settings.keyring_dir`."""
        if self._keyring_path is not None:
            return self._keyring_path
        try:  # (read from the database: it must not steer the file name out of keyring_dir)
            uuid.UUID(keyring_id)
        except ValueError:
            raise GalleryError(f"the gallery {self._location} names a keyring that is not a keyring id: "
                               f"{keyring_id[:80]!r}") from None
        return settings.keyring_dir() / f"{keyring_id}.keys"

    def _ring(self) -> Keyring | None:
        keyring_id = self._keyring_id_now()
        if keyring_id is None:
            return None
        with self._lock:
            if self._keyring is None:
                master = require_master_key(self._master or master_key_from_settings(), self._location)
                self._keyring = Keyring(self.keyring_path(keyring_id), keyring_id, master)
                self._master = master
            return self._keyring

    @property
    def searches_in_database(self) -> bool:
        """False when encrypted at rest: the database then holds no vector to search."""
        return self._keyring_id_now() is None

    def encryption(self) -> EncryptionInfo | None:
        keyring_id = self._keyring_id_now()
        if keyring_id is None:
            return None
        with self._lock:
            fingerprint = self._keyring.master_fingerprint if self._keyring is not None else None
        return EncryptionInfo(self._meta("encryption") or SCHEME, str(self.keyring_path(keyring_id)), keyring_id,
                              fingerprint)

    def _enable_encryption(self) -> None:
        """A new keyring and a data key per subject and photo face; every vector and thumbnail
        sealed in one transaction, then the tables VACUUMed (see the module docstring for what
        that does and does not erase)."""
        if self._keyring_id_now() is not None:
            self._ring()  # already encrypted: check the key given
            return
        master = require_master_key(self._master or master_key_from_settings(), self._location)
        keyring_id = str(uuid.uuid4())
        path = self.keyring_path(keyring_id)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise GalleryError(f"cannot create the keyring folder {path.parent}: {exc.strerror or exc}",
                               details={"keyring": str(path)}) from None
        ring = Keyring.create(path, keyring_id, master)
        faces = photos = 0
        try:
            with self._write() as db:
                if self._meta_in(db, "keyring_id") is not None:  # another process was first
                    raise GalleryError(f"the gallery {self._location} was encrypted meanwhile by another process")
                subjects = [int(r[0]) for r in db.execute("SELECT id FROM subjects ORDER BY id").fetchall()]
                for subject_id, (key_id, dek) in zip(subjects, ring.new_keys(len(subjects))):
                    db.execute("UPDATE subjects SET key_id = %s WHERE id = %s", (key_id, subject_id))
                    rows = db.execute("SELECT id, image_sha256, embedding, thumbnail FROM faces WHERE subject_id = %s",
                                      (subject_id,)).fetchall()
                    with db.cursor() as cur:
                        cur.executemany(
                            "UPDATE faces SET embedding = NULL, sealed_embedding = %s, thumbnail = %s WHERE id = %s", [
                                (seal(dek, _vector_bytes(emb), template_aad(key_id, sha, "embedding")),
                                 None if thumb is None else seal(dek, bytes(thumb), template_aad(key_id, sha, "thumbnail")),
                                 fid) for fid, sha, emb, thumb in rows])
                    faces += len(rows)
                photo = db.execute("SELECT id, image_sha256, face_index, embedding, thumbnail FROM photo_faces").fetchall()
                photos = len(photo)
                with db.cursor() as cur:
                    cur.executemany("UPDATE photo_faces SET key_id = %s, embedding = %s, thumbnail = %s WHERE id = %s", [
                        (key_id, seal(dek, bytes(emb), photo_face_aad(key_id, sha, index, "embedding")),
                         None if thumb is None else seal(dek, bytes(thumb), photo_face_aad(key_id, sha, index, "thumbnail")),
                         pid)
                        for (pid, sha, index, emb, thumb), (key_id, dek) in zip(photo, ring.new_keys(len(photo)))])
                self._set_meta_in(db, "encryption", SCHEME)
                self._set_meta_in(db, "keyring_id", keyring_id)
                self._erase_after_commit("faces", "photo_faces")
        except BaseException:
            ring.close()
            path.unlink(missing_ok=True)  # its keys never protected committed data
            raise
        with self._lock:
            self._keyring, self._master, self._keyring_id = ring, master, keyring_id
        logger.info("gallery %s: encrypted at rest (%d template(s), %d photo face(s); keyring %s, master key %s)",
                    self._location, faces, photos, path, master.fingerprint)

    def _seal_template(self, ring: Keyring, key_id: str, sha: str, field: str, data: bytes | None) -> bytes | None:
        if data is None:
            return None
        return seal(ring.data_key(key_id), data, template_aad(key_id, sha, field))

    # --- model pin --------------------------------------------------------------------------

    def pin_model(self, model_id: str, dim: int) -> None:
        """Pin the gallery; the first pin gives the vector column its dimension and builds the
        HNSW index (:func:`~faceprint.gallery.storage.pg_schema.hnsw_statements`)."""
        with self._write() as db:
            current = self._meta_in(db, "model_id")
            if current is None:
                self._set_meta_in(db, "model_id", model_id)
                self._set_meta_in(db, "embedding_dim", str(int(dim)))
                for statement in hnsw_statements(int(dim)):
                    db.execute(statement)
                logger.info("gallery %s: pinned to %s (%d-D vectors, HNSW index)", self._location, model_id, dim)
            elif current != model_id:
                raise ModelMismatchError(f"gallery {self._location} holds templates of {current}, not {model_id}",
                                         details={"gallery_model": current, "model": model_id})

    # --- subjects and templates -------------------------------------------------------------
    def add_face(self, subject: str, metadata: dict[str, Any] | None, face: NewFace) -> tuple[int, int]:
        name = check_subject_name(subject)
        now = utc_now()
        vector = np.ascontiguousarray(face.embedding, dtype=np.float32).reshape(-1)
        with self._write() as db:
            if db.execute("SELECT 1 FROM faces WHERE image_sha256 = %s", (face.image_sha256,)).fetchone():
                raise DuplicateImageError("this exact image is already enrolled", details={"image_sha256": face.image_sha256})
            ring = self._ring()
            row = db.execute("SELECT id, metadata::text FROM subjects WHERE name = %s", (name,)).fetchone()
            if row is None:
                metadata_json(metadata)  # the checks every store makes
                subject_id = int(db.execute(
                    "INSERT INTO subjects(name, metadata, created_at, updated_at, key_id) VALUES (%s, %s::jsonb, %s, %s, %s)"
                    " RETURNING id", (name, _dump_json(metadata or {}), now, now, ring.new_key()[0] if ring else None),
                ).fetchone()[0])
            else:
                subject_id = int(row[0])
                if metadata:
                    metadata_json(metadata)
                    merged = json_merge_patch(_load_json(row[1]), metadata)
                    db.execute("UPDATE subjects SET metadata = %s::jsonb, updated_at = %s WHERE id = %s",
                               (_dump_json(merged), now, subject_id))
                else:
                    db.execute("UPDATE subjects SET updated_at = %s WHERE id = %s", (now, subject_id))
            if ring is not None:
                key_id = self._subject_key(db, ring, subject_id)
                plain, sealed = None, self._seal_template(ring, key_id, face.image_sha256, "embedding", vector.tobytes())
                thumbnail = self._seal_template(ring, key_id, face.image_sha256, "thumbnail", face.thumbnail)
            else:
                plain, sealed, thumbnail = vector, None, face.thumbnail
            face_id = int(db.execute(
                "INSERT INTO faces(subject_id, embedding, sealed_embedding, quality, box, detection_score, image_sha256,"
                " source, thumbnail, created_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING id",
                (subject_id, plain, sealed, face.quality, box_to_json(face.box), face.detection_score,
                 face.image_sha256, face.source, thumbnail, now),
            ).fetchone()[0])
            db.execute("INSERT INTO changes(op, face_id) VALUES ('add', %s)", (face_id,))
        return subject_id, face_id

    def create_subject(self, name: str, metadata: dict[str, Any] | None = None) -> Subject:
        name = check_subject_name(name)
        now = utc_now()
        with self._write() as db:
            if db.execute("SELECT 1 FROM subjects WHERE name = %s", (name,)).fetchone():
                raise SubjectExistsError(f"a subject named {name!r} already exists", details={"subject": name})
            metadata_json(metadata)
            ring = self._ring()
            db.execute("INSERT INTO subjects(name, metadata, created_at, updated_at, key_id) VALUES"
                       " (%s, %s::jsonb, %s, %s, %s)",
                       (name, _dump_json(metadata or {}), now, now, ring.new_key()[0] if ring else None))
            return self.subject(name)

    def update_metadata(self, name: str, metadata: dict[str, Any]) -> Subject:
        metadata_json(metadata)
        with self._write() as db:
            cur = db.execute("UPDATE subjects SET metadata = %s::jsonb, updated_at = %s WHERE name = %s",
                             (_dump_json(metadata or {}), utc_now(), name))
            if cur.rowcount == 0:
                raise SubjectNotFoundError(f"no subject named {name!r} in the gallery", details={"subject": name})
            return self.subject(name)

    def _merge_metadata(self, db: Connection, source: Subject, target: Subject) -> None:
        db.execute("UPDATE subjects SET metadata = %s::jsonb, updated_at = %s WHERE id = %s",
                   (_dump_json(json_merge_patch(source.metadata, target.metadata)), utc_now(), target.id))

    # --- what an in-process index is built from (encrypted galleries) -----------------------
    def read_templates(self, face_ids: Sequence[int]) -> TemplateVectors:
        ids = sorted({int(i) for i in face_ids})
        ring = self._ring()
        if ring is not None:
            sealed = self._query(self._sealed_templates_sql() + " WHERE f.id = ANY(%s) ORDER BY f.id", (ids,))
            return vectors_from_bytes(open_templates(ring, sealed, self._location), self._dim())
        return self._vectors_from_db(self._query("SELECT id, subject_id, embedding FROM faces WHERE id = ANY(%s) ORDER BY id", (ids,)),
                       self._dim())

    def face_ids_where(self, metadata: dict[str, Any]) -> IdArray:
        check_filter_keys(metadata)
        clause, params = filter_sql(metadata)
        rows = self._query(f"SELECT f.id FROM faces f JOIN subjects s ON s.id = f.subject_id WHERE {clause}"
                           " ORDER BY f.id", params)
        return np.array([r[0] for r in rows], dtype=np.int64)

    def subject_names(self, subject_ids: Sequence[int]) -> dict[int, str]:
        ids = sorted({int(i) for i in subject_ids})
        return {int(i): str(n) for i, n in self._query("SELECT id, name FROM subjects WHERE id = ANY(%s)", (ids,))}

    # --- search in the database -------------------------------------------------------------
    def search_faces(self, queries: FloatArray, k: int, where: dict[str, Any] | None = None) -> FaceMatches:
        """The ``k`` most similar templates of each query (see the module docstring for when
        the HNSW index answers and when the search is exact)."""
        queries = np.ascontiguousarray(queries, dtype=np.float32)
        if queries.ndim == 1:
            queries = queries[None, :]
        n, k = len(queries), max(0, int(k))
        ids = np.full((n, k), -1, dtype=np.int64)
        sims = np.full((n, k), -np.inf, dtype=np.float32)
        subjects = np.full((n, k), -1, dtype=np.int64)
        if where:
            check_filter_keys(where)
        if n == 0 or k == 0:
            return FaceMatches(ids, sims, subjects)
        if not self.searches_in_database:
            raise InvalidArgumentError(f"the gallery {self._location} is encrypted at rest: its templates are searched "
                                       "in this process (Gallery keeps the index), not in the database")
        if where:
            clause, params = filter_sql(where)
            source = f"faces f JOIN subjects s ON s.id = f.subject_id WHERE f.embedding IS NOT NULL AND {clause}"
        else:
            source, params = "faces f WHERE f.embedding IS NOT NULL", []
        ef_search = FILTERED_EF_SEARCH if where else ef_search_for(k)
        with self._snapshot() as db:
            # (one round trip: this transaction's ef_search, and how many templates match, counted
            # up to EXACT_SEARCH_BELOW -- not counted without a filter when the table's statistics
            # say it is far larger: the count reads up to 20,000 rows, 3x an index walk's time)
            matching = int(db.execute(
                "SELECT set_config('hnsw.ef_search', %s, true), CASE WHEN %s AND (SELECT reltuples FROM pg_class"
                " WHERE oid = 'faces'::regclass) >= 2 * %s THEN %s ELSE"
                f" (SELECT COUNT(*) FROM (SELECT 1 FROM {source} LIMIT %s) m) END",
                (str(ef_search), not where, EXACT_SEARCH_BELOW, EXACT_SEARCH_BELOW, *params,
                 EXACT_SEARCH_BELOW)).fetchone()[1])
            rows: list[int] = list(range(n))
            found: dict[int, list[tuple[Any, ...]]] = {}
            if matching >= EXACT_SEARCH_BELOW:
                # The walk is forced: without statistics on a JSONB filter the planner guesses
                # its share, and may sort every row where the index would answer.
                db.execute("SELECT set_config('enable_sort', 'off', true)")
                found = _batch(db, _search_sql(source, exact=False), queries, rows, params, k)
                db.execute("SELECT set_config('enable_sort', 'on', true)")
                rows = [r for r in rows if len(found.get(r, [])) < min(k, matching)]
                if rows:
                    logger.debug("gallery %s: %d of %d queries short from the index; searching them exactly",
                                 self._location, len(rows), n)
            if rows:
                found.update(_batch(db, _search_sql(source, exact=True), queries, rows, params, k))
        for row, hits in found.items():
            for col, (face_id, subject_id, similarity) in enumerate(hits[:k]):
                ids[row, col], subjects[row, col], sims[row, col] = face_id, subject_id, similarity
        return FaceMatches(ids, sims, subjects)

    # --- people from photos -----------------------------------------------------------------

    def add_photo(self, path: str, image_sha256: str, faces: Sequence[NewPhotoFace]) -> bool:
        now = utc_now()
        if len({f.face_index for f in faces}) != len(faces):
            raise InvalidArgumentError("two faces of one photo share a face index")
        with self._write() as db:
            if db.execute("SELECT 1 FROM cluster_photos WHERE image_sha256 = %s", (image_sha256,)).fetchone():
                return False
            db.execute("INSERT INTO cluster_photos(image_sha256, path, faces, added_at) VALUES (%s, %s, %s, %s)",
                       (image_sha256, path, len(faces), now))
            ring = self._ring()
            # One data key per photo face: forgetting a person destroys exactly their faces' keys.
            keys: list[tuple[str | None, bytes | None]] = (list(ring.new_keys(len(faces))) if ring
                                                           else [(None, None)] * len(faces))

            with db.cursor() as cur:
                cur.executemany(
                    "INSERT INTO photo_faces(path, image_sha256, face_index, box, quality, usable, embedding, thumbnail,"
                    " created_at, key_id) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                    [(path, image_sha256, f.face_index, box_to_json(f.box), float(f.quality), bool(f.usable),
                      seal_photo_face(key, image_sha256, f.face_index, "embedding",
                                      np.ascontiguousarray(f.embedding, dtype="<f4").tobytes()),
                      seal_photo_face(key, image_sha256, f.face_index, "thumbnail", f.thumbnail), now, key[0])
                     for f, key in zip(faces, keys)])
        return True

    def create_person(self) -> int:
        now = utc_now()
        with self._write() as db:
            return int(db.execute("INSERT INTO people(created_at, updated_at) VALUES (%s, %s) RETURNING id",
                                  (now, now)).fetchone()[0])

    def assign_photo_faces(self, assignments: Sequence[PhotoAssignment]) -> None:
        if not assignments:
            return
        with self._write() as db, db.cursor() as cur:
            cur.executemany(
                "UPDATE photo_faces SET person_id = %s, assigned_by = %s, score = %s WHERE id = %s",
                [(a.person_id, a.assigned_by if a.person_id is not None else None,
                  a.score if a.person_id is not None else None, a.face_id) for a in assignments])
            now = utc_now()
            grown = sorted({a.person_id for a in assignments if a.person_id is not None})
            if grown:
                cur.execute("UPDATE people SET updated_at = %s WHERE id = ANY(%s)", (now, grown))

    def mark_not_person(self, face_id: int, person_id: int) -> None:
        with self._write() as db:
            db.execute("INSERT INTO not_person(face_id, person_id) VALUES (%s, %s) ON CONFLICT DO NOTHING",
                       (face_id, person_id))

    # --- API keys ---------------------------------------------------------------------------
    def add_api_key(self, record: ApiKey, key_sha256: str) -> bool:
        with self._write() as db:
            cur = db.execute(
                "INSERT INTO api_keys(key_id, name, key_sha256, scopes, created_at, last_used_at, revoked_at)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT (key_id) DO NOTHING",
                (record.key_id, record.name, key_sha256, json.dumps(list(record.scopes)), record.created_at,
                 record.last_used_at, record.revoked_at))
            return bool(cur.rowcount == 1)






def _search_sql(source: str, *, exact: bool) -> str:
    """One statement for a batch of query vectors (``%s::vector[]``), each the ``k`` nearest
    templates of ``source`` (a ``FROM ... WHERE`` over ``faces f``). ``exact``: ordered by an
    expression the HNSW index cannot serve (``+ 0``), so every matching row is compared."""
    order = "(f.embedding <#> q.v) + 0, f.id" if exact else "f.embedding <#> q.v"
    return ("SELECT q.n, m.id, m.subject_id, m.similarity FROM unnest(%s::vector[]) WITH ORDINALITY AS q(v, n)"
            f" CROSS JOIN LATERAL (SELECT f.id, f.subject_id, -(f.embedding <#> q.v) AS similarity FROM {source}"
            f" ORDER BY {order} LIMIT %s) m ORDER BY q.n, m.similarity DESC, m.id")


def _batch(db: Connection, sql: str, queries: FloatArray, rows: Sequence[int], params: Sequence[Any],
           k: int) -> dict[int, list[tuple[Any, ...]]]:
    """Run :func:`_search_sql` for ``queries[rows]``: each row's ``(face id, subject id, similarity)``."""
    out: dict[int, list[tuple[Any, ...]]] = {r: [] for r in rows}
    for n, face_id, subject_id, similarity in db.execute(sql, ([queries[r] for r in rows], *params, k)).fetchall():
        out[rows[int(n) - 1]].append((face_id, subject_id, similarity))
    return out


# --- metadata filters in SQL ----------------------------------------------------------------
def filter_sql(where: dict[str, Any]) -> tuple[str, list[Any]]:
    """A ``where`` filter (checked by :func:`check_filter_keys`) as a SQL condition on
    ``s.metadata`` (jsonb) and its parameters, with SQLite's semantics
    (:meth:`~faceprint.gallery.storage.sqlite.SQLiteStore.face_ids_where`): JSON null matches
    nothing; a string equals only that string; numbers compare by value, booleans as 0 and 1;
    an object or array equals one with the same members, keys in any order (1 and 1.0 differ).
    Strings, objects and arrays also add their containment (``@>``), which the GIN index on
    ``metadata`` can answer first."""
    clauses: list[str] = []
    params: list[Any] = []
    for key, value in where.items():
        if value is None:
            clauses.append("FALSE")
        elif isinstance(value, (dict, list)):
            # jsonb's text is canonical (key order) and keeps a number's scale: 1 and 1.0 differ
            clauses.append("(s.metadata @> %s::jsonb AND jsonb_typeof(s.metadata -> %s) = %s"
                           " AND (s.metadata -> %s)::text = (%s::jsonb)::text)")
            params += [_dump_json({key: value}), key, "object" if isinstance(value, dict) else "array", key,
                       _dump_json(value)]
        elif isinstance(value, str):
            clauses.append("(s.metadata @> %s::jsonb AND s.metadata -> %s = %s::jsonb)")
            params += [_dump_json({key: value}), key, _dump_json(value)]
        else:  # a number or a boolean
            clauses.append("(CASE jsonb_typeof(s.metadata -> %s) WHEN 'number' THEN (s.metadata ->> %s)::numeric"
                           " WHEN 'boolean' THEN (s.metadata -> %s)::boolean::int END) = %s::numeric")
            params += [key, key, key, str(int(value)) if isinstance(value, (bool, int)) else repr(float(value))]
    return (" AND ".join(clauses) or "TRUE"), params


# --- JSON as stored in jsonb ----------------------------------------------------------------
def _float_text(value: float) -> str:
    """A float as positional decimal text with a point: jsonb keeps a number's digits and
    scale but not its exponent, and a number read back without a point would be an int."""
    text = repr(float(value))
    if "e" in text or "E" in text:
        text = format(Decimal(text), "f")
    return text if "." in text else text + ".0"


def _escape(text: str) -> str:
    if "\x00" not in text and _ESC not in text:
        return text
    return text.replace(_ESC, _ESC + _ESC).replace("\x00", _ESC + "0")


def _unescape(text: str) -> str:
    if _ESC not in text:
        return text
    out: list[str] = []
    chars = iter(text)
    for ch in chars:
        if ch == _ESC:
            nxt = next(chars, "")
            out.append("\x00" if nxt == "0" else nxt)
        else:
            out.append(ch)
    return "".join(out)


def _dump_json(value: Any) -> str:
    """``value`` (checked JSON: :func:`check_json_value`) as the text given to jsonb."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _float_text(value)
    if isinstance(value, str):
        return json.dumps(_escape(value), ensure_ascii=False)
    if isinstance(value, dict):
        return "{" + ",".join(f"{json.dumps(_escape(str(k)), ensure_ascii=False)}:{_dump_json(v)}"
                              for k, v in value.items()) + "}"
    return "[" + ",".join(_dump_json(v) for v in value) + "]"


def _unescape_all(value: Any) -> Any:
    if isinstance(value, str):
        return _unescape(value)
    if isinstance(value, list):
        return [_unescape_all(v) for v in value]
    if isinstance(value, dict):
        return {_unescape(k): _unescape_all(v) for k, v in value.items()}
    return value


def _load_json(text: str) -> Any:
    value = json.loads(text)
    return _unescape_all(value) if _ESC in text else value


# --- rows -> records ------------------------------------------------------------------------
def _value_in(conn: Connection, sql: str, *params: Any) -> Any:
    row = conn.execute(sql, params).fetchone()
    return None if row is None else row[0]


def _vector_bytes(vector: Any) -> bytes:
    """A pgvector value (numpy array or ``Vector``) as little-endian float32 bytes."""
    array = vector.to_numpy() if hasattr(vector, "to_numpy") else vector
    return np.ascontiguousarray(array, dtype="<f4").tobytes()


__all__ = ["EXACT_SEARCH_BELOW", "MAX_EF_SEARCH", "MIN_EF_SEARCH", "PostgresStore", "ef_search_for", "filter_sql",
           "masked_url"]
