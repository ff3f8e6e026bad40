"""``/v1/auth``: a user's second factor (TOTP), sessions and devices.

Enrolment stores a fresh secret and shows it once (with its ``otpauth://`` URI for an
authenticator app); 2FA is on only once ``verify`` has seen a code from it. A user whose
2FA is already on must be in a verified session to enrol again: a stolen password alone
cannot replace the second factor.
"""

from __future__ import annotations

from typing import Annotated

import pyotp
from fastapi import APIRouter, Depends, Response

from serving.api import problems, users
from serving.api.auth import current_user, sessions, totp_ok, totp_uri
from serving.api.problems import Problem
from serving.api.schemas import CodeIn, DeviceOut, EnrollOut, MfaOut, SessionOut
from serving.api.sessions import Session
from serving.api.state import ApiState, get_state

router = APIRouter(prefix="/v1/auth", tags=["auth"], responses=problems.responses(403, 404, 409))

StateDep = Annotated[ApiState, Depends(get_state)]
UserDep = Annotated[Session, Depends(current_user)]


def _user(state: ApiState, session: Session) -> users.User:
    row = users.by_id(state.writer, session.user_id)
    if row is None:
        raise Problem.of("unauthenticated", "this user no longer exists")
    return row


@router.post("/2fa/enroll", response_model=EnrollOut)
def enroll(user: UserDep, state: StateDep) -> EnrollOut:
    """A new TOTP secret: add it to an authenticator, then confirm with ``2fa/verify``."""
    row = _user(state, user)
    if row.totp_enabled and not user.mfa:
        raise Problem.of("mfa_required", "2FA is on: verify this session before enrolling again")
    secret = pyotp.random_base32()
    users.set_totp(state.writer, row.user_id, secret, enabled=False)
    return EnrollOut(secret=secret, otpauth_uri=totp_uri(state, secret, row.username))


@router.post("/2fa/verify", response_model=MfaOut)
def verify(body: CodeIn, user: UserDep, state: StateDep) -> MfaOut:
    """Turns 2FA on with a code of the enrolled secret; this session becomes verified."""
    row = _user(state, user)
    if row.totp_secret is None:
        raise Problem(409, "conflict", "no TOTP secret: POST /v1/auth/2fa/enroll first")
    if not totp_ok(state, row.user_id, row.totp_secret, body.code):
        raise Problem.of("invalid_totp", "the code is not valid now", field="code")
    users.set_totp(state.writer, row.user_id, row.totp_secret, enabled=True)
    sessions(state).set_mfa(user.sid)
    return MfaOut(mfa=True)


@router.post("/2fa/challenge", response_model=MfaOut)
def challenge(body: CodeIn, user: UserDep, state: StateDep) -> MfaOut:
    """Verifies this session with a code, for the routes that need 2FA."""
    row = _user(state, user)
    if not row.totp_enabled or row.totp_secret is None:
        raise Problem(409, "conflict", "2FA is not on: enrol and verify first")
    if not totp_ok(state, row.user_id, row.totp_secret, body.code):
        raise Problem.of("invalid_totp", "the code is not valid now", field="code")
    sessions(state).set_mfa(user.sid)
    return MfaOut(mfa=True)


@router.get("/sessions", response_model=list[SessionOut])
def list_sessions(user: UserDep, state: StateDep) -> list[SessionOut]:
    """The user's live sessions, oldest first."""
    return [
        SessionOut(
            session_id=x.sid,
            device=x.device,
            ip=x.ip,
            created_ns=x.created_ns,
            last_seen_ns=x.last_seen_ns,
            mfa=x.mfa,
            current=x.sid == user.sid,
        )
        for x in sessions(state).sessions_of(user.user_id)
    ]


@router.delete("/sessions/{session_id}", status_code=204)
def revoke_session(session_id: str, user: UserDep, state: StateDep) -> Response:
    """Ends one of the user's sessions (this one included); another user's is 404."""
    if not sessions(state).revoke(user.user_id, session_id):
        raise Problem.of("not_found", "no such session")
    return Response(status_code=204)


@router.get("/devices", response_model=list[DeviceOut])
def list_devices(user: UserDep, state: StateDep) -> list[DeviceOut]:
    """The devices the user logged in from, first seen first."""
    return [DeviceOut(**{k: d[k] for k in DeviceOut.model_fields}) for d in
            users.devices_of(state.writer, user.user_id)]  # fmt: skip
