"""Throwaway PostgreSQL and Redis servers for tests and benchmarks: real servers, no mocks.

    with start_postgres() as pg:          # initdb + pg_ctl on a free loopback port
        engine = sqlalchemy.create_engine(pg.dsn)
        url = pg.create_database()        # a fresh, empty database

    with start_redis(tmp_path) as rd:     # redis-server on a free loopback port
        client = redis.Redis.from_url(rd.url)

The binaries come from the system (`make install` puts them there): PostgreSQL from the
highest /usr/lib/postgresql/*/bin, else `pg_ctl`/`initdb` on PATH; `redis-server` from PATH.
PostgreSQL refuses to run as root, so as root the cluster runs as the `postgres` user
(through runuser, or su) in a directory owned by it. Each server is also stopped at
interpreter exit if its owner forgot, so no server outlives the test run.
"""

from __future__ import annotations

import atexit
import contextlib
import glob
import os
import pwd
import shlex
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Self

import psycopg
import redis
from psycopg import sql

LOOPBACK = "127.0.0.1"
INSTALL_HINT = "run `make install` (scripts/ensure-tools.sh) to install it"
# A unix socket path must fit in sockaddr_un.sun_path (108 bytes on Linux, with its NUL).
_SOCKET_PATH_MAX = 107
_PORT_ATTEMPTS = 5


