"""``/v1/accounts/{account_id}/statements``: the account's published statements (daily,
monthly, yearly tax), listed newest first a page at a time, and each file downloaded.

Written by ``bourse reports run/monthly/tax`` under the settings' home
(``HOME/reports/...``, read by ``statement_files``). A client reads its own accounts'
(another client's account is 404, as everywhere); staff of a role that reads accounts in
the back office, with 2FA, read any account's. A kind, period or file name that names no
published statement is 404: the path never reaches the disk unchecked.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Path, Query
from fastapi.responses import FileResponse
from pydantic import BaseModel, Field

from serving.api.auth import require_mfa
from serving.api.deps import CurrentUser, StateDep
from serving.api.problems import Problem, responses
from serving.api.routes_backoffice import READERS
from serving.api.sessions import Session
from serving.api.state import ApiState
from serving.api.statement_files import (
    FILES,
    Kind,
    period_of,
    statement_file,
    statements_of,
)
from serving.api.views import decode_cursor, encode_cursor, owned_account
from trading.bounds import INT64_MAX
from trading.store import read_office

router = APIRouter(prefix="/v1/accounts/{account_id}/statements", tags=["statements"])
_REFUSED = responses(403, 404)


class StatementFileOut(BaseModel):
    name: str = Field(examples=["statement.pdf"])
    media_type: str = Field(examples=["application/pdf"])
    size_bytes: int
    url: str = Field(description="GET it (with the session) to download the file")


class StatementOut(BaseModel):
    kind: Kind
    period: str = Field(description="YYYY-MM-DD (daily), YYYY-MM (monthly), YYYY (tax)")
    first: str = Field(description="the period's first trading date")
    last: str = Field(description="the period's last trading date")
    files: list[StatementFileOut]


class StatementPage(BaseModel):
    items: list[StatementOut]
    next_cursor: str | None = Field(description="opaque: pass as `cursor` for the next page")


def readable_account(state: ApiState, user: Session, account_id: int) -> None:
    """The caller may read ``account_id``'s statements: its own client's account, or any
    account for staff of a reading role verified with 2FA; else a problem."""
    with state.reader.connect() as conn:
        if user.client_id is not None:
            owned_account(conn, user, account_id)
            return
        if user.role not in READERS:
            raise Problem.of("forbidden", f"this needs one of the roles {sorted(READERS)}")
        require_mfa(user)
        if not 0 < account_id <= INT64_MAX or read_office.account(conn, account_id) is None:
            raise Problem.of("not_found", f"no account {account_id}", account_id=account_id)


def _url(account_id: int, kind: str, period: str, name: str) -> str:
    return f"/v1/accounts/{account_id}/statements/{kind}/{period}/{name}"


def _cursor_key(state_cursor: str) -> tuple[dt.date, int]:
    kind, _, name = state_cursor.partition(":")
    period = period_of(kind, name)
    if period is None:
        raise Problem.of(
            "invalid_input", "not a cursor of this listing", field="cursor", location="query"
        )
    return period.order


@router.get("", response_model=StatementPage, responses=_REFUSED)
def list_statements(
    account_id: int,
    user: CurrentUser,
    state: StateDep,
    kind: Annotated[Kind | None, Query(description="only this kind")] = None,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> StatementPage:
    """The account's published statements, newest first (by the period's last date; a
    year, then its December, then its last day); a day withheld for open reconciliation
    breaks is not listed."""
    readable_account(state, user, account_id)
    after = decode_cursor(cursor)
    found = statements_of(state.settings.home / "reports", account_id)
    if kind is not None:
        found = [(p, f) for p, f in found if p.kind == kind]
    if after is not None:
        key = _cursor_key(after)
        found = [(p, f) for p, f in found if p.order < key]
    page = found[:limit]
    items = [
        StatementOut(
            kind=p.kind,
            period=p.name,
            first=p.first.isoformat(),
            last=p.last.isoformat(),
            files=[
                StatementFileOut(
                    name=f.name,
                    media_type=f.media_type,
                    size_bytes=f.size_bytes,
                    url=_url(account_id, p.kind, p.name, f.name),
                )
                for f in files
            ],
        )
        for p, files in page
    ]
    last = page[-1][0] if len(found) > limit else None
    return StatementPage(
        items=items, next_cursor=encode_cursor(f"{last.kind}:{last.name}" if last else None)
    )


_FILE_NAMES = sorted({n for names in FILES.values() for n in names})


@router.get(
    "/{kind}/{period}/{file}",
    response_class=FileResponse,
    responses={
        **_REFUSED,
        200: {
            "content": {"application/pdf": {}, "text/csv": {}},
            "description": "the file, as the reports wrote it",
        },
    },
)
def download_statement(
    account_id: int,
    user: CurrentUser,
    state: StateDep,
    kind: Annotated[str, Path(max_length=16, description="daily, monthly or tax")],
    period: Annotated[str, Path(max_length=16, description="YYYY-MM-DD, YYYY-MM or YYYY")],
    file: Annotated[str, Path(max_length=32, description=", ".join(_FILE_NAMES))],
) -> FileResponse:
    """One file of a published statement: ``summary.csv``, ``trades.csv``,
    ``positions.csv``, ``statement.pdf`` (daily, monthly); ``tax.csv``, ``tax.pdf`` (tax)."""
    readable_account(state, user, account_id)
    p = period_of(kind, period)
    found = (
        None if p is None else statement_file(state.settings.home / "reports", p, account_id, file)
    )
    if p is None or found is None:
        raise Problem.of("not_found", f"no such statement file for account {account_id}")
    media = found.media_type + ("; charset=utf-8" if found.media_type == "text/csv" else "")
    return FileResponse(
        found.path, media_type=media, filename=f"{account_id}-{p.kind}-{p.name}-{found.name}"
    )
