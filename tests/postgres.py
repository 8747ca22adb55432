"""A real PostgreSQL with pgvector for the tests, started by the test session (no Docker).

``postgres_server`` (session): a PostgreSQL 16 + pgvector server from the ``pgserver`` package,
its data in a temporary folder, listening on a Unix socket only, stopped and removed when the
session ends. ``postgres_url`` (function): the URL of a fresh, empty database, copied from a
template database that already has the ``vector`` extension (a copy takes milliseconds), dropped
after the test. Without ``pgserver`` every test that asks for them skips, naming the install
command.
"""

from __future__ import annotations

import itertools
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest

TEMPLATE_DB = "faceprint_template"


class PostgresServer:
    """A running server: URLs of its databases, and fresh databases made on demand."""

    def __init__(self, server: Any, uri: str) -> None:
        self.server = server
        self.uri = uri  # postgresql://postgres:@/postgres?host=/tmp/...
        self._names = itertools.count(1)

    def url(self, database: str, password: str | None = None) -> str:
        """The URL of ``database`` on this server (with a password, for masking tests: the
        socket's trust authentication ignores it)."""
        parts = urlsplit(self.uri)
        user = parts.username or "postgres"
        netloc = f"{user}:{password}@" if password else f"{user}@"
        return urlunsplit((parts.scheme, netloc, f"/{database}", parts.query, ""))

    def execute(self, sql: str) -> None:
        """One statement on the ``postgres`` database, outside any transaction."""
        import psycopg

        with psycopg.connect(self.url("postgres"), autocommit=True) as conn:
            conn.execute(sql)  # type: ignore[arg-type]

    def create_database(self) -> str:
        name = f"fp_test_{next(self._names)}"
        self.execute(f"CREATE DATABASE {name} TEMPLATE {TEMPLATE_DB}")
        return name

    def drop_database(self, name: str) -> None:
        self.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    try:
        import pgserver
        import psycopg  # noqa: F401
    except ImportError as exc:
        pytest.skip(f"needs a PostgreSQL with pgvector for the tests: pip install pgserver 'faceprint[postgres]' ({exc})")
    # A short path of its own: the Unix socket lives in it (socket paths are limited to ~100 bytes).
    data = Path(tempfile.mkdtemp(prefix="fp-pg-"))
    server = pgserver.get_server(data, cleanup_mode="stop")
    try:
        pg = PostgresServer(server, server.get_uri())
        # A throwaway server: durability off makes CREATE DATABASE and each commit ~5x faster.
        for setting in ("fsync", "synchronous_commit", "full_page_writes"):
            pg.execute(f"ALTER SYSTEM SET {setting} = off")
        pg.execute("SELECT pg_reload_conf()")
        pg.execute(f"DROP DATABASE IF EXISTS {TEMPLATE_DB}")
        pg.execute(f"CREATE DATABASE {TEMPLATE_DB}")
        import psycopg

        with psycopg.connect(pg.url(TEMPLATE_DB), autocommit=True) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
        yield pg
    finally:
        server.cleanup()
        shutil.rmtree(data, ignore_errors=True)


@pytest.fixture()
def postgres_url(postgres_server: PostgresServer) -> Iterator[str]:
    """A fresh empty database (with the vector extension), dropped after the test."""
    name = postgres_server.create_database()
    yield postgres_server.url(name)
    postgres_server.drop_database(name)
