"""The system of record. One module, so the whole schema reads in one sitting.

Times are stored as naive UTC and handed back timezone-aware (see `UTCDateTime`), because SQLite
keeps no offset and PostgreSQL would otherwise round-trip them differently.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.sql.functions import FunctionElement

# SQLite only autoincrements an INTEGER PRIMARY KEY; PostgreSQL gets 64-bit ids.
BigId = BigInteger().with_variant(Integer(), "sqlite")
Json = JSON().with_variant(JSONB(), "postgresql")


class UTCDateTime(TypeDecorator[datetime]):
    impl = DateTime
    cache_ok = True

    # The processors themselves, in place of the impl's and of process_bind_param /
    # process_result_value: SQLAlchemy's SQLite DATETIME parses with a regex and formats with %
    # (~5 % of the server's CPU under load), and TypeDecorator's wrapper doubled the cost of a
    # conversion done ~10 times per contact. On SQLite the text is the same as DATETIME's
    # ("YYYY-MM-DD HH:MM:SS.ffffff"), written and read with the C isoformat/fromisoformat.
    def bind_processor(self, dialect: Any) -> Any:
        return _to_sqlite_text if dialect.name == "sqlite" else _to_naive_utc

    def result_processor(self, dialect: Any, coltype: Any) -> Any:
        return _from_sqlite_text if dialect.name == "sqlite" else _from_naive_utc


class UTCIsoText(UTCDateTime):
    """What an `iso_times` column reads: the text `datetime.isoformat()` gives, for rows that
    go straight out as JSON. On SQLite the stored text is rearranged here, not parsed and
    formatted again; PostgreSQL sends it formatted (`_IsoTimeText`), so there is nothing to do.
    Only through `iso_times`: a column merely coerced to this type reads raw on PostgreSQL."""

    cache_ok = True

    def result_processor(self, dialect: Any, coltype: Any) -> Any:
        return _iso_from_sqlite_text if dialect.name == "sqlite" else None


def iso_times(*columns: Any) -> list[Any]:
    """The columns, for a select whose rows go out as JSON: the `UTCDateTime` ones read as the
    text `isoformat()` gives, under their own names."""
    return [_IsoTimeText(c).label(c.key) if isinstance(c.type, UTCDateTime) else c
            for c in columns]


class _IsoTimeText(FunctionElement[str]):
    """A `UTCDateTime` column as ISO text. PostgreSQL formats it itself: a Python call per
    time read (the screen-pop's history reads 18 per contact) was 3 % of a scale-out node."""

    type = UTCIsoText()
    inherit_cache = True
    name = "iso_time_text"


@compiles(_IsoTimeText)
def _iso_time_text(element: _IsoTimeText, compiler: Any, **kw: Any) -> str:
    return str(compiler.process(element.clauses, **kw))


@compiles(_IsoTimeText, "postgresql")
def _iso_time_text_pg(element: _IsoTimeText, compiler: Any, **kw: Any) -> str:
    # Naive UTC in the column; isoformat() leaves out a zero fraction.
    t = compiler.process(element.clauses, **kw)
    return (f"CASE WHEN {t} = date_trunc('second', {t}) "
            f"""THEN to_char({t}, 'YYYY-MM-DD"T"HH24:MI:SS"+00:00"') """
            f"""ELSE to_char({t}, 'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"') END""")


def _utc(value: datetime) -> datetime:
    if value.tzinfo is UTC:
        return value
    if value.tzinfo is None:
        raise ValueError("naive datetime given to a UTC column")
    return value.astimezone(UTC)


def _to_naive_utc(value: datetime | None) -> datetime | None:
    return None if value is None else _utc(value).replace(tzinfo=None)


def _to_sqlite_text(value: datetime | None) -> str | None:
    return None if value is None else _sqlite_text(_utc(value))


# The same instant is written several times over: an event's time is its row's and its
# contact's, and an intake batch stamps all its rows with one time. Formatting is ~1.5 µs;
# a lookup by the (cached) hash of a datetime is ~0.1. Keyed in UTC: two local times an hour
# apart in a DST fall-back (fold 0 and 1) compare and hash equal in their own zone.
@lru_cache(maxsize=4096)
def _sqlite_text(value: datetime) -> str:
    # Cutting the "+00:00" off the aware form is cheaper than replace(tzinfo=None).
    return value.isoformat(" ", "microseconds")[:26]


def _from_naive_utc(value: datetime | None) -> datetime | None:
    return None if value is None else value.replace(tzinfo=UTC)


def _from_sqlite_text(value: str | None) -> datetime | None:
    if value is None:
        return None
    if len(value) in (26, 19):  # as written here, or by SQLite's CURRENT_TIMESTAMP: no offset
        return datetime.fromisoformat(value + "+00:00")
    parsed = datetime.fromisoformat(value)  # any other form, with or without an offset
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _iso_from_sqlite_text(value: str | None) -> str | None:
    if value is None:
        return None
    if len(value) == 26 and value[19] == ".":  # "YYYY-MM-DD HH:MM:SS.ffffff", as written here
        # isoformat() leaves out a zero fraction.
        rest = value[11:19] if value.endswith(".000000") else value[11:]
        return f"{value[:10]}T{rest}+00:00"
    parsed = _from_sqlite_text(value)
    assert parsed is not None
    return parsed.isoformat()


class Base(DeclarativeBase):
    pass


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16))
    display_name: Mapped[str] = mapped_column(String(128), default="")
    team: Mapped[str | None] = mapped_column(String(64))
    skills: Mapped[list[str]] = mapped_column(Json, default=list)
    capacity: Mapped[dict[str, int]] = mapped_column(Json, default=dict)
    language: Mapped[str] = mapped_column(String(16), default="en")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class AuthToken(Base):
    __tablename__ = "auth_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # Only a hash is kept: a leaked database does not leak live sessions.
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Customer(Base):
    __tablename__ = "customers"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), default="person")  # person | organisation
    name: Mapped[str] = mapped_column(String(200), index=True)
    honorific: Mapped[str | None] = mapped_column(String(32))
    employer: Mapped[str | None] = mapped_column(String(200))
    position: Mapped[str | None] = mapped_column(String(100))
    address: Mapped[str | None] = mapped_column(Text)
    birthday: Mapped[date | None] = mapped_column(Date)
    hobbies: Mapped[str | None] = mapped_column(Text)
    occupation: Mapped[str | None] = mapped_column(String(100))
    wechat_id: Mapped[str | None] = mapped_column(String(64))
    qq_id: Mapped[str | None] = mapped_column(String(32))
    preferred_channel: Mapped[str | None] = mapped_column(String(16))
    contact_frequency: Mapped[str | None] = mapped_column(String(32))
    language: Mapped[str] = mapped_column(String(16), default="zh-CN")
    timezone: Mapped[str] = mapped_column(String(64), default="Asia/Shanghai")
    tier: Mapped[str | None] = mapped_column(String(1))
    tier_override: Mapped[str | None] = mapped_column(String(1))
    # Organisation customers (客户状况记录表).
    legal_representative: Mapped[str | None] = mapped_column(String(100))
    general_manager: Mapped[str | None] = mapped_column(String(100))
    main_business: Mapped[str | None] = mapped_column(Text)
    employee_count: Mapped[int | None] = mapped_column(Integer)
    notes: Mapped[str | None] = mapped_column(Text)
    source: Mapped[str] = mapped_column(String(16), default="manual")  # manual|import|auto|demo
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)

    phones: Mapped[list[CustomerPhone]] = relationship(
        cascade="all, delete-orphan", lazy="selectin", order_by="CustomerPhone.id"
    )
    emails: Mapped[list[CustomerEmail]] = relationship(
        cascade="all, delete-orphan", lazy="selectin", order_by="CustomerEmail.id"
    )
    owners: Mapped[list[CustomerOwner]] = relationship(
        cascade="all, delete-orphan", lazy="selectin"
    )
    tags: Mapped[list[CustomerTag]] = relationship(cascade="all, delete-orphan", lazy="selectin")
    consents: Mapped[list[Consent]] = relationship(cascade="all, delete-orphan", lazy="selectin")

    @property
    def effective_tier(self) -> str | None:
        return self.tier_override or self.tier


