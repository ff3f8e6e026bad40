"""Check digits: ISO 7064 MOD 97-10 (IBAN, LEI) and Luhn (card numbers)."""

from __future__ import annotations


def mod97(text: str) -> int:
    """The remainder mod 97 of ``text`` read as digits, letters as 10..35 (A=10, Z=35).

    ``text`` must be upper-case letters and digits. A valid IBAN (rearranged) or LEI gives 1.
    """
    remainder = 0
    for char in text:
        value = int(char, 36)
        remainder = (remainder * (100 if value > 9 else 10) + value) % 97
    return remainder


def luhn_ok(digits: str) -> bool:
    """Whether a string of digits passes the Luhn check (as every card number does)."""
    total = 0
    for i, char in enumerate(reversed(digits)):
        d = int(char)
        if i % 2:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0
