"""The dependencies every router uses, as typed aliases.

    from serving.api.deps import CurrentUser, MfaUser, StateDep, staff

    @router.get("/orders")
    def list_orders(user: CurrentUser, state: StateDep) -> ...:
        # user.client_id: the caller's client (None for staff); user.role, user.user_id
        ...

    @router.post("/withdrawals")
    def request_withdrawal(user: MfaUser, state: StateDep) -> ...: ...

    @router.post("/back-office/withdrawals/{wid}/approve")
    def approve(user: Annotated[Session, Depends(staff("compliance", "admin"))], ...): ...

A route outside the auth router that takes none of these is open to anyone: the test
``test_every_route_when_no_session_then_401`` lists the only open ones.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from serving.api.auth import current_user, require_mfa, require_role
from serving.api.sessions import Session
from serving.api.state import ApiState, get_state

StateDep = Annotated[ApiState, Depends(get_state)]
CurrentUser = Annotated[Session, Depends(current_user)]
MfaUser = Annotated[Session, Depends(require_mfa)]
staff = require_role

__all__ = ["CurrentUser", "MfaUser", "Session", "StateDep", "require_role", "staff"]
