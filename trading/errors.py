"""Errors of the trading core.

BourseError
 ├── InvalidInput            (bad input: a specific code, nothing changes)
 │    ├── UnknownSymbol
 │    ├── InvalidPrice
 │    ├── InvalidQuantity
 │    ├── InvalidIdentifier
 │    ├── InvalidText        (a free-text field: too long, or control characters)
 │    ├── InvalidAmount      (a cash amount beyond what one movement may carry)
 │    ├── InvalidExpiry      (a GTD expiry outside the stored time range)
 │    ├── InvalidSlippage    (a slippage bound that is not a storable tick count)
 │    ├── InvalidOrder
 │    ├── InvalidClient        (a client's field: name, country, date of birth, LEI, ...)
 │    ├── InvalidAccount       (account type, currency, client of an account)
 │    ├── InvalidLimits        (a per-account leverage or limit override)
 │    ├── InvalidFunding       (deposit method, provider, reference, destination)
 │    │    ├── CardNumberRefused (a full card number (PAN) where a fingerprint belongs)
 │    │    ├── InvalidIban
 │    │    └── DestinationNotRegistered (a withdrawal to no destination of the account's)
 │    ├── InvalidRollover      (a cut-off or financing input)
 │    ├── MalformedCommand    (a bus entry that is not a command: bad JSON, bad field)
 │    ├── UnknownCommandType
 │    ├── MissingField
 │    ├── InvalidType       (a value of the wrong Python type; also a TypeError)
 │    └── MalformedData     (a quote or message that does not decode; also a ValueError)
 ├── ConfigError            (a catalogue, session calendar or component set up wrongly;
 │    │                      also a ValueError)
 │    └── CatalogueError    (trading.catalogue)
 ├── ConflictError          (idempotency key reused with a different request)
 │    └── DuplicateCommandId (a command id reused with another body)
 ├── InvalidStateTransition (an order move that the transition table forbids)
 ├── LedgerError            (an unbalanced transaction, a posting to a closed account)
 ├── InsufficientFunds
 ├── AccountHalted          (a halted account asked for what only an active one may do)
 ├── NotFound
 │    └── UnknownClient
 ├── CommandTimeout         (the client's wait for a reply ran out: the outcome is unknown)
 ├── StoreError             (operating failures of the store)
 │    ├── NoStore            (nothing to read: no file, no database, or not our schema)
 │    └── WriterLockHeld     (another writer holds the store)
 └── BusError               (operating failures of the message bus)
      └── PublishError      (trading.oms.outbox: the bus did not take a batch)

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


class InvalidText(InvalidInput):
    code = "invalid_text"


class InvalidAmount(InvalidInput):
    code = "invalid_amount"


class InvalidExpiry(InvalidInput):
    code = "invalid_expiry"


class InvalidSlippage(InvalidInput):
    code = "invalid_slippage"


class InvalidClient(InvalidInput):
    """A client field is malformed; ``details["field"]`` names it."""

    code = "invalid_client"


class InvalidAccount(InvalidInput):
    code = "invalid_account"


class InvalidLimits(InvalidInput):
    code = "invalid_limits"


class InvalidFunding(InvalidInput):
    code = "invalid_funding"


class CardNumberRefused(InvalidFunding):
    """Text that looks like a full card number: the core never stores one (PCI DSS)."""

    code = "card_number_refused"


class InvalidIban(InvalidFunding):
    code = "invalid_iban"


class DestinationNotRegistered(InvalidFunding):
    """A withdrawal names no destination, or one not registered on the account in its
    currency: money leaves only to where the account said it may."""

    code = "destination_not_registered"


class InvalidRollover(InvalidInput):
    code = "invalid_rollover"


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


class UnknownClient(NotFound):
    code = "unknown_client"


class AccountHalted(BourseError):
    code = "account_halted"


class StoreError(BourseError):
    code = "store_error"


class InvalidType(InvalidInput, TypeError):
    code = "invalid_type"


class MalformedData(InvalidInput, ValueError):
    code = "malformed"


class ConfigError(BourseError, ValueError):
    code = "config_error"


class BusError(BourseError):
    code = "bus_error"


class NoStore(StoreError):
    code = "no_store"


class WriterLockHeld(StoreError):
    code = "writer_lock_held"


class CommandTimeout(BourseError):
    code = "timeout"


def error_classes() -> list[type[BourseError]]:
    """Every error class of the tree, the root first (the wire's error codes)."""
    found: list[type[BourseError]] = []
    todo: list[type[BourseError]] = [BourseError]
    while todo:
        cls = todo.pop(0)
        found.append(cls)
        todo.extend(cls.__subclasses__())
    return found
