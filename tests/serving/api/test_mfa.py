"""2FA: enrol, verify, log in with a code or challenge later; routes that need it; staff
roles."""

from __future__ import annotations

import time
from typing import Annotated

import pyotp
from fastapi import APIRouter, Depends, FastAPI
from fastapi.testclient import TestClient

from serving.api.admin import create_staff
from serving.api.deps import CurrentUser, MfaUser, Session, staff
from tests.serving.api.conftest import (
    PASSWORD,
    MakeApi,
    assert_problem,
    bearer,
    enrol,
    login,
    register,
    session,
)
from tests.trading.bus.test_host import Served


def _guarded(app: FastAPI) -> None:
    """Routes as later routers will write them."""
    router = APIRouter(prefix="/v1/test")

    @router.post("/withdraw")
    def withdraw(user: MfaUser) -> dict[str, int]:
        return {"user_id": user.user_id}

    @router.get("/mine")
    def mine(user: CurrentUser) -> dict[str, int | None]:
        return {"client_id": user.client_id}

    @router.post("/halt")
    def halt(user: Annotated[Session, Depends(staff("risk", "admin"))]) -> dict[str, str]:
        return {"by": user.username}

    app.include_router(router)


def _wait_next_step(totp: pyotp.TOTP) -> str:
    """A code not used yet: a code is accepted once (the next step's is valid already)."""
    return totp.at(int(time.time()) + 30)


def test_2fa_when_enrolled_and_verified_then_mfa_routes_open_and_a_new_login_needs_a_code(
    make_api: MakeApi,
) -> None:
    api = make_api(_guarded)
    register(api)
    headers = session(api)
    assert_problem(api.post("/v1/test/withdraw", headers=headers), 403, "mfa_required")
    totp = enrol(api, headers)
    assert api.post("/v1/test/withdraw", headers=headers).status_code == 200
    assert api.get("/v1/auth/me", headers=headers).json()["totp_enabled"] is True

    plain = session(api)  # no code: a session, not verified
    assert_problem(api.post("/v1/test/withdraw", headers=plain), 403, "mfa_required")
    res = api.post("/v1/auth/2fa/challenge", headers=plain, json={"code": _wait_next_step(totp)})
    assert res.status_code == 200 and res.json() == {"mfa": True}
    assert api.post("/v1/test/withdraw", headers=plain).status_code == 200

    res = login(api, totp=totp.at(int(time.time()) - 30))
    assert res.status_code == 200 and res.json()["mfa"] is True


def test_2fa_when_a_code_is_wrong_or_reused_then_refused(make_api: MakeApi) -> None:
    api = make_api(_guarded)
    register(api)
    headers = session(api)
    res = api.post("/v1/auth/2fa/enroll", headers=headers)
    totp = pyotp.TOTP(res.json()["secret"])
    assert res.json()["otpauth_uri"].startswith("otpauth://totp/Bourse:alice?")
    wrong = str((int(totp.now()) + 1) % 10**6).zfill(6)
    assert_problem(
        api.post("/v1/auth/2fa/verify", headers=headers, json={"code": wrong}), 422, "invalid_totp"
    )
    code = totp.now()
    assert api.post("/v1/auth/2fa/verify", headers=headers, json={"code": code}).status_code == 200
    other = session(api)
    assert_problem(
        api.post("/v1/auth/2fa/challenge", headers=other, json={"code": code}), 422, "invalid_totp"
    )
    bad_login = login(api, totp=code)  # the same code once more: refused, counted
    assert_problem(bad_login, 401, "invalid_credentials")


def test_2fa_when_on_then_enrolling_again_needs_a_verified_session(make_api: MakeApi) -> None:
    api = make_api(_guarded)
    register(api)
    enrol(api, session(api))
    plain = session(api)
    assert_problem(api.post("/v1/auth/2fa/enroll", headers=plain), 403, "mfa_required")


def test_challenge_when_2fa_is_off_then_409(api: TestClient) -> None:
    register(api)
    res = api.post("/v1/auth/2fa/challenge", headers=session(api), json={"code": "123456"})
    assert_problem(res, 409, "conflict")


def test_staff_route_when_a_client_or_a_staff_without_2fa_then_403_and_with_it_200(
    make_api: MakeApi, served: Served
) -> None:
    api = make_api(_guarded)
    register(api)
    assert_problem(api.post("/v1/test/halt", headers=session(api)), 403, "forbidden")
    made = create_staff(served.oms.engine, username="rita", password=PASSWORD, role="risk",
                        email="rita@broker.example", now_ns=1)  # fmt: skip
    support = create_staff(served.oms.engine, username="sam", password=PASSWORD,
                           role="support", email="", now_ns=1)  # fmt: skip
    totp = pyotp.TOTP(made.totp_secret)
    plain = session(api, "rita")
    assert_problem(api.post("/v1/test/halt", headers=plain), 403, "mfa_required")
    verified = session(api, "rita", totp=totp.now())
    assert api.post("/v1/test/halt", headers=verified).json() == {"by": "rita"}
    sam = session(api, "sam", totp=pyotp.TOTP(support.totp_secret).now())
    assert_problem(api.post("/v1/test/halt", headers=sam), 403, "forbidden")
    assert api.get("/v1/test/mine", headers=sam).json() == {"client_id": None}
    assert_problem(api.post("/v1/test/halt", headers=bearer("nope")), 401, "unauthenticated")
