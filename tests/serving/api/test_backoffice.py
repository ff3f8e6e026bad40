"""The back office: role checks on every route, each action as the acting staff user with
its reason in the audit log, a missing reason refused, the reads of clients and accounts."""

from __future__ import annotations

import re
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select

from tests.serving.api.conftest import assert_problem
from tests.serving.api.office import (
    STAFF_ROLES,
    audit_by,
    buy,
    funded_client,
    staff,
    withdrawal,
)
from tests.trading.bus.test_host import Served
from trading.store import schema as s

PAYMENTS = {"compliance", "admin"}
RISK = {"risk", "admin"}
# Every back-office operation and the roles it is for.
ROLES: dict[tuple[str, str], set[str]] = {
    ("get", "/v1/back-office/clients"): set(STAFF_ROLES),
    ("get", "/v1/back-office/clients/{client_id}"): set(STAFF_ROLES),
    ("get", "/v1/back-office/accounts/{account_id}"): set(STAFF_ROLES),
    ("get", "/v1/back-office/withdrawals"): PAYMENTS,
    ("post", "/v1/back-office/withdrawals/{withdrawal_id}/approve"): PAYMENTS,
    ("post", "/v1/back-office/withdrawals/{withdrawal_id}/reject"): PAYMENTS,
    ("post", "/v1/back-office/withdrawals/{withdrawal_id}/hold"): PAYMENTS,
    ("post", "/v1/back-office/withdrawals/{withdrawal_id}/release"): PAYMENTS,
    ("get", "/v1/back-office/audit"): PAYMENTS,
    ("put", "/v1/back-office/accounts/{account_id}/limits"): RISK,
    ("put", "/v1/back-office/accounts/{account_id}/state"): RISK,
    ("post", "/v1/back-office/accounts/{account_id}/close"): RISK,
    ("post", "/v1/back-office/symbols/halt"): RISK,
    ("post", "/v1/back-office/symbols/resume"): RISK,
}
REASON = "KYC review ticket 4711"


def _call(api: TestClient, method: str, path: str, headers: dict[str, str]) -> Any:
    url = re.sub(r"\{[^}]+\}", "1", path)
    body = {"reason": REASON, "symbol": "EUR/USD", "state": "active"}
    if method == "get":
        return api.get(url, headers=headers, params={"subject": "account:1"})
    return api.request(method.upper(), url, headers=headers, json=body)


def test_every_route_when_a_client_no_2fa_or_another_role_then_403(
    api: TestClient, served: Served
) -> None:
    paths = api.get("/openapi.json").json()["paths"]
    ours = {(m, p) for p, ops in paths.items() if p.startswith("/v1/back-office/") for m in ops}
    assert ours == set(ROLES)
    client = funded_client(api, served).headers
    verified = {role: staff(api, served, f"{role}-1", role) for role in STAFF_ROLES}
    plain = {role: staff(api, served, f"{role}-2", role, mfa=False) for role in STAFF_ROLES}
    for (method, path), roles in ROLES.items():
        assert_problem(_call(api, method, path, client), 403, "forbidden")
        for role in STAFF_ROLES:
            if role in roles:
                assert_problem(_call(api, method, path, plain[role]), 403, "mfa_required")
            else:
                assert_problem(_call(api, method, path, verified[role]), 403, "forbidden")
                assert_problem(_call(api, method, path, plain[role]), 403, "forbidden")


