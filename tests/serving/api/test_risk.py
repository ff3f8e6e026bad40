"""The risk routes read what the positions flow wrote to Redis, through its own sink."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from pipelines.positions.records import Alert, AlertKind, MarginState
from pipelines.positions.redis_out import RiskItem, RiskRedisSink
from serving.api import routes_risk
from tests.pipelines.positions import flowkit as kit
from tests.pipelines.positions.rows import T0_NS, account, currency, exposure
from tests.serving.api.conftest import assert_problem
from tests.serving.api.office import funded_client, staff
from tests.trading.bus.test_host import Served
from trading.quotes import Quote

ROUTES = ("/v1/risk/house", "/v1/risk/exposure", "/v1/risk/exposure/currencies",
          "/v1/risk/margin-levels", "/v1/risk/alerts")  # fmt: skip


def _write(redis_url: str, items: list[RiskItem]) -> None:
    part = RiskRedisSink(redis_url, house_currency="USD").build("out", 0, 1)
    part.write_batch(items)
    part.close()


def test_every_route_when_a_client_support_or_no_2fa_then_403(
    api: TestClient, served: Served
) -> None:
    paths = {p for p in api.get("/openapi.json").json()["paths"] if p.startswith("/v1/risk/")}
    assert paths == set(ROUTES)
    client = funded_client(api, served).headers
    support = staff(api, served, "sam", "support")
    plain = staff(api, served, "rita", "risk", mfa=False)
    for path in ROUTES:
        assert_problem(api.get(path, headers=client), 403, "forbidden")
        assert_problem(api.get(path, headers=support), 403, "forbidden")
        assert_problem(api.get(path, headers=plain), 403, "mfa_required")
    for role in routes_risk.ROLES:
        headers = staff(api, served, f"{role}-x", role)
        assert all(api.get(path, headers=headers).status_code == 200 for path in ROUTES)


def test_exposure_and_house_when_the_flow_wrote_them_then_read_back_ordered(
    api: TestClient, served: Served, redis_url: str
) -> None:
    desk = staff(api, served, "rita", "risk")
    assert api.get("/v1/risk/exposure", headers=desk).json() == []
    assert api.get("/v1/risk/house", headers=desk).json()["value"] is None
    _write(redis_url, [
        exposure("EUR/USD", -1_200_000), exposure("XAU/USD", 60_000_000, breached=True),
        exposure("BTC/USD", None), currency("EUR", "-12.5", -1_350_000),
        currency("XAU", "3", 600_000_000, breached=True),
    ])  # fmt: skip
    rows = api.get("/v1/risk/exposure", headers=desk).json()
    assert [(r["symbol"], r["value"], r["breached"]) for r in rows] == [
        ("XAU/USD", 60_000_000, True), ("EUR/USD", -1_200_000, False), ("BTC/USD", None, False),
    ]  # fmt: skip
    assert rows[0] == {"symbol": "XAU/USD", "client_net_qty": 300, "long_qty": 500,
                       "short_qty": 200, "accounts": 3, "value": 60_000_000,
                       "limit": 50_000_000, "breached": True, "ts_ns": T0_NS + 2}  # fmt: skip
    cur = api.get("/v1/risk/exposure/currencies", headers=desk).json()
    assert [(r["currency"], r["amount"], r["value"]) for r in cur] == [
        ("XAU", "3", 600_000_000),
        ("EUR", "-12.5", -1_350_000),
    ]
    house = api.get("/v1/risk/house", headers=desk).json()
    assert house == {"house_currency": "USD", "ts_ns": T0_NS + 3, "value": 61_200_000,
                     "symbols_breached": ["XAU/USD"], "currencies_breached": ["XAU"],
                     "unvalued": ["BTC/USD"]}  # fmt: skip


def test_margin_levels_when_accounts_use_margin_then_nearest_stop_out_first_with_limit(
    api: TestClient, served: Served, redis_url: str
) -> None:
    _write(redis_url, [
        account(1, "250"), account(2, "95.5", margin_state=MarginState.MARGIN_CALL),
        account(3, "1000"), account(4, None), account(5, "40.25",
                                                     margin_state=MarginState.STOP_OUT),
    ])  # fmt: skip
    desk = staff(api, served, "cora", "compliance")
    got = api.get("/v1/risk/margin-levels", headers=desk, params={"limit": 3}).json()
    assert [(r["account_id"], r["margin_level"], r["margin_state"]) for r in got] == [
        (5, "40.25", "stop_out"),
        (2, "95.5", "margin_call"),
        (1, "250", "ok"),
    ]
    assert got[0]["equity"] == 1_150_000 and got[0]["currency"] == "USD"
    everyone = api.get("/v1/risk/margin-levels", headers=desk).json()
    assert [r["account_id"] for r in everyone] == [5, 2, 1, 3]  # 4 uses no margin
    assert_problem(api.get("/v1/risk/margin-levels", headers=desk, params={"limit": 0}), 422,
                   "invalid_input")  # fmt: skip


def test_alerts_when_followed_with_the_cursor_then_each_once_in_order(
    api: TestClient, served: Served, redis_url: str
) -> None:
    desk = staff(api, served, "rita", "risk")
    empty = api.get("/v1/risk/alerts", headers=desk).json()
    assert empty == {"items": [], "next_after": "0-0"}
    _write(redis_url, [
        Alert(AlertKind.MARGIN_CALL, T0_NS, "level 95.5 %", account_id=2,
              level=Decimal("95.5"), details={"equity": "1150000"}),
        Alert(AlertKind.EXPOSURE_LIMIT, T0_NS + 1, "XAU/USD over", symbol="XAU/USD"),
        Alert(AlertKind.STOP_OUT_STARTED, T0_NS + 2, "stop", account_id=5,
              level=Decimal("40.25")),
    ])  # fmt: skip
    first = api.get("/v1/risk/alerts", headers=desk, params={"limit": 2}).json()
    assert [(a["kind"], a["account_id"], a["symbol"], a["level"]) for a in first["items"]] == [
        ("margin_call", 2, None, "95.5"),
        ("exposure_limit", None, "XAU/USD", None),
    ]
    assert first["items"][0]["details"] == {"equity": "1150000"}
    assert first["items"][0]["source"] == "positions"
    assert first["next_after"] == first["items"][1]["id"]
    rest = api.get("/v1/risk/alerts", headers=desk, params={"after": first["next_after"]}).json()
    assert [a["kind"] for a in rest["items"]] == ["stop_out_started"]
    again = api.get("/v1/risk/alerts", headers=desk, params={"after": rest["next_after"]}).json()
    assert again == {"items": [], "next_after": rest["next_after"]}


@pytest.mark.parametrize("after", ["x", "1-2-3", "-1", "1-"])
def test_alerts_when_the_cursor_is_not_a_stream_id_then_422(
    api: TestClient, served: Served, after: str
) -> None:
    desk = staff(api, served, "rita", "risk")
    res = api.get("/v1/risk/alerts", headers=desk, params={"after": after})
    assert assert_problem(res, 422, "invalid_input")["field"] == "after"


def test_risk_routes_when_the_real_flow_ran_then_its_exposure_alerts_and_levels(
    api: TestClient, served: Served, redis_url: str, tmp_path: Path
) -> None:
    kit.put_quotes(served.redis, Quote("EUR/USD", 110_250, 110_270, T0_NS),
                   Quote("XAU/USD", 201_550, 201_600, T0_NS))  # fmt: skip
    kit.publish(served.redis, [
        kit.opened(1), kit.deposit(1, 2, 10_000_000),
        kit.fill_open(1, 3, "EUR/USD", 100, 110_000, 366_667, 11),  # 1.00 lot long
        kit.opened(2), kit.deposit(2, 2, 10_000_000),
        kit.fill_open(2, 3, "XAU/USD", -10, 200_000, 100_000, 21),  # 0.10 lot short
    ])  # fmt: skip
    config = tmp_path / "positions.toml"
    config.write_text('[limits.symbols]\n"EUR/USD" = "50000"\n')
    kit.run(tmp_path, redis_url, None, config_path=str(config))

    desk = staff(api, served, "rita", "risk")
    rows = {r["symbol"]: r for r in api.get("/v1/risk/exposure", headers=desk).json()}
    # the house is short 100,000 EUR at the mid 1.10260, long 10 oz at 2,015.75
    assert {s: (r["value"], r["breached"]) for s, r in rows.items()} == {
        "EUR/USD": (-11_026_000, True),
        "XAU/USD": (2_015_750, False),
    }
    house = api.get("/v1/risk/house", headers=desk).json()
    assert house["value"] == 11_026_000 + 2_015_750 and house["symbols_breached"] == ["EUR/USD"]
    levels = api.get("/v1/risk/margin-levels", headers=desk).json()
    assert sorted(r["account_id"] for r in levels) == [1, 2]
    assert [Decimal(r["margin_level"]) for r in levels] == sorted(
        Decimal(r["margin_level"]) for r in levels
    )
    kinds = [a["kind"] for a in api.get("/v1/risk/alerts", headers=desk).json()["items"]]
    assert "exposure_limit" in kinds
