"""``bourse up``: the whole platform on the embedded store, under one supervisor.

Order of start: Redis (a local ``redis-server`` under the home, unless ``--redis-url``),
the OMS host (it creates and migrates the store, so it is waited for), then the tick feed
(live synthetic quotes, or ``--feed replay``), the positions flow, the fraud flow (when the
home has a promoted model) and the API. The first
staff user is made once the store exists. Each child is a ``python -m serving.cli ...`` of
its own, its output in ``HOME/logs/<name>.log``; one that exits is restarted after a
back-off.
"""

from __future__ import annotations

import secrets
import shutil
import signal
import socket
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from serving.cli_shared import console, out, settings_for
from serving.supervisor import Service, Supervisor

# The tick feed: by default a live synthetic feed (quotes stamped with the current time, at
# LIVE_RATE per symbol, for as long as ``up`` runs); ``--feed replay`` replays
# TICKS_PER_RUN ticks per symbol once, at full speed, with January 2026 timestamps.
TICK_SYMBOLS = "EURUSD,GBPUSD,USDJPY,XAUUSD,US500,BTCUSD,BTCUSDT,ETHUSD"
LIVE_RATE = 5
TICKS_PER_RUN = 2_000_000
FEEDS = ("live", "replay")
ADMIN = "admin"
_READY_TIMEOUT_S = 120.0


