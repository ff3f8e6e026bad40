"""The API against a real OMS host (in a thread), real Redis and the real store."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack
from typing import Any

import pyotp
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from serving.api.app import create_app
from serving.settings import Settings
from tests.trading.bus.test_host import Served, serve

PASSWORD = "Correct-Horse-42"


@pytest.fixture
def served(store_dsn: str, redis_url: str) -> Iterator[Served]:
    sv = serve(store_dsn, redis_url)
    yield sv
    sv.client.close()
    sv.stopped()


MakeApi = Callable[..., TestClient]


@pytest.fixture
def make_api(served: Served, store_dsn: str, redis_url: str) -> Iterator[MakeApi]:
    """``make_api(**settings)``: a started app (its lifespan run) and its test client."""
    stack = ExitStack()

    def make(extend: Callable[[FastAPI], None] | None = None, **overrides: Any) -> TestClient:
        settings = Settings(dsn=store_dsn, redis_url=redis_url, **overrides)
        app = create_app(settings)
        if extend is not None:
            extend(app)
        return stack.enter_context(TestClient(app, raise_server_exceptions=False))

    yield make
    stack.close()


@pytest.fixture
def api(make_api: MakeApi) -> TestClient:
    return make_api()


def register(api: TestClient, username: str = "alice", **extra: Any) -> dict[str, Any]:
    body = {
        "username": username, "password": PASSWORD, "email": f"{username}@example.com",
        "name": "Alice Martin", "country": "FR", "birth_date": "1985-04-02", **extra,
    }  # fmt: skip
    res = api.post("/v1/auth/register", json=body)
    assert res.status_code == 201, res.text
    out: dict[str, Any] = res.json()
    return out


def login(api: TestClient, username: str = "alice", password: str = PASSWORD,
          device: str = "phone-1", **extra: Any) -> Any:  # fmt: skip
    return api.post(
        "/v1/auth/login",
        json={"username": username, "password": password, "device_id": device, **extra},
    )


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def session(api: TestClient, username: str = "alice", **extra: Any) -> dict[str, str]:
    res = login(api, username, **extra)
    assert res.status_code == 200, res.text
    return bearer(res.json()["token"])


def enrol(api: TestClient, headers: dict[str, str]) -> pyotp.TOTP:
    """Enrols and verifies 2FA; the TOTP to make codes with."""
    res = api.post("/v1/auth/2fa/enroll", headers=headers)
    assert res.status_code == 200, res.text
    totp = pyotp.TOTP(res.json()["secret"])
    res = api.post("/v1/auth/2fa/verify", headers=headers, json={"code": totp.now()})
    assert res.status_code == 200, res.text
    return totp


def assert_problem(res: Any, status: int, code: str) -> dict[str, Any]:
    assert res.status_code == status, res.text
    assert res.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = res.json()
    assert body["code"] == code
    assert body["status"] == status
    assert {"type", "title", "detail", "instance"} <= set(body)
    return body
