"""The API's own tables: its users (clients' logins and staff) and the devices they log in
from. They live in the store beside the trading core's tables, on the same ``metadata`` (one
Alembic history, one ``migrate``), but only the API writes them; the OMS never reads them.

Kept out of ``schema.py`` because they are not the trading core's: no command touches them,
and no ledger or audit invariant covers them. ``schema.py`` calls ``define`` on its metadata
(this module imports nothing of it, so either may be imported first) and names the tables
``schema.users`` and ``schema.devices``.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
)

ROLES = ("client", "support", "risk", "compliance", "admin")


def define(metadata: MetaData) -> tuple[Table, Table]:
    """The ``users`` and ``devices`` tables, on ``metadata``."""
    return _users(metadata), _devices(metadata)


def _users(metadata: MetaData) -> Table:
    return Table(
        "users",
        metadata,
        Column("user_id", BigInteger, primary_key=True, autoincrement=False),
        # The client this login acts for; staff have none. A client's user whose client is
        # still being created through the bus has none yet either (it cannot log in).
        Column("client_id", BigInteger, ForeignKey("clients.client_id"), nullable=True),
        Column("username", String(64), nullable=False, unique=True),
        Column("email", String(254), nullable=False),
        # argon2id, in its PHC string form (parameters and salt included).
        Column("password_hash", String(256), nullable=False),
        # client | support | risk | compliance | admin
        Column("role", String(16), nullable=False),
        # base32, set at enrolment; 2FA is on only once a code was verified.
        Column("totp_secret", String(64), nullable=True),
        Column("totp_enabled", Boolean, nullable=False),
        # Failed logins in a row; reset by a success.
        Column("failed_logins", Integer, nullable=False),
        Column("locked_until_ns", BigInteger, nullable=True),
        Column("created_ns", BigInteger, nullable=False),
        Index("ix_users_client", "client_id"),
    )


def _devices(metadata: MetaData) -> Table:
    return Table(
        "devices",
        metadata,
        Column("user_id", BigInteger, ForeignKey("users.user_id"), nullable=False),
        # The client's own id of the device (an install id), at most 128 characters.
        Column("device_id", String(128), nullable=False),
        Column("first_seen_ns", BigInteger, nullable=False),
        Column("last_seen_ns", BigInteger, nullable=False),
        Column("last_ip", String(64), nullable=True),
        # ISO 3166-1 alpha-2, from the deployment's header; null when it sets none.
        Column("last_country", String(2), nullable=True),
        PrimaryKeyConstraint("user_id", "device_id"),
    )
