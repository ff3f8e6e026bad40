"""Staff users, made from the command line only (``bourse admin create-user``), never
through the public API. A staff user has 2FA on from the start: the secret is shown once,
at creation, to be added to an authenticator; every back-office action needs it."""

from __future__ import annotations

from dataclasses import dataclass

import pyotp
from argon2 import PasswordHasher
from sqlalchemy import Engine, func, insert, select

from serving.api.users import STAFF_ROLES
from trading.store import schema as s
from trading.store.engine import writer


@dataclass(frozen=True)
class StaffCreated:
    user_id: int
    username: str
    role: str
    totp_secret: str
    otpauth_uri: str


def create_staff(
    engine: Engine, *, username: str, password: str, role: str, email: str, now_ns: int,
    issuer: str = "Bourse",
) -> StaffCreated:  # fmt: skip
    """Inserts the user (``IntegrityError`` when the username is taken)."""
    if role not in STAFF_ROLES:
        raise ValueError(f"role must be one of {STAFF_ROLES}")
    secret = pyotp.random_base32()
    with writer(engine).begin() as conn:
        # The API's workers draw user ids from a Redis counter kept above the store's
        # largest id, so the next after that largest is free here.
        user_id = int(conn.execute(select(func.max(s.users.c.user_id))).scalar_one() or 0) + 1
        conn.execute(
            insert(s.users).values(
                user_id=user_id, client_id=None, username=username, email=email,
                password_hash=PasswordHasher().hash(password), role=role, totp_secret=secret,
                totp_enabled=True, failed_logins=0, locked_until_ns=None, created_ns=now_ns,
            )
        )  # fmt: skip
    uri = pyotp.TOTP(secret).provisioning_uri(name=username, issuer_name=issuer)
    return StaffCreated(user_id, username, role, secret, uri)
