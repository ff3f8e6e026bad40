"""Request and response bodies of the auth routes (they refuse unknown fields)."""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, ConfigDict, Field, field_validator

from trading.bounds import check_text
from trading.errors import InvalidInput

USERNAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{2,63}$"


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False)


class RegisterIn(_In):
    username: str = Field(pattern=USERNAME_PATTERN, description="3-64 of letters, digits, ._-")
    password: str = Field(min_length=1, max_length=1024)
    email: str = Field(min_length=3, max_length=254)
    name: str = Field(min_length=1, max_length=200, description="the legal name")
    country: str = Field(min_length=2, max_length=2, description="ISO 3166-1 alpha-2")
    birth_date: dt.date
    national_id: str | None = Field(
        default=None,
        max_length=35,
        description="MiFIR national client identifier with its country prefix; absent: the "
        "CONCAT code made from the country, the birth date and the name",
    )
    currency: str = Field(default="USD", min_length=3, max_length=8)

    @field_validator("email")
    @classmethod
    def _plain_text(cls, value: str) -> str:
        # Stored by the API itself (the users table) before the OMS checks the client: a
        # control character (a NUL, which PostgreSQL refuses) is refused here.
        try:
            return check_text(value, "email", 254)
        except InvalidInput as exc:
            raise ValueError(exc.message) from None


class RegisterOut(BaseModel):
    user_id: int
    username: str
    client_id: int
    account_id: int


class LoginIn(_In):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=1024)
    device_id: str = Field(min_length=1, max_length=128, pattern=r"^[\x21-\x7e]+$")
    totp: str | None = Field(default=None, max_length=16, description="with 2FA on")


class LoginOut(BaseModel):
    token: str = Field(description="send as `Authorization: Bearer <token>`")
    session_id: str
    idle_timeout_s: float
    mfa: bool


class UserOut(BaseModel):
    user_id: int
    username: str
    email: str
    role: str
    client_id: int | None
    totp_enabled: bool
    mfa: bool = Field(description="this session was verified with a TOTP code")


class CodeIn(_In):
    code: str = Field(min_length=1, max_length=16)


class EnrollOut(BaseModel):
    secret: str
    otpauth_uri: str


class MfaOut(BaseModel):
    mfa: bool


class SessionOut(BaseModel):
    session_id: str
    device: str
    ip: str
    created_ns: int
    last_seen_ns: int
    mfa: bool
    current: bool


class DeviceOut(BaseModel):
    device_id: str
    first_seen_ns: int
    last_seen_ns: int
    last_ip: str | None
    last_country: str | None
