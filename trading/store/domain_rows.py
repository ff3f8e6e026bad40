"""Rows of the tables migration 0004 added, built from commands and pure results.

The handlers that execute the new commands add these dicts to their batch; the keys are
exactly the tables' columns (``trading.store.schema``), so a row that comes out can be stored.
Dates are ``datetime.date`` (a raw DBAPI insert on SQLite writes them as ISO text, the form
SQLAlchemy's ``Date`` reads back).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from trading.accounts import LimitOverrides
from trading.commands import AddDestination, CreateClient, Deposit, SetLimits
from trading.financing import EodMark, FinancingCharge
from trading.funding import check_destination_instrument


def client_row(cmd: CreateClient, ts_ns: int) -> dict[str, Any]:
    return {
        "client_id": cmd.client_id, "kind": cmd.kind.value, "name": cmd.name,
        "country": cmd.country, "email": cmd.email, "birth_date": cmd.birth_date,
        "lei": cmd.lei, "national_id": cmd.national_id, "created_ns": ts_ns,
    }  # fmt: skip


def limits_of(cmd: SetLimits) -> LimitOverrides:
    return LimitOverrides(
        cmd.max_position_lots, cmd.max_order_lots, cmd.max_order_notional,
        cmd.max_orders_per_second,
    )  # fmt: skip


def limits_row(cmd: SetLimits, ts_ns: int) -> dict[str, Any]:
    """The ``account_limits`` row (replaces the account's row: delete then insert, or upsert)."""

    def text(value: object) -> str | None:
        return None if value is None else str(value)

    return {
        "account_id": cmd.account_id,
        "max_position_lots": text(cmd.max_position_lots),
        "max_order_lots": text(cmd.max_order_lots),
        "max_order_notional": text(cmd.max_order_notional),
        "max_orders_per_second": cmd.max_orders_per_second,
        "updated_ns": ts_ns,
    }


def limits_from_row(row: Any) -> LimitOverrides:
    """The overrides of an ``account_limits`` row (as ``recover`` reads it back)."""

    def dec(value: str | None) -> Decimal | None:
        return None if value is None else Decimal(value)

    return LimitOverrides(
        dec(row.max_position_lots), dec(row.max_order_lots), dec(row.max_order_notional),
        row.max_orders_per_second,
    )  # fmt: skip


def deposit_row(cmd: Deposit, deposit_id: int, txn_id: int, ts_ns: int) -> dict[str, Any]:
    return {
        "deposit_id": deposit_id, "account_id": cmd.account_id, "currency": cmd.currency,
        "amount": cmd.amount, "method": None if cmd.method is None else cmd.method.value,
        "instrument_fingerprint": cmd.instrument_fingerprint, "provider": cmd.provider,
        "provider_ref": cmd.provider_ref, "ref": cmd.ref, "txn_id": txn_id, "ts_ns": ts_ns,
    }  # fmt: skip


def destination_row(cmd: AddDestination, destination_id: int, ts_ns: int) -> dict[str, Any]:
    """The destination's row; the display text (a masked IBAN) is derived here, and is what
    events and audit records carry instead of the instrument."""
    instrument, display = check_destination_instrument(cmd.kind, cmd.instrument)
    return {
        "destination_id": destination_id, "account_id": cmd.account_id,
        "kind": cmd.kind.value, "label": cmd.label, "currency": cmd.currency,
        "instrument": instrument, "display": display, "created_ns": ts_ns,
    }  # fmt: skip


def eod_mark_row(mark: EodMark, cutoff_ns: int) -> dict[str, Any]:
    return {
        "symbol": mark.symbol, "trade_date": mark.trade_date, "bid": mark.bid,
        "ask": mark.ask, "ts_ns": mark.ts_ns, "cutoff_ns": cutoff_ns,
    }  # fmt: skip


def financing_row(
    financing_id: int,
    account_id: int,
    charge: FinancingCharge,
    trade_date: dt.date,
    cutoff_ns: int,
    txn_id: int | None,
) -> dict[str, Any]:
    return {
        "financing_id": financing_id, "account_id": account_id, "symbol": charge.symbol,
        "trade_date": trade_date, "cutoff_ns": cutoff_ns, "nights": charge.nights,
        "net_qty": charge.net_qty, "mark": charge.mark, "rate": str(charge.rate),
        "day_count": charge.day_count, "amount_quote": str(charge.amount_quote),
        "quote_currency": charge.quote_currency,
        "conversion_rate": str(charge.conversion_rate), "amount": charge.amount,
        "currency": charge.currency, "txn_id": txn_id,
    }  # fmt: skip
