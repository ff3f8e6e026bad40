"""Commands check the servers and paths they need first: one line, exit 2, nothing written."""

from __future__ import annotations

import hashlib
import socket
from pathlib import Path

import pytest
from typer.testing import CliRunner

from serving import checks
from serving.cli import app
from trading.store.engine import migrate, open_engine, sqlite_dsn

runner = CliRunner()


def _dead_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _store(home: Path) -> Path:
    engine = open_engine(sqlite_dsn(home))
    migrate(engine)
    engine.dispose()
    return home / "bourse.db"


def _digest(home: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(home.iterdir())}


def _one_line_error(output: str) -> str:
    lines = [line for line in output.splitlines() if line.strip()]
    assert len(lines) == 1, output
    assert lines[0].startswith("error: "), output
    assert "Traceback" not in output
    return lines[0]


def test_outbox_relay_when_redis_is_down_then_one_line_exit_2_nothing_published(
    tmp_path: Path,
) -> None:
    _store(tmp_path)
    before = _digest(tmp_path)
    url = f"redis://127.0.0.1:{_dead_port()}/0"
    result = runner.invoke(app, ["outbox", "relay", "--home", str(tmp_path), "--redis-url", url,
                                 "--once"])  # fmt: skip
    assert result.exit_code == 2
    line = _one_line_error(result.output)
    assert f"Redis at {url} is not reachable" in line and "start it" in line
    assert _digest(tmp_path) == before


@pytest.mark.parametrize(
    ("dsn", "message"),
    [
        ("postgresql://bourse@127.0.0.1:{port}/bourse", "PostgreSQL at 127.0.0.1:{port}/bourse "
                                                         "is not reachable"),
        ("mysql://bourse@127.0.0.1/bourse", "unknown scheme 'mysql'"),
        ("nonsense", "is not a store URL"),
        ("postgresql://bourse@host:port/db", "is not a store URL"),
    ],
)  # fmt: skip
@pytest.mark.parametrize("command", [["outbox", "relay", "--once"], ["ledger", "export"]])
def test_store_commands_when_the_dsn_is_bad_or_unreachable_then_one_line_exit_2(
    tmp_path: Path, dsn: str, message: str, command: list[str]
) -> None:
    port = _dead_port()
    home = tmp_path / "home"
    args = [*command, "--home", str(home), "--dsn", dsn.format(port=port)]
    if command[0] == "outbox":
        args += ["--redis-url", f"redis://127.0.0.1:{port}/0"]
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    assert message.format(port=port) in _one_line_error(result.output)
    assert not home.exists()


@pytest.mark.parametrize("command", [["outbox", "relay", "--once"], ["ledger", "export"],
                                     ["pipelines", "ticks", "--source", "synthetic",
                                      "--symbols", "EURUSD", "--ticks", "10"]])  # fmt: skip
def test_commands_when_home_is_a_file_then_one_line_exit_2(
    tmp_path: Path, command: list[str]
) -> None:
    home = tmp_path / "home"
    home.write_text("not a directory")
    result = runner.invoke(app, [*command, "--home", str(home)])
    assert result.exit_code == 2
    assert f"--home {home} is a file, not a directory" in _one_line_error(result.output)
    assert home.read_text() == "not a directory"


@pytest.mark.parametrize("name", ["bourse.db", "bourse.db-wal", "bourse.db-shm", "./bourse.db"])
def test_ledger_export_when_output_is_a_file_of_the_store_then_refused_and_store_intact(
    tmp_path: Path, name: str
) -> None:
    db = _store(tmp_path)
    size = db.stat().st_size
    before = hashlib.sha256(db.read_bytes()).hexdigest()
    target = tmp_path / "sub" / ".." / name if name.startswith("./") else tmp_path / name
    result = runner.invoke(app, ["ledger", "export", "--home", str(tmp_path), "-o", str(target)])
    assert result.exit_code == 2
    assert "is a file of the store" in _one_line_error(result.output)
    assert db.stat().st_size == size > 0
    assert hashlib.sha256(db.read_bytes()).hexdigest() == before


def test_ledger_export_when_output_is_elsewhere_then_written(tmp_path: Path) -> None:
    _store(tmp_path)
    out = tmp_path / "ledger.beancount"
    result = runner.invoke(app, ["ledger", "export", "--home", str(tmp_path), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert out.exists()


def test_store_is_empty_when_a_home_holds_a_store_then_says_so(tmp_path: Path) -> None:
    assert checks.store_is_empty("", tmp_path) is None
    _store(tmp_path)
    problem = checks.store_is_empty("", tmp_path)
    assert problem is not None and "already holds a store" in problem


@pytest.mark.postgres
def test_checks_when_postgres_answers_then_no_problem(pg_dsn: str, tmp_path: Path) -> None:
    assert checks.store(pg_dsn, tmp_path) is None
    assert checks.store_is_empty(pg_dsn, tmp_path) is None
    migrate(open_engine(pg_dsn))
    problem = checks.store_is_empty(pg_dsn, tmp_path)
    assert problem is not None and "already holds a store" in problem


@pytest.mark.redis
def test_checks_when_redis_answers_then_no_problem(redis_url: str) -> None:
    assert checks.redis(redis_url) is None


@pytest.mark.parametrize("target", ["a-directory", "missing/ledger.beancount"])
def test_ledger_export_when_output_cannot_be_a_file_then_one_line_exit_2(
    tmp_path: Path, target: str
) -> None:
    _store(tmp_path / "home")
    (tmp_path / "a-directory").mkdir()
    result = runner.invoke(app, ["ledger", "export", "--home", str(tmp_path / "home"),
                                 "-o", str(tmp_path / target)])  # fmt: skip
    assert result.exit_code == 2
    _one_line_error(result.output)
    assert not (tmp_path / "missing").exists()
