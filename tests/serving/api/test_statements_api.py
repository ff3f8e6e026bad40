"""Statements over REST: the published ones listed newest first and paged, each file
downloaded byte for byte; another client's refused (404), staff of a reading role with 2FA
allowed, and no path outside the statements reachable.

Most tests write a small reports tree by hand (files of known bytes, docs/statements.md's
layout); the last reads one written by ``bourse simulate --days 1`` and ``bourse reports
run``.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pyotp
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from serving.api.admin import create_staff
from serving.api.app import create_app
from serving.settings import Settings
from tests.serving.api.conftest import MakeApi, assert_problem, session
from tests.serving.api.office import staff
from tests.serving.api.trading_helpers import Client, client
from tests.trading.bus.test_host import Served
from trading.store.engine import open_engine

STATEMENT = ("summary.csv", "trades.csv", "positions.csv", "statement.pdf")


def _bytes(account_id: int, where: str, name: str) -> bytes:
    """A file's known content, different for every account, period and name."""
    if name.endswith(".pdf"):
        return b"%PDF-1.4\n" + f"{account_id} {where} {name}\n".encode() + b"%%EOF\n"
    return f"currency,closing_balance\r\nUSD,{account_id}.{len(where)}0\r\n# {where}\r\n".encode()


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def _publish(folder: Path, account_ids: list[int], where: str) -> None:
    for account_id in account_ids:
        for name in STATEMENT:
            _write(folder / str(account_id) / name, _bytes(account_id, where, name))
    _write(folder / "manifest.json", b"{}\n")


def write_reports(home: Path, account_ids: list[int]) -> None:
    """Two published days, a month and a tax year; a day being written (no manifest yet);
    a day withheld for breaks (no statements folder); the desk's other reports."""
    reports = home / "reports"
    _publish(reports / "2026-01-05" / "statements", account_ids, "2026-01-05")
    _publish(reports / "2026-01-06" / "statements", account_ids, "2026-01-06")
    _publish(reports / "monthly" / "2026-01" / "statements", account_ids, "2026-01")
    for account_id in account_ids:
        _write(reports / "2026-01-07" / "statements" / str(account_id) / "summary.csv", b"x")
        for suffix in ("csv", "pdf"):
            tax = f"tax.{suffix}"
            _write(reports / "tax" / "2026" / f"{account_id}.{suffix}",
                   _bytes(account_id, "2026", tax))  # fmt: skip
    _write(reports / "tax" / "2026" / "manifest.json", b"{}\n")
    _write(reports / "2026-01-08" / "reconciliation" / "breaks.csv", b"kind\r\nmissing\r\n")
    _write(reports / "2026-01-05" / "risk" / "exposure.csv", b"symbol\r\n")
    _write(home / "secret.txt", b"not a statement")


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


@pytest.fixture
def api(make_api: MakeApi, home: Path) -> TestClient:
    return make_api(home=home)


@pytest.fixture
def alice(api: TestClient, served: Served, home: Path) -> Client:
    made = client(api, served, "alice", amount=None)
    write_reports(home, [made.account_id])
    return made


EXPECTED = [  # newest first: the year ends last, then the month, then its days
    ("tax", "2026", "2026-01-01", "2026-12-31", ["tax.csv", "tax.pdf"]),
    ("monthly", "2026-01", "2026-01-01", "2026-01-31", list(STATEMENT)),
    ("daily", "2026-01-06", "2026-01-06", "2026-01-06", list(STATEMENT)),
    ("daily", "2026-01-05", "2026-01-05", "2026-01-05", list(STATEMENT)),
]


def test_statements_when_listed_then_the_published_ones_newest_first_with_sizes_and_urls(
    api: TestClient, alice: Client, home: Path
) -> None:
    res = api.get(alice.url("/statements"), headers=alice.headers)
    assert res.status_code == 200, res.text
    page = res.json()
    got = [(s["kind"], s["period"], s["first"], s["last"], [f["name"] for f in s["files"]])
           for s in page["items"]]  # fmt: skip
    # 2026-01-07 has no manifest yet, 2026-01-08 was withheld: neither is offered.
    assert got == EXPECTED
    assert page["next_cursor"] is None
    daily = page["items"][3]["files"]
    for f in daily:
        written = home / "reports" / "2026-01-05" / "statements" / str(alice.account_id) / f["name"]
        assert f["size_bytes"] == len(written.read_bytes())
        assert f["url"] == alice.url(f"/statements/daily/2026-01-05/{f['name']}")
    assert [f["media_type"] for f in daily] == ["text/csv"] * 3 + ["application/pdf"]


