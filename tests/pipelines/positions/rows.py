"""Records of ``pipelines.positions.records`` for the output tests, with plain defaults."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from pipelines.positions.records import (
    AccountRow,
    CurrencyExposureRow,
    ExposureRow,
    LotRow,
    MarginState,
    PositionRow,
)

T0_NS = 1_767_600_000_000_000_000  # 2026-01-05 08:00 UTC


def account(account_id: int, level: str | None = "250", **over: Any) -> AccountRow:
    fields: dict[str, Any] = dict(
        account_id=account_id, currency="USD", account_type="margin", tier="standard",
        state="active", cash=900_000, balance=1_000_000, used_margin=100_000,
        withdrawal_pending=0, unrealized=150_000, equity=1_150_000, free_margin=1_050_000,
        margin_level=None if level is None else Decimal(level), margin_state=MarginState.OK,
        unmarked=(), positions=1, last_seq=7, ts_ns=T0_NS,
    )  # fmt: skip
    fields.update(over)
    return AccountRow(**fields)


def position(
    account_id: int, symbol: str = "EUR/USD", net_qty: int = 100, **over: Any
) -> PositionRow:
    lots = (
        LotRow(1, net_qty // 2, 110_000, 5_000),
        LotRow(2, net_qty - net_qty // 2, 110_020, 5_000),
    )
    fields: dict[str, Any] = dict(
        account_id=account_id, symbol=symbol, net_qty=net_qty, cost=110_010 * net_qty,
        avg_price=Decimal("1.10010"), lots=lots if net_qty else (), currency="USD",
        margin=10_000 if net_qty else 0, mark=110_050, unrealized=400, ts_ns=T0_NS + 1,
    )  # fmt: skip
    fields.update(over)
    return PositionRow(**fields)


def exposure(symbol: str, value: int | None, *, breached: bool = False, **over: Any) -> ExposureRow:
    fields: dict[str, Any] = dict(
        symbol=symbol, client_net_qty=300, long_qty=500, short_qty=200, accounts=3,
        value=value, limit=50_000_000, breached=breached, ts_ns=T0_NS + 2,
    )  # fmt: skip
    fields.update(over)
    return ExposureRow(**fields)


def currency(
    code: str, amount: str, value: int | None, *, breached: bool = False
) -> CurrencyExposureRow:
    return CurrencyExposureRow(code, Decimal(amount), value, 90_000_000, breached, T0_NS + 3)
