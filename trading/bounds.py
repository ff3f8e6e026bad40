"""What the store can hold: integers within signed 64 bits, text within its column, clean.

Every edge builder passes its integers and texts through these checks, so that a command that
passed validation can always be stored: one client's over-long reference or 10**25 amount must
never fail the group commit that carries other clients' commands.
"""

from __future__ import annotations

import unicodedata
from typing import Final

from trading.errors import InvalidInput, InvalidText

INT64_MIN: Final = -(2**63)
INT64_MAX: Final = 2**63 - 1

# Cc (C0/C1 controls, including \n \r \t), Cf (format: zero-width, bidi overrides), Cs
# (surrogates), Co (private use), Cn (unassigned), and the Unicode line/paragraph separators.
_REFUSED_CATEGORIES: Final = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})


def check_int(
    value: object,
    field: str,
    *,
    low: int = INT64_MIN,
    high: int = INT64_MAX,
    error: type[InvalidInput] = InvalidInput,
) -> int:
    """``value`` if it is an int (not a bool) with ``low <= value <= high`` (both within 64
    bits); otherwise ``error`` naming the field."""
    low, high = max(low, INT64_MIN), min(high, INT64_MAX)
    if type(value) is not int:
        raise error(f"{field} must be an integer, got {value!r}", field=field)
    if not low <= value <= high:
        raise error(f"{field} must be between {low} and {high}, got {value}", field=field)
    return value


def control_character(text: str) -> str | None:
    """The first character of ``text`` a stored text must not hold, or None."""
    for char in text:
        category = unicodedata.category(char)
        # A space other than U+0020 (no-break, em, ideographic...) looks like one: "a b" and
        # "a\u00a0b" would be two keys that read the same.
        if category in _REFUSED_CATEGORIES or (category == "Zs" and char != " "):
            return char
    return None


def check_text(
    value: object,
    field: str,
    max_len: int,
    *,
    min_len: int = 1,
    error: type[InvalidInput] = InvalidText,
) -> str:
    """``value`` if it is a str of ``min_len..max_len`` characters with no control, format or
    separator character and no leading or trailing white space (``"ref\\n"`` and ``"ref"``
    must not become two keys); otherwise ``error`` naming the field."""
    if not isinstance(value, str):
        raise error(f"{field} must be text, got {type(value).__name__}", field=field)
    if not min_len <= len(value) <= max_len:
        raise error(
            f"{field} must be {min_len} to {max_len} characters, got {len(value)}", field=field
        )
    bad = control_character(value)
    if bad is not None:
        raise error(f"{field} holds the control character U+{ord(bad):04X}", field=field)
    if value != value.strip():
        raise error(f"{field} has leading or trailing white space", field=field)
    return value


ACTOR_MAX: Final = 64  # audit_log.actor
REASON_MAX: Final = 500


def check_id(value: object, field: str, error: type[InvalidInput] = InvalidInput) -> int:
    """A positive identifier within signed 64 bits."""
    return check_int(value, field, low=1, error=error)


def check_actor(value: object) -> str:
    """Who sent a command: empty (the OMS's own actor) or 1-64 clean characters."""
    if value == "":
        return ""
    return check_text(value, "actor", ACTOR_MAX)


def check_reason(value: object, *, required: bool = False) -> str:
    """Why: up to 500 clean characters; at least one where a person decides (a hold)."""
    if value == "" and not required:
        return ""
    return check_text(value, "reason", REASON_MAX)