def test_withdrawal_actions_when_compliance_acts_then_done_and_audited_with_actor_and_reason(
    api: TestClient, served: Served
) -> None:
    client = funded_client(api, served)
    held, approved = withdrawal(served, client, 10_000), withdrawal(served, client, 20_000)
    rejected = withdrawal(served, client, 5_000)
    officer = staff(api, served, "carla", "compliance")
    me = api.get("/v1/auth/me", headers=officer).json()
    actor = f"api:user-{me['user_id']}"

    queue = api.get("/v1/back-office/withdrawals", headers=officer).json()
    assert [w["withdrawal_id"] for w in queue["items"]] == [held, approved, rejected]
    assert queue["items"][1]["amount"] == "200.00" and queue["next_after"] is None
    assert queue["items"][0]["destination"] and "DE" in queue["items"][0]["destination"]

    def act(wid: int, verb: str, reason: str) -> dict[str, Any]:
        res = api.post(f"/v1/back-office/withdrawals/{wid}/{verb}", headers=officer,
                       json={"reason": reason})  # fmt: skip
        assert res.status_code == 200, res.text
        out: dict[str, Any] = res.json()
        assert out["actor"] == actor and out["reason"] == reason
        assert out["ref"] == f"withdrawal:{wid}"
        return out

    assert act(held, "hold", "source of funds")["detail"] == "held"
    page = api.get("/v1/back-office/withdrawals", headers=officer,
                   params={"status": "held"}).json()  # fmt: skip
    assert [(w["withdrawal_id"], w["hold_reason"]) for w in page["items"]] == [
        (held, "source of funds")
    ]
    act(held, "release", "documents received")
    act(approved, "approve", "checked")
    act(rejected, "reject", "destination mismatch")
    # Approving a rejected one: the OMS has no pending withdrawal of that id.
    res = api.post(f"/v1/back-office/withdrawals/{rejected}/approve", headers=officer,
                   json={"reason": "again"})  # fmt: skip
    assert "no pending withdrawal" in assert_problem(res, 404, "not_found")["detail"]
    assert_problem(api.post("/v1/back-office/withdrawals/99999/hold", headers=officer,
                            json={"reason": "x"}), 404, "not_found")  # fmt: skip

    records = audit_by(served, actor)
    reasons = {(r["subject"], r["payload"].get("reason")) for r in records}
    assert {(f"withdrawal:{held}", "source of funds"), (f"withdrawal:{held}",
            "documents received"), (f"withdrawal:{approved}", "checked"),
            (f"withdrawal:{rejected}", "destination mismatch")} <= reasons  # fmt: skip
    with served.oms.engine.connect() as conn:
        w = s.withdrawals
        status = dict(conn.execute(select(w.c.withdrawal_id, w.c.status)).all())  # type: ignore[arg-type]
    assert status == {held: "requested", approved: "approved", rejected: "rejected"}
    trail = api.get("/v1/back-office/audit", headers=officer,
                    params={"subject": f"withdrawal:{held}"}).json()  # fmt: skip
    assert [(r["actor"], r["payload"].get("reason")) for r in trail][-2:] == [
        (actor, "source of funds"),
        (actor, "documents received"),
    ]
    assert api.get("/v1/back-office/withdrawals", headers=officer).json()["items"][0][
        "withdrawal_id"] == held  # fmt: skip


def test_risk_actions_when_risk_acts_then_done_and_audited_with_actor_and_reason(
    api: TestClient, served: Served
) -> None:
    client = funded_client(api, served)
    buy(served, client, "EUR/USD", "0.03")
    desk = staff(api, served, "rita", "risk")
    actor = f"api:user-{api.get('/v1/auth/me', headers=desk).json()['user_id']}"
    base = f"/v1/back-office/accounts/{client.account_id}"

    res = api.put(f"{base}/limits", headers=desk,
                  json={"leverage": 10, "max_order_lots": "5", "reason": "lower risk"})  # fmt: skip
    assert res.status_code == 200, res.text
    res = api.put(
        f"{base}/state", headers=desk, json={"state": "reducing_only", "reason": "arrears"}
    )
    assert res.status_code == 200 and res.json()["ref"] == f"account:{client.account_id}"
    detail = api.get(base, headers=desk).json()
    assert detail["account"]["state"] == "reducing_only" and detail["account"]["leverage"] == 10
    assert detail["client"]["client_id"] == client.client_id
    assert detail["positions"] == [{"symbol": "EUR/USD", "net_qty": "0.03", "lots": 1}]

    part = {"symbol": "EUR/USD", "qty": "0.01", "reason": "concentration"}
    res = api.post(f"{base}/close", headers=desk, json=part)
    assert res.status_code == 200, res.text
    close = res.json()
    assert close["status"] == "filled" and close["filled_qty"] == "0.01"
    assert close["actor"] == actor
    # Only reduces: more than the position is refused, never a flip to short.
    over = {"symbol": "EUR/USD", "qty": "0.05", "reason": "too much"}
    res = api.post(f"{base}/close", headers=desk, json=over)
    assert "only reduces" in assert_problem(res, 422, "invalid_order")["detail"]
    assert api.get(base, headers=desk).json()["positions"][0]["net_qty"] == "0.02"
    res = api.post(f"{base}/close", headers=desk, json={"symbol": "EUR/USD", "reason": "all"})
    assert res.json()["filled_qty"] == "0.02"
    assert api.get(base, headers=desk).json()["positions"] == []
    res = api.post(f"{base}/close", headers=desk, json={"symbol": "EUR/USD", "reason": "none"})
    assert res.status_code in (404, 409, 422) and res.json()["code"] != "error"

    for verb in ("halt", "resume"):
        res = api.post(f"/v1/back-office/symbols/{verb}", headers=desk,
                       json={"symbol": "XAU/USD", "reason": f"news {verb}"})  # fmt: skip
        assert res.status_code == 200, res.text
    unknown = {"symbol": "NOPE/USD", "reason": "x"}
    res = api.post("/v1/back-office/symbols/halt", headers=desk, json=unknown)
    assert_problem(res, 422, "unknown_symbol")

    records = audit_by(served, actor)
    said = {(r["subject"], r["payload"].get("reason") or r["payload"].get("house_reason"))
            for r in records}  # fmt: skip
    acct = f"account:{client.account_id}"
    assert {(acct, "lower risk"), (acct, "arrears")} <= said
    assert any(why == "concentration" for _, why in said)
    assert {why for subj, why in said if subj == "XAU/USD"} == {"news halt", "news resume"}
    trail = api.get("/v1/back-office/audit", headers=staff(api, served, "carl", "compliance"),
                    params={"subject": "XAU/USD"}).json()  # fmt: skip
    assert [(r["actor"], r["payload"]["reason"]) for r in trail] == [
        (actor, "news halt"),
        (actor, "news resume"),
    ]


