"""The audit log: append-only and hash-chained.

Each record carries the hash of the one before it; its own hash covers its fields and that
link, so editing any record breaks its hash, and deleting one breaks the next record's
link (or, for the last, the head kept beside the log).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from trading.errors import InvalidInput

GENESIS = "0" * 64


def record_hash(
    seq: int, ts_ns: int, actor: str, action: str, subject: str, payload: str, prev_hash: str
) -> str:
    # Unit separators keep field boundaries unambiguous.
    text = "\x1f".join((str(seq), str(ts_ns), actor, action, subject, payload, prev_hash))
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class AuditProblem:
    seq: int
    problem: str


def verify_chain(
    records: Iterable[Any],
    head: tuple[int, str] | None,
    anchor: tuple[int, str] | None = None,
) -> list[AuditProblem]:
    """Check records (in seq order, with attributes as in ``audit_log``) and the head.

    The head lives in the store, so whoever can delete the last records can rewind it too;
    ``anchor`` is a head kept outside the store (``bourse audit head``): the chain must
    still reach that record, with that hash.
    """
    problems: list[AuditProblem] = []
    anchor_seen = False
    prev_hash = GENESIS
    expected_seq = 1
    last_seq = 0
    for r in records:
        if r.seq != expected_seq:
            problems.append(AuditProblem(r.seq, f"records {expected_seq}..{r.seq - 1} are missing"))
        if r.prev_hash != prev_hash:
            problems.append(AuditProblem(r.seq, "link to the previous record is broken"))
        digest = record_hash(r.seq, r.ts_ns, r.actor, r.action, r.subject, r.payload, r.prev_hash)
        if digest != r.hash:
            problems.append(AuditProblem(r.seq, "record was edited: its hash does not match"))
        if anchor is not None and r.seq == anchor[0]:
            anchor_seen = True
            if r.hash != anchor[1]:
                problems.append(
                    AuditProblem(r.seq, "record differs from the anchor kept outside the store")
                )
        prev_hash = r.hash
        expected_seq = r.seq + 1
        last_seq = r.seq
    if head is None:
        if last_seq:
            problems.append(AuditProblem(last_seq, "the audit head is missing"))
    else:
        head_seq, head_hash = head
        if head_seq != last_seq:
            problems.append(
                AuditProblem(head_seq, f"the head says {head_seq} records, the log has {last_seq}")
            )
        elif head_hash != prev_hash:
            problems.append(AuditProblem(head_seq, "the last record differs from the head"))
    if anchor is not None and not anchor_seen:
        problems.append(
            AuditProblem(
                anchor[0],
                f"the anchored record {anchor[0]} is missing: the log ends at {last_seq}, "
                "records were deleted since the anchor was taken",
            )
        )
    return problems


def parse_anchor(text: str) -> tuple[int, str]:
    """``SEQ:HASH`` (or ``SEQ HASH``, as ``bourse audit head`` prints it) into a pair."""
    seq, sep, digest = text.strip().replace(" ", ":", 1).partition(":")
    digest = digest.strip().lower()
    if (
        not sep
        or not seq.isdigit()
        or int(seq) < 1
        or len(digest) != 64
        or any(c not in "0123456789abcdef" for c in digest)
    ):
        raise InvalidInput(
            f"an anchor is SEQ:HASH (a record number and 64 hex digits), got {text!r}"
        )
    return int(seq), digest