def test_statements_when_paged_or_filtered_then_each_once_in_order(
    api: TestClient, alice: Client
) -> None:
    seen, cursor = [], None
    for _ in range(10):
        params: dict[str, str | int] = {"limit": 1, **({"cursor": cursor} if cursor else {})}
        page = api.get(alice.url("/statements"), headers=alice.headers, params=params).json()
        seen += [(s["kind"], s["period"]) for s in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [(kind, period) for kind, period, *_ in EXPECTED]
    daily = api.get(alice.url("/statements"), headers=alice.headers,
                    params={"kind": "daily"}).json()  # fmt: skip
    assert [s["period"] for s in daily["items"]] == ["2026-01-06", "2026-01-05"]
    res = api.get(alice.url("/statements"), headers=alice.headers, params={"cursor": "c1.eA"})
    assert_problem(res, 422, "invalid_input")


def test_statement_file_when_downloaded_then_the_bytes_written_with_its_media_type(
    api: TestClient, alice: Client
) -> None:
    for kind, period, _, _, names in EXPECTED:
        for name in names:
            res = api.get(alice.url(f"/statements/{kind}/{period}/{name}"), headers=alice.headers)
            assert res.status_code == 200, (kind, period, name, res.text)
            assert res.content == _bytes(alice.account_id, period, name)
            media = "application/pdf" if name.endswith(".pdf") else "text/csv"
            assert res.headers["content-type"].split(";")[0] == media
            assert "attachment" in res.headers["content-disposition"]


def test_statements_when_another_clients_account_then_404_and_nothing_listed(
    api: TestClient, served: Served, alice: Client, home: Path
) -> None:
    bob = client(api, served, "bob", amount=None)
    url = alice.url("/statements")
    assert_problem(api.get(url, headers=bob.headers), 404, "not_found")
    assert_problem(api.get(f"{url}/daily/2026-01-05/summary.csv", headers=bob.headers),
                   404, "not_found")  # fmt: skip
    # Bob's own account has no statements yet: an empty list, not alice's.
    assert api.get(bob.url("/statements"), headers=bob.headers).json()["items"] == []
    # An account id that no one has is 404 alike.
    missing = "/v1/accounts/999999/statements"
    assert_problem(api.get(missing, headers=alice.headers), 404, "not_found")
    assert_problem(api.get(url), 401, "unauthenticated")


def test_statements_when_staff_then_a_reading_role_with_2fa_reads_any_account(
    api: TestClient, served: Served, alice: Client
) -> None:
    support = staff(api, served, "sam", "support")
    listed = api.get(alice.url("/statements"), headers=support).json()["items"]
    assert [(s["kind"], s["period"]) for s in listed] == [(k, p) for k, p, *_ in EXPECTED]
    res = api.get(alice.url("/statements/tax/2026/tax.pdf"), headers=support)
    assert res.status_code == 200 and res.content == _bytes(alice.account_id, "2026", "tax.pdf")
    no_mfa = staff(api, served, "rita", "risk", mfa=False)
    assert_problem(api.get(alice.url("/statements"), headers=no_mfa), 403, "mfa_required")
    assert_problem(api.get("/v1/accounts/999999/statements", headers=support), 404, "not_found")


@pytest.mark.parametrize(
    "tail",
    [
        "daily/2026-01-05/manifest.json",  # a file of the folder not in the list
        "daily/2026-01-07/summary.csv",  # being written: no manifest
        "daily/2026-01-08/summary.csv",  # withheld
        "daily/2026-01-05/tax.csv",  # a name of another kind
        "tax/2026/summary.csv",
        "monthly/2026-01-05/summary.csv",  # a period of another kind's shape
        "daily/2026-02-30/summary.csv",  # no such date
        "weekly/2026-01-05/summary.csv",
        "daily/..%2F..%2Fsecret.txt/summary.csv",
        "daily/2026-01-05/..%2F..%2F..%2Fsecret.txt",
        "daily/2026-01-05%2F..%2F..%2F..%2Fsecret.txt/summary.csv",
        "daily/%2e%2e/summary.csv",
        "daily/2026-01-05/%2e%2e",
        "daily/../../secret.txt",
        "tax/2026/..%2F2026%2F1.csv",
    ],
)
def test_statement_file_when_the_path_names_no_published_statement_then_404(
    api: TestClient, alice: Client, tail: str
) -> None:
    res = api.get(alice.url(f"/statements/{tail}"), headers=alice.headers)
    # A path that does not fit the route at all is Starlette's 404, mapped to the same.
    assert_problem(res, 404, "not_found")
    assert b"not a statement" not in res.content


def test_statement_file_when_another_accounts_file_is_named_then_404(
    api: TestClient, served: Served, alice: Client, home: Path
) -> None:
    bob = client(api, served, "bob", amount=None)
    # Alice's statements, published: bob asks for them under his own account id.
    for name in ("tax.csv", f"{alice.account_id}.csv"):
        res = api.get(bob.url(f"/statements/tax/2026/{name}"), headers=bob.headers)
        assert_problem(res, 404, "not_found")


def test_statement_file_when_a_link_leads_out_of_the_reports_then_404(
    api: TestClient, alice: Client, home: Path
) -> None:
    folder = home / "reports" / "2026-01-06" / "statements" / str(alice.account_id)
    (folder / "trades.csv").unlink()
    (folder / "trades.csv").symlink_to(home / "secret.txt")
    res = api.get(alice.url("/statements/daily/2026-01-06/trades.csv"), headers=alice.headers)
    assert_problem(res, 404, "not_found")
    listed = api.get(alice.url("/statements"), headers=alice.headers).json()["items"]
    assert [f["name"] for f in listed[2]["files"]] == ["summary.csv", "positions.csv",
                                                        "statement.pdf"]  # fmt: skip


# -- a home written by the real commands ---------------------------------------------------

DAY = "2026-01-05"  # the simulation's first trading day


@pytest.fixture(scope="module")
def reported(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("reported") / "home"
    runner = CliRunner()
    from serving.cli import app

    with pytest.MonkeyPatch.context() as mp:
        # The command points DAGSTER_HOME at DIR/dagster in its own process.
        mp.delenv("DAGSTER_HOME", raising=False)
        mp.delenv("BOURSE_WAREHOUSE_DSN", raising=False)
        made = runner.invoke(app, ["simulate", "--home", str(root), "--accounts", "3",
                                   "--orders", "60", "--seed", "21", "--days", "1"])  # fmt: skip
        assert made.exit_code == 0, made.output
        ran = runner.invoke(app, ["reports", "run", "--home", str(root), "--date", DAY])
        assert ran.exit_code == 0, ran.output
        # Set by the command itself, so the context has nothing of its own to restore.
        os.environ.pop("DAGSTER_HOME", None)
    return root


def test_statements_when_written_by_reports_run_then_staff_lists_and_downloads_them(
    reported: Path, redis_url: str
) -> None:
    folder = reported / "reports" / DAY / "statements"
    manifest = json.loads((folder / "manifest.json").read_text())
    entry = manifest["accounts"][0]
    account_id = entry["account_id"]
    engine = open_engine(f"sqlite:///{reported}/bourse.db")
    try:
        made = create_staff(engine, username="ada", password="Correct-Horse-42", role="admin",
                            email="ada@broker.example", now_ns=1)  # fmt: skip
    finally:
        engine.dispose()
    settings = Settings(home=reported, redis_url=redis_url)
    with TestClient(create_app(settings), raise_server_exceptions=False) as api:
        headers = session(api, "ada", totp=pyotp.TOTP(made.totp_secret).now())
        res = api.get(f"/v1/accounts/{account_id}/statements", headers=headers)
        assert res.status_code == 200, res.text
        (only,) = res.json()["items"]
        assert (only["kind"], only["period"]) == ("daily", DAY)
        assert [f["name"] for f in only["files"]] == list(STATEMENT)
        for f in only["files"]:
            body = api.get(f["url"], headers=headers)
            assert body.status_code == 200, body.text
            on_disk = (folder / str(account_id) / f["name"]).read_bytes()
            assert body.content == on_disk and f["size_bytes"] == len(on_disk)
            # The manifest's digest, computed by the assets when they wrote the file.
            (listed,) = [x for x in entry["files"] if x["name"] == f["name"]]
            assert hashlib.sha256(body.content).hexdigest() == listed["sha256"]
        assert api.get(f"/v1/accounts/{account_id}/statements/daily/{DAY}/statement.pdf",
                       headers=headers).content.startswith(b"%PDF")  # fmt: skip
