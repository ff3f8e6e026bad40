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

    def store_dsn(self) -> str:
        return self.dsn or sqlite_dsn(self.home)
