"""Registering, logging in and out, lock-out, sessions, devices, the activity stream."""

from __future__ import annotations

import json
import time

import redis
from fastapi.testclient import TestClient
from sqlalchemy import select

from serving.api.activity import LOGIN_FIELDS, LOGINS_STREAM
from tests.serving.api.conftest import (
    PASSWORD,
    MakeApi,
    assert_problem,
    bearer,
    login,
    register,
    session,
)
from tests.trading.bus.test_host import Served
from trading.store import schema as s


def test_register_when_valid_then_client_account_and_user_exist_and_me_answers(
    api: TestClient, served: Served
) -> None:
    made = register(api)
    headers = session(api)
    me = api.get("/v1/auth/me", headers=headers).json()
    assert me["user_id"] == made["user_id"]
    assert (me["username"], me["role"], me["client_id"]) == ("alice", "client", made["client_id"])
    assert me["totp_enabled"] is False and me["mfa"] is False
    with served.oms.engine.connect() as conn:
        account = conn.execute(
            select(s.accounts).where(s.accounts.c.account_id == made["account_id"])
        ).one()
        client = conn.execute(
            select(s.clients).where(s.clients.c.client_id == made["client_id"])
        ).one()
        hashed = conn.execute(select(s.users.c.password_hash)).scalar_one()
    assert account.client_id == made["client_id"] and account.currency == "USD"
    assert (client.name, client.country, client.email) == (
        "Alice Martin",
        "FR",
        "alice@example.com",
    )
    assert hashed.startswith("$argon2id$") and PASSWORD not in hashed


def test_register_when_twice_then_ids_differ_and_a_taken_username_is_409(api: TestClient) -> None:
    first = register(api, "alice")
    second = register(api, "bob")
    assert second["client_id"] != first["client_id"]
    assert second["account_id"] != first["account_id"]
    res = api.post("/v1/auth/register", json={
        "username": "ALICE", "password": PASSWORD, "email": "a@example.com", "name": "A B",
        "country": "FR", "birth_date": "1985-04-02",
    })  # fmt: skip
    assert_problem(res, 409, "username_taken")


def test_register_when_the_oms_refuses_then_its_code_and_no_user_is_left(
    api: TestClient, served: Served
) -> None:
    res = api.post("/v1/auth/register", json={
        "username": "kid", "password": PASSWORD, "email": "kid@example.com", "name": "A Kid",
        "country": "FR", "birth_date": "2020-01-01",
    })  # fmt: skip
    body = assert_problem(res, 422, "invalid_client")
    assert body["field"] == "birth_date"
    with served.oms.engine.connect() as conn:
        assert conn.execute(select(s.users)).all() == []
    assert login(api, "kid").status_code == 401


def test_register_when_the_password_is_weak_then_422_with_the_field(api: TestClient) -> None:
    res = api.post("/v1/auth/register", json={
        "username": "weak", "password": "password", "email": "w@example.com", "name": "W",
        "country": "FR", "birth_date": "1985-04-02",
    })  # fmt: skip
    assert assert_problem(res, 422, "invalid_input")["field"] == "password"


def test_login_when_wrong_password_then_401_and_attempts_go_to_the_activity_stream(
    api: TestClient, redis_url: str
) -> None:
    made = register(api)
    bad = login(api, password="Wrong-Horse-42")
    assert_problem(bad, 401, "invalid_credentials")
    assert_problem(login(api, "nobody"), 401, "invalid_credentials")
    ok = api.post("/v1/auth/login", json={"username": "alice", "password": PASSWORD,
                                          "device_id": "phone-1"},
                  headers={"X-Country": "fr"})  # fmt: skip
    assert ok.status_code == 200
    entries = redis.Redis.from_url(redis_url, decode_responses=True).xrange(LOGINS_STREAM)
    rows = [fields for _, fields in entries]
    assert [tuple(r) for r in rows] == [LOGIN_FIELDS] * 3
    assert [(r["username"], r["success"], r["reason"]) for r in rows] == [
        ("alice", "false", "bad_password"), ("nobody", "false", "unknown_user"),
        ("alice", "true", "ok"),
    ]  # fmt: skip
    assert rows[2]["user_id"] == str(made["user_id"])
    assert rows[2]["client_id"] == str(made["client_id"])
    assert (rows[2]["device_id"], rows[2]["country"]) == ("phone-1", "FR")
    assert rows[1]["user_id"] == "" and int(rows[0]["ts_ns"]) > 0


def test_login_when_failures_reach_the_limit_then_locked_out_even_with_the_password(
    make_api: MakeApi,
) -> None:
    api = make_api(api_lockout_failures=3, api_lockout_s=600)
    register(api)
    for _ in range(2):
        assert_problem(login(api, password="Wrong-Horse-42"), 401, "invalid_credentials")
    locked = login(api, password="Wrong-Horse-42")
    assert_problem(locked, 429, "locked_out")
    assert 590 <= int(locked.headers["Retry-After"]) <= 600
    again = login(api)  # the right password changes nothing while locked
    assert_problem(again, 429, "locked_out")


