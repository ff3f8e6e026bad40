"""The positions flow's live state in Redis: key names, encoders, decoders and the sink.

The layout is the contract of ``docs/risk.md``; spell keys through the constants and
functions here, never by hand. Every number is a decimal integer (or decimal) string or a
JSON integer, never a float, except the score of ``bourse:risk:margin_levels``, which only
orders the set (the exact level is the account hash's string).

One ``write_batch`` is one MULTI/EXEC round trip, so a reader never sees half a batch.
Delivery is at least once: a batch written again after a restart leaves the hashes as they
were; the streams may carry its entries twice.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, fields
from decimal import Decimal
from typing import Any

import redis
from bytewax.outputs import DynamicSink, StatelessSinkPartition

from pipelines.positions.records import (
    AccountRow,
    Alert,
    CurrencyExposureRow,
    DeadLetter,
    ExposureRow,
    LotRow,
    PositionRow,
)
from trading.bus.risk import (  # the layout is the contract the readers share
    ALERTS_STREAM,
    CHANGES_STREAM,
    CURRENCY_EXPOSURE,
    DEAD_STREAM,
    EXPOSURE,
    HOUSE,
    KIND_ACCOUNT,
    KIND_CURRENCY,
    KIND_EXPOSURE,
    KIND_POSITION,
    MARGIN_LEVELS,
    account_key,
    positions_key,
)
from trading.fields import text_of

RiskItem = AccountRow | PositionRow | ExposureRow | CurrencyExposureRow | Alert | DeadLetter


def _dec(value: Decimal) -> str:
    """A plain decimal string: never an exponent (``1E+2`` is written ``100``)."""
    return format(value, "f")


def _json(obj: object) -> str:
    return json.dumps(obj, separators=(",", ":"), sort_keys=True)


def account_fields(row: AccountRow) -> dict[str, str]:
    """The account hash: every field of the row, as a string."""
    return {
        "account_id": str(row.account_id),
        "currency": row.currency,
        "account_type": row.account_type,
        "tier": row.tier,
        "state": row.state,
        "cash": str(row.cash),
        "balance": str(row.balance),
        "used_margin": str(row.used_margin),
        "withdrawal_pending": str(row.withdrawal_pending),
        "unrealized": str(row.unrealized),
        "equity": str(row.equity),
        "free_margin": str(row.free_margin),
        "margin_level": "" if row.margin_level is None else _dec(row.margin_level),
        "margin_state": row.margin_state.value,
        "unmarked": ",".join(row.unmarked),
        "positions": str(row.positions),
        "last_seq": str(row.last_seq),
        "ts_ns": str(row.ts_ns),
        "other_cash": _json(dict(row.other_cash)),
    }


def _lot(lot: LotRow) -> dict[str, int]:
    return {"lot_id": lot.lot_id, "remaining": lot.remaining, "price": lot.price,
            "margin": lot.margin}  # fmt: skip


def position_obj(row: PositionRow) -> dict[str, Any]:
    return {
        "account_id": row.account_id,
        "symbol": row.symbol,
        "net_qty": row.net_qty,
        "cost": row.cost,
        "avg_price": _dec(row.avg_price),
        "lots": [_lot(lot) for lot in row.lots],
        "currency": row.currency,
        "margin": row.margin,
        "mark": row.mark,
        "unrealized": row.unrealized,
        "ts_ns": row.ts_ns,
    }


def exposure_obj(row: ExposureRow) -> dict[str, Any]:
    return {
        "symbol": row.symbol,
        "client_net_qty": row.client_net_qty,
        "long_qty": row.long_qty,
        "short_qty": row.short_qty,
        "accounts": row.accounts,
        "value": row.value,
        "limit": row.limit,
        "breached": row.breached,
        "ts_ns": row.ts_ns,
    }


def currency_obj(row: CurrencyExposureRow) -> dict[str, Any]:
    return {
        "currency": row.currency,
        "amount": _dec(row.amount),
        "value": row.value,
        "limit": row.limit,
        "breached": row.breached,
        "ts_ns": row.ts_ns,
    }


def _opt(value: object) -> str:
    return "" if value is None else str(value)


def alert_fields(alert: Alert) -> dict[str, str]:
    return {
        "kind": alert.kind.value,
        "ts_ns": str(alert.ts_ns),
        "account_id": _opt(alert.account_id),
        "symbol": _opt(alert.symbol),
        "currency": _opt(alert.currency),
        "level": "" if alert.level is None else _dec(alert.level),
        "message": alert.message,
        "details": _json(alert.details),
    }


def dead_fields(dead: DeadLetter) -> dict[str, str]:
    return {
        "stream": dead.stream,
        "stream_id": dead.stream_id,
        "reason": dead.reason,
        "ts_ns": str(dead.ts_ns),
        "event_id": _opt(dead.event_id),
        "account_id": _opt(dead.account_id),
        "raw": dead.raw,
    }


def house_fields(
    house_currency: str,
    exposure: Iterable[ExposureRow],
    currencies: Iterable[CurrencyExposureRow],
) -> dict[str, str]:
    """The house summary from every symbol's and currency's latest row.

    ``value`` is gross: the sum of |value| over the symbols that have one (a long in one
    symbol does not offset a short in another for the desk); ``unvalued`` names the symbols
    without a value, which the sum leaves out.
    """
    sym = sorted(exposure, key=lambda r: r.symbol)
    cur = sorted(currencies, key=lambda r: r.currency)
    ts = max([r.ts_ns for r in sym] + [r.ts_ns for r in cur], default=0)
    return {
        "house_currency": house_currency,
        "ts_ns": str(ts),
        "symbols_breached": ",".join(r.symbol for r in sym if r.breached),
        "currencies_breached": ",".join(r.currency for r in cur if r.breached),
        "value": str(sum(abs(r.value) for r in sym if r.value is not None)),
        "unvalued": ",".join(r.symbol for r in sym if r.value is None),
    }


# ---- the sink ----


@dataclass(slots=True)
class _HouseView:
    """The latest row of every symbol and currency this worker has written (seeded from
    Redis when the partition starts), from which the house hash is recomputed."""

    symbols: dict[str, ExposureRow]
    currencies: dict[str, CurrencyExposureRow]


def _known(cls: type[Any], obj: dict[str, Any]) -> dict[str, Any]:
    # A field added to the layout later is not a constructor argument of today's record.
    names = {f.name for f in fields(cls)}
    return {k: v for k, v in obj.items() if k in names}


def _load_house(client: redis.Redis) -> _HouseView:
    """The stored exposure rows, in one round trip (when the partition starts)."""
    pipe = client.pipeline(transaction=False)
    pipe.hgetall(EXPOSURE)
    pipe.hgetall(CURRENCY_EXPOSURE)
    symbols_raw, currencies_raw = pipe.execute()

    def rows(raw: dict[bytes, bytes], cls: type[Any]) -> dict[str, Any]:
        out = {}
        for name, data in raw.items():
            obj = _known(cls, json.loads(data))
            if "amount" in obj:
                obj["amount"] = Decimal(obj["amount"])
            out[text_of(name)] = cls(**obj)
        return out

    return _HouseView(rows(symbols_raw, ExposureRow), rows(currencies_raw, CurrencyExposureRow))


class _RiskRedisPartition(StatelessSinkPartition[RiskItem]):
    def __init__(self, sink: RiskRedisSink) -> None:
        self.sink = sink
        self.client = redis.Redis.from_url(sink.redis_url)
        self.house = _load_house(self.client)

    def write_batch(self, items: list[RiskItem]) -> None:
        if not items:
            return
        s = self.sink
        pipe = self.client.pipeline(transaction=True)
        symbols: dict[str, ExposureRow] = {}  # into self.house once the batch is written
        currencies: dict[str, CurrencyExposureRow] = {}

        def change(kind: str, key: object, ts_ns: int, data: str) -> None:
            entry = {"kind": kind, "key": str(key), "ts_ns": str(ts_ns), "data": data}
            pipe.xadd(CHANGES_STREAM, entry, maxlen=s.changes_maxlen, approximate=True)  # type: ignore[arg-type]

        for item in items:
            if isinstance(item, AccountRow):
                acc = account_fields(item)
                pipe.hset(account_key(item.account_id), mapping=acc)  # type: ignore[arg-type]
                if item.margin_level is None:
                    pipe.zrem(MARGIN_LEVELS, item.account_id)
                else:
                    pipe.zadd(MARGIN_LEVELS, {str(item.account_id): float(item.margin_level)})
                change(KIND_ACCOUNT, item.account_id, item.ts_ns, _json(acc))
            elif isinstance(item, PositionRow):
                data = _json(position_obj(item))
                if item.net_qty == 0:
                    pipe.hdel(positions_key(item.account_id), item.symbol)
                else:
                    pipe.hset(positions_key(item.account_id), item.symbol, data)
                change(KIND_POSITION, item.account_id, item.ts_ns, data)
            elif isinstance(item, ExposureRow):
                data = _json(exposure_obj(item))
                symbols[item.symbol] = item
                pipe.hset(EXPOSURE, item.symbol, data)
                change(KIND_EXPOSURE, item.symbol, item.ts_ns, data)
            elif isinstance(item, CurrencyExposureRow):
                data = _json(currency_obj(item))
                currencies[item.currency] = item
                pipe.hset(CURRENCY_EXPOSURE, item.currency, data)
                change(KIND_CURRENCY, item.currency, item.ts_ns, data)
            elif isinstance(item, Alert):
                pipe.xadd(ALERTS_STREAM, alert_fields(item), maxlen=s.alerts_maxlen,  # type: ignore[arg-type]
                          approximate=True)  # fmt: skip
            elif isinstance(item, DeadLetter):
                pipe.xadd(DEAD_STREAM, dead_fields(item), maxlen=s.dead_maxlen,  # type: ignore[arg-type]
                          approximate=True)  # fmt: skip
            else:
                raise TypeError(f"RiskRedisSink cannot write {type(item).__name__}: {item!r}")
        if symbols or currencies:
            all_symbols = {**self.house.symbols, **symbols}
            all_currencies = {**self.house.currencies, **currencies}
            house = house_fields(s.house_currency, all_symbols.values(), all_currencies.values())
            pipe.hset(HOUSE, mapping=house)  # type: ignore[arg-type]
        pipe.execute()
        self.house.symbols.update(symbols)
        self.house.currencies.update(currencies)

    def close(self) -> None:
        self.client.close()


class RiskRedisSink(DynamicSink[RiskItem]):
    """Bytewax sink of the positions flow's records (``RiskItem``) into the layout of
    ``docs/risk.md``; each worker has its own connection, each batch one transaction.

    The house hash sums the exposure rows this worker has seen (seeded from Redis): the
    flow must emit a symbol's and a currency's rows from one worker (its house step).
    """

    def __init__(
        self,
        redis_url: str,
        *,
        changes_maxlen: int = 100_000,
        alerts_maxlen: int = 100_000,
        dead_maxlen: int = 100_000,
        house_currency: str = "USD",
    ) -> None:
        for name, value in (("changes_maxlen", changes_maxlen), ("alerts_maxlen", alerts_maxlen),
                            ("dead_maxlen", dead_maxlen)):  # fmt: skip
            if value <= 0:
                raise ValueError(f"{name} must be positive, got {value}")
        self.redis_url = redis_url
        self.changes_maxlen = changes_maxlen
        self.alerts_maxlen = alerts_maxlen
        self.dead_maxlen = dead_maxlen
        self.house_currency = house_currency

    def build(
        self, step_id: str, worker_index: int, worker_count: int
    ) -> StatelessSinkPartition[RiskItem]:
        return _RiskRedisPartition(self)