class _Stoppable:
    """A throwaway server usable as a context manager: leaving the block stops it."""

    def stop(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


class ServerError(RuntimeError):
    """A throwaway server could not be started or used."""


class ToolMissingError(ServerError):
    """A server binary is not installed."""


class PortInUseError(ServerError):
    """The server could not bind its port (taken since free_port() chose it): retry."""


# --- ports ------------------------------------------------------------------------------

_handed_out: set[int] = set()


def free_port() -> int:
    """A loopback TCP port that is free now: bind port 0, read it, close.

    Another process can still take it before the server binds it, so the starters below
    retry on a fresh port when the server reports the address in use. Ports are never
    handed out twice by this process.
    """
    for _ in range(100):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind((LOOPBACK, 0))
            port: int = sock.getsockname()[1]
        if port not in _handed_out:
            _handed_out.add(port)
            return port
    raise ServerError("could not find a free loopback port")


def _port_in_use_error(log: str) -> bool:
    return "Address already in use" in log or "could not bind" in log


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


# --- finding binaries -------------------------------------------------------------------


def _version_key(bin_dir: str) -> tuple[int, ...]:
    version = Path(bin_dir).parent.name  # /usr/lib/postgresql/<version>/bin
    return tuple(int(part) if part.isdigit() else -1 for part in version.split("."))


def find_pg_bin_dir() -> Path:
    """The directory holding `initdb` and `pg_ctl`: highest /usr/lib/postgresql/*/bin, or PATH."""
    candidates = [
        d
        for d in glob.glob("/usr/lib/postgresql/*/bin")
        if os.access(os.path.join(d, "pg_ctl"), os.X_OK)
        and os.access(os.path.join(d, "initdb"), os.X_OK)
    ]
    if candidates:
        return Path(max(candidates, key=_version_key))
    pg_ctl = shutil.which("pg_ctl")
    if pg_ctl and shutil.which("initdb"):
        return Path(pg_ctl).resolve().parent
    raise ToolMissingError(f"PostgreSQL server binaries (initdb, pg_ctl) not found: {INSTALL_HINT}")


def find_redis_server() -> str:
    found = shutil.which("redis-server")
    if found:
        return found
    if os.access("/usr/bin/redis-server", os.X_OK):
        return "/usr/bin/redis-server"
    raise ToolMissingError(f"redis-server not found: {INSTALL_HINT}")


# --- PostgreSQL ---------------------------------------------------------------------------


def _pg_os_user() -> str | None:
    """The user the cluster runs as: None (ourselves) unless we are root."""
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        raise ToolMissingError(
            "running as root, and PostgreSQL refuses root, but there is no `postgres` user: "
            + INSTALL_HINT
        ) from None
    return "postgres"


def _as_user(argv: Sequence[str], user: str | None) -> list[str]:
    if user is None:
        return list(argv)
    if shutil.which("runuser"):
        return ["runuser", "-u", user, "--", *argv]
    return ["su", user, "-s", "/bin/sh", "-c", shlex.join(argv)]


def _make_pg_root(tmpdir: str | os.PathLike[str] | None, user: str | None) -> Path:
    """A fresh directory for the cluster, reachable by `user` and short enough for a socket."""
    bases: list[str | None] = [os.fspath(tmpdir)] if tmpdir is not None else []
    bases.append(None)  # the system temp dir, e.g. /tmp (pytest's dirs are 0700 root-only)
    for base in bases:
        root = Path(tempfile.mkdtemp(prefix="bourse-pg-", dir=base))
        if len(str(root)) + len("/.s.PGSQL.65535") >= _SOCKET_PATH_MAX:
            shutil.rmtree(root, ignore_errors=True)
            continue
        if user is None:
            return root
        entry = pwd.getpwnam(user)
        os.chown(root, entry.pw_uid, entry.pw_gid)
        probe = subprocess.run(
            _as_user(["test", "-w", str(root), "-a", "-x", str(root)], user),
            capture_output=True,
            check=False,
        )
        if probe.returncode == 0:
            return root
        shutil.rmtree(root, ignore_errors=True)
    raise ServerError(f"no temp dir usable by user {user!r} for a PostgreSQL cluster")


class PostgresServer(_Stoppable):
    """A running throwaway cluster. `dsn` is the SQLAlchemy URL of its `bourse` database."""

    host = LOOPBACK
    user = "bourse"
    database = "bourse"

    def __init__(self, root: Path, port: int, bin_dir: Path, os_user: str | None) -> None:
        self.root = root
        self.data_dir = root / "data"
        self.log_file = root / "postgres.log"
        self.port = port
        self.bin_dir = bin_dir
        self.os_user = os_user
        self._stopped = False
        atexit.register(self.stop)

    # Addresses
    @property
    def dsn(self) -> str:
        return self.url(self.database)

    def url(self, database: str) -> str:
        """SQLAlchemy URL (psycopg 3 driver) of one database of this cluster."""
        return f"postgresql+psycopg://{self.user}@{self.host}:{self.port}/{database}"

    def conninfo(self, database: str | None = None) -> str:
        """libpq connection string, for psycopg.connect()."""
        return psycopg.conninfo.make_conninfo(
            host=self.host, port=self.port, user=self.user, dbname=database or self.database
        )

    def connect(self, database: str = "postgres", **kwargs: object) -> psycopg.Connection:
        """An autocommit psycopg connection (for CREATE/DROP DATABASE and checks)."""
        return psycopg.connect(self.conninfo(database), autocommit=True, **kwargs)  # type: ignore[arg-type]

    # Databases
    def create_database(self, name: str | None = None) -> str:
        """Create an empty database (default name test_<uuid hex>) and return its URL."""
        name = name or f"test_{uuid.uuid4().hex}"
        # ~0.1-0.3 s with fsync on (either strategy of PostgreSQL 15: WAL_LOG writes the
        # template through the WAL, FILE_COPY checkpoints); a test pays it once.
        with self.connect() as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return self.url(name)

    def drop_database(self, name: str) -> None:
        """Drop a database, disconnecting whoever still uses it."""
        with self.connect() as conn:
            if conn.info.server_version >= 130000:
                statement = "DROP DATABASE IF EXISTS {} WITH (FORCE)"
            else:
                conn.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
                    (name,),
                )
                statement = "DROP DATABASE IF EXISTS {}"
            conn.execute(sql.SQL(statement).format(sql.Identifier(name)))

    # Life cycle
    def _pg(self, tool: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        argv = _as_user([str(self.bin_dir / tool), *args], self.os_user)
        result = subprocess.run(
            argv, cwd=self.root, capture_output=True, text=True, check=False, timeout=120
        )
        if check and result.returncode != 0:
            raise ServerError(
                f"{tool} failed ({result.returncode}): {result.stdout}{result.stderr}\n"
                f"--- {self.log_file} ---\n{_tail(self.log_file)}"
            )
        return result

    def _initdb(self) -> None:
        self._pg(
            "initdb",
            "-D",
            str(self.data_dir),
            "--auth=trust",
            f"--username={self.user}",
            "--encoding=UTF8",
            "--no-locale",
            # Skips only the fsync of the freshly written template files; the server
            # itself runs with fsync on (benchmarks measure durable commits).
            "--no-sync",
        )
        with (self.data_dir / "postgresql.conf").open("a") as conf:
            conf.write(
                "\n# bourse tests/servers.py\n"
                f"listen_addresses = '{LOOPBACK}'\n"
                f"unix_socket_directories = '{self.root}'\n"
                "max_connections = 50\n"
                "fsync = on\n"
            )

    def _start(self) -> None:
        """Start on self.port; PortInUseError if the port was taken meanwhile."""
        self.log_file.unlink(missing_ok=True)
        result = self._pg(
            "pg_ctl",
            "start",
            "-D",
            str(self.data_dir),
            "-l",
            str(self.log_file),
            "-w",
            "-t",
            "60",
            "-o",
            f"-p {self.port}",
            check=False,
        )
        if result.returncode != 0:
            log = _tail(self.log_file)
            error = PortInUseError if _port_in_use_error(log) else ServerError
            raise error(
                f"pg_ctl start failed on port {self.port}: {result.stdout}{result.stderr}\n"
                f"--- {self.log_file} ---\n{log}"
            )

    def _postmaster_pid(self) -> int | None:
        with contextlib.suppress(OSError, ValueError, IndexError):
            return int((self.data_dir / "postmaster.pid").read_text().splitlines()[0])
        return None

    def stop(self) -> None:
        """Stop at once (pg_ctl stop -m immediate) and delete the cluster. Idempotent."""
        if self._stopped:
            return
        self._stopped = True
        atexit.unregister(self.stop)
        if self.data_dir.exists():
            result = self._pg(
                "pg_ctl", "stop", "-D", str(self.data_dir), "-m", "immediate", "-w", check=False
            )
            pid = self._postmaster_pid()
            if result.returncode != 0 and pid is not None:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)
        shutil.rmtree(self.root, ignore_errors=True)

    def __repr__(self) -> str:
        return f"PostgresServer({self.dsn!r}, root={str(self.root)!r})"


