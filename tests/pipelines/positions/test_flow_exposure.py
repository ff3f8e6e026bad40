"""House exposure through the real flow: two accounts in different shards, their positions
summed per symbol and per currency in ``bourse:risk:exposure`` and its ``:currency`` hash,
against figures worked out by hand (contract sizes from ``trading/data/instruments.toml``,
values at the mid, in USD cents)."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import redis

from pipelines.positions.shard import shard_of
from tests.pipelines.positions import flowkit as kit
from trading.bus import risk as redis_read
from trading.quotes import Quote

TS = 1_767_600_000_000_000_000


def test_exposure_sums_two_shards_per_symbol_and_per_currency(
    tmp_path: Path, redis_url: str
) -> None:
    client = redis.Redis.from_url(redis_url)
    assert shard_of(1) != shard_of(2)
    kit.put_quotes(
        client,
        Quote("EUR/USD", 110_250, 110_270, TS),  # mid 1.10260
        Quote("XAU/USD", 201_550, 201_600, TS),  # mid 2,015.75
        Quote("US500", 50_103, 50_108, TS),  # mid 5,010.55
    )
    kit.publish(client, [
        kit.opened(1), kit.deposit(1, 2, 10_000_000),
        kit.fill_open(1, 3, "EUR/USD", 100, 110_000, 366_667, 11),  # 1.00 lot long
        kit.fill_open(1, 4, "XAU/USD", 10, 200_000, 100_000, 12),  # 0.10 lot long
        kit.opened(2), kit.deposit(2, 2, 10_000_000),
        kit.fill_open(2, 3, "EUR/USD", -30, 110_000, 110_000, 21),  # 0.30 lot short
        kit.fill_open(2, 4, "US500", -20, 50_000, 50_000, 22),  # 2.0 lots short
    ])  # fmt: skip
    config = tmp_path / "positions.toml"
    config.write_text('[limits.symbols]\n"EUR/USD" = "50000"\n"XAU/USD" = "50000"\n'
                      '[limits.currencies]\nEUR = "100000"\n')  # fmt: skip

    kit.run(tmp_path, redis_url, None, config_path=str(config))

    rows = redis_read.read_exposure(client)
    got = {s: (r["client_net_qty"], r["long_qty"], r["short_qty"], r["accounts"], r["value"],
               r["breached"]) for s, r in rows.items()}  # fmt: skip
    assert got == {
        # clients net +0.70 lot: the house is short 70,000 EUR x 1.10260 = -77,182.00 USD
        "EUR/USD": (70, 100, 30, 2, -7_718_200, True),
        # house short 0.10 x 100 oz x 2,015.75 = -20,157.50 USD
        "XAU/USD": (10, 10, 0, 1, -2_015_750, False),
        # clients short 2.0 lots: the house long 2 x 5,010.55 = +10,021.10 USD
        "US500": (-20, 0, 20, 1, 1_002_110, False),
    }
    assert rows["EUR/USD"]["limit"] == 5_000_000 and rows["US500"]["limit"] is None
    ccy = {c: (r["amount"], r["value"], r["breached"])
           for c, r in redis_read.read_currency_exposure(client).items()}  # fmt: skip
    assert ccy == {
        "EUR": (Decimal("-70000"), -7_718_200, False),  # the base leg, at 1.10260
        "XAU": (Decimal("-10"), -2_015_750, False),  # 10 oz at 2,015.75
        # the EUR/USD and XAU/USD quote legs and the US500 CFD's value:
        # 77,182.00 + 20,157.50 + 10,021.10
        "USD": (Decimal("107360.60"), 10_736_060, False),
    }
    house = redis_read.read_house(client)
    assert house["house_currency"] == "USD"
    assert house["value"] == str(7_718_200 + 2_015_750 + 1_002_110)  # gross, not net
    assert house["symbols_breached"] == "EUR/USD" and house["currencies_breached"] == ""
    limits = [a for a in kit.alerts(client) if a["kind"] == "exposure_limit"]
    assert [(a["symbol"], a["details"]["value"]) for a in limits] == [("EUR/USD", "-77182.00")]