def up(
    home: Annotated[Path, typer.Option("--home", help="Data directory: store, logs, Redis.")],
    host: Annotated[str, typer.Option(help="Address the API listens on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="The API's port.")] = 8000,
    redis_url: Annotated[
        str | None,
        typer.Option("--redis-url", help="Use this Redis instead of starting redis-server."),
    ] = None,
    grace: Annotated[
        float, typer.Option("--grace", min=0.1, help="Seconds between SIGTERM and SIGKILL.")
    ] = 10.0,
    feed: Annotated[
        str,
        typer.Option(
            "--feed",
            help=f"live: synthetic quotes stamped now, {LIVE_RATE}/s per symbol, while up runs; "
            f"replay: {TICKS_PER_RUN:,} ticks per symbol once, dated January 2026.",
        ),
    ] = "live",
) -> None:
    """Start Redis, the OMS host, the tick feed, the positions flow and the API; restart
    what dies; stop everything on Ctrl-C or SIGTERM."""
    from serving import checks

    if feed not in FEEDS:
        checks.fail(f"--feed {feed!r}: use one of {', '.join(FEEDS)}")
    checks.require(checks.home_dir(home))
    home = home.resolve()
    logs = home / "logs"
    redis_bin = None
    if redis_url is None:
        redis_bin = shutil.which("redis-server")
        if redis_bin is None:
            checks.fail("redis-server is not on PATH: install it (`make install`) or give "
                        "--redis-url of a running Redis")  # fmt: skip
    else:
        checks.require(checks.redis(redis_url))
    logs.mkdir(parents=True, exist_ok=True)

    stopping = False

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    sup = Supervisor(
        lambda line: console.print(escape(line)), grace_s=grace, pid_file=logs / "up.pids.json"
    )

    def svc(name: str, *args: str, finite: bool = False) -> Service:
        argv = [sys.executable, "-m", "serving.cli", *args]
        return Service(name, argv, logs / f"{name}.log", finite=finite)

    try:
        if redis_bin is not None:
            redis_dir = home / "redis"
            redis_dir.mkdir(exist_ok=True)
            rport = _free_port()
            redis_url = f"redis://127.0.0.1:{rport}/0"
            sup.start(Service("redis", [
                redis_bin, "--port", str(rport), "--bind", "127.0.0.1", "--dir", str(redis_dir),
                "--save", "", "--appendonly", "yes", "--daemonize", "no",
            ], logs / "redis.log"))  # fmt: skip
            _wait(lambda: checks.redis(redis_url) is None, "redis", sup, lambda: stopping)
        assert redis_url is not None
        base = ["--home", str(home), "--redis-url", redis_url]
        oms = sup.start(svc("oms", "oms", "run", *base))
        oms_log = oms.log.stat().st_size if oms.log.exists() else 0
        _wait(lambda: "bourse.oms: ready" in _read_from(oms.log, oms_log), "oms", sup,
              lambda: stopping)  # fmt: skip
        admin = _first_staff(home)
        ticks = ["pipelines", "ticks", *base, "--source", "synthetic", "--symbols", TICK_SYMBOLS,
                 "--seed", "7", "--sink", "redis"]  # fmt: skip
        if feed == "live":
            sup.start(svc("ticks", *ticks, "--live", "--rate", str(LIVE_RATE)))
        else:
            sup.start(svc("ticks", *ticks, "--ticks", str(TICKS_PER_RUN), finite=True))
        sup.start(svc("positions", "pipelines", "positions", *base))
        model = _promoted_model(home)
        if model is not None:  # without one the flow would exit 2 and be restarted forever
            sup.start(svc("fraud", "pipelines", "fraud", *base))
        sup.start(svc("api", "serve", *base, "--host", host, "--port", str(port)))
        url = f"http://{host}:{port}"
        _wait(lambda: _http_ok(f"{url}/v1/health"), "api", sup, lambda: stopping)
        _print_table(sup, home, url, redis_url, admin, feed, model)
        while not stopping:
            sup.poll()
            time.sleep(0.2)
    except _Stopped:
        pass
    finally:
        console.print("stopping: SIGTERM to every service")
        order = ["api", "fraud", "positions", "ticks", "oms"]
        sup.stop(order)
        sup.stop(["redis"])
    console.print("stopped")
    raise typer.Exit(0)


class _Stopped(Exception):
    """A signal came while waiting for a service to start."""


def _wait(
    ready: Callable[[], bool], name: str, sup: Supervisor, stopping: Callable[[], bool]
) -> None:
    deadline = time.monotonic() + _READY_TIMEOUT_S
    while not ready():
        if stopping():
            raise _Stopped
        if time.monotonic() > deadline:
            console.print(f"[red]error:[/red] {name} did not start in {_READY_TIMEOUT_S:g} s: "
                          f"see {escape(str(sup.services[-1].log))}")  # fmt: skip
            raise _Stopped
        sup.poll()  # a child that exits while starting is restarted
        time.sleep(0.1)


def _read_from(path: Path, offset: int) -> str:
    try:
        with path.open("rb") as f:
            f.seek(offset)
            return f.read().decode(errors="replace")
    except FileNotFoundError:
        return ""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:  # noqa: S310 - our own http URL
            return bool(resp.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def _first_staff(home: Path) -> tuple[str, str, str] | None:
    """Create ``admin`` when the store has no staff user: its (username, password, TOTP
    URI), shown once; None when staff exist already."""
    from sqlalchemy import func, select

    from serving.api.admin import create_staff
    from serving.cli_shared import open_store
    from trading.store import schema as s

    settings = settings_for(home, "")
    engine = open_store(settings)
    try:
        with engine.connect() as conn:
            staff = conn.execute(
                select(func.count()).select_from(s.users).where(s.users.c.client_id.is_(None),
                                                               s.users.c.role != "client")
            ).scalar_one()  # fmt: skip
        if staff:
            return None
        password = secrets.token_urlsafe(18)
        made = create_staff(engine, username=ADMIN, password=password, role="admin", email="",
                            now_ns=time.time_ns(), issuer=settings.api_totp_issuer)  # fmt: skip
        return made.username, password, made.otpauth_uri
    finally:
        engine.dispose()


def _promoted_model(home: Path) -> str | None:
    from ml.registry import Registry

    return Registry(home).promoted_version()


def _print_table(
    sup: Supervisor,
    home: Path,
    url: str,
    redis_url: str,
    admin: tuple[str, str, str] | None,
    feed: str,
    model: str | None,
) -> None:
    table = Table(title="bourse up", show_lines=False)
    table.add_column("what")
    table.add_column("where")
    table.add_row("dashboard", f"{url}/dashboard")
    table.add_row("API docs", f"{url}/docs")
    table.add_row("health", f"{url}/v1/health")
    table.add_row("Redis", redis_url)
    table.add_row("home", str(home))
    for svc in sup.services:
        table.add_row(f"{svc.name} (pid {svc.pid})", f"log: {svc.log}")
    if feed == "live":
        table.add_row("ticks feed", f"live synthetic quotes, {LIVE_RATE}/s per symbol "
                      f"({TICK_SYMBOLS}), stamped now, into Redis")  # fmt: skip
    else:
        table.add_row("ticks feed", f"synthetic replay of {TICKS_PER_RUN:,} ticks per symbol "
                      f"({TICK_SYMBOLS}) into Redis, once")  # fmt: skip
    if model is None:
        table.add_row("fraud flow", f"not started: no promoted model (`bourse ml train --home "
                      f"{home}`, then `bourse up` again)")  # fmt: skip
    else:
        table.add_row("fraud flow", f"scoring with model {model}")
    out.print(table)
    if admin is None:
        out.print("staff users exist already; `bourse admin create-user` adds one")
    else:
        name, password, uri = admin
        out.print(f"first staff user (shown once): username [bold]{name}[/bold], "
                  f"password [bold]{escape(password)}[/bold]")  # fmt: skip
        out.print("add this to an authenticator app (the back office needs 2FA):")
        out.print(escape(uri), soft_wrap=True)
    out.print("Ctrl-C stops everything")
