"""The simulator's output buffer and its identifiers: rows appended per client, in any
order, sorted by time once at the end.

Amounts are kept as integer cents and written as two-decimal strings; prices and lots are
written as decimal strings at the instrument's precision.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl

from ml.events import COLUMNS, SCHEMA, check_frame


def money(cents: int) -> str:
    """Integer minor units as a two-decimal string (``12345`` -> ``"123.45"``)."""
    sign = "-" if cents < 0 else ""
    cents = abs(cents)
    return f"{sign}{cents // 100}.{cents % 100:02d}"


class Ids:
    """Random-looking, unique, reproducible identifiers drawn from the run's generator.

    Uniqueness is checked against a set, but the set is never iterated, so the output does
    not depend on hash order.
    """

    def __init__(self, rng: np.random.Generator) -> None:
        self._rng = rng
        self._seen: set[str] = set()

    def _fresh(self, make: Any) -> str:
        while True:
            value: str = make()
            if value not in self._seen:
                self._seen.add(value)
                return value

    def device(self) -> str:
        return self._fresh(lambda: f"dev-{int(self._rng.integers(0, 2**48)):012x}")

    def fingerprint(self) -> str:
        return self._fresh(lambda: f"fp-{int(self._rng.integers(0, 2**56)):014x}")

    def destination(self) -> str:
        return self._fresh(lambda: f"dst-{int(self._rng.integers(0, 2**40)):010x}")

    def ip(self) -> str:
        def make() -> str:
            a = int(self._rng.integers(11, 224))
            while a in (100, 127, 169, 172, 192):  # keep clear of private/reserved blocks
                a = int(self._rng.integers(11, 224))
            b, c, d = (int(x) for x in self._rng.integers(0, 256, size=3))
            return f"{a}.{b}.{c}.{max(d, 1)}"

        return self._fresh(make)


class Rows:
    """Events as tuples in the contract's column order, plus an append counter that breaks
    ties between equal timestamps (so a login written before its order stays before it)."""

    def __init__(self) -> None:
        self.rows: list[tuple[Any, ...]] = []

    def __len__(self) -> int:
        return len(self.rows)

    def add(
        self,
        ts_ns: int,
        type_: str,
        client_id: int,
        account_id: int | None,
        *,
        device_id: str | None = None,
        ip: str | None = None,
        country: str | None = None,
        success: bool | None = None,
        amount: str | None = None,
        currency: str | None = None,
        method: str | None = None,
        instrument_id: str | None = None,
        destination_id: str | None = None,
        symbol: str | None = None,
        side: str | None = None,
        qty: str | None = None,
        price: str | None = None,
        label: int = 0,
        scenario: str = "normal",
    ) -> None:
        self.rows.append(
            (
                ts_ns,
                type_,
                client_id,
                account_id,
                device_id,
                ip,
                country,
                success,
                amount,
                currency,
                method,
                instrument_id,
                destination_id,
                symbol,
                side,
                qty,
                price,
                label,
                scenario,
                len(self.rows),
            )
        )

    def frame(self) -> pl.DataFrame:
        """The checked frame, in time order (ties kept in append order)."""
        self.rows.sort(key=lambda r: (r[0], r[-1]))
        columns = list(zip(*self.rows, strict=True)) if self.rows else [()] * (len(COLUMNS) + 1)
        data = {name: list(columns[i]) for i, name in enumerate(COLUMNS)}
        return check_frame(pl.DataFrame(data, schema=SCHEMA))
