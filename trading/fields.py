"""Stream and hash fields as a Redis client hands them over: bytes or str, as it decodes."""

from __future__ import annotations


def text_of(value: bytes | str, errors: str = "strict") -> str:
    """``value`` as text; ``errors="replace"`` for input that must be answered, not refused
    (a command entry with bytes that are not UTF-8)."""
    return value.decode("utf-8", errors) if isinstance(value, bytes) else value
