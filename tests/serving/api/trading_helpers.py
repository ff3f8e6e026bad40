"""Builders the client routers' tests share: two clients with funded accounts."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi.testclient import TestClient

from tests.serving.api.conftest import register, session
from tests.trading.bus.test_host import Served


@dataclass
class Client:
    account_id: int
    headers: dict[str, str]

    def url(self, path: str = "") -> str:
        return f"/v1/accounts/{self.account_id}{path}"


def fund(served: Served, account_id: int, amount: str = "100000.00") -> None:
    reply = served.client.send_raw(
        "Deposit",
        {"account_id": account_id, "currency": "USD", "amount": amount,
         "ref": f"seed-{account_id}-{amount}"},
        30,
    )  # fmt: skip
    assert reply.ok, reply.error


def client(api: TestClient, served: Served, username: str, amount: str | None = "100000.00"
           ) -> Client:  # fmt: skip
    made = register(api, username)
    if amount is not None:
        fund(served, made["account_id"], amount)
    return Client(made["account_id"], session(api, username))


def order(api: TestClient, who: Client, **body: Any) -> Any:
    headers = {**who.headers, **body.pop("headers", {})}
    payload = {"symbol": "EUR/USD", "side": "buy", "qty": "1", **body}
    return api.post(who.url("/orders"), json=payload, headers=headers)
