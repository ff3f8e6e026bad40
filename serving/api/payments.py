"""The simulated payment provider behind deposits, and the checks of its callbacks.

A deposit starts here: the API records the payment (``bourse:payments:{id}``, a Redis hash
kept ``api_payment_ttl_s``) and the provider, once the client has paid, calls back
``POST /v1/payments/callback`` with a JSON body signed in the ``X-Payment-Signature``
header: ``sha256=`` and the hex HMAC-SHA256 of the exact body bytes under
``api_payment_secret``. The callback names the payment, the provider's own reference and
the outcome; the amount and the account are the payment's, never the callback's, so a
forged or altered callback cannot credit more. The credit is the OMS's ``Deposit`` with
``provider``/``provider_ref``, idempotent there: a replayed callback deposits once.

``SimulatedProvider`` plays the provider for tests and demos: it signs callbacks as the
real one would.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass
from typing import Any, cast

import redis

PAYMENT_PREFIX = "bourse:payments:"
SIGNATURE_HEADER = "X-Payment-Signature"
_SCHEME = "sha256="


def sign(secret: str, body: bytes) -> str:
    """The signature header's value for ``body``."""
    return _SCHEME + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def signature_ok(secret: str, body: bytes, header: str | None) -> bool:
    """Whether ``header`` signs ``body`` (compared in constant time)."""
    if not header or not header.startswith(_SCHEME):
        return False
    return hmac.compare_digest(sign(secret, body), header.strip())


def deposit_command_id(provider: str, provider_ref: str) -> str:
    """The bus command id of the deposit of a provider's payment: one per reference."""
    digest = hashlib.sha256(f"{provider}\x00{provider_ref}".encode()).hexdigest()
    return f"api-pay-{digest[:40]}"


@dataclass(frozen=True, slots=True)
class Payment:
    payment_id: str
    account_id: int
    currency: str
    amount: str  # decimal string in ``currency``
    method: str
    user_id: int
    created_ns: int
    status: str  # pending | credited | failed
    provider_ref: str = ""
    ref: str = ""  # the OMS's ledger reference once credited


class Payments:
    """The started payments, in Redis."""

    def __init__(self, client: redis.Redis, ttl_s: int) -> None:
        self.client = client
        self.ttl_s = ttl_s

    def start(
        self, *, account_id: int, currency: str, amount: str, method: str, user_id: int, now_ns: int
    ) -> Payment:
        payment = Payment(
            f"pay_{secrets.token_hex(12)}",
            account_id,
            currency,
            amount,
            method,
            user_id,
            now_ns,
            "pending",
        )
        key = PAYMENT_PREFIX + payment.payment_id
        self.client.hset(key, mapping={k: str(v) for k, v in _fields(payment).items()})
        self.client.expire(key, self.ttl_s)
        return payment

    def get(self, payment_id: str) -> Payment | None:
        raw = cast("dict[bytes, bytes]", self.client.hgetall(PAYMENT_PREFIX + payment_id))
        if not raw:
            return None
        f = {k.decode(): v.decode() for k, v in raw.items()}
        return Payment(
            f["payment_id"],
            int(f["account_id"]),
            f["currency"],
            f["amount"],
            f["method"],
            int(f["user_id"]),
            int(f["created_ns"]),
            f["status"],
            f.get("provider_ref", ""),
            f.get("ref", ""),
        )

    def settle(self, payment_id: str, status: str, provider_ref: str, ref: str = "") -> None:
        self.client.hset(
            PAYMENT_PREFIX + payment_id,
            mapping={"status": status, "provider_ref": provider_ref, "ref": ref},
        )


def _fields(p: Payment) -> dict[str, Any]:
    return {name: getattr(p, name) for name in Payment.__slots__}


class SimulatedProvider:
    """The provider's side: the callback it would send for a payment, signed."""

    def __init__(self, secret: str) -> None:
        self.secret = secret

    def callback(
        self,
        payment_id: str,
        *,
        provider_ref: str,
        status: str = "succeeded",
        fingerprint: str = "simcard-4242",
    ) -> tuple[bytes, dict[str, str]]:
        """The body and headers of a callback about ``payment_id``."""
        body = json.dumps(
            {
                "payment_id": payment_id,
                "provider_ref": provider_ref,
                "status": status,
                "instrument_fingerprint": fingerprint,
            },
            separators=(",", ":"),
        ).encode()
        return body, {SIGNATURE_HEADER: sign(self.secret, body), "Content-Type": "application/json"}
