"""What the back-office and risk tests share: staff sessions, a funded client with a
withdrawal and a position, the audit records a user wrote."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pyotp
from fastapi.testclient import TestClient
from sqlalchemy import select

from serving.api.admin import create_staff
from tests.serving.api.conftest import PASSWORD, register, session
from tests.trading.builders import destination_of
from tests.trading.bus.test_host import Served
from trading.commands import RequestWithdrawal, SubmitOrder
from trading.store import schema as s
from trading.validate import order_request
from trading.validate_funding import deposit

STAFF_ROLES = ("support", "risk", "compliance", "admin")


def staff(api: TestClient, served: Served, username: str, role: str, *, mfa: bool = True
          ) -> dict[str, str]:  # fmt: skip
    """A staff user's session headers: verified with a TOTP code unless ``mfa=False``."""
    made = create_staff(served.oms.engine, username=username, password=PASSWORD, role=role,
                        email=f"{username}@broker.example", now_ns=1)  # fmt: skip
    if not mfa:
        return session(api, username)
    return session(api, username, totp=pyotp.TOTP(made.totp_secret).now())


@dataclass
class Client:
    user_id: int
    client_id: int
    account_id: int
    destination_id: int
    headers: dict[str, str]


def funded_client(api: TestClient, served: Served, username: str = "alice") -> Client:
    """A registered client with 1,000.00 USD and a bank destination."""
    out = register(api, username)
    account_id = out["account_id"]
    dep = deposit(account_id=account_id, currency="USD", amount="1000.00", method="card",
                  provider="adyen", provider_ref=f"psp-{account_id}",
                  instrument_fingerprint="tok_4f9a")  # fmt: skip
    served.client.send(dep, 30).unwrap()
    ref = served.client.send(destination_of(account_id), 30).unwrap()["ref"]
    return Client(out["user_id"], out["client_id"], account_id, int(ref.split(":")[1]),
                  session(api, username))  # fmt: skip


def withdrawal(served: Served, client: Client, amount: int = 10_000) -> int:
    """A requested withdrawal of ``amount`` cents; its id."""
    cmd = RequestWithdrawal(client.account_id, "USD", amount, client.destination_id)
    return int(served.client.send(cmd, 30).unwrap()["ref"].split(":")[1])


def buy(served: Served, client: Client, symbol: str = "EUR/USD", qty: str = "0.1") -> None:
    coid = f"b-{symbol.replace('/', '')}-{qty}"
    request = order_request(served.oms.catalogue, account_id=client.account_id,
                            client_order_id=coid, symbol=symbol, side="buy", qty=qty)  # fmt: skip
    result = served.client.send(SubmitOrder(request), 30).unwrap()
    assert result["status"] == "filled", result


def audit_by(served: Served, actor: str) -> list[dict[str, Any]]:
    """The audit records ``actor`` wrote, in chain order, payloads decoded."""
    g = s.audit_log
    with served.oms.engine.connect() as conn:
        rows = conn.execute(select(g).where(g.c.actor == actor).order_by(g.c.seq)).all()
    return [{"action": r.action, "subject": r.subject, "payload": json.loads(r.payload)}
            for r in rows]  # fmt: skip
