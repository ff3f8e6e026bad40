"""A hold end to end: a real OMS host on a real Redis, the relay, and the fraud flow run
``--until-idle`` again and again on one home. With a threshold every score reaches, the
withdrawal's own alert holds it through the command bus; the OMS leaves it ``held`` with
the alert's reason; runs after that send nothing again, and a later login's alert finds
nothing left to hold."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from ml.model import FraudModel
from pipelines.fraud.run import run_fraud
from pipelines.fraud.sinks import ALERTS_STREAM, read_alerts
from pipelines.fraud.sources import LOGINS_STREAM
from pipelines.fraud.spec import FraudSpec
from tests.pipelines.fraud import kit
from tests.trading.bus.test_host import Served, serve
from trading.bus.commands import COMMANDS_STREAM
from trading.bus.events import RedisStreamsPublisher
from trading.clients import ClientKind
from trading.commands import AddDestination, CreateClient, Deposit, OpenAccount, RequestWithdrawal
from trading.funding import DepositMethod, DestinationKind
from trading.oms.outbox import OutboxRelay
from trading.store import schema as s

IBAN = "DE89370400440532013000"


@pytest.fixture
def served(store_dsn: str, redis_url: str) -> Iterator[Served]:
    sv = serve(store_dsn, redis_url)
    yield sv
    sv.client.close()
    sv.stopped()


def _relay(sv: Served) -> None:
    relay = OutboxRelay(sv.oms.engine, RedisStreamsPublisher(sv.redis))
    while relay.relay_once():
        pass


def _flow(home: Path, redis_url: str, dsn: str) -> None:
    run_fraud(FraudSpec(home=str(home), redis_url=redis_url, dsn=dsn, until_idle=True))


def _holds(sv: Served) -> list[dict[bytes, bytes]]:
    return [f for _, f in sv.redis.xrange(COMMANDS_STREAM) if f[b"type"] == b"HoldWithdrawal"]


def _withdrawal(sv: Served, wid: int) -> object:
    w = s.withdrawals
    with sv.oms.engine.connect() as conn:
        return conn.execute(select(w).where(w.c.withdrawal_id == wid)).one()


def _outbox_event_id(sv: Served, kind: str) -> int:
    o = s.outbox
    with sv.oms.engine.connect() as conn:
        return int(conn.execute(select(o.c.event_id).where(o.c.type == kind)).scalar_one())


def test_an_alert_on_a_withdrawal_holds_it_in_the_oms_once_with_the_alerts_reason(
    served: Served, redis_url: str, store_dsn: str, tmp_path: Path, model: FraudModel
) -> None:
    sv = served
    kit.promote(tmp_path, model, threshold=0.0)  # every event alerts
    for cmd in (
        CreateClient(5, ClientKind.PERSON, "Jean Dupont", "FR", "jean@example.fr",
                     dt.date(1980, 1, 1), national_id="FR19800101JEAN#DUPON"),
        OpenAccount(50, client_id=5),
        Deposit(50, "USD", 500_000, "pi_1", method=DepositMethod.CARD,
                instrument_fingerprint="fp-abc", provider="stripe", provider_ref="pi_1"),
        AddDestination(50, DestinationKind.BANK, "main", IBAN, "USD"),
    ):  # fmt: skip
        sv.client.send(cmd, 30).unwrap()
    with sv.oms.engine.connect() as conn:
        dest = conn.execute(select(s.withdrawal_destinations.c.destination_id)).scalar_one()
    sv.client.send(RequestWithdrawal(50, "USD", 200_000, dest), 30).unwrap()
    with sv.oms.engine.connect() as conn:
        wid = int(conn.execute(select(s.withdrawals.c.withdrawal_id)).scalar_one())
    _relay(sv)

    _flow(tmp_path, redis_url, store_dsn)

    holds = _holds(sv)
    assert len(holds) == 1
    body = json.loads(holds[0][b"body"])
    alert_id = f"fa-e{_outbox_event_id(sv, 'cash.withdrawal_requested')}"
    assert body["withdrawal_id"] == wid
    assert holds[0][b"command_id"].decode() == f"fraud-hold-{wid}-{alert_id}"
    assert body["reason"].startswith(f"fraud alert {alert_id}: withdrawal scored ")
    for _ in range(100):  # the host runs it
        if _withdrawal(sv, wid).status == "held":  # type: ignore[attr-defined]
            break
        sv.stop.wait(0.1)
    row = _withdrawal(sv, wid)
    assert row.status == "held" and row.hold_reason == body["reason"]  # type: ignore[attr-defined]
    # Three events of the client (deposit, destination, withdrawal): three alerts, once each.
    alerts = [f for _, f in sv.redis.xrange(ALERTS_STREAM)]
    assert [a[b"event_type"] for a in alerts] == [b"deposit", b"destination_added", b"withdrawal"]
    assert alerts[2][b"holds"] == str(wid).encode() and alerts[0][b"holds"] == b""
    lake = read_alerts(tmp_path / "lake")
    assert sorted(lake["alert_id"]) == sorted(a[b"alert_id"].decode() for a in alerts)
    assert lake.filter(lake["alert_id"] == alert_id)["holds"].to_list() == [str(wid)]

    # The held event comes back; a login alerts again and finds nothing left to hold.
    sv.redis.xadd(LOGINS_STREAM, kit.login(sv.clock(), 5, device="dev-new", country="NG"))  # type: ignore[arg-type]
    _relay(sv)
    _flow(tmp_path, redis_url, store_dsn)
    _flow(tmp_path, redis_url, store_dsn)
    assert len(_holds(sv)) == 1
    alerts = [f for _, f in sv.redis.xrange(ALERTS_STREAM)]
    assert [a[b"event_type"] for a in alerts][3:] == [b"login"]
    assert alerts[3][b"holds"] == b"" and alerts[3][b"account_id"] == b""
    assert read_alerts(tmp_path / "lake").height == 4
