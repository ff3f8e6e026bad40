"""``bourse serve`` and ``bourse admin create-user`` from outside."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pyotp
from sqlalchemy import select
from typer.testing import CliRunner

from serving.cli import app
from tests.serving.api.conftest import PASSWORD
from tests.serving.test_cli_servers import _dead_port, _one_line_error, _store
from trading.store import schema as s
from trading.store.engine import open_engine, sqlite_dsn

runner = CliRunner()


def test_serve_when_redis_is_unreachable_then_one_line_and_exit_2(tmp_path: Path) -> None:
    _store(tmp_path)
    url = f"redis://127.0.0.1:{_dead_port()}/0"
    result = runner.invoke(app, ["serve", "--home", str(tmp_path), "--redis-url", url])
    assert result.exit_code == 2
    assert f"Redis at {url} is not reachable" in _one_line_error(result.output)


def test_serve_when_there_is_no_store_then_one_line_and_exit_2(
    tmp_path: Path, redis_url: str
) -> None:
    result = runner.invoke(app, ["serve", "--home", str(tmp_path), "--redis-url", redis_url])
    assert result.exit_code == 2
    line = _one_line_error(result.output)
    assert "no store" in line and "bourse oms run" in line
    assert not (tmp_path / "bourse.db").exists()


def test_admin_create_user_when_given_a_password_then_a_staff_user_with_2fa_on(
    tmp_path: Path,
) -> None:
    _store(tmp_path)
    args = ["admin", "create-user", "--home", str(tmp_path), "--username", "Rita",
            "--role", "risk", "--password-stdin"]  # fmt: skip
    result = runner.invoke(app, args, input=PASSWORD + "\n")
    assert result.exit_code == 0, result.output
    uri = next(line for line in result.output.splitlines() if line.startswith("otpauth://"))
    totp = pyotp.parse_uri(uri)
    engine = open_engine(sqlite_dsn(tmp_path))
    with engine.connect() as conn:
        row = conn.execute(select(s.users)).one()
    engine.dispose()
    assert (row.username, row.role, row.client_id, row.totp_enabled) == ("rita", "risk", None, True)
    assert isinstance(totp, pyotp.TOTP) and totp.secret == row.totp_secret
    again = runner.invoke(app, args, input=PASSWORD + "\n")
    assert again.exit_code == 2 and "taken" in _one_line_error(again.output)


def test_admin_create_user_when_role_or_password_is_bad_then_exit_2_and_no_user(
    tmp_path: Path,
) -> None:
    _store(tmp_path)
    base = ["admin", "create-user", "--home", str(tmp_path), "--username", "sam",
            "--password-stdin"]  # fmt: skip
    bad_role = runner.invoke(app, [*base, "--role", "client"], input=PASSWORD + "\n")
    assert bad_role.exit_code == 2 and "--role" in _one_line_error(bad_role.output)
    weak = runner.invoke(app, [*base, "--role", "support"], input="short\n")
    assert weak.exit_code == 2 and "password" in _one_line_error(weak.output)
    engine = open_engine(sqlite_dsn(tmp_path))
    with engine.connect() as conn:
        assert conn.execute(select(s.users)).all() == []
    engine.dispose()


def test_serve_when_started_then_answers_health_and_the_openapi_schema(
    tmp_path: Path, redis_url: str
) -> None:
    _store(tmp_path)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    bourse = Path(sys.executable).with_name("bourse")
    proc = subprocess.Popen(
        [str(bourse), "serve", "--home", str(tmp_path), "--redis-url", redis_url,
         "--port", str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env={**os.environ},
    )  # fmt: skip
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                health = httpx.get(f"{base}/v1/health", timeout=1)
                break
            except httpx.TransportError:
                assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
                assert time.monotonic() < deadline
                time.sleep(0.2)
        assert health.json() == {"status": "ok"}
        assert httpx.get(f"{base}/v1/ready").status_code == 200
        schema = httpx.get(f"{base}/openapi.json").json()
        assert "/v1/auth/login" in schema["paths"]
        assert httpx.get(f"{base}/v1/auth/me").status_code == 401
    finally:
        proc.terminate()
        proc.wait(20)
