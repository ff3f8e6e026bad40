"""The simulated payment provider's settlement file: its format, and what it refuses."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from trading.funding_settlement import (
    HEADER,
    SettlementRow,
    settlement_path,
    write_settlement_file,
)

NS = 1_000_000_000
MON_10 = 1_767_607_200 * NS  # Monday 2026-01-05 10:00 UTC
DAY = dt.date(2026, 1, 5)


def _row(ref: str = "pay-1", amount: str = "100.50", currency: str = "USD", **kw: object) -> Any:
    fields: dict[str, object] = {"provider_ref": ref, "kind": "deposit", "account_id": 7,
                                 "currency": currency, "amount": Decimal(amount),
                                 "settled_ns": MON_10}  # fmt: skip
    fields.update(kw)
    return SettlementRow(**fields)  # type: ignore[arg-type]


def test_settlement_file_when_written_then_rows_are_decimal_strings_in_time_order(
    tmp_path: Path,
) -> None:
    later = _row("withdrawal:3", "20", kind="withdrawal", settled_ns=MON_10 + 5 * NS + 123_456)
    path = write_settlement_file(tmp_path, DAY, [later, _row(), _row("jp-1", "1500", "JPY")])

    assert path == settlement_path(tmp_path, DAY) == tmp_path / "psp/settlements/2026-01-05.csv"
    assert path.read_text().splitlines() == [
        HEADER.strip(),
        "jp-1,deposit,7,JPY,1500,2026-01-05T10:00:00.000000Z",
        "pay-1,deposit,7,USD,100.50,2026-01-05T10:00:00.000000Z",
        "withdrawal:3,withdrawal,7,USD,20.00,2026-01-05T10:00:05.000123Z",
    ]


def test_settlement_file_when_a_day_settled_nothing_then_header_only(tmp_path: Path) -> None:
    path = write_settlement_file(tmp_path, DAY, [])

    assert path.read_text() == HEADER


@pytest.mark.parametrize(
    ("row", "message"),
    [
        (_row(amount="0.001"), "more than 2 decimals"),
        (_row(amount="-5"), "not a positive Decimal"),
        (_row(settled_ns=MON_10 + 12 * 3_600 * NS + 1), "not on 2026-01-05"),  # past the cut-off
        (_row(ref="a,b"), "no comma"),
        (_row(kind="refund"), "deposit or withdrawal"),
    ],
)
def test_settlement_file_when_a_row_is_bad_then_refused_and_nothing_written(
    tmp_path: Path, row: SettlementRow, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        write_settlement_file(tmp_path, DAY, [_row("ok-1"), row])

    assert not settlement_path(tmp_path, DAY).exists()
