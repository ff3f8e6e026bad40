"""Funding over REST: deposits through the simulated provider and its signed callback,
destinations and withdrawals behind 2FA, another client's are 404."""

from __future__ import annotations

from fastapi.testclient import TestClient

from serving.api.payments import SIGNATURE_HEADER, SimulatedProvider
from serving.settings import Settings
from tests.serving.api.conftest import assert_problem, enrol
from tests.serving.api.trading_helpers import client
from tests.trading.bus.test_host import Served

IBAN = "DE89370400440532013000"
provider = SimulatedProvider(Settings().api_payment_secret)


def _cash(api: TestClient, url: str, headers: dict[str, str]) -> str:
    balances = api.get(url, headers=headers).json()["balances"]
    return next(b["cash"]["amount"] for b in balances if b["currency"] == "USD")


def test_deposit_when_the_provider_calls_back_twice_then_credited_once(
    api: TestClient, served: Served
) -> None:
    alice = client(api, served, "alice", amount=None)
    res = api.post(alice.url("/deposits"), headers=alice.headers,
                   json={"currency": "USD", "amount": "250.00"})  # fmt: skip
    assert res.status_code == 201, res.text
    payment = res.json()
    assert payment["status"] == "pending" and payment["amount"] == {
        "amount": "250.00",
        "currency": "USD",
    }
    body, headers = provider.callback(payment["payment_id"], provider_ref="psp-77")
    first = api.post("/v1/payments/callback", content=body, headers=headers)
    again = api.post("/v1/payments/callback", content=body, headers=headers)
    assert first.status_code == again.status_code == 200, first.text
    assert first.json()["status"] == "credited" and first.json() == again.json()
    assert _cash(api, alice.url(), alice.headers) == "250.00"
    deposits = api.get(alice.url("/deposits"), headers=alice.headers).json()
    assert [(d["amount"]["amount"], d["provider_ref"]) for d in deposits] == [("250.00", "psp-77")]


def test_callback_when_the_signature_is_wrong_or_missing_then_401_and_no_credit(
    api: TestClient, served: Served
) -> None:
    alice = client(api, served, "alice", amount=None)
    payment = api.post(alice.url("/deposits"), headers=alice.headers,
                       json={"currency": "USD", "amount": "10.00"}).json()  # fmt: skip
    body, headers = provider.callback(payment["payment_id"], provider_ref="psp-1")
    forged = SimulatedProvider("not the secret").callback(payment["payment_id"],
                                                          provider_ref="psp-1")  # fmt: skip
    assert_problem(api.post("/v1/payments/callback", content=forged[0], headers=forged[1]),
                   401, "invalid_signature")  # fmt: skip
    tampered = body.replace(b"psp-1", b"psp-2")
    assert_problem(api.post("/v1/payments/callback", content=tampered, headers=headers), 401,
                   "invalid_signature")  # fmt: skip
    assert_problem(api.post("/v1/payments/callback", content=body), 401, "invalid_signature")
    assert _cash(api, alice.url(), alice.headers) == "0.00"
    failed = provider.callback(payment["payment_id"], provider_ref="psp-1", status="failed")
    res = api.post("/v1/payments/callback", content=failed[0], headers=failed[1])
    assert res.json()["status"] == "failed" and SIGNATURE_HEADER in failed[1]
    assert _cash(api, alice.url(), alice.headers) == "0.00"


def test_deposit_when_the_amount_is_bad_then_422_with_the_core_code(
    api: TestClient, served: Served
) -> None:
    alice = client(api, served, "alice", amount=None)
    res = api.post(alice.url("/deposits"), headers=alice.headers,
                   json={"currency": "USD", "amount": "1.001"})  # fmt: skip
    assert_problem(res, 422, "invalid_input")
    res = api.post(alice.url("/deposits"), headers=alice.headers,
                   json={"currency": "USD", "amount": "0"})  # fmt: skip
    assert_problem(res, 422, "invalid_amount")


def test_destination_and_withdrawal_when_no_2fa_then_403_and_with_it_201(
    api: TestClient, served: Served
) -> None:
    alice = client(api, served, "alice")
    dest = {"kind": "bank", "label": "my bank", "instrument": IBAN, "currency": "USD"}
    assert_problem(api.post(alice.url("/destinations"), json=dest, headers=alice.headers), 403,
                   "mfa_required")  # fmt: skip
    assert_problem(api.post(alice.url("/withdrawals"), headers=alice.headers,
                            json={"currency": "USD", "amount": "10.00", "destination_id": 1}),
                   403, "mfa_required")  # fmt: skip
    enrol(api, alice.headers)
    res = api.post(alice.url("/destinations"), json=dest, headers=alice.headers)
    assert res.status_code == 201, res.text
    made = res.json()
    assert IBAN not in made["display"] and made["label"] == "my bank"
    listed = api.get(alice.url("/destinations"), headers=alice.headers).json()
    assert [d["destination_id"] for d in listed] == [made["destination_id"]]
    ask = {"currency": "USD", "amount": "10.00", "destination_id": made["destination_id"]}
    key = {**alice.headers, "Idempotency-Key": "w-1"}
    res = api.post(alice.url("/withdrawals"), json=ask, headers=key)
    assert res.status_code == 201, res.text
    assert res.json()["status"] == "requested" and res.json()["amount"]["amount"] == "10.00"
    assert api.post(alice.url("/withdrawals"), json=ask, headers=key).json() == res.json()
    assert_problem(api.post(alice.url("/withdrawals"), json={**ask, "amount": "11.00"},
                            headers=key), 409, "idempotency_conflict")  # fmt: skip
    listed = api.get(alice.url("/withdrawals"), headers=alice.headers).json()
    assert [(w["withdrawal_id"], w["status"]) for w in listed] == [
        (res.json()["withdrawal_id"], "requested")]  # fmt: skip
    too_much = {**ask, "amount": "1000000.00"}
    assert_problem(api.post(alice.url("/withdrawals"), json=too_much, headers=alice.headers),
                   409, "insufficient_funds")  # fmt: skip


def test_funding_when_another_client_asks_then_404_and_its_destination_is_refused(
    api: TestClient, served: Served
) -> None:
    alice, bob = client(api, served, "alice"), client(api, served, "bob")
    enrol(api, alice.headers)
    enrol(api, bob.headers)
    dest = {"kind": "bank", "label": "a", "instrument": IBAN, "currency": "USD"}
    made = api.post(alice.url("/destinations"), json=dest, headers=alice.headers).json()
    ask = {"currency": "USD", "amount": "10.00", "destination_id": made["destination_id"]}
    api.post(alice.url("/withdrawals"), json=ask, headers=alice.headers)
    for method, path, body in [
        ("GET", "/destinations", None), ("POST", "/destinations", dest),
        ("GET", "/withdrawals", None), ("POST", "/withdrawals", ask),
        ("GET", "/deposits", None), ("POST", "/deposits", {"currency": "USD", "amount": "1"}),
    ]:  # fmt: skip
        res = api.request(method, alice.url(path), json=body, headers=bob.headers)
        assert_problem(res, 404, "not_found")
    # Bob's own account cannot pay out to Alice's destination.
    res = api.post(bob.url("/withdrawals"), json=ask, headers=bob.headers)
    assert_problem(res, 422, "destination_not_registered")
    assert len(api.get(alice.url("/withdrawals"), headers=alice.headers).json()) == 1
    assert api.get(bob.url("/withdrawals"), headers=bob.headers).json() == []
