"""Sessions: opaque random tokens, kept in Redis by their SHA-256 (a leaked Redis dump
holds no usable token).

    bourse:session:{sid}         hash: user_id, role, client_id, username, device, ip,
                                 created_ns, last_seen_ns, mfa ("1" / "0");
                                 PEXPIRE = the idle timeout, pushed back on each use
    bourse:user-sessions:{uid}   set of the user's sids (stale ones dropped when listed)

``sid`` is the hex SHA-256 of the token: the id a user sees when listing and revoking
their sessions, which cannot be turned back into the token.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from typing import Any, cast

import redis

SESSION_PREFIX = "bourse:session:"
USER_SESSIONS_PREFIX = "bourse:user-sessions:"


# HSET one field and push back the expiry, on a session that still exists (never re-create
# a revoked or expired one as a stub).
_SET_IF_LIVE = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1
"""


@dataclass(frozen=True)
class Session:
    sid: str
    user_id: int
    role: str
    client_id: int | None
    username: str
    device: str
    ip: str
    created_ns: int
    last_seen_ns: int
    mfa: bool


def session_id(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _key(sid: str) -> str:
    return SESSION_PREFIX + sid


def _user_key(user_id: int) -> str:
    return f"{USER_SESSIONS_PREFIX}{user_id}"


def _decode(sid: str, raw: dict[bytes, bytes]) -> Session:
    f = {k.decode(): v.decode() for k, v in raw.items()}
    return Session(
        sid=sid,
        user_id=int(f["user_id"]),
        role=f["role"],
        client_id=int(f["client_id"]) if f.get("client_id") else None,
        username=f.get("username", ""),
        device=f.get("device", ""),
        ip=f.get("ip", ""),
        created_ns=int(f["created_ns"]),
        last_seen_ns=int(f["last_seen_ns"]),
        mfa=f.get("mfa") == "1",
    )


class SessionStore:
    def __init__(self, client: redis.Redis, idle_s: float, max_s: float) -> None:
        self.client = client
        self.idle_ms = max(1, int(idle_s * 1000))
        self.max_ns = int(max_s * 1e9)
        self._refresh = client.register_script(_SET_IF_LIVE)

    def create(
        self,
        *,
        user_id: int,
        role: str,
        client_id: int | None,
        username: str,
        device: str,
        ip: str,
        now_ns: int,
        mfa: bool,
    ) -> tuple[str, Session]:
        """A new session: ``(token, session)``. The token is shown once, to the caller."""
        token = secrets.token_urlsafe(32)
        sid = session_id(token)
        fields = {
            "user_id": str(user_id), "role": role,
            "client_id": "" if client_id is None else str(client_id), "username": username,
            "device": device, "ip": ip, "created_ns": str(now_ns), "last_seen_ns": str(now_ns),
            "mfa": "1" if mfa else "0",
        }  # fmt: skip
        pipe = self.client.pipeline()
        pipe.hset(_key(sid), mapping=cast("Any", fields))
        pipe.pexpire(_key(sid), self.idle_ms)
        pipe.sadd(_user_key(user_id), sid)
        pipe.execute()
        return token, _decode(sid, {k.encode(): v.encode() for k, v in fields.items()})

    def touch(self, token: str, now_ns: int) -> Session | None:
        """The token's live session, its idle timer pushed back; None when there is none
        (never was, expired, revoked, or past its maximum age)."""
        sid = session_id(token)
        raw = cast("dict[bytes, bytes]", self.client.hgetall(_key(sid)))
        if not raw or b"user_id" not in raw:
            return None
        session = _decode(sid, raw)
        if now_ns - session.created_ns > self.max_ns:
            self.revoke(session.user_id, sid)
            return None
        # Only a key that still exists is refreshed: a revocation since the read wins.
        if not self._refresh(keys=[_key(sid)], args=["last_seen_ns", str(now_ns), self.idle_ms]):
            return None
        return session

    def keep_alive(self, sid: str, now_ns: int) -> bool:
        """Pushes back the idle timer of the live session ``sid`` (an open WebSocket is in
        use though it sends no request); False when the session is gone or past its maximum
        age, which no use extends (it is revoked then)."""
        raw = cast("bytes | None", self.client.hget(_key(sid), "created_ns"))
        if raw is None:
            return False
        if now_ns - int(raw) > self.max_ns:
            user_id = cast("bytes | None", self.client.hget(_key(sid), "user_id"))
            if user_id is not None:
                self.revoke(int(user_id), sid)
            return False
        return bool(self._refresh(keys=[_key(sid)], args=["last_seen_ns", str(now_ns),
                                                         self.idle_ms]))  # fmt: skip

    def set_mfa(self, sid: str) -> bool:
        """Marks a live session as verified with a second factor."""
        return bool(self._refresh(keys=[_key(sid)], args=["mfa", "1", self.idle_ms]))

    def sessions_of(self, user_id: int) -> list[Session]:
        sids = sorted(
            s.decode() for s in cast("set[bytes]", self.client.smembers(_user_key(user_id)))
        )
        out: list[Session] = []
        stale: list[str] = []
        for sid in sids:
            raw = cast("dict[bytes, bytes]", self.client.hgetall(_key(sid)))
            if raw and b"user_id" in raw:
                out.append(_decode(sid, raw))
            else:
                stale.append(sid)
        if stale:
            self.client.srem(_user_key(user_id), *stale)
        return sorted(out, key=lambda s: s.created_ns)

    def revoke(self, user_id: int, sid: str) -> bool:
        """Ends the user's session ``sid``; False when the user has no such session (a
        session of another user's is not touched)."""
        if not self.client.sismember(_user_key(user_id), sid):
            return False
        pipe = self.client.pipeline()
        pipe.delete(_key(sid))
        pipe.srem(_user_key(user_id), sid)
        deleted = pipe.execute()[0]
        return bool(deleted)

    def revoke_all(self, user_id: int) -> int:
        sids = [s.decode() for s in cast("set[bytes]", self.client.smembers(_user_key(user_id)))]
        if not sids:
            return 0
        pipe = self.client.pipeline()
        for sid in sids:
            pipe.delete(_key(sid))
        pipe.delete(_user_key(user_id))
        return sum(int(n) for n in pipe.execute()[:-1])
