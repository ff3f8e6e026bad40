"""``/v1/auth``: register a client's user, log in and out, who am I.

Registration reserves the username first (a ``users`` row with no client yet, which cannot
log in), then creates the client and its account through the bus (``CreateClient``,
``OpenAccount``, ids from ``serving.api.ids``), then links the row to the client. When the
OMS refuses, the row is dropped and the refusal answered with its code (an under-age
birth date: 422 ``invalid_client``, ``field`` ``birth_date``).
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from sqlalchemy.exc import IntegrityError

from serving.api import problems, users
from serving.api.activity import LoginOutcome, login_entry, record_login
from serving.api.auth import (
    check_password,
    client_country,
    client_ip,
    current_user,
    password_problem,
    sessions,
    totp_ok,
)
from serving.api.ids import IdAllocator
from serving.api.problems import Problem, result_of
from serving.api.ratelimit import RateLimiter
from serving.api.schemas import (
    USERNAME_PATTERN,
    LoginIn,
    LoginOut,
    RegisterIn,
    RegisterOut,
    UserOut,
)
from serving.api.sessions import Session
from serving.api.state import ApiState, get_state
from trading.clients import concat_id
from trading.store import schema as s

router = APIRouter(prefix="/v1/auth", tags=["auth"], responses=problems.responses(409, 504))

StateDep = Annotated[ApiState, Depends(get_state)]
_ID_TRIES = 3  # a client or account id found taken (made outside the API) is drawn again


def _limit_login(request: Request, state: ApiState) -> None:
    st = state.settings
    RateLimiter(state.redis).hit(
        "login", client_ip(request, state), st.api_rate_login_per_ip, st.api_rate_window_s,
        state.clock(),
    )  # fmt: skip


@router.post("/register", status_code=201, response_model=RegisterOut)
def register(body: RegisterIn, request: Request, state: StateDep) -> RegisterOut:
    """Open a client's user: the client, its first account and the login, at once."""
    _limit_login(request, state)
    username = body.username.lower()
    why = password_problem(body.password, username, state.settings.api_password_min_length)
    if why:
        raise Problem.of("invalid_input", f"password: {why}", field="password")
    user_id = _reserve(state, username, body.email, state.hasher.hash(body.password))
    try:
        client_id = _create(state, user_id, "client", s.clients.c.client_id, lambda cid: {
            "client_id": cid, "kind": "person", "name": body.name,
            "country": body.country.upper(), "email": body.email,
            "birth_date": body.birth_date.isoformat(), "national_id": _national_id(body),
        })  # fmt: skip
        account_id = _create(state, user_id, "account", s.accounts.c.account_id, lambda aid: {
            "account_id": aid, "currency": body.currency.upper(), "client_id": client_id,
        })  # fmt: skip
    except BaseException:
        users.remove(state.writer, user_id)
        raise
    users.set_client(state.writer, user_id, client_id)
    return RegisterOut(
        user_id=user_id, username=username, client_id=client_id, account_id=account_id
    )


def _national_id(body: RegisterIn) -> str:
    """The one given, or the CONCAT code (the first word of the name is the first name)."""
    if body.national_id:
        return body.national_id
    first, _, surname = body.name.strip().partition(" ")
    return concat_id(body.country.upper(), body.birth_date, first, surname or first)


def _reserve(state: ApiState, username: str, email: str, password_hash: str) -> int:
    """Inserts the user with no client yet; its id."""
    for _ in range(_ID_TRIES):
        user_id = IdAllocator(state.redis).next("user", state.writer, s.users.c.user_id)
        try:
            users.add(
                state.writer, user_id=user_id, username=username, email=email,
                password_hash=password_hash, role="client", now_ns=state.clock(),
            )  # fmt: skip
            return user_id
        except IntegrityError:
            if users.by_username(state.writer, username) is not None:
                raise Problem.of("username_taken", f"the username {username!r} is taken") from None
            # else the id was taken (a staff user made from the CLI meanwhile): draw again
    raise Problem.of("conflict", "no free user id found: try again")


def _create(state: ApiState, user_id: int, kind: str, column: Any, body: Any) -> int:
    """Sends ``CreateClient`` or ``OpenAccount`` under a fresh id; returns the id."""
    type_name = {"client": "CreateClient", "account": "OpenAccount"}[kind]
    for attempt in range(_ID_TRIES):
        new_id = IdAllocator(state.redis).next(kind, state.reader, column)
        reply = state.bus.send_raw(
            type_name, body(new_id), state.settings.api_command_timeout_s,
            command_id=f"api-register-{user_id}-{kind}-{attempt}", actor=f"api:user-{user_id}",
        )  # fmt: skip
        if reply.ok or reply.code != "conflict":
            result_of(reply)
            return int(new_id)
    raise Problem.of("conflict", f"no free {kind} id found: try again")