class CustomerPhone(Base):
    __tablename__ = "customer_phones"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    number: Mapped[str] = mapped_column(String(20), unique=True)  # E.164
    label: Mapped[str | None] = mapped_column(String(32))


class CustomerEmail(Base):
    __tablename__ = "customer_emails"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    address: Mapped[str] = mapped_column(String(254), unique=True)  # lower-cased
    label: Mapped[str | None] = mapped_column(String(32))


class CustomerOwner(Base):
    __tablename__ = "customer_owners"

    customer_id: Mapped[int] = mapped_column(
        ForeignKey("customers.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), primary_key=True)
    since: Mapped[datetime] = mapped_column(UTCDateTime)


class CustomerTag(Base):
    __tablename__ = "customer_tags"

    customer_id: Mapped[int] = mapped_column(
        ForeignKey("customers.id", ondelete="CASCADE"), primary_key=True
    )
    tag: Mapped[str] = mapped_column(String(64), primary_key=True)


class Consent(Base):
    """Opt-in/opt-out per purpose (e.g. sms-marketing), with where it came from."""

    __tablename__ = "consents"

    customer_id: Mapped[int] = mapped_column(
        ForeignKey("customers.id", ondelete="CASCADE"), primary_key=True
    )
    purpose: Mapped[str] = mapped_column(String(32), primary_key=True)
    granted: Mapped[bool] = mapped_column(Boolean)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    source: Mapped[str | None] = mapped_column(String(64))


class TierChange(Base):
    __tablename__ = "tier_changes"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    customer_id: Mapped[int] = mapped_column(
        ForeignKey("customers.id", ondelete="CASCADE"), index=True
    )
    tier_from: Mapped[str | None] = mapped_column(String(1))
    tier_to: Mapped[str | None] = mapped_column(String(1))
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    reason: Mapped[str] = mapped_column(String(64))
    actor_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))


