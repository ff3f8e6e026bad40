"""One error model for every route: ``application/problem+json`` (RFC 9457).

    {"type": "https://bourse.dev/problems/unknown_symbol", "title": "Unknown symbol",
     "status": 422, "detail": "...", "code": "unknown_symbol", "instance": "/v1/orders"}

``code`` is stable and machine-readable: the core's error codes (``trading.errors``, the
bus's reply codes) pass through unchanged; the API's own are below (``API_CODES``). Extra
members carry details (``field`` for a bad input). Routes raise ``Problem`` (or let a
``BourseError`` or a failed bus ``Reply`` through ``raise_for``); ``install`` maps the rest:
pydantic's validation errors (422 ``invalid_input`` with the field), Starlette's 404 and
405, and anything unexpected (500 ``error``, without its text).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict
from starlette.exceptions import HTTPException as StarletteHTTPException

from trading import errors
from trading.bus.wire import Reply, error_codes

log = logging.getLogger(__name__)

MEDIA_TYPE = "application/problem+json"
TYPE_BASE = "https://bourse.dev/problems/"

# The API's own codes, with their status.
API_CODES: dict[str, int] = {
    "unauthenticated": 401,  # no session, or an expired or revoked one
    "invalid_credentials": 401,  # a login refused: unknown user, wrong password or code
    "forbidden": 403,  # a staff route for another role
    "mfa_required": 403,  # a route that needs a session verified with a TOTP code
    "not_found": 404,  # also another client's resource: never 403, which would confirm it
    "method_not_allowed": 405,
    "conflict": 409,
    "username_taken": 409,
    "invalid_input": 422,
    "invalid_totp": 422,  # a TOTP code that is wrong, expired or already used
    "locked_out": 429,  # too many failed logins in a row: Retry-After says until when
    "rate_limited": 429,
    "error": 500,
    "unavailable": 503,  # Redis, the store or the OMS cannot be reached
}

# The status of each class of the core's tree; a subclass takes its nearest ancestor's.
_CORE_STATUS: tuple[tuple[type[errors.BourseError], int], ...] = (
    (errors.InvalidInput, 422),
    (errors.NotFound, 404),
    (errors.ConflictError, 409),
    (errors.InvalidStateTransition, 409),
    (errors.AccountHalted, 409),
    (errors.InsufficientFunds, 409),
    (errors.CommandTimeout, 504),
    (errors.StoreError, 503),
    (errors.BusError, 503),
)


class ProblemOut(BaseModel):
    """The body of every error (more members may carry details, e.g. ``field``)."""

    model_config = ConfigDict(extra="allow")

    type: str
    title: str
    status: int
    detail: str
    code: str
    instance: str


def responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for the problems a route may answer."""
    schema = ProblemOut.model_json_schema()
    return {
        status: {"content": {MEDIA_TYPE: {"schema": schema}}, "description": "a problem"}
        for status in statuses
    }


# What any route of the API may answer besides its success.
COMMON = responses(401, 422, 429, 500, 503)


class Problem(Exception):
    """An HTTP problem: raise it from a route or a dependency."""

    def __init__(
        self,
        status: int,
        code: str,
        detail: str = "",
        *,
        title: str | None = None,
        headers: Mapping[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail or code)
        self.status = status
        self.code = code
        self.detail = detail
        self.title = title or code.replace("_", " ").capitalize()
        self.headers = dict(headers or {})
        self.extra = extra

    @classmethod
    def of(cls, code: str, detail: str = "", **kw: Any) -> Problem:
        """A problem of one of the API's own codes, at its status."""
        return cls(API_CODES[code], code, detail, **kw)

    def body(self, instance: str) -> dict[str, Any]:
        return {
            "type": TYPE_BASE + self.code,
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
            "code": self.code,
            "instance": instance,
            **self.extra,
        }


def status_of(code: str) -> int:
    """The HTTP status of an error code, the core's or the API's."""
    if code in API_CODES:
        return API_CODES[code]
    cls = error_codes().get(code)
    if cls is None:
        return 500
    for base, status in _CORE_STATUS:
        if issubclass(cls, base):
            return status
    return 500


def from_error(exc: errors.BourseError) -> Problem:
    details: dict[str, Any] = {k: v for k, v in exc.details.items() if _plain(v)}
    status = status_of(exc.code)
    # An unexpected failure's text is for the log, not for the caller.
    detail = exc.message if status < 500 or exc.code != "error" else "unexpected failure"
    return Problem(status, exc.code, detail, **details)


def from_reply(reply: Reply) -> Problem:
    """A failed bus reply as a problem, its code kept."""
    err = reply.error or {}
    code = str(err.get("code") or "error")
    details = err.get("details") or {}
    extra = {k: v for k, v in details.items() if _plain(v)} if isinstance(details, dict) else {}
    status = status_of(code)
    message = str(err.get("message") or "")
    detail = message if status < 500 or code != "error" else "unexpected failure"
    return Problem(status, code, detail, **extra)


def result_of(reply: Reply) -> dict[str, Any]:
    """The reply's result, or its failure raised as a problem."""
    if not reply.ok:
        raise from_reply(reply)
    return reply.result or {}


def _plain(value: object) -> bool:
    return value is None or isinstance(value, str | int | float | bool)


def response(problem: Problem, instance: str) -> JSONResponse:
    return JSONResponse(
        problem.body(instance),
        status_code=problem.status,
        headers=problem.headers,
        media_type=MEDIA_TYPE,
    )


def install(app: FastAPI) -> None:
    """Every error the app can meet, answered as a problem."""

    async def on_problem(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, Problem)
        return response(exc, request.url.path)

    async def on_core(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, errors.BourseError)
        if exc.code == "error":
            log.error("unexpected core failure on %s: %s", request.url.path, exc)
        return response(from_error(exc), request.url.path)

    async def on_validation(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        first = exc.errors()[0] if exc.errors() else {}
        # ("body", "password") -> "password"; the location is kept apart.
        loc = [str(p) for p in first.get("loc", ())]
        where, field = (loc[0], ".".join(loc[1:])) if len(loc) > 1 else ("body", ".".join(loc))
        detail = f"{field or where}: {first.get('msg', 'invalid')}"
        problem = Problem(422, "invalid_input", detail, field=field, location=where)
        return response(problem, request.url.path)

    async def on_http(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        code = {404: "not_found", 405: "method_not_allowed", 401: "unauthenticated"}.get(
            exc.status_code, "error" if exc.status_code >= 500 else "invalid_input"
        )
        detail = exc.detail if isinstance(exc.detail, str) else code
        problem = Problem(exc.status_code, code, detail, headers=exc.headers)
        return response(problem, request.url.path)

    async def on_unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected failure on %s", request.url.path, exc_info=exc)
        return response(Problem.of("error", "unexpected failure"), request.url.path)

    app.add_exception_handler(Problem, on_problem)
    app.add_exception_handler(errors.BourseError, on_core)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(Exception, on_unexpected)
