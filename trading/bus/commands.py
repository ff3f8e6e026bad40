"""The command bus on Redis Streams: the host's side (read, answer, acknowledge).

Clients ``XADD`` an entry to ``bourse:commands`` (fields ``trading.bus.codec.ENTRY_FIELDS``)
and wait on their own reply list (``bourse:reply:<client id>``) with ``BLPOP``. The OMS host
reads the stream in the consumer group ``oms``; it ``RPUSH``es each reply to its list (which
expires after ``REPLY_TTL_S`` unless read) only once the command's batch is durable, then
``XACK``s the entry. An entry read but not acknowledged before a crash stays pending in the
group: the next host claims it (``XAUTOCLAIM``) and answers it again, from the command log
when it had run. An entry that is not a command is answered with an error when it names a
reply address, copied to ``bourse:commands:dead`` with the reason, and acknowledged: it
never blocks the stream. docs/commands.md is the contract.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, NamedTuple, cast

import redis

from trading.fields import text_of

log = logging.getLogger(__name__)

COMMANDS_STREAM = "bourse:commands"
GROUP = "oms"
DEAD_LETTERS = "bourse:commands:dead"
REPLY_PREFIX = "bourse:reply:"
REPLY_TTL_S = 300
# Approximate bounds: a stream of commands a host has long answered, and dead letters.
STREAM_MAXLEN = 1_000_000
DEAD_MAXLEN = 100_000


class Entry(NamedTuple):
    entry_id: str
    fields: dict[bytes | str, bytes | str]


class Answer(NamedTuple):
    entry_id: str
    reply_to: str | None
    text: str


class CommandInbox:
    """The host's end of the command stream: one consumer of the group."""

    def __init__(
        self,
        client: redis.Redis,
        consumer: str = "host",
        *,
        stream: str = COMMANDS_STREAM,
        group: str = GROUP,
    ) -> None:
        self.client = client
        self.consumer = consumer
        self.stream = stream
        self.group = group

    def ensure_group(self) -> None:
        """Create the group from the stream's start: commands sent before the first host
        started are read too."""
        try:
            self.client.xgroup_create(self.stream, self.group, id="0", mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    def reclaim(self, min_idle_ms: int = 0, count: int = 500) -> list[Entry]:
        """Entries read by a consumer that never acknowledged them (a host that died),
        claimed for this one. Entries deleted from the stream meanwhile are acknowledged."""
        entries: list[Entry] = []
        start = "0-0"
        while True:
            reply: list[Any] = self.client.xautoclaim(
                self.stream, self.group, self.consumer, min_idle_ms, start, count=count
            )
            start = text_of(reply[0])
            for entry_id, fields in reply[1]:
                if fields is None:  # trimmed away while pending
                    self.client.xack(self.stream, self.group, entry_id)
                    continue
                entries.append(Entry(text_of(entry_id), fields))
            if len(reply) > 2 and reply[2]:
                self.client.xack(self.stream, self.group, *reply[2])
            if start == "0-0":
                return entries

    def read(self, count: int = 500, block_ms: int = 100) -> list[Entry]:
        reply = cast(
            "list[Any] | None",
            self.client.xreadgroup(
                self.group, self.consumer, {self.stream: ">"}, count=count, block=block_ms
            ),
        )
        return [
            Entry(text_of(entry_id), fields)
            for _name, items in reply or []
            for entry_id, fields in items
            if fields is not None
        ]

    def answer(self, answers: Sequence[Answer]) -> None:
        """Push the replies, then acknowledge their entries, in one round trip."""
        if not answers:
            return
        pipe = self.client.pipeline(transaction=False)
        lists: set[str] = set()
        for a in answers:
            if a.reply_to is not None:
                pipe.rpush(a.reply_to, a.text)
                lists.add(a.reply_to)
        for key in lists:
            pipe.expire(key, REPLY_TTL_S)
        pipe.xack(self.stream, self.group, *[a.entry_id for a in answers])
        pipe.execute()

    def dead_letter(self, entry: Entry, reason: str) -> None:
        fields: dict[str, str] = {
            text_of(k)[:64]: text_of(v)[:4096] for k, v in entry.fields.items()
        }
        fields["dead_reason"] = reason[:512]
        fields["dead_entry_id"] = entry.entry_id
        self.client.xadd(
            DEAD_LETTERS,
            fields,  # type: ignore[arg-type]  # dict is invariant
            maxlen=DEAD_MAXLEN,
            approximate=True,
        )

    def pending(self) -> int:
        info = cast("Mapping[str, Any]", self.client.xpending(self.stream, self.group))
        return int(info["pending"])


def send_entries(
    client: redis.Redis, entries: Iterable[Mapping[str, str]], *, stream: str = COMMANDS_STREAM
) -> list[str]:
    """XADD entries in one round trip; their stream ids."""
    pipe = client.pipeline(transaction=False)
    n = 0
    for fields in entries:
        pipe.xadd(stream, dict(fields), maxlen=STREAM_MAXLEN, approximate=True)  # type: ignore[arg-type]
        n += 1
    ids = pipe.execute()
    assert len(ids) == n, ("XADD replies", len(ids), n)
    return [text_of(i) for i in ids]