def test_login_when_a_success_comes_between_failures_then_the_count_starts_again(
    make_api: MakeApi,
) -> None:
    api = make_api(api_lockout_failures=3)
    register(api)
    for _ in range(2):
        login(api, password="Wrong-Horse-42")
    assert login(api).status_code == 200
    for _ in range(2):
        assert_problem(login(api, password="Wrong-Horse-42"), 401, "invalid_credentials")


def test_sessions_when_one_is_revoked_then_its_token_is_401_and_the_other_lives(
    api: TestClient,
) -> None:
    register(api)
    phone = session(api, device="phone-1")
    laptop = session(api, device="laptop-1")
    listed = api.get("/v1/auth/sessions", headers=phone).json()
    assert sorted(x["device"] for x in listed) == ["laptop-1", "phone-1"]
    assert [x["current"] for x in listed if x["device"] == "phone-1"] == [True]
    laptop_id = next(x["session_id"] for x in listed if x["device"] == "laptop-1")
    assert api.delete(f"/v1/auth/sessions/{laptop_id}", headers=phone).status_code == 204
    assert_problem(api.get("/v1/auth/me", headers=laptop), 401, "unauthenticated")
    assert api.get("/v1/auth/me", headers=phone).status_code == 200
    assert_problem(api.delete(f"/v1/auth/sessions/{laptop_id}", headers=phone), 404, "not_found")


def test_sessions_when_another_users_id_is_revoked_then_404_and_it_lives(api: TestClient) -> None:
    register(api, "alice")
    register(api, "bob")
    alice, bob = session(api, "alice"), session(api, "bob")
    bob_id = api.get("/v1/auth/sessions", headers=bob).json()[0]["session_id"]
    assert_problem(api.delete(f"/v1/auth/sessions/{bob_id}", headers=alice), 404, "not_found")
    assert api.get("/v1/auth/me", headers=bob).status_code == 200


def test_logout_when_done_then_the_token_is_401(api: TestClient) -> None:
    register(api)
    headers = session(api)
    assert api.post("/v1/auth/logout", headers=headers).status_code == 204
    assert_problem(api.get("/v1/auth/me", headers=headers), 401, "unauthenticated")
    assert_problem(api.get("/v1/auth/me", headers=bearer("made-up")), 401, "unauthenticated")


def test_session_when_idle_past_the_timeout_then_401_and_use_keeps_it_alive(
    make_api: MakeApi,
) -> None:
    api = make_api(api_session_idle_s=1.0)
    register(api)
    idle, used = session(api), session(api)
    for _ in range(3):
        time.sleep(0.5)
        assert api.get("/v1/auth/me", headers=used).status_code == 200
    assert_problem(api.get("/v1/auth/me", headers=idle), 401, "unauthenticated")


def test_devices_when_logged_in_from_two_then_both_listed_with_ip_and_country(
    api: TestClient,
) -> None:
    register(api)
    session(api, device="phone-1")
    body = {"username": "alice", "password": PASSWORD, "device_id": "laptop-1"}
    api.post("/v1/auth/login", json=body, headers={"X-Country": "DE"})
    headers = session(api, device="phone-1")
    devices = api.get("/v1/auth/devices", headers=headers).json()
    assert [d["device_id"] for d in devices] == ["phone-1", "laptop-1"]
    assert devices[1]["last_country"] == "DE" and devices[0]["last_country"] is None
    assert devices[0]["last_seen_ns"] > devices[0]["first_seen_ns"]
    assert devices[0]["last_ip"] == "testclient"


def test_login_and_register_when_text_holds_a_nul_or_a_lone_surrogate_then_4xx(
    api: TestClient,
) -> None:
    # Found by schemathesis: PostgreSQL refuses a NUL, UTF-8 a lone surrogate.
    for bad in ("al\u0000ice", "al\ud800ice"):
        body = json.dumps({"username": bad, "password": bad, "device_id": "d"})
        res = api.post("/v1/auth/login", content=body,
                       headers={"Content-Type": "application/json"})  # fmt: skip
        assert res.status_code in (401, 422), res.text
        reg = json.dumps({"username": "carol", "password": "Correct-Horse-42", "email": bad,
                          "name": bad, "country": "FR", "birth_date": "1985-04-02"})  # fmt: skip
        res = api.post("/v1/auth/register", content=reg,
                       headers={"Content-Type": "application/json"})  # fmt: skip
        assert_problem(res, 422, "invalid_input")
    assert login(api, "carol").status_code == 401  # never registered
