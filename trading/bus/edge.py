"""Command types whose bodies the edge builders read (``trading.validate_accounts``,
``trading.validate_funding``): clients, accounts, limits, funding and house closes. The bus
refuses their bad input with the codes and bounds an in-process caller gets; the kinds their
registrations name (``trading.bus.codec``) check only the JSON types, write the bodies back,
and document them.

Each builder here is ``build(body, ctx, actor)``: the body without its null fields, its
``reason`` already the entry's when the body had none.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import time
from typing import Any

from trading import validate, validate_accounts, validate_funding
from trading.bus.kinds import Context
from trading.commands import Command
from trading.errors import InvalidFunding, MissingField

# The fields that make a deposit a payment provider's (idempotent on provider, provider_ref).
_PROVIDER_FIELDS = ("method", "provider", "provider_ref", "instrument_fingerprint")


def _today(ctx: Context) -> dt.date:
    ns = ctx.clock() if ctx.clock is not None else time.time_ns()
    return dt.datetime.fromtimestamp(ns // 1_000_000_000, dt.UTC).date()


def create_client(body: dict[str, Any], ctx: Context, actor: str) -> Command:
    return validate_accounts.create_client(**body, as_of=_today(ctx), actor=actor)


def open_account(body: dict[str, Any], ctx: Context, actor: str) -> Command:
    body.setdefault("currency", "USD")
    tiers = ctx.tiers if ctx.tiers is not None else [body.get("tier", "retail")]
    client_id = body.pop("client_id", None)
    # An account without a client is one the engine still takes (from before clients): the
    # builder checks the rest the same way, with a stand-in id taken back off.
    cmd = validate_accounts.open_account(
        **body, client_id=1 if client_id is None else client_id, tiers=tiers, actor=actor
    )
    return cmd if client_id is not None else dataclasses.replace(cmd, client_id=None)


def set_limits(body: dict[str, Any], ctx: Context, actor: str) -> Command:
    return validate_accounts.set_limits(**body, actor=actor)


def close_position(body: dict[str, Any], ctx: Context, actor: str) -> Command:
    body.setdefault("qty", None)  # the whole position
    return validate_accounts.close_position(ctx.catalogue, **body, actor=actor)


def deposit(body: dict[str, Any], ctx: Context, actor: str) -> Command:
    """A provider's deposit (``method``, ``provider``, ``provider_ref``; its ``ref`` is the
    provider's reference) or, with ``ref`` alone, a back-office deposit."""
    if any(k in body for k in _PROVIDER_FIELDS):
        missing = [k for k in ("method", "provider", "provider_ref") if k not in body]
        if missing:
            raise MissingField(f"missing field(s): {', '.join(missing)}", fields=missing)
        ref = body.pop("ref", None)
        if ref is not None and ref != body["provider_ref"]:
            raise InvalidFunding("a provider's deposit has ref = provider_ref", field="ref")
        return validate_funding.deposit(**body, actor=actor)
    if "ref" not in body:
        raise MissingField("missing field(s): provider_ref or ref", fields=["provider_ref"])
    amount = body["amount"]
    cmd = validate.deposit(
        body["account_id"],
        body["currency"],
        # a JSON integer is a whole amount in the currency, as everywhere on the wire
        str(amount) if type(amount) is int else amount,
        body["ref"],
    )
    return dataclasses.replace(cmd, actor=actor)


def add_destination(body: dict[str, Any], ctx: Context, actor: str) -> Command:
    return validate_funding.add_destination(**body, actor=actor)


def request_withdrawal(body: dict[str, Any], ctx: Context, actor: str) -> Command:
    return validate_funding.request_withdrawal(**body, actor=actor)


def hold_withdrawal(body: dict[str, Any], ctx: Context, actor: str) -> Command:
    return validate_funding.hold_withdrawal(**body, actor=actor)


def release_withdrawal(body: dict[str, Any], ctx: Context, actor: str) -> Command:
    return validate_funding.release_withdrawal(**body, actor=actor)


def decide_withdrawal(body: dict[str, Any], ctx: Context, actor: str) -> Command:
    return validate_funding.decide_withdrawal(**body, actor=actor)
