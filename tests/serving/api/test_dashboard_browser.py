"""The risk desk's dashboard in Debian's Chromium, driven by Playwright: the page served
by the app on uvicorn (real Redis, store and OMS host), a risk user with 2FA logs in, sees
the house exposure and the accounts nearest stop-out the positions flow's sink wrote, sees
them change when the sink writes new figures, and a screenshot is saved.

Chromium is installed by ``scripts/ensure-tools.sh`` (``make test``), never by
``playwright install``: a missing browser fails this test, it is not skipped."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pyotp
import pytest
from playwright.sync_api import Browser, expect, sync_playwright

from pipelines.positions.records import Alert, AlertKind, MarginState
from pipelines.positions.redis_out import RiskRedisSink
from serving.api.admin import create_staff
from serving.settings import Settings
from tests.pipelines.positions.rows import T0_NS, account, currency, exposure
from tests.serving.api.conftest import PASSWORD
from tests.serving.api.live import live_api
from tests.trading.bus.test_host import Served, serve

pytestmark = pytest.mark.slow

CHROMIUM = Path("/usr/bin/chromium")
# The machine's network is closed: without these Chromium waits on it.
ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip


@pytest.fixture
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail(
            f"Debian's Chromium is not at {CHROMIUM}: run scripts/ensure-tools.sh (as root it "
            "installs the `chromium` package), or `apt-get install -y chromium`"
        )
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS, timeout=60_000)
        yield b
        b.close()


@pytest.fixture
def sqlite_served(tmp_path: Path, redis_url: str) -> Iterator[Served]:
    sv = serve(f"sqlite:///{tmp_path}/bourse.db", redis_url)
    yield sv
    sv.client.close()
    sv.stopped()


def test_dashboard_when_a_risk_user_logs_in_with_2fa_then_live_figures_change_in_chromium(
    browser: Browser, sqlite_served: Served, redis_url: str, tmp_path: Path
) -> None:
    staff = create_staff(sqlite_served.oms.engine, username="rita", password=PASSWORD,
                         role="risk", email="rita@broker.example", now_ns=1)  # fmt: skip
    sink = RiskRedisSink(redis_url).build("risk", 0, 1)
    sink.write_batch([
        exposure("EUR/USD", 1_234_500), exposure("XAU/USD", -600_000),
        currency("EUR", "-12000", -1_300_000), currency("USD", "13300", 1_330_000),
        account(7, level="180.50"),
        account(8, level="95.25", margin_state=MarginState.MARGIN_CALL, equity=95_250),
        Alert(AlertKind.MARGIN_CALL, T0_NS, "account 8 at 95.25 %", account_id=8,
              level=Decimal("95.25")),
    ])  # fmt: skip
    settings = Settings(dsn=f"sqlite:///{tmp_path}/bourse.db", redis_url=redis_url)
    with live_api(settings) as live:
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto(live.base + "/dashboard")
        page.fill("#username", "rita")
        page.fill("#password", PASSWORD)
        page.fill("#totp", pyotp.TOTP(staff.totp_secret).now())
        page.click("button[type=submit]")
        expect(page.locator("#status")).to_have_text("live", timeout=20_000)
        eur = page.locator('[data-symbol="EUR/USD"] .value')
        expect(eur).to_have_text("12,345.00")
        expect(page.locator('[data-symbol="XAU/USD"] .value')).to_have_text("-6,000.00")
        expect(page.locator('[data-currency="EUR"] .value')).to_have_text("-13,000.00")
        expect(page.locator("#gross")).to_have_text("18,345.00 USD")
        rows = page.locator("#accounts tbody tr")
        expect(rows).to_have_count(2)
        expect(rows.first).to_have_attribute("data-account", "8")  # nearest stop-out first
        expect(rows.first).to_have_class("margin_call")
        expect(rows.first.locator(".level")).to_have_text("95.25 %")
        expect(page.locator("#alerts li")).to_have_count(1)

        # The flow's sink writes new figures: the page follows without a reload.
        later = T0_NS + 10**9
        sink.write_batch([
            exposure("EUR/USD", 2_500_000, ts_ns=later),
            account(7, level="42.00", margin_state=MarginState.STOP_OUT, ts_ns=later),
            Alert(AlertKind.STOP_OUT_STARTED, later, "account 7 at 42.00 %", account_id=7,
                  level=Decimal("42.00")),
        ])  # fmt: skip
        expect(eur).to_have_text("25,000.00", timeout=10_000)
        expect(page.locator("#gross")).to_have_text("31,000.00 USD")
        expect(rows.first).to_have_attribute("data-account", "7")
        expect(rows.first).to_have_class("stop_out")
        expect(rows.first.locator(".level")).to_have_text("42.00 %")
        expect(page.locator("#alerts li").first).to_have_class("stop_out_started")

        shot = tmp_path / "dashboard.png"
        page.screenshot(path=str(shot), full_page=True)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert shot.stat().st_size > 20_000, shot.stat().st_size