def start_postgres(tmpdir: str | os.PathLike[str] | None = None) -> PostgresServer:
    """initdb a fresh cluster under `tmpdir` (or the system temp dir), start it on a free
    loopback port, create database `bourse`. Use as a context manager, or call .stop()."""
    bin_dir = find_pg_bin_dir()
    os_user = _pg_os_user()
    root = _make_pg_root(tmpdir, os_user)
    server = PostgresServer(root, free_port(), bin_dir, os_user)
    try:
        server._initdb()
        for attempt in range(_PORT_ATTEMPTS):
            try:
                server._start()
                break
            except PortInUseError:
                if attempt == _PORT_ATTEMPTS - 1:
                    raise
                server.port = free_port()
        server.create_database(server.database)
    except BaseException:
        server.stop()
        raise
    return server


# --- Redis --------------------------------------------------------------------------------


class RedisServer(_Stoppable):
    """A running throwaway redis-server (no persistence). `url` is its database 0."""

    host = LOOPBACK

    def __init__(self, root: Path, port: int, binary: str) -> None:
        self.root = root
        self.port = port
        self.binary = binary
        self.log_file = root / "redis.log"
        self.process: subprocess.Popen[bytes] | None = None
        self._stopped = False
        atexit.register(self.stop)

    @property
    def url(self) -> str:
        return f"redis://{self.host}:{self.port}/0"

    def client(self, **kwargs: object) -> redis.Redis:
        return redis.Redis.from_url(self.url, **kwargs)

    def _start(self, timeout: float) -> None:
        argv = [
            self.binary,
            "--port", str(self.port),
            "--bind", LOOPBACK,
            "--save", "",
            "--appendonly", "no",
            "--dir", str(self.root),
            "--daemonize", "no",
        ]  # fmt: skip
        with self.log_file.open("wb") as log:
            self.process = subprocess.Popen(
                argv,
                cwd=self.root,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # Ctrl-C in pytest must not kill it before teardown
            )
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                log_text = _tail(self.log_file)
                error = PortInUseError if _port_in_use_error(log_text) else ServerError
                raise error(
                    f"redis-server exited ({self.process.returncode}) on port {self.port}:\n"
                    f"{log_text}"
                )
            client = redis.Redis(
                host=self.host, port=self.port, socket_connect_timeout=0.5, socket_timeout=1
            )
            try:
                if client.ping():
                    return
            except redis.ConnectionError:
                pass
            finally:
                client.close()
            if time.monotonic() > deadline:
                raise ServerError(
                    f"redis-server did not answer PING within {timeout}s on port {self.port}:\n"
                    f"{_tail(self.log_file)}"
                )
            time.sleep(0.02)

    def stop(self) -> None:
        """Terminate the server and delete its directory. Idempotent."""
        if self._stopped:
            return
        self._stopped = True
        atexit.unregister(self.stop)
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.root, ignore_errors=True)

    def __repr__(self) -> str:
        return f"RedisServer({self.url!r})"


def start_redis(tmpdir: str | os.PathLike[str] | None = None, timeout: float = 30) -> RedisServer:
    """Start redis-server on a free loopback port with its files in a fresh directory under
    `tmpdir` (or the system temp dir); return once it answers PING."""
    binary = find_redis_server()
    root = Path(tempfile.mkdtemp(prefix="bourse-redis-", dir=tmpdir))
    server = RedisServer(root, free_port(), binary)
    try:
        for attempt in range(_PORT_ATTEMPTS):
            try:
                server._start(timeout)
                break
            except PortInUseError:
                if attempt == _PORT_ATTEMPTS - 1:
                    raise
                server.port = free_port()
    except BaseException:
        server.stop()
        raise
    return server
