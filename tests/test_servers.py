"""The throwaway servers of tests/servers.py really work (they are real servers)."""

from __future__ import annotations

import psycopg
import pytest
import redis
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from tests.servers import PostgresServer, RedisServer, free_port


def _conninfo(sqlalchemy_url: str) -> str:
    url = make_url(sqlalchemy_url)
    return psycopg.conninfo.make_conninfo(
        host=url.host, port=url.port, user=url.username, dbname=url.database
    )


def test_postgres_answers_version(postgres_server: PostgresServer) -> None:
    with psycopg.connect(_conninfo(postgres_server.dsn)) as conn:
        row = conn.execute("SELECT version()").fetchone()
    assert row is not None
    assert row[0].startswith("PostgreSQL")


def test_postgres_is_durable_and_bounded(postgres_server: PostgresServer) -> None:
    with postgres_server.connect("bourse") as conn:
        settings: dict[str, str] = dict(
            conn.execute(
                "SELECT name, setting FROM pg_settings"
                " WHERE name IN ('fsync', 'max_connections', 'listen_addresses')"
            ).fetchall()
        )
    assert settings == {"fsync": "on", "max_connections": "50", "listen_addresses": "127.0.0.1"}


def test_pg_dsn_is_a_sqlalchemy_url_of_a_fresh_database(pg_dsn: str) -> None:
    assert pg_dsn.startswith("postgresql+psycopg://bourse@127.0.0.1:")
    engine = create_engine(pg_dsn)
    try:
        with engine.begin() as conn:
            name = conn.execute(text("SELECT current_database()")).scalar_one()
            tables = conn.execute(
                text("SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'")
            ).scalar_one()
            conn.execute(text("CREATE TABLE t (id integer PRIMARY KEY)"))
            conn.execute(text("INSERT INTO t VALUES (1), (2)"))
        with engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM t")).scalar_one() == 2
    finally:
        engine.dispose()
    assert name == pg_dsn.rsplit("/", 1)[1]
    assert name.startswith("test_")
    assert tables == 0


def test_two_fresh_databases_are_distinct(postgres_server: PostgresServer) -> None:
    first = postgres_server.create_database()
    second = postgres_server.create_database()
    try:
        assert first != second
        with psycopg.connect(_conninfo(first), autocommit=True) as conn:
            conn.execute("CREATE TABLE only_in_first (id integer)")
        with psycopg.connect(_conninfo(second)) as conn:
            found = conn.execute("SELECT to_regclass('only_in_first')").fetchone()
        assert found == (None,)
    finally:
        for url in (first, second):
            postgres_server.drop_database(url.rsplit("/", 1)[1])


def test_drop_database_cuts_open_connections(postgres_server: PostgresServer) -> None:
    url = postgres_server.create_database()
    name = url.rsplit("/", 1)[1]
    conn = psycopg.connect(_conninfo(url))  # left open, as a forgotten pool would
    try:
        postgres_server.drop_database(name)
    finally:
        conn.close()
    with postgres_server.connect() as admin:
        row = admin.execute("SELECT count(*) FROM pg_database WHERE datname = %s", (name,))
        assert row.fetchone() == (0,)


def test_redis_streams(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    try:
        first = client.xadd("events", {"account": "A1", "seq": "1"})
        second = client.xadd("events", {"account": "A1", "seq": "2"})
        entries: list[tuple[str, dict[str, str]]] = client.xrange("events")  # type: ignore[assignment]
    finally:
        client.close()
    assert [entry_id for entry_id, _ in entries] == [first, second]
    assert [fields["seq"] for _, fields in entries] == ["1", "2"]


def test_redis_url_is_flushed_per_test(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    try:
        assert client.dbsize() == 0  # the stream written by the test above is gone
        client.set("leftover", "x")
    finally:
        client.close()


def test_redis_has_no_persistence(redis_server: RedisServer) -> None:
    with redis_server.client(decode_responses=True) as client:
        assert client.config_get("save") == {"save": ""}
        assert client.config_get("appendonly") == {"appendonly": "no"}
        assert client.config_get("bind") == {"bind": "127.0.0.1"}


def test_store_dsn_names_each_store(store_dsn: str, request: pytest.FixtureRequest) -> None:
    engine = create_engine(store_dsn)
    try:
        with engine.connect() as conn:
            assert conn.execute(text("SELECT 1")).scalar_one() == 1
    finally:
        engine.dispose()
    expected = "sqlite" if request.node.callspec.params["store_dsn"] == "sqlite" else "postgresql"
    assert engine.dialect.name == expected
    assert bool(request.node.get_closest_marker("postgres")) == (expected == "postgresql")


def test_free_ports_are_distinct() -> None:
    ports = {free_port() for _ in range(20)}
    assert len(ports) == 20