def test_actions_when_the_reason_is_missing_or_blank_then_422_and_nothing_changes(
    api: TestClient, served: Served
) -> None:
    client = funded_client(api, served)
    wid = withdrawal(served, client)
    admin = staff(api, served, "ada", "admin")
    actor = f"api:user-{api.get('/v1/auth/me', headers=admin).json()['user_id']}"
    base = f"/v1/back-office/accounts/{client.account_id}"
    calls = [
        ("post", f"/v1/back-office/withdrawals/{wid}/approve", {}),
        ("post", f"/v1/back-office/withdrawals/{wid}/hold", {"reason": ""}),
        ("post", f"/v1/back-office/withdrawals/{wid}/reject", {"reason": " padded "}),
        ("post", f"/v1/back-office/withdrawals/{wid}/release", {"reason": "a\nb"}),
        ("put", f"{base}/limits", {"leverage": 5}),
        ("put", f"{base}/state", {"state": "halted"}),
        ("post", f"{base}/close", {"symbol": "EUR/USD"}),
        ("post", "/v1/back-office/symbols/halt", {"symbol": "EUR/USD", "reason": "x" * 257}),
        ("post", "/v1/back-office/symbols/resume", {"symbol": "EUR/USD"}),
    ]
    for method, url, body in calls:
        problem = assert_problem(api.request(method.upper(), url, headers=admin, json=body), 422,
                                 "invalid_input")  # fmt: skip
        assert problem["field"] == "reason", (url, problem)
    assert audit_by(served, actor) == []


def test_reads_when_support_asks_then_clients_and_accounts_with_live_figures(
    api: TestClient, served: Served
) -> None:
    alice = funded_client(api, served, "alice")
    bob = funded_client(api, served, "bobby")
    support = staff(api, served, "sam", "support")
    page = api.get("/v1/back-office/clients", headers=support, params={"limit": 1}).json()
    assert [c["client_id"] for c in page["items"]] == [alice.client_id]
    page = api.get("/v1/back-office/clients", headers=support,
                   params={"after": page["next_after"]}).json()  # fmt: skip
    assert [c["client_id"] for c in page["items"]] == [bob.client_id]
    assert page["next_after"] is None
    one = api.get(f"/v1/back-office/clients/{bob.client_id}", headers=support).json()
    assert [a["account_id"] for a in one["accounts"]] == [bob.account_id]
    detail = api.get(f"/v1/back-office/accounts/{alice.account_id}", headers=support).json()
    assert detail["balances"] == [{"currency": "USD", "cash": "1000.00", "margin_held": "0.00",
                                   "withdrawal_pending": "0.00"}]  # fmt: skip
    assert detail["risk"] is None  # the positions flow has not written it
    served.redis.hset(f"bourse:risk:account:{alice.account_id}",
                      mapping={"account_id": alice.account_id, "equity": "100000",
                               "margin_level": "153.25"})  # fmt: skip
    risk = api.get(f"/v1/back-office/accounts/{alice.account_id}", headers=support).json()["risk"]
    assert risk == {"account_id": alice.account_id, "equity": 100000, "margin_level": "153.25"}
    assert_problem(api.get("/v1/back-office/clients/999", headers=support), 404, "not_found")
    assert_problem(api.get("/v1/back-office/accounts/999", headers=support), 404, "not_found")
    # a client reading the back office is refused even for its own account
    assert_problem(api.get(f"/v1/back-office/accounts/{alice.account_id}",
                           headers=alice.headers), 403, "forbidden")  # fmt: skip


def test_action_when_sent_again_with_its_idempotency_key_then_the_first_answer_once(
    api: TestClient, served: Served
) -> None:
    client = funded_client(api, served)
    wid = withdrawal(served, client)
    officer = staff(api, served, "carla", "compliance")
    actor = f"api:user-{api.get('/v1/auth/me', headers=officer).json()['user_id']}"
    url = f"/v1/back-office/withdrawals/{wid}/hold"
    keyed = {**officer, "Idempotency-Key": "hold-1"}
    first = api.post(url, headers=keyed, json={"reason": "review"})
    again = api.post(url, headers=keyed, json={"reason": "review"})
    assert first.status_code == again.status_code == 200 and first.json() == again.json()
    other = api.post(url, headers=keyed, json={"reason": "another reason"})
    assert_problem(other, 409, "duplicate_command_id")
    assert len([r for r in audit_by(served, actor) if r["subject"] == f"withdrawal:{wid}"]) == 1
    bad = api.post(url, headers={**officer, "Idempotency-Key": "no spaces"}, json={"reason": "r"})
    assert_problem(bad, 422, "invalid_input")
