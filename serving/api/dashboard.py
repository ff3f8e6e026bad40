"""``GET /dashboard``: the risk desk's live page, static HTML and one vanilla script
(``static/``: no build step, nothing fetched from elsewhere). It logs in through
``/v1/auth/login`` (username, password, TOTP code) and shows the ``risk`` channel of the
WebSocket: house exposure per symbol and per currency, the accounts nearest stop-out, the
gross exposure, alerts."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse

STATIC = Path(__file__).parent / "static"

router = APIRouter(include_in_schema=False)


@router.get("/dashboard")
def page() -> FileResponse:
    return FileResponse(STATIC / "dashboard.html", media_type="text/html")


@router.get("/dashboard/dashboard.js")
def script() -> FileResponse:
    return FileResponse(STATIC / "dashboard.js", media_type="text/javascript")


@router.get("/dashboard/dashboard.css")
def style() -> FileResponse:
    return FileResponse(STATIC / "dashboard.css", media_type="text/css")
