"""Shared fixtures: real throwaway PostgreSQL and Redis servers (tests/servers.py), no mocks.

- `postgres_server`, `redis_server`: one of each per test session, started on first use.
- `pg_dsn`: a fresh, empty PostgreSQL database per test (SQLAlchemy URL), dropped after.
- `redis_url`: the session's Redis, flushed before the test.
- `store_dsn`: runs a test once on SQLite and once on PostgreSQL (`postgres` marker).

A missing server binary fails the tests that need it, with the fix (`make install`); these
tests are never skipped. Tests using the PostgreSQL or Redis fixtures get the `postgres` or
`redis` marker automatically, so `-m "not postgres"` deselects them.

This module imports nothing from the application packages, so it loads before they exist.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import NoReturn

import pytest

from tests.servers import (
    PostgresServer,
    RedisServer,
    ServerError,
    ToolMissingError,
    start_postgres,
    start_redis,
)

_PG_FIXTURES = {"postgres_server", "pg_dsn"}
_REDIS_FIXTURES = {"redis_server", "redis_url"}


def _server_failed(what: str, error: ServerError) -> NoReturn:
    if isinstance(error, ToolMissingError):
        pytest.fail(f"{what}: {error}", pytrace=False)
    pytest.fail(f"{what} could not be started: {error}", pytrace=False)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A throwaway PostgreSQL cluster for the session; `.dsn` is its `bourse` database."""
    try:
        server = start_postgres()  # the system temp dir: pytest's is root-only under root
    except ServerError as error:
        _server_failed("PostgreSQL", error)
    with server:
        yield server


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A throwaway redis-server for the session (no persistence)."""
    try:
        server = start_redis(tmp_path_factory.mktemp("redis"))
    except ServerError as error:
        _server_failed("Redis", error)
    with server:
        yield server


@pytest.fixture
def pg_dsn(postgres_server: PostgresServer) -> Iterator[str]:
    """SQLAlchemy URL of a fresh, empty database (test_<uuid hex>), dropped after the test."""
    name = f"test_{uuid.uuid4().hex}"
    url = postgres_server.create_database(name)
    yield url
    postgres_server.drop_database(name)  # WITH (FORCE): leftover pooled connections are cut


@pytest.fixture
def redis_url(redis_server: RedisServer) -> Iterator[str]:
    """URL of the session's Redis, emptied (FLUSHALL) before the test."""
    with redis_server.client() as client:
        client.flushall()
    yield redis_server.url


@pytest.fixture(
    params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)],
)
def store_dsn(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The transactional store's SQLAlchemy URL: a file SQLite database, or a fresh
    PostgreSQL database. Tests using it run once per store."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/bourse.db"
    url: str = request.getfixturevalue("pg_dsn")
    return url


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        fixtures = set(getattr(item, "fixturenames", ()))
        if fixtures & _PG_FIXTURES and not item.get_closest_marker("postgres"):
            item.add_marker(pytest.mark.postgres)
        if fixtures & _REDIS_FIXTURES and not item.get_closest_marker("redis"):
            item.add_marker(pytest.mark.redis)
