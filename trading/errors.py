"""Errors of the trading core.

BourseError
 ├── InvalidInput            (bad input: a specific code, nothing changes)
 │    ├── UnknownSymbol
 │    ├── InvalidPrice
 │    ├── InvalidQuantity
 │    ├── InvalidIdentifier
 │    ├── InvalidOrder
 │    ├── MalformedCommand    (a bus entry that is not a command: bad JSON, bad field)
 │    ├── UnknownCommandType
 │    └── MissingField
 ├── ConflictError          (idempotency key reused with a different request)
 │    └── DuplicateCommandId (a command id reused with another body)
 ├── InvalidStateTransition (an order move that the transition table forbids)
 ├── LedgerError            (an unbalanced transaction, a posting to a closed account)
 ├── InsufficientFunds
 ├── NotFound
 ├── CommandTimeout         (the client's wait for a reply ran out: the outcome is unknown)
 └── StoreError             (operating failures of the store)
      └── WriterLockHeld     (another writer holds the store)

Business rejections (a risk denial, a venue reject) are not exceptions: they are data,
recorded on the order with a reason code.
"""

from __future__ import annotations


class BourseError(Exception):
    code: str = "error"

    def __init__(self, message: str, **details: object) -> None:
        super().__init__(message)
        self.message = message
        self.details = details

    def to_dict(self) -> dict[str, object]:
        return {"code": self.code, "message": self.message, **self.details}


class InvalidInput(BourseError):
    code = "invalid_input"


class UnknownSymbol(InvalidInput):
    code = "unknown_symbol"


class InvalidPrice(InvalidInput):
    code = "invalid_price"


class InvalidQuantity(InvalidInput):
    code = "invalid_quantity"


class InvalidIdentifier(InvalidInput):
    code = "invalid_identifier"


class InvalidOrder(InvalidInput):
    code = "invalid_order"


class MalformedCommand(InvalidInput):
    code = "malformed_command"


class UnknownCommandType(InvalidInput):
    code = "unknown_command_type"


class MissingField(InvalidInput):
    code = "missing_field"


class ConflictError(BourseError):
    code = "conflict"


class DuplicateCommandId(ConflictError):
    code = "duplicate_command_id"


class InvalidStateTransition(BourseError):
    code = "invalid_transition"


class LedgerError(BourseError):
    code = "ledger_error"


class InsufficientFunds(BourseError):
    code = "insufficient_funds"


class NotFound(BourseError):
    code = "not_found"


class CommandTimeout(BourseError):
    code = "timeout"


class StoreError(BourseError):
    code = "store_error"


class WriterLockHeld(StoreError):
    code = "writer_lock_held"


def error_classes() -> list[type[BourseError]]:
    """Every error class of the tree, the root first (the wire's error codes)."""
    found: list[type[BourseError]] = []
    todo: list[type[BourseError]] = [BourseError]
    while todo:
        cls = todo.pop(0)
        found.append(cls)
        todo.extend(cls.__subclasses__())
    return found