@router.post("/login", response_model=LoginOut)
def login(body: LoginIn, request: Request, state: StateDep) -> LoginOut:
    """Log in: a session token. With 2FA on, send ``totp`` to get a verified session at
    once, or later through ``/v1/auth/2fa/challenge``. ``lockout_failures`` wrong
    passwords or codes in a row lock the user out for ``lockout_s``: 429 ``locked_out``."""
    _limit_login(request, state)
    st, now = state.settings, state.clock()
    ip, country = client_ip(request, state), client_country(request, state)
    username = body.username.lower()
    # Every stored username is of the pattern: another cannot exist, and text such as a NUL
    # must not reach the store (PostgreSQL refuses it).
    known = re.fullmatch(USERNAME_PATTERN, username) is not None
    user = users.by_username(state.writer, username) if known else None

    def attempt(outcome: LoginOutcome) -> None:
        entry = login_entry(
            ts_ns=now, user_id=user.user_id if user else None,
            client_id=user.client_id if user else None, username=username,
            device_id=body.device_id, ip=ip, country=country or "", outcome=outcome,
        )  # fmt: skip
        record_login(state.redis, entry, st.api_activity_maxlen)

    refused = Problem.of("invalid_credentials", "wrong username, password or code")
    if user is None:
        check_password(state, None, body.password)
        attempt(LoginOutcome.UNKNOWN_USER)
        raise refused
    if user.locked_until_ns is not None and user.locked_until_ns > now:
        attempt(LoginOutcome.LOCKED_OUT)
        raise _locked(user.locked_until_ns - now)
    lockout_ns = int(st.api_lockout_s * 1e9)
    password_ok = check_password(state, user.password_hash, body.password)
    code_ok = password_ok and (
        body.totp is None
        or (user.totp_enabled and user.totp_secret is not None
            and totp_ok(state, user.user_id, user.totp_secret, body.totp))
    )  # fmt: skip
    if not code_ok:
        attempt(LoginOutcome.BAD_TOTP if password_ok else LoginOutcome.BAD_PASSWORD)
        if users.login_failed(state.writer, user.user_id, now, st.api_lockout_failures,
                              lockout_ns):  # fmt: skip
            raise _locked(lockout_ns)
        raise refused
    if not user.active:
        attempt(LoginOutcome.NOT_ACTIVE)
        raise refused
    if state.hasher.check_needs_rehash(user.password_hash):
        users.set_password_hash(state.writer, user.user_id, state.hasher.hash(body.password))
    users.login_succeeded(state.writer, user.user_id, body.device_id, ip, country, now)
    token, session = sessions(state).create(
        user_id=user.user_id, role=user.role, client_id=user.client_id, username=username,
        device=body.device_id, ip=ip, now_ns=now, mfa=body.totp is not None,
    )  # fmt: skip
    attempt(LoginOutcome.OK)
    return LoginOut(
        token=token, session_id=session.sid, idle_timeout_s=st.api_session_idle_s,
        mfa=session.mfa,
    )  # fmt: skip


def _locked(remaining_ns: int) -> Problem:
    retry = max(1, -(-remaining_ns // 10**9))
    return Problem.of(
        "locked_out",
        f"too many failed logins: locked for {retry} s more",
        headers={"Retry-After": str(retry)},
        retry_after_s=retry,
    )


@router.post("/logout", status_code=204)
def logout(user: Annotated[Session, Depends(current_user)], state: StateDep) -> Response:
    """End this session."""
    sessions(state).revoke(user.user_id, user.sid)
    return Response(status_code=204)


@router.get("/me", response_model=UserOut)
def me(user: Annotated[Session, Depends(current_user)], state: StateDep) -> UserOut:
    row = users.by_id(state.writer, user.user_id)
    if row is None:  # deleted since the login
        sessions(state).revoke_all(user.user_id)
        raise Problem.of("unauthenticated", "this user no longer exists")
    return UserOut(
        user_id=row.user_id, username=row.username, email=row.email, role=row.role,
        client_id=row.client_id, totp_enabled=row.totp_enabled, mfa=user.mfa,
    )  # fmt: skip
