"""``bourse serve`` (the API) and ``bourse admin`` (staff users)."""

from __future__ import annotations

import os
import sys
import time
from typing import Annotated

import typer

from serving.cli_shared import DsnOpt, HomeOpt, out, settings_for

admin_app = typer.Typer(help="Administration: staff users.", no_args_is_help=True)

RedisOpt = Annotated[
    str | None, typer.Option("--redis-url", help="Redis: sessions, rate limits, the bus.")
]


def serve(
    home: HomeOpt = None,
    dsn: DsnOpt = None,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535)] = 8000,
    redis_url: RedisOpt = None,
    workers: Annotated[int, typer.Option(min=1, help="Worker processes.")] = 1,
) -> None:
    """Run the REST API (sessions and rate limits in Redis; commands to the OMS host)."""
    from serving import checks
    from trading.errors import StoreError
    from trading.store.engine import open_readonly

    settings = settings_for(home, dsn)
    if redis_url is not None:
        settings = settings.model_copy(update={"redis_url": redis_url})
    checks.require(checks.redis(settings.redis_url))
    checks.require(checks.store(settings.dsn, settings.home))
    try:
        open_readonly(settings.store_dsn()).dispose()
    except StoreError as exc:
        checks.fail(
            f"{exc.message}: start the OMS first (`bourse oms run --home {settings.home}`), "
            "which creates and migrates the store"
        )
    import uvicorn

    # Each worker builds its app from the environment (serving.api.main).
    os.environ["BOURSE_HOME"] = str(settings.home)
    os.environ["BOURSE_DSN"] = settings.dsn
    os.environ["BOURSE_REDIS_URL"] = settings.redis_url
    uvicorn.run(
        "serving.api.main:app", factory=True, host=host, port=port, workers=workers,
        proxy_headers=True, log_level="info",
    )  # fmt: skip


@admin_app.command("create-user")
def create_user(
    username: Annotated[str, typer.Option(help="The staff member's login.")],
    role: Annotated[str, typer.Option(help="support, risk, compliance or admin.")],
    home: HomeOpt = None,
    dsn: DsnOpt = None,
    email: Annotated[str, typer.Option(help="Their e-mail address.")] = "",
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from stdin.")
    ] = False,
) -> None:
    """Create a staff user (never possible through the API); prints the TOTP enrolment URI
    to add to an authenticator at once: back-office actions need 2FA."""
    import re

    from sqlalchemy.exc import IntegrityError

    from serving import checks
    from serving.api.admin import create_staff
    from serving.api.auth import password_problem
    from serving.api.schemas import USERNAME_PATTERN
    from serving.api.users import STAFF_ROLES
    from serving.cli_shared import open_store

    if role not in STAFF_ROLES:
        checks.fail(f"--role {role!r}: use one of {', '.join(STAFF_ROLES)}")
    if not re.fullmatch(USERNAME_PATTERN, username):
        checks.fail(f"--username {username!r}: 3-64 of letters, digits and ._- ")
    settings = settings_for(home, dsn)
    checks.require(checks.store(settings.dsn, settings.home))
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    why = password_problem(password, username.lower(), settings.api_password_min_length)
    if why:
        checks.fail(f"the password is refused: {why}")
    engine = open_store(settings)
    try:
        made = create_staff(
            engine, username=username.lower(), password=password, role=role, email=email,
            now_ns=time.time_ns(), issuer=settings.api_totp_issuer,
        )  # fmt: skip
    except IntegrityError:
        checks.fail(f"the username {username.lower()!r} is taken")
    finally:
        engine.dispose()
    out.print(f"created {made.role} user {made.username} (id {made.user_id})")
    out.print("add this to an authenticator app now (2FA is required for the back office):")
    out.print(made.otpauth_uri, soft_wrap=True)
    out.print(f"secret: {made.totp_secret}")
