"""Who is asking: the session behind a bearer token, roles, the second factor.

The dependencies a router uses (typed aliases in ``serving.api.deps``):

- ``current_user``: the caller's live ``Session`` (401 ``unauthenticated`` without one);
  counts the request against the user's rate limit.
- ``require_mfa``: the same, verified with a TOTP code in this session (403
  ``mfa_required`` otherwise): withdrawals, destinations, every back-office action.
- ``require_role(*roles)``: a staff route: 403 ``forbidden`` for any other role, and, as
  every back-office action needs 2FA, ``mfa_required`` unless ``mfa=False``.

Also the password rules, the argon2 hashing and TOTP checks the auth routes share.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

import pyotp
from argon2.exceptions import InvalidHashError, VerificationError
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from serving.api.problems import Problem
from serving.api.ratelimit import RateLimiter
from serving.api.sessions import Session, SessionStore
from serving.api.state import ApiState, get_state

_bearer = HTTPBearer(auto_error=False, description="A session token from POST /v1/auth/login.")

# A hash to spend the same time on an unknown username as on a wrong password.
_DUMMY_PASSWORD = "not the password of anyone"  # noqa: S105
_TOTP_USED_PREFIX = "bourse:totp-used:"


def client_ip(request: Request, state: ApiState) -> str:
    header = state.settings.api_ip_header
    if header:
        forwarded = request.headers.get(header, "")
        # X-Forwarded-For: the client first, then the proxies.
        first = forwarded.split(",")[0].strip()
        if first:
            return first[:64]
    return request.client.host if request.client else ""


def client_country(request: Request, state: ApiState) -> str | None:
    country = request.headers.get(state.settings.api_country_header, "").strip().upper()
    return country if len(country) == 2 and country.isalpha() else None


def limit_ip(request: Request, state: Annotated[ApiState, Depends(get_state)]) -> None:
    """Every request counts against its IP's limit (an app-wide dependency)."""
    s = state.settings
    RateLimiter(state.redis).hit(
        "ip", client_ip(request, state), s.api_rate_per_ip, s.api_rate_window_s, state.clock()
    )


def sessions(state: ApiState) -> SessionStore:
    s = state.settings
    return SessionStore(state.redis, s.api_session_idle_s, s.api_session_max_s)


def current_user(
    request: Request,
    state: Annotated[ApiState, Depends(get_state)],
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Session:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise Problem.of(
            "unauthenticated", "log in and send the session token as a Bearer token",
            headers={"WWW-Authenticate": "Bearer"},
        )  # fmt: skip
    session = sessions(state).touch(credentials.credentials, state.clock())
    if session is None:
        raise Problem.of(
            "unauthenticated", "the session is unknown, expired or revoked: log in again",
            headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
        )  # fmt: skip
    s = state.settings
    RateLimiter(state.redis).hit(
        "user", str(session.user_id), s.api_rate_per_user, s.api_rate_window_s, state.clock()
    )
    request.state.session = session
    return session


def require_mfa(user: Annotated[Session, Depends(current_user)]) -> Session:
    if not user.mfa:
        raise Problem.of(
            "mfa_required",
            "this needs a session verified with a TOTP code: POST /v1/auth/2fa/challenge "
            "(or enrol first: POST /v1/auth/2fa/enroll)",
        )
    return user


def require_role(*roles: str, mfa: bool = True) -> Callable[..., Session]:
    """A dependency: the caller is of one of ``roles`` (and verified with 2FA unless
    ``mfa=False``)."""
    allowed = frozenset(roles)

    def check(user: Annotated[Session, Depends(current_user)]) -> Session:
        if user.role not in allowed:
            raise Problem.of("forbidden", f"this needs one of the roles {sorted(allowed)}")
        return require_mfa(user) if mfa else user

    return check


# -- passwords ----------------------------------------------------------------------------


def password_problem(password: str, username: str, min_length: int) -> str | None:
    """Why ``password`` is refused, or None."""
    if len(password) < min_length:
        return f"at least {min_length} characters"
    if len(password) > 1024:
        return "at most 1024 characters"
    classes = sum(
        (
            any(c.islower() for c in password),
            any(c.isupper() for c in password),
            any(c.isdigit() for c in password),
            any(not c.isalnum() for c in password),
        )
    )
    # A long passphrase may be all lower case; a short password needs variety.
    if classes < 3 and len(password) < 20:
        return "three of: lower case, upper case, digits, symbols (or 20 characters or more)"
    if username and username.lower() in password.lower():
        return "must not contain the username"
    if len(set(password)) < 5:
        return "too few distinct characters"
    return None


def check_password(state: ApiState, stored_hash: str | None, password: str) -> bool:
    """``password`` against an argon2 hash; with no hash (an unknown user) the same work
    is done against a dummy, so timing does not tell which usernames exist."""
    target = stored_hash or _dummy_hash(state)
    try:
        ok = state.hasher.verify(target, password)
    except (VerificationError, InvalidHashError):
        return False
    return ok and stored_hash is not None


_dummy: dict[int, str] = {}


def _dummy_hash(state: ApiState) -> str:
    key = id(state.hasher)
    if key not in _dummy:
        _dummy[key] = state.hasher.hash(_DUMMY_PASSWORD)
    return _dummy[key]


# -- TOTP ---------------------------------------------------------------------------------


def totp_ok(state: ApiState, user_id: int, secret: str, code: str) -> bool:
    """A valid code for ``secret`` (the current step or the one either side), not used
    before by this user: a code seen once is refused for its whole validity."""
    code = code.strip()
    if not (code.isdigit() and len(code) == 6):
        return False
    if not pyotp.TOTP(secret).verify(code, valid_window=1):
        return False
    first = state.redis.set(f"{_TOTP_USED_PREFIX}{user_id}:{code}", "1", nx=True, px=120_000)
    return bool(first)


def totp_uri(state: ApiState, secret: str, username: str) -> str:
    return pyotp.TOTP(secret).provisioning_uri(
        name=username, issuer_name=state.settings.api_totp_issuer
    )
