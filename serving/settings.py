"""Settings, read once from the environment at the service edge (prefix ``BOURSE_``)."""

from __future__ import annotations

from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict

from trading.store.engine import sqlite_dsn


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="BOURSE_", env_file=".env", extra="ignore")

    # The data directory: the embedded store, the lake, reports.
    home: Path = Path(".bourse")
    # Transactional store; empty means SQLite under ``home``.
    dsn: str = ""
    redis_url: str = "redis://127.0.0.1:6379/0"
    environment: str = "development"

    # The API (``bourse serve``); each is ``BOURSE_API_...`` in the environment.
    # A session ends after this long without a request (refreshed on each use), and this
    # long after its login whatever its use.
    api_session_idle_s: float = 900.0
    api_session_max_s: float = 12 * 3600.0
    # Failed logins in a row that lock a user out, and for how long.
    api_lockout_failures: int = 5
    api_lockout_s: float = 900.0
    api_password_min_length: int = 12
    # Fixed-window rate limits: requests per window, per user (an authenticated request),
    # per IP (every request), and log-ins and registrations per IP.
    api_rate_window_s: int = 60
    api_rate_per_user: int = 600
    api_rate_per_ip: int = 1200
    api_rate_login_per_ip: int = 30
    # Headers the deployment's proxy sets: the caller's country (ISO 3166-1 alpha-2) and,
    # when not empty, the caller's IP (else the peer address is used).
    api_country_header: str = "X-Country"
    api_ip_header: str = ""
    # The login activity stream is trimmed (approximately) to this many entries.
    api_activity_maxlen: int = 1_000_000
    api_totp_issuer: str = "Bourse"
    # The wait for the OMS's reply to a command sent through the bus.
    api_command_timeout_s: float = 10.0
    # The simulated payment provider: its name on deposits, the secret its callbacks are
    # signed with (HMAC-SHA256 of the body), and how long a started payment is kept.
    api_payment_provider: str = "simpay"
    api_payment_secret: str = "dev-only-payment-secret"  # noqa: S105 - set it in production
    api_payment_ttl_s: int = 7 * 24 * 3600
    # The WebSocket (``/v1/ws``, docs/websocket.md): messages a connection may have waiting
    # to be sent before it is closed as too slow (4008); the longest one send may take; the
    # quote coalescing interval; the wait for the first message's token; the most stream
    # entries a resume replays before it answers a fresh snapshot instead; the accounts the
    # risk channel's snapshot lists (nearest stop-out first); the OMS's event partitions.
    api_ws_queue: int = 256
    api_ws_send_timeout_s: float = 10.0
    api_ws_quote_interval_ms: int = 100
    api_ws_auth_timeout_s: float = 10.0
    api_ws_replay_max: int = 10_000
    api_ws_risk_accounts: int = 50
    api_ws_session_check_s: float = 30.0
    event_partitions: int = 4

    def store_dsn(self) -> str:
        return self.dsn or sqlite_dsn(self.home)
