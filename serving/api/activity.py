"""The login activity stream, ``bourse:activity:logins``: every login attempt, success or
failure, for the fraud flow (documented in docs/activity.md, kept in step by a test).

Each entry is a flat hash of strings; an absent value is the empty string.
"""

from __future__ import annotations

from enum import StrEnum

import redis

LOGINS_STREAM = "bourse:activity:logins"

# Every field of an entry, in order.
LOGIN_FIELDS = (
    "ts_ns", "user_id", "client_id", "username", "device_id", "ip", "country", "success",
    "reason",
)  # fmt: skip


class LoginOutcome(StrEnum):
    """An attempt's ``reason``."""

    OK = "ok"
    UNKNOWN_USER = "unknown_user"
    BAD_PASSWORD = "bad_password"  # noqa: S105 (an outcome's name, not a secret)
    BAD_TOTP = "bad_totp"
    LOCKED_OUT = "locked_out"
    NOT_ACTIVE = "not_active"


def login_entry(
    *,
    ts_ns: int,
    user_id: int | None,
    client_id: int | None,
    username: str,
    device_id: str,
    ip: str,
    country: str,
    outcome: LoginOutcome,
) -> dict[str, str]:
    entry = {
        "ts_ns": str(ts_ns),
        "user_id": "" if user_id is None else str(user_id),
        "client_id": "" if client_id is None else str(client_id),
        "username": username,
        "device_id": device_id,
        "ip": ip,
        "country": country,
        "success": "true" if outcome is LoginOutcome.OK else "false",
        "reason": outcome.value,
    }
    assert tuple(entry) == LOGIN_FIELDS
    return entry


def record_login(client: redis.Redis, entry: dict[str, str], maxlen: int) -> None:
    client.xadd(LOGINS_STREAM, entry, maxlen=maxlen, approximate=True)  # type: ignore[arg-type]
