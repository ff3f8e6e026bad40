"""Accounts' clients read from the store, for accounts whose ``account.opened`` this run
never read (opened before the streams' oldest entry, or before a fresh recovery store)."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import Engine, select

from trading.store import schema as s


def client_lookup(dsn: str) -> Callable[[list[int]], dict[int, int | None]]:
    """A lookup of accounts' clients in the store at ``dsn`` (opened read-only on first use)."""
    from trading.store.engine import open_readonly

    engine: list[Engine] = []

    def lookup(account_ids: list[int]) -> dict[int, int | None]:
        if not engine:
            engine.append(open_readonly(dsn))
        a = s.accounts
        with engine[0].connect() as conn:
            rows = conn.execute(select(a.c.account_id, a.c.client_id)
                                .where(a.c.account_id.in_(account_ids)))  # fmt: skip
            return {int(r.account_id): None if r.client_id is None else int(r.client_id)
                    for r in rows}  # fmt: skip

    return lookup