class Queue(Base):
    __tablename__ = "queues"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")
    channels: Mapped[list[str]] = mapped_column(Json, default=list)
    required_skills: Mapped[list[str]] = mapped_column(Json, default=list)
    strategy: Mapped[str] = mapped_column(String(16), default="longest-idle")
    base_priority: Mapped[float] = mapped_column(Float, default=0)
    sl_threshold_seconds: Mapped[int] = mapped_column(Integer, default=20)
    max_length: Mapped[int | None] = mapped_column(Integer)
    offer_timeout_seconds: Mapped[float | None] = mapped_column(Float)
    wrapup_seconds: Mapped[float | None] = mapped_column(Float)
    sticky_seconds: Mapped[float] = mapped_column(Float, default=0)
    dispositions: Mapped[list[str]] = mapped_column(Json, default=list)
    # {"timezone": "Asia/Shanghai", "weekly": {"mon": [["09:00", "18:00"]]}}; {} = always open.
    business_hours: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class Conversation(Base):
    __tablename__ = "conversations"
    __table_args__ = (UniqueConstraint("token", name="uq_conversations_token"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    channel: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), default="open")
    # A secret that names the thread from outside: the chat session token, or the email
    # reply+<token>@ address. Never shown to anyone but the customer it belongs to.
    token: Mapped[str | None] = mapped_column(String(64))
    subject: Mapped[str | None] = mapped_column(String(300))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_message_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Contact(Base):
    __tablename__ = "contacts"
    __table_args__ = (
        # A provider's retry of the same message/call must not make a second contact.
        UniqueConstraint("channel", "external_id", name="uq_contacts_channel_external_id"),
        # A history is a customer's latest by (created_at, id): read off the index's end.
        Index("ix_contacts_customer_created", "customer_id", "created_at", "id"),
        Index("ix_contacts_state", "state"),
        Index("ix_contacts_conversation", "conversation_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    channel: Mapped[str] = mapped_column(String(16))
    direction: Mapped[str] = mapped_column(String(16), default="inbound")
    state: Mapped[str] = mapped_column(String(16))
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    queue_id: Mapped[int] = mapped_column(ForeignKey("queues.id"))
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    conversation_id: Mapped[int | None] = mapped_column(ForeignKey("conversations.id"))
    tier: Mapped[str | None] = mapped_column(String(1))
    from_address: Mapped[str | None] = mapped_column(String(254))
    to_address: Mapped[str | None] = mapped_column(String(254))
    subject: Mapped[str | None] = mapped_column(String(300))
    body: Mapped[str | None] = mapped_column(Text)
    external_id: Mapped[str | None] = mapped_column(String(128))
    disposition: Mapped[str | None] = mapped_column(String(64))
    notes: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Channel specifics the core does not interpret (recording URL, call duration, IVR choice).
    meta: Mapped[dict[str, Any] | None] = mapped_column(Json)


class Message(Base):
    __tablename__ = "messages"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    conversation_id: Mapped[int | None] = mapped_column(ForeignKey("conversations.id"), index=True)
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contacts.id"), index=True)
    direction: Mapped[str] = mapped_column(String(16))
    author_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    body: Mapped[str] = mapped_column(Text)
    private: Mapped[bool] = mapped_column(Boolean, default=False)  # agent notes
    external_id: Mapped[str | None] = mapped_column(String(255), unique=True)
    meta: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # Outbound delivery: queued -> sent -> delivered, or failed (with the provider's error).
    status: Mapped[str | None] = mapped_column(String(16))
    error: Mapped[str | None] = mapped_column(String(300))
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Attachment(Base):
    __tablename__ = "attachments"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    message_id: Mapped[int] = mapped_column(
        ForeignKey("messages.id", ondelete="CASCADE"), index=True
    )
    filename: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(128))
    size: Mapped[int] = mapped_column(Integer)
    content: Mapped[bytes] = mapped_column(LargeBinary)


class ContactEvent(Base):
    """Append-only: rows are inserted, never updated. Every statistic derives from it."""

    __tablename__ = "contact_events"
    __table_args__ = (Index("ix_contact_events_at", "at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    kind: Mapped[str] = mapped_column(String(24))
    contact_id: Mapped[int] = mapped_column(BigInteger, index=True)
    queue_id: Mapped[int] = mapped_column(Integer)
    agent_id: Mapped[int | None] = mapped_column(Integer)
    data: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)


class AuditEntry(Base):
    """Every edit of a customer record: who, when, what it was before and after."""

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_entity", "entity", "entity_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    actor_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    entity: Mapped[str] = mapped_column(String(32))
    entity_id: Mapped[int] = mapped_column(BigInteger)
    action: Mapped[str] = mapped_column(String(16))
    before: Mapped[dict[str, Any] | None] = mapped_column(Json)
    after: Mapped[dict[str, Any] | None] = mapped_column(Json)


class ScheduledWork(Base):
    """Work the rules made due: a callback task, a greeting SMS, a visit. `key` names the
    (rule, customer, occurrence); it is unique, so planning twice stores it once, and an item
    is done in the same transaction as its effect, so it happens exactly once."""

    __tablename__ = "scheduled_work"
    __table_args__ = (Index("ix_scheduled_work_due", "state", "due_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    key: Mapped[str] = mapped_column(String(200), unique=True)
    kind: Mapped[str] = mapped_column(String(16))  # callback | sms | visit
    rule_id: Mapped[str] = mapped_column(String(32))
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    latest_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    payload: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    state: Mapped[str] = mapped_column(String(16), default="pending")  # pending|done|cancelled
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    done_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    result: Mapped[dict[str, Any] | None] = mapped_column(Json)


class CustomerEvent(Base):
    """Something that happened to a customer that rules react to: a purchase, an installation,
    a repair dispatched or completed, a written complaint or proposal. `external_id` is the
    sending system's id: a repeat is a no-op."""

    __tablename__ = "customer_events"
    __table_args__ = (Index("ix_customer_events_customer_at", "customer_id", "at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    kind: Mapped[str] = mapped_column(String(32))
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    external_id: Mapped[str | None] = mapped_column(String(128), unique=True)
    data: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    actor_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))


# -- Complaints (spec §6) and SMS delivery timing (§9 provider reliability) -------------------


class Complaint(Base):
    """A complaint worked through verify → review → rectify → callback → archive. The current
    step, its deadline and the escalation level live here (what the escalation job and the
    supervisor board query); each step's own record is a `ComplaintStep`."""

    __tablename__ = "complaints"
    __table_args__ = (
        Index("ix_complaints_step_level", "step", "level"),
        Index("ix_complaints_deadline", "deadline_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contacts.id"))
    # The written complaint it came from: one complaint per event, however often it is sent.
    event_id: Mapped[int | None] = mapped_column(ForeignKey("customer_events.id"), unique=True)
    channel: Mapped[str] = mapped_column(String(16))
    summary: Mapped[str] = mapped_column(Text)
    tier: Mapped[str | None] = mapped_column(String(1))  # the customer's, when it was opened
    owner_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    step: Mapped[str] = mapped_column(String(16))
    step_started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    deadline_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # None once at archive
    level: Mapped[int] = mapped_column(Integer, default=1)  # 1 team, 2 supervisor, 3 manager
    escalated_for: Mapped[str | None] = mapped_column(String(16))  # step that escalated it
    callback_outcome: Mapped[str | None] = mapped_column(String(300))
    archived_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_by_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))


class ComplaintStep(Base):
    """One step of one complaint: who owned it, when it began and was done, its deadline, the
    outcome and the escalation level it reached."""

    __tablename__ = "complaint_steps"
    __table_args__ = (UniqueConstraint("complaint_id", "step", name="uq_complaint_steps_step"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    complaint_id: Mapped[int] = mapped_column(ForeignKey("complaints.id", ondelete="CASCADE"))
    step: Mapped[str] = mapped_column(String(16))
    owner_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    deadline_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    done_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    done_by_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    outcome: Mapped[str | None] = mapped_column(String(300))
    level: Mapped[int] = mapped_column(Integer, default=1)
    escalated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class MessageDelivery(Base):
    """When an outbound message left (sent) and reached the customer (delivered) or failed,
    and through which provider: delivery rate and latency per provider come from here."""

    __tablename__ = "message_deliveries"
    __table_args__ = (
        Index("ix_message_deliveries_channel_sent", "channel", "sent_at"),
    )

    message_id: Mapped[int] = mapped_column(
        ForeignKey("messages.id", ondelete="CASCADE"), primary_key=True)
    channel: Mapped[str] = mapped_column(String(16))
    provider: Mapped[str] = mapped_column(String(32))
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    failed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    latency_seconds: Mapped[float | None] = mapped_column(Float)  # sent → delivered


# The supervisor board reads scheduled work of one kind by due day and by window end.
Index("ix_scheduled_work_kind_due", ScheduledWork.kind, ScheduledWork.due_at)
Index("ix_scheduled_work_kind_latest", ScheduledWork.kind, ScheduledWork.latest_at)

# ---------------------------------------------------------------------------------------------
# Accounts: grading, relationship health, selection jobs and operator-raised events


class JobRun(Base):
    """One run of a periodic job (the monthly regrade, the daily health sweep…) for one period.
    The unique (name, period) lets exactly one node claim it; a run that never finished (its
    node died) may be taken over once it is stale."""

    __tablename__ = "job_runs"
    __table_args__ = (UniqueConstraint("name", "period", name="uq_job_runs_name_period"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    period: Mapped[str] = mapped_column(String(64))
    node: Mapped[str] = mapped_column(String(128))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    result: Mapped[dict[str, Any] | None] = mapped_column(Json)


class SegmentEvent(Base):
    """A mandatory-contact event an operator raised (a price change, a storm warning) for a
    segment of customers: one callback task or one SMS per customer, keyed by this row's id."""

    __tablename__ = "segment_events"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(16))  # callback | sms
    segment: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    text: Mapped[str] = mapped_column(Text)
    customers: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    actor_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))


# Jobs read events of one kind over time (purchases for grading and the cycle check).
Index("ix_customer_events_kind_at", CustomerEvent.kind, CustomerEvent.at)

# -- Agent console: canned responses ------------------------------------------------------------


class CannedResponse(Base):
    """A reply an agent inserts by name. `team` None: offered to everyone; else to that team,
    whose own text wins over a global one of the same name. The body is a sandboxed Jinja2
    template (variables such as {{ customer.name }}, {{ agent.name }})."""

    __tablename__ = "canned_responses"
    __table_args__ = (UniqueConstraint("team", "name", name="uq_canned_responses_team_name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    team: Mapped[str | None] = mapped_column(String(64))
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)

# ---------------------------------------------------------------------------------------------
# Follow-ups: callback outcomes, visits, satisfaction surveys, changes to planned work


class CallbackOutcome(Base):
    """What the agent recorded for one callback contact (one outcome per contact). `work_key`
    names the scheduled callback item the contact came from; `next_key` the item it planned
    (a retry or a call-back), if any."""

    __tablename__ = "callback_outcomes"
    __table_args__ = (Index("ix_callback_outcomes_customer", "customer_id", "recorded_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id"), unique=True)
    work_key: Mapped[str | None] = mapped_column(String(200), index=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    outcome: Mapped[str] = mapped_column(String(16))  # reached|no-answer|wrong-number|call-back
    attempt: Mapped[int] = mapped_column(Integer, default=1)
    number: Mapped[str | None] = mapped_column(String(20))
    call_back_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    next_key: Mapped[str | None] = mapped_column(String(200))
    closed_as: Mapped[str | None] = mapped_column(String(16))  # unreachable after the last try
    notes: Mapped[str | None] = mapped_column(Text)
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime)


class WrongNumber(Base):
    """A customer's phone number an agent found to be wrong; callbacks skip it."""

    __tablename__ = "wrong_numbers"

    customer_id: Mapped[int] = mapped_column(
        ForeignKey("customers.id", ondelete="CASCADE"), primary_key=True
    )
    number: Mapped[str] = mapped_column(String(20), primary_key=True)
    marked_at: Mapped[datetime] = mapped_column(UTCDateTime)
    actor_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contacts.id"))


class Visit(Base):
    """An in-person appointment (spec §2, §4): planned work of kind `visit` becomes one row,
    keyed like it, with a booking callback before it and an outcome record after it."""

    __tablename__ = "visits"
    __table_args__ = (
        Index("ix_visits_owner_due", "owner_user_id", "due_at"),
        Index("ix_visits_customer_due", "customer_id", "due_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    key: Mapped[str] = mapped_column(String(200), unique=True)
    rule_id: Mapped[str] = mapped_column(String(32))
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    owner_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    latest_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # pending | booked | done | cancelled
    state: Mapped[str] = mapped_column(String(16), default="pending")
    outcome: Mapped[str | None] = mapped_column(String(32))
    notes: Mapped[str | None] = mapped_column(Text)
    done_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    recorded_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    verified_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # a survey reply came
    booking_key: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Survey(Base):
    """A satisfaction SMS (spec §8) and the customer's reply to it."""

    __tablename__ = "surveys"
    __table_args__ = (Index("ix_surveys_customer_sent", "customer_id", "sent_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    key: Mapped[str] = mapped_column(String(200), unique=True)  # the scheduled item's key
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    subject: Mapped[str] = mapped_column(String(16))  # callback | visit
    subject_id: Mapped[int] = mapped_column(BigInteger)  # the contact or the visit
    phone: Mapped[str] = mapped_column(String(20))
    message_id: Mapped[int | None] = mapped_column(ForeignKey("messages.id"))
    sent_at: Mapped[datetime] = mapped_column(UTCDateTime)
    open_until: Mapped[datetime] = mapped_column(UTCDateTime)
    score: Mapped[int | None] = mapped_column(Integer)
    replied_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    reply_number: Mapped[str | None] = mapped_column(String(20))
    reply_text: Mapped[str | None] = mapped_column(Text)
    reply_sid: Mapped[str | None] = mapped_column(String(128), unique=True)
    mediation_key: Mapped[str | None] = mapped_column(String(200))


class WorkChange(Base):
    """A pending callback or visit moved or cancelled by hand: who, when, why, from what."""

    __tablename__ = "work_changes"
    __table_args__ = (Index("ix_work_changes_subject", "subject", "subject_key"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    subject: Mapped[str] = mapped_column(String(16))  # callback | visit
    subject_key: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(16))  # created | moved | cancelled
    actor_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    reason: Mapped[str | None] = mapped_column(Text)
    before: Mapped[dict[str, Any] | None] = mapped_column(Json)
    after: Mapped[dict[str, Any] | None] = mapped_column(Json)
