"""The API's users and devices in the store (``trading.store.schema.users``, ``devices``).

Only the API writes these tables; each write is one short transaction on the writer
engine (SQLite: the write lock taken at BEGIN, so it waits its turn behind the OMS's batch
rather than failing half-way).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, Row, insert, select, update

from trading.store import schema as s
from trading.store.engine import writer

STAFF_ROLES = ("support", "risk", "compliance", "admin")
ROLES = ("client", *STAFF_ROLES)


@dataclass(frozen=True)
class User:
    user_id: int
    client_id: int | None
    username: str
    email: str
    password_hash: str
    role: str
    totp_secret: str | None
    totp_enabled: bool
    failed_logins: int
    locked_until_ns: int | None
    created_ns: int

    @property
    def active(self) -> bool:
        """A client's user whose client is not created yet (or failed to be) cannot log in."""
        return self.role != "client" or self.client_id is not None


def _user(row: Row[Any] | None) -> User | None:
    if row is None:
        return None
    m = row._mapping
    return User(
        user_id=int(m["user_id"]),
        client_id=None if m["client_id"] is None else int(m["client_id"]),
        username=m["username"],
        email=m["email"],
        password_hash=m["password_hash"],
        role=m["role"],
        totp_secret=m["totp_secret"],
        totp_enabled=bool(m["totp_enabled"]),
        failed_logins=int(m["failed_logins"]),
        locked_until_ns=None if m["locked_until_ns"] is None else int(m["locked_until_ns"]),
        created_ns=int(m["created_ns"]),
    )


def by_username(engine: Engine, username: str) -> User | None:
    with engine.connect() as conn:
        return _user(conn.execute(select(s.users).where(s.users.c.username == username)).first())


def by_id(engine: Engine, user_id: int) -> User | None:
    with engine.connect() as conn:
        return _user(conn.execute(select(s.users).where(s.users.c.user_id == user_id)).first())


def add(
    engine: Engine,
    *,
    user_id: int,
    username: str,
    email: str,
    password_hash: str,
    role: str,
    now_ns: int,
    client_id: int | None = None,
    totp_secret: str | None = None,
) -> None:
    """Inserts a user; ``IntegrityError`` when the username (or id) is taken."""
    assert role in ROLES, role
    with writer(engine).begin() as conn:
        conn.execute(
            insert(s.users).values(
                user_id=user_id, client_id=client_id, username=username, email=email,
                password_hash=password_hash, role=role, totp_secret=totp_secret,
                totp_enabled=False, failed_logins=0, locked_until_ns=None, created_ns=now_ns,
            )
        )  # fmt: skip


def remove(engine: Engine, user_id: int) -> None:
    """Drops a user whose registration failed (no device or session can exist yet)."""
    with writer(engine).begin() as conn:
        conn.execute(s.devices.delete().where(s.devices.c.user_id == user_id))
        conn.execute(s.users.delete().where(s.users.c.user_id == user_id))


def set_client(engine: Engine, user_id: int, client_id: int) -> None:
    with writer(engine).begin() as conn:
        conn.execute(
            update(s.users).where(s.users.c.user_id == user_id).values(client_id=client_id)
        )


def login_failed(engine: Engine, user_id: int, now_ns: int, limit: int, lockout_ns: int) -> bool:
    """Counts a failed login; at ``limit`` in a row the user is locked until now +
    ``lockout_ns`` and the count starts again. True when this failure locked the user."""
    with writer(engine).begin() as conn:
        count = conn.execute(
            update(s.users)
            .where(s.users.c.user_id == user_id)
            .values(failed_logins=s.users.c.failed_logins + 1)
            .returning(s.users.c.failed_logins)
        ).scalar_one()
        if count < limit:
            return False
        conn.execute(
            update(s.users)
            .where(s.users.c.user_id == user_id)
            .values(failed_logins=0, locked_until_ns=now_ns + lockout_ns)
        )
        return True


def login_succeeded(
    engine: Engine, user_id: int, device_id: str, ip: str, country: str | None, now_ns: int
) -> None:
    """Clears the failure count and records the device (first and last seen)."""
    with writer(engine).begin() as conn:
        conn.execute(
            update(s.users)
            .where(s.users.c.user_id == user_id)
            .values(failed_logins=0, locked_until_ns=None)
        )
        seen = {"last_seen_ns": now_ns, "last_ip": ip, "last_country": country}
        done = conn.execute(
            update(s.devices)
            .where(s.devices.c.user_id == user_id, s.devices.c.device_id == device_id)
            .values(**seen)
        ).rowcount
        if not done:
            conn.execute(
                insert(s.devices).values(
                    user_id=user_id, device_id=device_id, first_seen_ns=now_ns, **seen
                )
            )


def devices_of(engine: Engine, user_id: int) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(s.devices)
            .where(s.devices.c.user_id == user_id)
            .order_by(s.devices.c.first_seen_ns, s.devices.c.device_id)
        ).all()
    return [dict(r._mapping) for r in rows]


def set_totp(engine: Engine, user_id: int, secret: str, *, enabled: bool) -> None:
    with writer(engine).begin() as conn:
        conn.execute(
            update(s.users)
            .where(s.users.c.user_id == user_id)
            .values(totp_secret=secret, totp_enabled=enabled)
        )


def set_password_hash(engine: Engine, user_id: int, password_hash: str) -> None:
    with writer(engine).begin() as conn:
        conn.execute(
            update(s.users).where(s.users.c.user_id == user_id).values(password_hash=password_hash)
        )
