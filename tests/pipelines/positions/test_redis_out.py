"""Specification of the positions flow's live state in Redis (``docs/risk.md``): records go
through ``RiskRedisSink`` at the end of a real Bytewax dataflow into a real redis-server,
and come back through the readers of ``pipelines.positions.redis_read``."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from decimal import Decimal

import pytest
import redis
from bytewax.dataflow import Dataflow
from bytewax.operators import input as bw_input
from bytewax.operators import output as bw_output
from bytewax.testing import TestingSource, run_main

from pipelines.positions.records import Alert, AlertKind, DeadLetter, MarginState
from pipelines.positions.redis_out import (
    ALERTS_STREAM,
    CHANGES_STREAM,
    DEAD_STREAM,
    HOUSE,
    MARGIN_LEVELS,
    RiskItem,
    RiskRedisSink,
    account_key,
    positions_key,
)
from tests.pipelines.positions.rows import T0_NS, account, currency, exposure, position
from trading.bus.risk import (
    accounts_by_margin_level,
    read_account,
    read_alerts,
    read_changes,
    read_currency_exposure,
    read_exposure,
    read_house,
    read_positions,
    stream_last_id,
)


@pytest.fixture
def client(redis_url: str) -> Iterator[redis.Redis]:
    with redis.Redis.from_url(redis_url) as c:
        yield c


def run_sink(url: str, items: Sequence[RiskItem], *, batch_size: int = 100, **kw: object) -> None:
    """Write ``items`` through RiskRedisSink at the end of a one-worker dataflow."""
    flow = Dataflow("risk_redis_test")
    stream = bw_input("in", flow, TestingSource(list(items), batch_size=batch_size))
    bw_output("out", stream, RiskRedisSink(url, **kw))  # type: ignore[arg-type]
    run_main(flow)


def hashes(client: redis.Redis) -> dict[str, object]:
    """Every hash and sorted set under bourse:risk:, as read: the state a dashboard sees."""
    out: dict[str, object] = {}
    for key in client.scan_iter("bourse:risk:*"):
        kind = client.type(key)
        if kind == b"hash":
            out[key.decode()] = client.hgetall(key)
        elif kind == b"zset":
            out[key.decode()] = client.zrange(key, 0, -1, withscores=True)
    return out


def test_sink_when_account_and_positions_written_then_readers_return_them_typed(
    client: redis.Redis, redis_url: str
) -> None:
    acc = account(7, "1150.5", unmarked=("XAU/USD", "US500"), other_cash=(("EUR", 12_345),),
                  margin_state=MarginState.MARGIN_CALL, positions=2)  # fmt: skip
    run_sink(redis_url, [acc, position(7, "EUR/USD", 100), position(7, "GBP/USD", -30)])

    got = read_account(client, 7)
    assert got == {
        "account_id": 7, "currency": "USD", "account_type": "margin", "tier": "standard",
        "state": "active", "cash": 900_000, "balance": 1_000_000, "used_margin": 100_000,
        "withdrawal_pending": 0, "unrealized": 150_000, "equity": 1_150_000,
        "free_margin": 1_050_000, "margin_level": Decimal("1150.5"),
        "margin_state": "margin_call", "unmarked": ["XAU/USD", "US500"],
        "other_cash": {"EUR": 12_345}, "positions": 2, "last_seq": 7, "ts_ns": T0_NS,
    }  # fmt: skip
    raw = client.hgetall(account_key(7))
    assert raw[b"margin_level"] == b"1150.5" and raw[b"other_cash"] == b'{"EUR":12345}'
    assert read_account(client, 8) is None

    pos = read_positions(client, 7)
    assert set(pos) == {"EUR/USD", "GBP/USD"}
    eur = pos["EUR/USD"]
    assert eur["net_qty"] == 100 and eur["cost"] == 11_001_000
    assert eur["avg_price"] == Decimal("1.10010") and eur["mark"] == 110_050
    assert eur["lots"] == [
        {"lot_id": 1, "remaining": 50, "price": 110_000, "margin": 5_000},
        {"lot_id": 2, "remaining": 50, "price": 110_020, "margin": 5_000},
    ]
    assert pos["GBP/USD"]["net_qty"] == -30
    # JSON: integers are JSON integers and the decimal a string, never a float.
    stored = json.loads(client.hget(positions_key(7), "EUR/USD"))  # type: ignore[arg-type]
    assert stored["avg_price"] == "1.10010" and isinstance(stored["cost"], int)


def test_sink_when_position_closes_then_it_is_removed_and_the_change_says_so(
    client: redis.Redis, redis_url: str
) -> None:
    run_sink(redis_url, [position(3, "EUR/USD", 100), position(3, "BTC/USD", 5),
                         position(3, "EUR/USD", 0, ts_ns=T0_NS + 9)], batch_size=1)  # fmt: skip
    assert set(read_positions(client, 3)) == {"BTC/USD"}

    run_sink(redis_url, [position(3, "BTC/USD", 0)])
    assert read_positions(client, 3) == {}
    assert not client.exists(positions_key(3))

    changes = read_changes(client, "0-0", 100)
    assert [(c["kind"], c["key"], c["data"]["symbol"], c["data"]["net_qty"])
            for _id, c in changes] == [("position", "3", "EUR/USD", 100),
                                       ("position", "3", "BTC/USD", 5),
                                       ("position", "3", "EUR/USD", 0),
                                       ("position", "3", "BTC/USD", 0)]  # fmt: skip
    assert changes[2][1]["ts_ns"] == T0_NS + 9


def test_margin_levels_when_read_then_lowest_level_first_and_unmargined_accounts_absent(
    client: redis.Redis, redis_url: str
) -> None:
    run_sink(redis_url, [account(1, "250"), account(2, "80.25"), account(3, "1200"),
                         account(4, None, used_margin=0), account(5, "99.999")])  # fmt: skip
    assert accounts_by_margin_level(client, 10) == [
        (2, Decimal("80.25")), (5, Decimal("99.999")), (1, Decimal("250")),
        (3, Decimal("1200")),
    ]  # fmt: skip
    assert accounts_by_margin_level(client, 2) == [(2, Decimal("80.25")), (5, Decimal("99.999"))]
    assert accounts_by_margin_level(client, 0) == []

    # Account 2 closes everything: it leaves the set; account 3 falls to the bottom.
    run_sink(redis_url, [account(2, None, used_margin=0), account(3, "45.5")])
    assert accounts_by_margin_level(client, 10) == [
        (3, Decimal("45.5")), (5, Decimal("99.999")), (1, Decimal("250")),
    ]  # fmt: skip
    assert client.zscore(MARGIN_LEVELS, "2") is None


def test_alerts_when_written_then_the_stream_carries_them_in_order_with_every_field(
    client: redis.Redis, redis_url: str
) -> None:
    call = Alert(AlertKind.MARGIN_CALL, T0_NS, "account 7 at 95.5 % (call at 100 %)",
                 account_id=7, level=Decimal("95.5"), details={"equity": "955.00"})  # fmt: skip
    limit = Alert(AlertKind.EXPOSURE_LIMIT, T0_NS + 5, "EUR over its limit", currency="EUR")
    run_sink(redis_url, [call, limit])

    alerts = read_alerts(client, "0-0", 10)
    assert [a for _id, a in alerts] == [
        {"kind": "margin_call", "ts_ns": T0_NS, "account_id": 7, "symbol": None,
         "currency": None, "level": Decimal("95.5"),
         "message": "account 7 at 95.5 % (call at 100 %)", "details": {"equity": "955.00"}},
        {"kind": "exposure_limit", "ts_ns": T0_NS + 5, "account_id": None, "symbol": None,
         "currency": "EUR", "level": None, "message": "EUR over its limit", "details": {}},
    ]  # fmt: skip
    raw = client.xrange(ALERTS_STREAM)[0][1]  # type: ignore[index]
    assert raw[b"account_id"] == b"7" and raw[b"symbol"] == b"" and raw[b"level"] == b"95.5"
    # Following: reading after the last id returns only what came later.
    assert read_alerts(client, alerts[0][0], 10) == alerts[1:]
    assert read_alerts(client, stream_last_id(client, ALERTS_STREAM), 10) == []


def test_dead_letters_when_written_then_their_stream_keeps_why(
    client: redis.Redis, redis_url: str
) -> None:
    dead = DeadLetter("bourse:events:3", "1767600000000-0", "unknown_event_type", T0_NS,
                      event_id=41, account_id=None, raw='{"type":"Nope"}')  # fmt: skip
    run_sink(redis_url, [dead])
    [(_id, fields)] = client.xrange(DEAD_STREAM)  # type: ignore[misc]
    assert fields == {
        b"stream": b"bourse:events:3", b"stream_id": b"1767600000000-0",
        b"reason": b"unknown_event_type", b"ts_ns": str(T0_NS).encode(), b"event_id": b"41",
        b"account_id": b"", b"raw": b'{"type":"Nope"}',
    }  # fmt: skip


def test_batch_when_written_twice_then_hashes_are_the_same_and_streams_repeat(
    client: redis.Redis, redis_url: str
) -> None:
    batch: list[RiskItem] = [
        account(1, "300"), position(1, "EUR/USD", 100), position(1, "GBP/USD", 10),
        position(1, "GBP/USD", 0), account(2, "120"), exposure("EUR/USD", 1_000_000),
        currency("EUR", "-1000.50", -1_100_000), Alert(AlertKind.REBUILD, T0_NS, "rebuilt 2"),
    ]  # fmt: skip
    run_sink(redis_url, batch)
    first = hashes(client)
    changes, alerts = client.xlen(CHANGES_STREAM), client.xlen(ALERTS_STREAM)
    run_sink(redis_url, batch)  # a restart replays it
    assert hashes(client) == first
    assert client.xlen(CHANGES_STREAM) == 2 * changes == 14
    assert client.xlen(ALERTS_STREAM) == 2 * alerts == 2


def test_exposure_when_symbols_move_separately_then_house_sums_every_symbol(
    client: redis.Redis, redis_url: str
) -> None:
    rows: list[RiskItem] = [
        exposure("EUR/USD", 1_000_000), exposure("US500", -2_500_000, breached=True),
        exposure("XAU/USD", None), currency("EUR", "-1000.50", -1_100_000, breached=True),
    ]  # fmt: skip
    run_sink(redis_url, rows, house_currency="USD")
    assert set(read_exposure(client)) == {"EUR/USD", "US500", "XAU/USD"}
    assert read_exposure(client)["US500"]["value"] == -2_500_000
    assert read_currency_exposure(client)["EUR"]["amount"] == Decimal("-1000.50")
    assert read_house(client) == {
        "house_currency": "USD", "ts_ns": str(T0_NS + 3), "symbols_breached": "US500",
        "currencies_breached": "EUR", "value": "3500000", "unvalued": "XAU/USD",
    }  # fmt: skip

    # A later run (a restart: a fresh sink) moves one symbol only: the house still counts
    # the others, as stored.
    run_sink(redis_url, [exposure("EUR/USD", -4_000_000, ts_ns=T0_NS + 50)])
    house = read_house(client)
    assert house["value"] == "6500000" and house["ts_ns"] == str(T0_NS + 50)
    assert house["symbols_breached"] == "US500"
    kinds = [(c["kind"], c["key"]) for _id, c in read_changes(client, "0-0", 100)]
    assert kinds == [("exposure", "EUR/USD"), ("exposure", "US500"), ("exposure", "XAU/USD"),
                     ("currency", "EUR"), ("exposure", "EUR/USD")]  # fmt: skip


def test_changes_when_followed_then_account_entries_decode_like_the_hash(
    client: redis.Redis, redis_url: str
) -> None:
    run_sink(redis_url, [account(9, "150")])
    last = stream_last_id(client, CHANGES_STREAM)
    run_sink(redis_url, [account(9, "140", equity=1_000, ts_ns=T0_NS + 7)])
    [(_id, change)] = read_changes(client, last, 10)
    assert change["kind"] == "account" and change["key"] == "9"
    assert change["ts_ns"] == T0_NS + 7
    assert change["data"] == read_account(client, 9)
    assert change["data"]["margin_level"] == Decimal("140")


def test_sink_when_given_something_else_then_type_error_and_nothing_written(
    client: redis.Redis, redis_url: str
) -> None:
    part = RiskRedisSink(redis_url).build("out", 0, 1)
    with pytest.raises(TypeError, match="cannot write str"):
        part.write_batch([account(1), "not a record"])  # type: ignore[list-item]
    part.close()
    assert client.keys("bourse:risk:*") == []  # the transaction was never sent
    with pytest.raises(ValueError, match="changes_maxlen"):
        RiskRedisSink(redis_url, changes_maxlen=0)


def test_house_when_no_exposure_written_then_absent(client: redis.Redis, redis_url: str) -> None:
    run_sink(redis_url, [account(1)])
    assert not client.exists(HOUSE)


def test_write_batch_when_called_then_one_transaction_and_nothing_else(
    client: redis.Redis, redis_url: str
) -> None:
    part = RiskRedisSink(redis_url).build("out", 0, 1)  # reads the stored house once, here
    client.config_resetstat()
    batch: list[RiskItem] = [
        account(1), position(1), exposure("EUR/USD", 10), currency("EUR", "1", 11),
        Alert(AlertKind.REBUILD, T0_NS, "r"),
    ]  # fmt: skip
    part.write_batch(batch)
    part.write_batch([account(2)])
    part.close()
    stats = client.info("commandstats")
    assert stats["cmdstat_multi"]["calls"] == 2 and stats["cmdstat_exec"]["calls"] == 2
    assert "cmdstat_hgetall" not in stats and "cmdstat_hget" not in stats
    assert read_house(client)["value"] == "10"
