"""The transactional store's tables (SQLAlchemy Core), the same on SQLite and PostgreSQL.

Integers everywhere money or quantity is stored: prices in the instrument's price units
(``price * 10**price_precision``), quantities in lot steps (``lots * 10**qty_precision``),
money in the currency's minor units. Timestamps are UTC nanoseconds since the epoch.
Ids are assigned by the single writer (the OMS) so that a batch needs no round trip to
learn them.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    Date,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)

from trading.orders import TERMINAL
from trading.store import schema_users

metadata = MetaData()

# The orders not yet in a final state, as SQL text: the WHERE of the partial index that
# holds only them (``ix_orders_open``) and of the query that reads them at start-up, which
# must repeat it word for word for SQLite to use the index.
OPEN_ORDERS = text("status NOT IN (" + ", ".join(f"'{st.value}'" for st in sorted(TERMINAL)) + ")")

clients = Table(
    "clients",
    metadata,
    # A person or a legal entity (trading.clients): what MiFIR reports and KYC need.
    Column("client_id", BigInteger, primary_key=True, autoincrement=False),
    # person | entity
    Column("kind", String(8), nullable=False),
    Column("name", String(200), nullable=False),
    # ISO 3166-1 alpha-2
    Column("country", String(2), nullable=False),
    Column("email", String(254), nullable=False),
    Column("birth_date", Date, nullable=True),
    # ISO 17442, entities
    Column("lei", String(20), nullable=True, unique=True),
    # Persons: a national identifier with its country prefix, or the CONCAT code.
    Column("national_id", String(35), nullable=True),
    Column("created_ns", BigInteger, nullable=False),
    Index("ix_clients_national_id", "national_id"),
)

accounts = Table(
    "accounts",
    metadata,
    Column("account_id", BigInteger, primary_key=True, autoincrement=False),
    Column("currency", String(8), nullable=False),
    # The risk tier (RiskConfig.tiers): default limits and the leverage cap.
    Column("tier", String(32), nullable=False),
    # active | reducing_only | halted
    Column("state", String(16), nullable=False),
    Column("created_ns", BigInteger, nullable=False),
    # Null for accounts opened before clients existed.
    Column("client_id", BigInteger, ForeignKey("clients.client_id"), nullable=True),
    # margin | cash (trading.accounts)
    Column("account_type", String(8), nullable=False, server_default="margin"),
    # The account's own leverage, at most the tier's cap; null: the tier's.
    Column("leverage", Integer, nullable=True),
    Index("ix_accounts_client", "client_id"),
)

account_limits = Table(
    "account_limits",
    metadata,
    # The account's overrides of its tier's limits (SetLimits replaces the row; no row, or a
    # null column: the tier's). Decimal limits are their canonical text, as in TierLimits.
    Column(
        "account_id",
        BigInteger,
        ForeignKey("accounts.account_id"),
        primary_key=True,
        autoincrement=False,
    ),
    Column("max_position_lots", String(32), nullable=True),
    Column("max_order_lots", String(32), nullable=True),
    # In the account currency.
    Column("max_order_notional", String(32), nullable=True),
    Column("max_orders_per_second", Integer, nullable=True),
    Column("updated_ns", BigInteger, nullable=False),
)

ledger_accounts = Table(
    "ledger_accounts",
    metadata,
    Column("ledger_account_id", BigInteger, primary_key=True, autoincrement=False),
    # e.g. client:42:cash:USD, house:revenue:commission:USD, client:42:position:EURUSD
    Column("code", String(128), nullable=False, unique=True),
    Column("commodity", String(16), nullable=False),
    Column("account_id", BigInteger, nullable=True),
    Column("opened_ns", BigInteger, nullable=False),
    Index("ix_ledger_accounts_account", "account_id"),
)

ledger_txns = Table(
    "ledger_txns",
    metadata,
    Column("txn_id", BigInteger, primary_key=True, autoincrement=False),
    Column("account_id", BigInteger, nullable=True),
    Column("kind", String(32), nullable=False),
    Column("ref", String(64), nullable=True),
    Column("ts_ns", BigInteger, nullable=False),
    Column("memo", Text, nullable=True),
    Index("ix_ledger_txns_account", "account_id", "kind", "ts_ns"),
)

postings = Table(
    "postings",
    metadata,
    Column("posting_id", BigInteger, primary_key=True, autoincrement=False),
    Column("txn_id", BigInteger, ForeignKey("ledger_txns.txn_id"), nullable=False),
    Column(
        "ledger_account_id",
        BigInteger,
        ForeignKey("ledger_accounts.ledger_account_id"),
        nullable=False,
    ),
    Column("commodity", String(16), nullable=False),
    # Minor units of a currency, or lot steps of an instrument.
    Column("amount", BigInteger, nullable=False),
    # Repeated from the transaction: a point-in-time balance filters on it.
    Column("ts_ns", BigInteger, nullable=False),
    # No index by (account, time): it took a scattered insert per posting, a third of a
    # batch's cost at 60 k orders of history; point-in-time balances read the checkpoints
    # below instead (trading.store.checkpoints, migration 0009).
    Index("ix_postings_txn", "txn_id"),
)

posting_spans = Table(
    "posting_spans",
    metadata,
    # Postings cut by id into spans of checkpoints.SPAN_POSTINGS: span k holds the ids
    # k*N+1 .. (k+1)*N; its earliest and latest posting time.
    Column("span_id", BigInteger, primary_key=True, autoincrement=False),
    Column("min_ts_ns", BigInteger, nullable=False),
    Column("max_ts_ns", BigInteger, nullable=False),
)

balance_checkpoints = Table(
    "balance_checkpoints",
    metadata,
    # At the end of each complete span (posting_id = (k+1)*N), the balance of every ledger
    # account the span touched: sum(postings.amount) up to that posting id.
    Column(
        "ledger_account_id",
        BigInteger,
        ForeignKey("ledger_accounts.ledger_account_id"),
        primary_key=True,
        autoincrement=False,
    ),
    Column("posting_id", BigInteger, primary_key=True, autoincrement=False),
    Column("amount", BigInteger, nullable=False),
)

balances = Table(
    "balances",
    metadata,
    # A cache of sum(postings.amount); `ledger verify` checks it against the postings.
    Column(
        "ledger_account_id",
        BigInteger,
        ForeignKey("ledger_accounts.ledger_account_id"),
        primary_key=True,
        autoincrement=False,
    ),
    Column("amount", BigInteger, nullable=False),
    Column("last_txn_id", BigInteger, nullable=False),
)

orders = Table(
    "orders",
    metadata,
    Column("order_id", BigInteger, primary_key=True, autoincrement=False),
    Column("account_id", BigInteger, ForeignKey("accounts.account_id"), nullable=False),
    Column("client_order_id", String(64), nullable=False),
    Column("symbol", String(16), nullable=False),
    Column("side", String(4), nullable=False),
    Column("type", String(16), nullable=False),
    Column("tif", String(4), nullable=False),
    Column("qty", BigInteger, nullable=False),
    Column("price", BigInteger, nullable=True),
    Column("trigger_price", BigInteger, nullable=True),
    Column("expire_ns", BigInteger, nullable=True),
    Column("reference_price", BigInteger, nullable=True),
    Column("max_slippage_ticks", Integer, nullable=True),
    Column("fingerprint", String(255), nullable=False),
    Column("status", String(16), nullable=False),
    Column("filled_qty", BigInteger, nullable=False),
    Column("filled_notional", BigInteger, nullable=False),
    Column("reason", Text, nullable=True),
    Column("resume_status", String(16), nullable=True),
    Column("pending_qty", BigInteger, nullable=True),
    Column("pending_price", BigInteger, nullable=True),
    Column("pending_trigger_price", BigInteger, nullable=True),
    Column("created_ns", BigInteger, nullable=False),
    Column("updated_ns", BigInteger, nullable=False),
    # client | house: a house order (a stop-out, ClosePosition) records why.
    Column("initiator", String(8), nullable=False, server_default="client"),
    Column("house_reason", Text, nullable=True),
    # The routing rule that chose the venue (null: no routing) and the venue (bbook or an
    # LP's name; null: no LP was live and the route rejects).
    Column("route", String(64), nullable=True),
    Column("venue", String(32), nullable=True),
    UniqueConstraint("account_id", "client_order_id", name="uq_orders_client_order_id"),
    # Only the open orders (migration 0009): a restart reads them without a scan, and a
    # filled order leaves the index in the batch that fills it (an index on status held
    # every order ever placed).
    Index("ix_orders_open", "order_id", sqlite_where=OPEN_ORDERS, postgresql_where=OPEN_ORDERS),
    Index("ix_orders_account", "account_id", "order_id"),
)

executions = Table(
    "executions",
    metadata,
    # Fills, and every other report an outside venue sent (qty 0): the exec id is the
    # idempotency key of the venue's messages.
    Column("exec_id", String(64), primary_key=True),
    Column("order_id", BigInteger, ForeignKey("orders.order_id"), nullable=False),
    Column("account_id", BigInteger, nullable=False),
    Column("kind", String(20), nullable=False),
    Column("qty", BigInteger, nullable=False),
    Column("price", BigInteger, nullable=False),
    Column("commission", BigInteger, nullable=False),
    Column("venue", String(32), nullable=False),
    Column("ts_ns", BigInteger, nullable=False),
    Index("ix_executions_order", "order_id"),
    Index("ix_executions_account_ts", "account_id", "ts_ns"),
)

exec_exceptions = Table(
    "exec_exceptions",
    metadata,
    # Reports refused (an overfill, an unknown order): kept for the operations desk.
    Column("exception_id", BigInteger, primary_key=True, autoincrement=False),
    Column("exec_id", String(64), nullable=False),
    Column("order_id", BigInteger, nullable=True),
    Column("reason", String(64), nullable=False),
    Column("detail", Text, nullable=False),
    Column("ts_ns", BigInteger, nullable=False),
)

lots = Table(
    "lots",
    metadata,
    Column("lot_id", BigInteger, primary_key=True, autoincrement=False),
    Column("account_id", BigInteger, nullable=False),
    Column("symbol", String(16), nullable=False),
    # Signed: positive long, negative short.
    Column("qty", BigInteger, nullable=False),
    Column("remaining", BigInteger, nullable=False),
    Column("price", BigInteger, nullable=False),
    # Margin still held for the remaining quantity, account currency minor units.
    Column("margin", BigInteger, nullable=False),
    Column("open_exec_id", String(64), nullable=False),
    Column("opened_ns", BigInteger, nullable=False),
    Column("closed_ns", BigInteger, nullable=True),
    Index("ix_lots_open", "account_id", "symbol", "closed_ns"),
    # Only the open lots (migration 0009), for a restart.
    Index(
        "ix_lots_unclosed",
        "lot_id",
        sqlite_where=Column("closed_ns").is_(None),
        postgresql_where=Column("closed_ns").is_(None),
    ),
)

lot_closures = Table(
    "lot_closures",
    metadata,
    Column("closure_id", BigInteger, primary_key=True, autoincrement=False),
    Column("lot_id", BigInteger, ForeignKey("lots.lot_id"), nullable=False),
    Column("account_id", BigInteger, nullable=False),
    Column("symbol", String(16), nullable=False),
    Column("close_exec_id", String(64), nullable=False),
    # Signed like the lot it closes.
    Column("qty", BigInteger, nullable=False),
    Column("open_price", BigInteger, nullable=False),
    Column("close_price", BigInteger, nullable=False),
    Column("opened_ns", BigInteger, nullable=False),
    Column("closed_ns", BigInteger, nullable=False),
    # Exact PnL in the quote currency as a decimal string (crypto steps are finer than cents).
    Column("realized_quote", String(48), nullable=False),
    Column("quote_currency", String(8), nullable=False),
    # Booked PnL in the account currency, minor units, rounded half-even.
    Column("realized", BigInteger, nullable=False),
    Column("txn_id", BigInteger, nullable=False),
    Index("ix_lot_closures_exec", "close_exec_id"),
    Index("ix_lot_closures_lot", "lot_id", "closed_ns"),
)

deposits = Table(
    "deposits",
    metadata,
    Column("deposit_id", BigInteger, primary_key=True, autoincrement=False),
    Column("account_id", BigInteger, ForeignKey("accounts.account_id"), nullable=False),
    Column("currency", String(8), nullable=False),
    Column("amount", BigInteger, nullable=False),
    # card | bank_transfer | ewallet | crypto; null for a back-office deposit
    Column("method", String(16), nullable=True),
    # The provider's token of the card or wallet: never a card number.
    Column("instrument_fingerprint", String(64), nullable=True),
    Column("provider", String(32), nullable=True),
    Column("provider_ref", String(64), nullable=True),
    # The ledger transaction's reference.
    Column("ref", String(64), nullable=False),
    Column("txn_id", BigInteger, ForeignKey("ledger_txns.txn_id"), nullable=False),
    Column("ts_ns", BigInteger, nullable=False),
    # The idempotency key; rows without a provider reference (nulls) never clash.
    UniqueConstraint("provider", "provider_ref", name="uq_deposits_provider_ref"),
    Index("ix_deposits_account_ts", "account_id", "ts_ns"),
)

withdrawal_destinations = Table(
    "withdrawal_destinations",
    metadata,
    Column("destination_id", BigInteger, primary_key=True, autoincrement=False),
    Column("account_id", BigInteger, ForeignKey("accounts.account_id"), nullable=False),
    # bank | card | ewallet | crypto
    Column("kind", String(8), nullable=False),
    Column("label", String(64), nullable=False),
    Column("currency", String(8), nullable=False),
    # The full IBAN (paying out needs it), the provider's token, or the wallet address.
    Column("instrument", String(128), nullable=False),
    # What events, audit records and listings show (a masked IBAN).
    Column("display", String(64), nullable=False),
    Column("created_ns", BigInteger, nullable=False),
    UniqueConstraint(
        "account_id", "kind", "instrument", "currency", name="uq_withdrawal_destinations"
    ),
)

withdrawals = Table(
    "withdrawals",
    metadata,
    Column("withdrawal_id", BigInteger, primary_key=True, autoincrement=False),
    Column("account_id", BigInteger, nullable=False),
    Column("currency", String(8), nullable=False),
    Column("amount", BigInteger, nullable=False),
    # requested | held | approved | rejected (trading.funding.WITHDRAWAL_TRANSITIONS)
    Column("status", String(16), nullable=False),
    Column("requested_ns", BigInteger, nullable=False),
    Column("decided_ns", BigInteger, nullable=True),
    # Null for withdrawals from before destinations.
    Column(
        "destination_id",
        BigInteger,
        ForeignKey("withdrawal_destinations.destination_id"),
        nullable=True,
    ),
    # The latest hold and release; every one of them is in the audit log and the events.
    Column("held_ns", BigInteger, nullable=True),
    Column("hold_reason", Text, nullable=True),
    Column("released_ns", BigInteger, nullable=True),
    Column("release_reason", Text, nullable=True),
    Column("decision_reason", Text, nullable=True),
    Index("ix_withdrawals_account", "account_id", "withdrawal_id"),
    # The back office's queue: by status, paged by id (migration 0007).
    Index("ix_withdrawals_status", "status", "withdrawal_id"),
)

eod_marks = Table(
    "eod_marks",
    metadata,
    # The end-of-day quote of each symbol at its daily cut-off (trading.rollover).
    Column("symbol", String(16), primary_key=True),
    Column("trade_date", Date, primary_key=True),
    Column("bid", BigInteger, nullable=False),
    Column("ask", BigInteger, nullable=False),
    # The quote's own time, and the cut-off it marks.
    Column("ts_ns", BigInteger, nullable=False),
    Column("cutoff_ns", BigInteger, nullable=False),
)

financing = Table(
    "financing",
    metadata,
    # One row per position (account, symbol) per cut-off: what statements list as swaps.
    Column("financing_id", BigInteger, primary_key=True, autoincrement=False),
    Column("account_id", BigInteger, ForeignKey("accounts.account_id"), nullable=False),
    Column("symbol", String(16), nullable=False),
    Column("trade_date", Date, nullable=False),
    Column("cutoff_ns", BigInteger, nullable=False),
    Column("nights", Integer, nullable=False),
    # Signed lot steps, and the mark it was valued at (a long at the bid, a short at the ask).
    Column("net_qty", BigInteger, nullable=False),
    Column("mark", BigInteger, nullable=False),
    # Annual percent of the side, and the day count.
    Column("rate", String(16), nullable=False),
    Column("day_count", Integer, nullable=False),
    Column("amount_quote", String(48), nullable=False),
    Column("quote_currency", String(8), nullable=False),
    Column("conversion_rate", String(48), nullable=False),
    # Booked, account currency minor units: > 0 the client earned.
    Column("amount", BigInteger, nullable=False),
    Column("currency", String(8), nullable=False),
    # Null when the amount rounds to zero (nothing is posted).
    Column("txn_id", BigInteger, ForeignKey("ledger_txns.txn_id"), nullable=True),
    UniqueConstraint("account_id", "symbol", "trade_date", name="uq_financing_position_date"),
    Index("ix_financing_account_date", "account_id", "trade_date"),
)

outbox = Table(
    "outbox",
    metadata,
    Column("event_id", BigInteger, primary_key=True, autoincrement=False),
    Column("account_id", BigInteger, nullable=False),
    Column("account_seq", BigInteger, nullable=False),
    Column("type", String(32), nullable=False),
    Column("order_id", BigInteger, nullable=True),
    Column("ts_ns", BigInteger, nullable=False),
    Column("payload", Text, nullable=False),
    Column("published_ns", BigInteger, nullable=True),
    UniqueConstraint("account_id", "account_seq", name="uq_outbox_account_seq"),
    Index("ix_outbox_order", "order_id"),
    Index(
        "ix_outbox_unpublished",
        "event_id",
        sqlite_where=Column("published_ns").is_(None),
        postgresql_where=Column("published_ns").is_(None),
    ),
)

symbol_halts = Table(
    "symbol_halts",
    metadata,
    # Symbols halted by the risk desk; a halt survives a restart until it is lifted.
    Column("symbol", String(16), primary_key=True),
    Column("halted_ns", BigInteger, nullable=False),
    Column("actor", String(64), nullable=False),
)

audit_log = Table(
    "audit_log",
    metadata,
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("ts_ns", BigInteger, nullable=False),
    Column("actor", String(64), nullable=False),
    Column("action", String(48), nullable=False),
    Column("subject", String(64), nullable=False),
    Column("payload", Text, nullable=False),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
    Index("ix_audit_log_subject", "subject", "seq"),
)

audit_head = Table(
    "audit_head",
    metadata,
    # The last record's seq and hash, written in the same transaction: a deleted tail shows.
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("seq", BigInteger, nullable=False),
    Column("hash", String(64), nullable=False),
)

command_log = Table(
    "command_log",
    metadata,
    # A command taken from the bus, with the result it was answered: written in the same
    # transaction as what the command did, so a command id executed once is answered the
    # same on every redelivery, across restarts (trading/oms/commandlog.py).
    Column("command_id", String(64), primary_key=True),
    # sha256 of the command's type and canonical body: the same id with another body is
    # refused (duplicate_command_id).
    Column("fingerprint", String(64), nullable=False),
    Column("type", String(64), nullable=False),
    Column("actor", String(64), nullable=False),
    Column("result", Text, nullable=False),
    Column("ts_ns", BigInteger, nullable=False),
)

# The API's own tables join the same metadata (one migration history); see the module.
users, devices = schema_users.define(metadata)
