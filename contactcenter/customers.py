"""Customer records (客户资料记录卡): the card, its phones and emails, owners, tags, consents, the
audit trail of every edit, and the contact history shown on a screen-pop.

Functions take an `AsyncSession` and flush; committing is the caller's decision, so an API handler
can create a customer and its first contact in one transaction.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Iterable, Sequence
from datetime import date, datetime
from email.utils import parseaddr
from typing import Annotated, Any, Literal, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from phonenumbers import parse as parse_phone
from phonenumbers import timezone as phone_timezones
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    WithJsonSchema,
    field_validator,
    model_validator,
)
from sqlalchemy import (
    Boolean,
    String,
    Text,
    bindparam,
    case,
    cast,
    func,
    insert,
    literal,
    null,
    or_,
    select,
    true,
    union_all,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from contactcenter.domain import Channel
from contactcenter.errors import Conflict, InvalidInput, NotFound
from contactcenter.phones import (
    normalize_email,
    normalize_phone,
    try_normalize_email,
    try_normalize_phone,
)
from contactcenter.storage import direct
from contactcenter.storage.models import (
    AuditEntry,
    Consent,
    Contact,
    Customer,
    CustomerEmail,
    CustomerOwner,
    CustomerPhone,
    CustomerTag,
    Queue,
    TierChange,
    User,
    UTCDateTime,
    iso_times,
)
from contactcenter.storage.one_of import one_of

DEFAULT_LANGUAGE = "zh-CN"
DEFAULT_TIMEZONE = "Asia/Shanghai"
AUDIT_ENTITY = "customer"

# ---------------------------------------------------------------------------------------------
# Input models


def _blank_to_none(value: object) -> object:
    # Forms and CSV cells send "" for "nothing"; storing "" would make "unset" two values.
    return None if isinstance(value, str) and not value.strip() else value


def _upper(value: object) -> object:
    return value.strip().upper() if isinstance(value, str) else value


def _kind(value: object) -> object:
    if isinstance(value, str):
        value = value.strip().lower()
        return "organisation" if value in ("organization", "org", "company") else value
    return value


def _timezone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {value!r}") from None
    return value


def _phone(value: str) -> str:
    try:
        return normalize_phone(value)
    except InvalidInput as exc:
        raise ValueError(exc.message) from None


def _email(value: str) -> str:
    try:
        return normalize_email(value)
    except InvalidInput as exc:
        raise ValueError(exc.message) from None


def _unique(values: list[Any]) -> list[Any]:
    return list(dict.fromkeys(values))


def _text(max_length: int, min_length: int = 0) -> Any:
    # PostgreSQL cannot store NUL in text, and SQLite would; reject it the same way on both.
    return Annotated[
        str,
        StringConstraints(
            strip_whitespace=True,
            min_length=min_length,
            max_length=max_length,
            pattern=r"^[^\x00]*$",
        ),
    ]


Name = _text(200, 1)
Kind = Annotated[Literal["person", "organisation"], BeforeValidator(_kind)]
Tier = Annotated[Literal["A", "B", "C", "D"], BeforeValidator(_upper)]
Language = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True, max_length=16, pattern=r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$"
    ),
]
TimeZone = Annotated[str, StringConstraints(strip_whitespace=True), AfterValidator(_timezone)]
Email = Annotated[str, AfterValidator(_email)]
Tag = _text(64, 1)
Purpose = _text(32, 1)


def _opt(inner: Any) -> Any:
    return Annotated[inner | None, BeforeValidator(_blank_to_none)]


OptStr32 = _opt(_text(32))
OptStr64 = _opt(_text(64))
OptStr100 = _opt(_text(100))
OptStr200 = _opt(_text(200))
OptLongText = _opt(_text(4000))
OptNotes = _opt(_text(20000))
OptTier = _opt(Tier)
OptChannel = _opt(Channel)
OptDate = _opt(date)
# The column is a 32-bit INTEGER; PostgreSQL rejects anything larger.
OptCount = _opt(Annotated[int, Field(ge=0, le=2**31 - 1)])


class PhoneIn(BaseModel):
    """A phone on the card. A bare string is accepted and means a phone without a label."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    number: Annotated[str, AfterValidator(_phone)]
    label: OptStr32 = None

    @model_validator(mode="before")
    @classmethod
    def _from_string(cls, value: object) -> object:
        return {"number": value} if isinstance(value, str) else value


def _unique_phones(phones: list[PhoneIn]) -> list[PhoneIn]:
    # "138 0013 8000" and "+8613800138000" are one phone; the first spelling's label wins.
    seen: dict[str, PhoneIn] = {}
    for phone in phones:
        seen.setdefault(phone.number, phone)
    return list(seen.values())


# The schema says what `PhoneIn` accepts: a bare number or a number with a label.
_PHONE_SCHEMA = {
    "anyOf": [
        {"type": "string", "examples": ["+86 138 0013 8000"]},
        {
            "type": "object",
            "properties": {
                "number": {"type": "string"},
                "label": {"anyOf": [{"type": "string", "maxLength": 32}, {"type": "null"}]},
            },
            "required": ["number"],
            "additionalProperties": False,
        },
    ]
}
Phones = Annotated[
    list[Annotated[PhoneIn, WithJsonSchema(_PHONE_SCHEMA)]], AfterValidator(_unique_phones)
]
Emails = Annotated[list[Email], AfterValidator(_unique)]
Tags = Annotated[list[Tag], AfterValidator(_unique)]
OwnerIds = Annotated[list[int], AfterValidator(_unique)]

_MODEL_CONFIG = ConfigDict(extra="forbid", str_strip_whitespace=True, use_enum_values=True)


class CustomerIn(BaseModel):
    """Everything a user may set on a new customer card."""

    model_config = _MODEL_CONFIG

    kind: Kind = "person"
    name: Name
    honorific: OptStr32 = None
    employer: OptStr200 = None
    position: OptStr100 = None
    address: OptLongText = None
    birthday: OptDate = None
    hobbies: OptLongText = None
    occupation: OptStr100 = None
    wechat_id: OptStr64 = None
    qq_id: OptStr32 = None
    preferred_channel: OptChannel = None
    contact_frequency: OptStr32 = None
    language: Language = DEFAULT_LANGUAGE
    timezone: TimeZone = DEFAULT_TIMEZONE
    tier: OptTier = None
    legal_representative: OptStr100 = None
    general_manager: OptStr100 = None
    main_business: OptLongText = None
    employee_count: OptCount = None
    notes: OptNotes = None
    phones: Phones = Field(default_factory=list)
    emails: Emails = Field(default_factory=list)
    tags: Tags = Field(default_factory=list)
    owner_ids: OwnerIds = Field(default_factory=list)
    consents: dict[Purpose, bool] = Field(default_factory=dict)


class CustomerPatch(BaseModel):
    """A partial edit: only the fields present in the request change (`model_fields_set`).

    List fields replace the whole list. `tier_override` is the supervisor's override that wins
    over the computed tier until it is cleared with null.
    """

    model_config = _MODEL_CONFIG

    kind: Kind | None = None
    name: Name | None = None
    honorific: OptStr32 = None
    employer: OptStr200 = None
    position: OptStr100 = None
    address: OptLongText = None
    birthday: OptDate = None
    hobbies: OptLongText = None
    occupation: OptStr100 = None
    wechat_id: OptStr64 = None
    qq_id: OptStr32 = None
    preferred_channel: OptChannel = None
    contact_frequency: OptStr32 = None
    language: Language | None = None
    timezone: TimeZone | None = None
    tier: OptTier = None
    tier_override: OptTier = None
    legal_representative: OptStr100 = None
    general_manager: OptStr100 = None
    main_business: OptLongText = None
    employee_count: OptCount = None
    notes: OptNotes = None
    phones: Phones | None = None
    emails: Emails | None = None
    tags: Tags | None = None
    owner_ids: OwnerIds | None = None
    consents: dict[Purpose, bool] | None = None

    @field_validator(
        "kind", "name", "language", "timezone", "phones", "emails", "tags", "owner_ids", "consents"
    )
    @classmethod
    def _not_null(cls, value: object) -> object:
        # Absent means "leave alone"; an explicit null on a required field is a mistake.
        if value is None:
            raise ValueError("may not be null")
        return value


_SCALAR_FIELDS: tuple[str, ...] = (
    "kind",
    "name",
    "honorific",
    "employer",
    "position",
    "address",
    "birthday",
    "hobbies",
    "occupation",
    "wechat_id",
    "qq_id",
    "preferred_channel",
    "contact_frequency",
    "language",
    "timezone",
    "legal_representative",
    "general_manager",
    "main_business",
    "employee_count",
    "notes",
)

M = TypeVar("M", bound=BaseModel)


def validation_message(exc: ValidationError) -> str:
    """One line per problem, "field: what is wrong", for API answers and import reports."""
    parts = []
    for err in exc.errors(include_url=False):
        msg = str(err["msg"]).removeprefix("Value error, ")
        loc = err["loc"]
        parts.append(f"{loc[0]}: {msg}" if loc else msg)
    return "; ".join(parts)


def parse_input(model: type[M], data: object) -> M:
    """Validate request data into `model`, turning pydantic's error into `InvalidInput`."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise InvalidInput(
            validation_message(exc), errors=exc.errors(include_url=False, include_context=False)
        ) from None


# ---------------------------------------------------------------------------------------------
# The card


def customer_card(c: Customer) -> dict[str, Any]:
    """The JSON-ready card. Also the shape the audit trail stores, so edits diff card to card."""
    return _card(
        c.id,
        {name: getattr(c, name) for name in _SCALAR_FIELDS},
        phones=[(p.number, p.label) for p in c.phones],
        emails=[e.address for e in c.emails],
        tags=[t.tag for t in c.tags],
        owners=[o.user_id for o in sorted(c.owners, key=lambda o: (o.since, o.user_id))],
        consents={k.purpose: k.granted for k in c.consents},
        tier=c.tier,
        tier_override=c.tier_override,
        source=c.source,
        created_at=c.created_at,
        updated_at=c.updated_at,
    )


def _card(
    customer_id: int,
    scalars: dict[str, Any],
    *,
    phones: list[tuple[str, str | None]],
    emails: list[str],
    tags: list[str],
    owners: list[int],
    consents: dict[str, bool],
    tier: str | None,
    tier_override: str | None,
    source: str,
    created_at: datetime,
    updated_at: datetime,
) -> dict[str, Any]:
    birthday = scalars.get("birthday")
    return {
        "id": customer_id,
        **scalars,
        "birthday": birthday.isoformat() if birthday else None,
        "phones": [{"number": number, "label": label} for number, label in phones],
        "emails": emails,
        "tags": sorted(tags),
        "owners": owners,
        "consents": dict(sorted(consents.items())),
        "tier": tier_override or tier,
        "tier_computed": tier,
        "tier_override": tier_override,
        "source": source,
        "is_new": source == "auto",
        "created_at": created_at.isoformat(),
        "updated_at": updated_at.isoformat(),
    }


# Bookkeeping keys that change on every edit and say nothing about what was edited.
_NOT_AUDITED = frozenset({"id", "created_at", "updated_at"})


def audit(
    session: AsyncSession,
    customer_id: int,
    action: str,
    *,
    actor_id: int | None,
    now: datetime,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
) -> None:
    session.add(
        AuditEntry(
            at=now,
            actor_user_id=actor_id,
            entity=AUDIT_ENTITY,
            entity_id=customer_id,
            action=action,
            before=before,
            after=after,
        )
    )


# ---------------------------------------------------------------------------------------------
# Create and update


_PHONE_OWNERS = direct.Hot(select(CustomerPhone.number, CustomerPhone.customer_id).where(
    one_of(CustomerPhone.number, "values")))
_EMAIL_OWNERS = direct.Hot(select(CustomerEmail.address, CustomerEmail.customer_id).where(
    one_of(CustomerEmail.address, "values")))


async def _owners(session: AsyncSession, stmt: direct.Hot,
                  values: Iterable[str]) -> dict[str, int]:
    """{value: customer id} for the values of a unique key column that are taken."""
    wanted = list(dict.fromkeys(values))
    if not wanted:
        return {}
    found = await direct.rows(await session.connection(), stmt, {"values": wanted})
    return {value: customer_id for value, customer_id in found}


async def taken_phones(session: AsyncSession, numbers: Iterable[str]) -> dict[str, int]:
    """Which of these E.164 numbers already belong to a customer: {number: customer id}."""
    return await _owners(session, _PHONE_OWNERS, numbers)


async def taken_emails(session: AsyncSession, addresses: Iterable[str]) -> dict[str, int]:
    """Which of these (normalised) addresses already belong to a customer: {address: id}."""
    return await _owners(session, _EMAIL_OWNERS, addresses)


def phone_conflict(number: str, owner: int | str) -> Conflict:
    return Conflict(
        f"phone {number} already belongs to customer {owner}",
        field="phones",
        value=number,
        customer_id=owner,
    )


def email_conflict(address: str, owner: int | str) -> Conflict:
    return Conflict(
        f"email {address} already belongs to customer {owner}",
        field="emails",
        value=address,
        customer_id=owner,
    )


async def _check_phones_free(
    session: AsyncSession, numbers: Sequence[str], customer_id: int | None
) -> None:
    for number, owner in (await taken_phones(session, numbers)).items():
        if owner != customer_id:
            raise phone_conflict(number, owner)


async def _check_emails_free(
    session: AsyncSession, addresses: Sequence[str], customer_id: int | None
) -> None:
    for address, owner in (await taken_emails(session, addresses)).items():
        if owner != customer_id:
            raise email_conflict(address, owner)


async def _check_owners(session: AsyncSession, user_ids: Sequence[int]) -> None:
    if not user_ids:
        return
    known = set((await session.scalars(select(User.id).where(User.id.in_(user_ids)))).all())
    unknown = [u for u in user_ids if u not in known]
    if unknown:
        ids = ", ".join(str(u) for u in unknown)
        raise InvalidInput(f"unknown owner user id(s): {ids}", field="owner_ids", value=unknown)


async def _flush(session: AsyncSession) -> None:
    try:
        await session.flush()
    except IntegrityError as exc:
        # The checks above ran first; getting here means another request took the phone or
        # email between our check and our insert.
        raise Conflict(
            "a phone number or email address was just taken by another customer; retry"
        ) from exc


def _new_customer(data: CustomerIn, *, now: datetime, source: str) -> Customer:
    return Customer(
        **{name: getattr(data, name) for name in _SCALAR_FIELDS},
        tier=data.tier,
        tier_override=None,
        source=source,
        created_at=now,
        updated_at=now,
        phones=[CustomerPhone(number=p.number, label=p.label) for p in data.phones],
        emails=[CustomerEmail(address=e) for e in data.emails],
        tags=[CustomerTag(tag=t) for t in data.tags],
        owners=[CustomerOwner(user_id=u, since=now) for u in data.owner_ids],
        consents=[
            Consent(purpose=p, granted=g, at=now, source=source) for p, g in data.consents.items()
        ],
    )


def _initial_tier(customer_id: int, tier: str, actor_id: int | None, now: datetime) -> TierChange:
    return TierChange(
        customer_id=customer_id,
        tier_from=None,
        tier_to=tier,
        at=now,
        reason="initial",
        actor_user_id=actor_id,
    )


async def create_customer(
    session: AsyncSession,
    data: CustomerIn,
    *,
    actor_id: int | None,
    now: datetime,
    source: str = "manual",
) -> Customer:
    await _check_phones_free(session, [p.number for p in data.phones], None)
    await _check_emails_free(session, data.emails, None)
    await _check_owners(session, data.owner_ids)
    customer = _new_customer(data, now=now, source=source)
    session.add(customer)
    await _flush(session)
    card = customer_card(customer)
    audit(session, customer.id, "create", actor_id=actor_id, now=now, before=None, after=card)
    if customer.tier:
        session.add(_initial_tier(customer.id, customer.tier, actor_id, now))
    await session.flush()
    return customer


async def bulk_create_customers(
    session: AsyncSession,
    items: Sequence[CustomerIn],
    *,
    actor_id: int | None,
    now: datetime,
    source: str = "import",
) -> list[int]:
    """Insert many customers, with their audit entries and tier history; returns their ids.

    Unlike `create_customer` this checks nothing: the caller has made sure the phones, emails
    and owners are free and valid (`taken_phones`, `taken_emails`), and runs it in a savepoint
    so that a race lost on the unique indexes (IntegrityError) undoes the whole call. It
    writes one INSERT per table instead of building ORM objects, several times faster.
    """
    if not items:
        return []
    scalars = [{name: getattr(d, name) for name in _SCALAR_FIELDS} for d in items]
    result = await session.execute(
        insert(Customer).returning(Customer.id, sort_by_parameter_order=True),
        [
            {**values, "tier": d.tier, "source": source, "created_at": now, "updated_at": now}
            for values, d in zip(scalars, items, strict=True)
        ],
    )
    ids = list(result.scalars())
    pairs = list(zip(ids, items, strict=True))
    children: list[tuple[type[Any], list[dict[str, Any]]]] = [
        (
            CustomerPhone,
            [
                {"customer_id": i, "number": p.number, "label": p.label}
                for i, d in pairs
                for p in d.phones
            ],
        ),
        (CustomerEmail, [{"customer_id": i, "address": e} for i, d in pairs for e in d.emails]),
        (CustomerTag, [{"customer_id": i, "tag": t} for i, d in pairs for t in d.tags]),
        (
            CustomerOwner,
            [{"customer_id": i, "user_id": u, "since": now} for i, d in pairs for u in d.owner_ids],
        ),
        (
            Consent,
            [
                {"customer_id": i, "purpose": k, "granted": g, "at": now, "source": source}
                for i, d in pairs
                for k, g in d.consents.items()
            ],
        ),
        (
            AuditEntry,
            [
                {
                    "at": now,
                    "actor_user_id": actor_id,
                    "entity": AUDIT_ENTITY,
                    "entity_id": i,
                    "action": "create",
                    "before": None,
                    "after": _card(
                        i,
                        values,
                        phones=[(p.number, p.label) for p in d.phones],
                        emails=list(d.emails),
                        tags=list(d.tags),
                        owners=list(d.owner_ids),
                        consents=dict(d.consents),
                        tier=d.tier,
                        tier_override=None,
                        source=source,
                        created_at=now,
                        updated_at=now,
                    ),
                }
                for (i, d), values in zip(pairs, scalars, strict=True)
            ],
        ),
        (
            TierChange,
            [
                {
                    "customer_id": i,
                    "tier_from": None,
                    "tier_to": d.tier,
                    "at": now,
                    "reason": "initial",
                    "actor_user_id": actor_id,
                }
                for i, d in pairs
                if d.tier
            ],
        ),
    ]
    for model, rows in children:
        if rows:
            await session.execute(insert(model), rows)
    return ids


def _sync_phones(customer: Customer, phones: list[PhoneIn]) -> None:
    # Kept numbers keep their row: deleting and re-inserting the same number in one flush
    # would trip the unique index, because the ORM inserts before it deletes.
    wanted = {p.number: p for p in phones}
    kept = [row for row in customer.phones if row.number in wanted]
    for row in kept:
        row.label = wanted[row.number].label
    have = {row.number for row in kept}
    customer.phones = kept + [
        CustomerPhone(number=p.number, label=p.label) for p in phones if p.number not in have
    ]


def _sync_emails(customer: Customer, emails: list[str]) -> None:
    kept = [row for row in customer.emails if row.address in set(emails)]
    have = {row.address for row in kept}
    customer.emails = kept + [CustomerEmail(address=e) for e in emails if e not in have]


def _sync_tags(customer: Customer, tags: list[str]) -> None:
    kept = [row for row in customer.tags if row.tag in set(tags)]
    have = {row.tag for row in kept}
    customer.tags = kept + [CustomerTag(tag=t) for t in tags if t not in have]


def _sync_owners(customer: Customer, user_ids: list[int], now: datetime) -> None:
    # Keeping the row keeps `since`, which says how long someone has looked after the customer.
    kept = [row for row in customer.owners if row.user_id in set(user_ids)]
    have = {row.user_id for row in kept}
    customer.owners = kept + [
        CustomerOwner(user_id=u, since=now) for u in user_ids if u not in have
    ]


def _sync_consents(customer: Customer, consents: dict[str, bool], now: datetime) -> None:
    rows = {row.purpose: row for row in customer.consents}
    result = []
    for purpose, granted in consents.items():
        row = rows.get(purpose)
        if row is None:
            row = Consent(purpose=purpose, granted=granted, at=now, source="manual")
        elif row.granted != granted:
            # `at` records when the customer last said yes or no, so only a change moves it.
            row.granted, row.at, row.source = granted, now, "manual"
        result.append(row)
    customer.consents = result


async def update_customer(
    session: AsyncSession,
    customer_id: int,
    patch: CustomerPatch,
    *,
    actor_id: int | None,
    now: datetime,
) -> Customer:
    customer = await get_customer(session, customer_id)
    fields = patch.model_fields_set
    before = customer_card(customer)
    old_tier, old_effective = customer.tier, customer.effective_tier

    if patch.phones is not None:
        await _check_phones_free(session, [p.number for p in patch.phones], customer.id)
    if patch.emails is not None:
        await _check_emails_free(session, patch.emails, customer.id)
    if patch.owner_ids is not None:
        await _check_owners(session, patch.owner_ids)

    for name in (*_SCALAR_FIELDS, "tier", "tier_override"):
        if name in fields:
            setattr(customer, name, getattr(patch, name))
    if patch.phones is not None:
        _sync_phones(customer, patch.phones)
    if patch.emails is not None:
        _sync_emails(customer, patch.emails)
    if patch.tags is not None:
        _sync_tags(customer, patch.tags)
    if patch.owner_ids is not None:
        _sync_owners(customer, patch.owner_ids, now)
    if patch.consents is not None:
        _sync_consents(customer, patch.consents, now)

    after = customer_card(customer)
    changed = [k for k in after if k not in _NOT_AUDITED and after[k] != before[k]]
    if not changed:
        return customer
    customer.updated_at = now
    await _flush(session)
    audit(
        session,
        customer.id,
        "update",
        actor_id=actor_id,
        now=now,
        before={k: before[k] for k in changed},
        after={k: after[k] for k in changed},
    )
    if customer.tier != old_tier:
        session.add(
            TierChange(
                customer_id=customer.id,
                tier_from=old_tier,
                tier_to=customer.tier,
                at=now,
                reason="manual",
                actor_user_id=actor_id,
            )
        )
    if "tier_override" in changed:
        # Tier history follows what routing and rules see, so an override logs effective tiers.
        session.add(
            TierChange(
                customer_id=customer.id,
                tier_from=old_effective,
                tier_to=customer.effective_tier,
                at=now,
                reason="override" if customer.tier_override else "override-cleared",
                actor_user_id=actor_id,
            )
        )
    await session.flush()
    return customer


# ---------------------------------------------------------------------------------------------
# Lookups


async def get_customer(session: AsyncSession, customer_id: int) -> Customer:
    customer = await session.get(Customer, customer_id)
    if customer is None:
        raise NotFound(f"customer {customer_id} not found", customer_id=customer_id)
    return customer


async def _by_phone(session: AsyncSession, number: str) -> Customer | None:
    stmt = select(Customer).join(CustomerPhone).where(CustomerPhone.number == number)
    return await session.scalar(stmt)


async def _by_email(session: AsyncSession, address: str) -> Customer | None:
    stmt = select(Customer).join(CustomerEmail).where(CustomerEmail.address == address)
    return await session.scalar(stmt)


async def find_by_phone(session: AsyncSession, raw_or_e164: str) -> Customer | None:
    """The customer with this phone, however it is written; None also for a non-number."""
    number = try_normalize_phone(raw_or_e164)
    return None if number is None else await _by_phone(session, number)


async def find_by_email(session: AsyncSession, raw: str) -> Customer | None:
    address = try_normalize_email(raw)
    return None if address is None else await _by_email(session, address)


async def owner_ids(session: AsyncSession, customer_id: int) -> list[int]:
    """The customer's owners, longest-standing first (the sticky-owner routing target)."""
    rows = await session.scalars(
        select(CustomerOwner.user_id)
        .where(CustomerOwner.customer_id == customer_id)
        .order_by(CustomerOwner.since, CustomerOwner.user_id)
    )
    return list(rows)


# ---------------------------------------------------------------------------------------------
# Inbound contacts: who is this?

_PHONE_CHANNELS = frozenset({Channel.VOICE, Channel.SMS, Channel.CALLBACK})
_CHINESE_LANGUAGES = {86: "zh-CN", 852: "zh-HK", 853: "zh-MO", 886: "zh-TW"}


def address_keys(channel: str, address: str) -> tuple[str | None, str | None, str | None]:
    """(phone, email, name from the address) that identify the sender on this channel."""
    try:
        ch = Channel(channel)
    except ValueError:
        raise InvalidInput(f"unknown channel {channel!r}") from None
    name, bare = parseaddr(address) if "<" in address else ("", address)
    phone = try_normalize_phone(address) if ch != Channel.EMAIL else None
    email = try_normalize_email(bare) if ch not in _PHONE_CHANNELS and not phone else None
    return phone, email, (name or None) if email else None


def _locale_for(phone: str | None) -> tuple[str, str]:
    """Language and time zone for a stranger, from the phone's country when there is one.

    Quiet hours for automated SMS are computed in the customer's zone, so a US caller must not
    inherit Shanghai time just because it is our default.
    """
    if phone is None:
        return DEFAULT_LANGUAGE, DEFAULT_TIMEZONE
    parsed = parse_phone(phone)
    language = _CHINESE_LANGUAGES.get(parsed.country_code or 0, "en")
    zones = []
    for zone in phone_timezones.time_zones_for_number(parsed):
        try:
            ZoneInfo(zone)
        except (ZoneInfoNotFoundError, ValueError):
            continue
        zones.append(zone)
    return language, zones[0] if zones else DEFAULT_TIMEZONE


async def find_or_create_by_address(
    session: AsyncSession,
    channel: str,
    address: str,
    *,
    now: datetime,
    display_name: str | None = None,
) -> tuple[Customer, bool]:
    """The customer behind an inbound address, creating a new (`source="auto"`) one if unknown.

    Voice, SMS and callback addresses are matched as phone numbers, email ones as email
    addresses, chat and API ones as a phone, then an email. An address that is none of these
    (a withheld caller id, a chat handle) still gets a new customer, named `display_name` or the
    address: a contact is never refused because its sender cannot be identified.
    """
    customer_id, created = (
        await find_or_create_many(session, [(channel, address, display_name)], now=now))[0]
    customer = await session.get(Customer, customer_id)
    assert customer is not None
    return customer, created


async def find_or_create_many(
    session: AsyncSession,
    senders: Sequence[tuple[str, str, str | None]],
    *,
    now: datetime,
) -> list[tuple[int, bool]]:
    """`find_or_create_by_address` for many (channel, address, display name) at once, in a few
    set-based queries whatever their number: (customer id, created) each; one new customer per
    unknown phone or email even when it appears twice. A race lost to another writer for a new
    number is resolved by finding the winner's customer. Ids, not objects: the intake reads
    the cards it needs with `read_cards`."""
    keys = [address_keys(channel, address) for channel, address, _ in senders]
    by_phone, by_email = await _lookup(session, keys)
    new: dict[str, Customer] = {}
    out: list[tuple[Customer | int, bool]] = []
    for (_, address, display_name), (phone, email, address_name) in zip(senders, keys,
                                                                       strict=True):
        found = by_phone.get(phone) if phone else by_email.get(email) if email else None
        if found is not None:
            out.append((found, False))
            continue
        key = phone or email
        if key is not None and key in new:
            out.append((new[key], True))
            continue
        name = (display_name or "").strip() or address_name or phone or email or address.strip()
        language, tz = _locale_for(phone)
        customer = Customer(
            kind="person", name=(name or "unknown")[:200], language=language, timezone=tz,
            source="auto", created_at=now, updated_at=now,
            phones=[CustomerPhone(number=phone)] if phone else [],
            emails=[CustomerEmail(address=email)] if email else [],
            tags=[], owners=[], consents=[],
        )
        if key is not None:
            new[key] = customer
        out.append((customer, True))
    created = [c for c, is_new in out if isinstance(c, Customer)]
    if not created:
        return out  # type: ignore[return-value]
    try:
        # A savepoint, so that losing a race for a new number leaves the caller's transaction
        # usable for the lookup that finds the winner's customer.
        async with session.begin_nested():
            session.add_all(created)
            await session.flush()
            for c in dict.fromkeys(created):
                audit(session, c.id, "create", actor_id=None, now=now, before=None,
                       after=customer_card(c))
    except IntegrityError:
        by_phone, by_email = await _lookup(session, keys)
        retried = []
        for (customer, is_new), (phone, email, _) in zip(out, keys, strict=True):
            winner = (by_phone.get(phone) if phone else by_email.get(email)) if is_new else None
            if is_new and winner is None:
                raise
            retried.append((winner, False) if winner is not None else (customer, False))
        out = retried
    return [(c.id if isinstance(c, Customer) else c, is_new) for c, is_new in out]


async def _lookup(
    session: AsyncSession, keys: Sequence[tuple[str | None, str | None, str | None]]
) -> tuple[dict[str | None, int], dict[str | None, int]]:
    phones = {p for p, _, _ in keys if p}
    emails = {e for _, e, _ in keys if e}
    return await taken_phones(session, phones), await taken_emails(session, emails)


def _card_parts_statement() -> Any:
    text, none = String(254), null()
    parts = union_all(
        select(literal("phones", text).label("part"), CustomerPhone.customer_id,
               CustomerPhone.number.label("a"), CustomerPhone.label.label("b"),
               cast(none, Boolean).label("flag"), cast(none, UTCDateTime).label("since"),
               CustomerPhone.id.label("seq"))
        .where(one_of(CustomerPhone.customer_id, "ids")),
        select(literal("emails", text), CustomerEmail.customer_id, CustomerEmail.address,
               cast(none, text), cast(none, Boolean), cast(none, UTCDateTime),
               CustomerEmail.id).where(one_of(CustomerEmail.customer_id, "ids")),
        select(literal("tags", text), CustomerTag.customer_id, CustomerTag.tag,
               cast(none, text), cast(none, Boolean), cast(none, UTCDateTime),
               literal(0)).where(one_of(CustomerTag.customer_id, "ids")),
        select(literal("owners", text), CustomerOwner.customer_id,
               cast(CustomerOwner.user_id, text), cast(none, text), cast(none, Boolean),
               CustomerOwner.since, CustomerOwner.user_id)
        .where(one_of(CustomerOwner.customer_id, "ids")),
        select(literal("consents", text), Consent.customer_id, Consent.purpose,
               cast(none, text), Consent.granted, cast(none, UTCDateTime), literal(0))
        .where(one_of(Consent.customer_id, "ids")),
    ).subquery()
    return direct.Hot(select(parts).order_by(parts.c.since, parts.c.seq))


# The screen-pop's statements are built once: building and keying a statement this size cost
# more than running it (see docs/benchmarks.md), and a reused statement keeps its cache key.
_CARD_PARTS = _card_parts_statement()
_CARD_ROWS = direct.Hot(select(Customer.__table__).where(
    one_of(Customer.__table__.c.id, "ids")))
# Row positions of the card's plain fields: a lookup by name per field cost more than the query.
_CARD_KEYS = [c.key for c in _CARD_ROWS.stmt.selected_columns]
_SCALAR_AT = tuple((name, _CARD_KEYS.index(name)) for name in _SCALAR_FIELDS)


def read_cards(reads: direct.Reads,
               ids: Iterable[int]) -> Callable[[], dict[int, dict[str, Any]]]:
    """`customer_card` for many customers, read as rows in two queries (the customers, then all
    their phones, emails, tags, owners and consents in one UNION ALL): the screen-pop's path,
    where building ORM objects cost more than the queries. Added to `reads`; call the result
    once they ran (`direct.read_now` for these alone)."""
    wanted = list(set(ids))
    parts = reads.add(_CARD_PARTS, {"ids": wanted}) if wanted else []
    rows = reads.add(_CARD_ROWS, {"ids": wanted}) if wanted else []

    def done() -> dict[int, dict[str, Any]]:
        found: dict[int, dict[str, list[Any]]] = {
            cid: {"phones": [], "emails": [], "tags": [], "owners": [], "consents": []}
            for cid in wanted}
        for part, customer_id, a, b, flag, _, _ in parts:
            mine = found[customer_id][part]
            if part == "phones":
                mine.append((a, b))
            elif part == "owners":
                mine.append(int(a))
            elif part == "consents":
                mine.append((a, flag))
            else:
                mine.append(a)
        cards = {}
        for row in rows:
            cid, part = row.id, found[row.id]
            cards[cid] = _card(
                cid, {name: row[at] for name, at in _SCALAR_AT},
                phones=part["phones"], emails=part["emails"], tags=part["tags"],
                owners=part["owners"], consents=dict(part["consents"]), tier=row.tier,
                tier_override=row.tier_override, source=row.source, created_at=row.created_at,
                updated_at=row.updated_at)
        return cards
    return done


# ---------------------------------------------------------------------------------------------
# Search, history, audit


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


_PHONE_CHARS = frozenset(" +-().")


def _phone_digits(q: str) -> str | None:
    """The digits of a query typed as a (partial) phone number, or None if it is not one."""
    text = q.removeprefix("tel:")
    if not text or any(not (ch.isdecimal() or ch in _PHONE_CHARS) for ch in text):
        return None
    digits = "".join(str(unicodedata.decimal(ch)) for ch in text if ch.isdecimal())
    if len(digits) < 3:
        return None
    # "00" is how China dials abroad; stored numbers carry the country code without it.
    return digits[2:] if text.lstrip().startswith("00") else digits


async def search_customers(
    session: AsyncSession, q: str, *, limit: int = 20, offset: int = 0
) -> list[Customer]:
    """Customers matching a phone (exact or digit substring), an email or a name substring.

    An empty query lists the most recently updated customers.
    """
    q = q.strip()
    limit = max(1, min(limit, 200))
    offset = max(0, offset)
    stmt = select(Customer)
    digits = _phone_digits(q)
    if not q:
        stmt = stmt.order_by(Customer.updated_at.desc(), Customer.id.desc())
    elif digits is not None:
        exact = try_normalize_phone(q)
        match = CustomerPhone.number.like(f"%{digits}%")
        if exact:
            match = or_(match, CustomerPhone.number == exact)
        stmt = stmt.where(Customer.id.in_(select(CustomerPhone.customer_id).where(match)))
        if exact:
            exact_ids = select(CustomerPhone.customer_id).where(CustomerPhone.number == exact)
            stmt = stmt.order_by(case((Customer.id.in_(exact_ids), 0), else_=1))
        stmt = stmt.order_by(Customer.id)
    elif "@" in q:
        needle = _like_escape(q.lower())
        ids = select(CustomerEmail.customer_id).where(
            CustomerEmail.address.like(f"%{needle}%", escape="\\")
        )
        prefix = select(CustomerEmail.customer_id).where(
            CustomerEmail.address.like(f"{needle}%", escape="\\")
        )
        stmt = stmt.where(Customer.id.in_(ids)).order_by(
            case((Customer.id.in_(prefix), 0), else_=1), Customer.id
        )
    else:
        needle = _like_escape(q)
        stmt = stmt.where(Customer.name.ilike(f"%{needle}%", escape="\\")).order_by(
            case((Customer.name.ilike(f"{needle}%", escape="\\"), 0), else_=1),
            Customer.name,
            Customer.id,
        )
    return list(await session.scalars(stmt.limit(limit).offset(offset)))


async def customer_history(
    session: AsyncSession, customer_id: int, *, limit: int = 20
) -> list[dict[str, Any]]:
    """The customer's latest contacts on every channel, newest first, in one query."""
    histories = await direct.read_now(
        await session.connection(), lambda reads: read_histories(reads, [customer_id], limit=limit))
    return histories[customer_id]


def _histories_statement(dialect: str) -> Any:
    """Each customer's latest `limit` contacts, newest first. Read through the index on
    (customer_id, created_at, id), so the cost is the rows returned, not the customer's past.

    On PostgreSQL the contacts' columns come out of the LATERAL itself, not from a join back
    to `contacts` by id: such a join let a plan made while the table was small (a prepared
    statement keeps it) hash the whole table, 6 ms a read by 17,000 contacts."""
    contacts, queues, users = Contact.__table__, Queue.__table__, User.__table__
    customers = Customer.__table__
    if dialect == "postgresql":
        c = contacts.c
        latest = (select(c.customer_id, c.id, c.channel, c.direction, c.state, c.queue_id,
                         c.agent_id, c.subject, c.body, c.disposition, c.notes, c.created_at,
                         c.answered_at, c.closed_at)
                  .where(c.customer_id == customers.c.id)
                  .order_by(c.created_at.desc(), c.id.desc())
                  .limit(bindparam("limit")).correlate(customers).lateral())
        row, chosen = latest.c, customers.join(latest, true())
    else:  # SQLite has no LATERAL; it runs this IN once per customer, by rowid
        mine = contacts.alias("mine")
        recent = (select(mine.c.id).where(mine.c.customer_id == customers.c.id)
                  .order_by(mine.c.created_at.desc(), mine.c.id.desc())
                  .limit(bindparam("limit")).correlate(customers))
        row = contacts.c
        chosen = customers.join(contacts, contacts.c.id.in_(recent.scalar_subquery()))
    return direct.Hot(
        select(
            row.customer_id, row.id, row.channel, row.direction, row.state, row.queue_id,
            queues.c.name.label("queue"), row.agent_id, users.c.display_name.label("agent"),
            row.subject, func.substr(row.body, 1, 200, type_=Text).label("body"),
            row.disposition, row.notes,
            *iso_times(row.created_at, row.answered_at, row.closed_at),
        )
        .select_from(chosen.outerjoin(queues, queues.c.id == row.queue_id)
                     .outerjoin(users, users.c.id == row.agent_id))
        .where(one_of(customers.c.id, "ids"))
        .order_by(row.customer_id, row.created_at.desc(), row.id.desc())
    )


_HISTORIES = {dialect: _histories_statement(dialect) for dialect in ("postgresql", "sqlite")}
# The statement's columns between customer_id and the three times, under their entry names.
_HISTORY_KEYS = ("contact_id", "channel", "direction", "state", "queue_id", "queue", "agent_id",
                 "agent", "subject", "body", "disposition", "notes")


def read_histories(reads: direct.Reads, customer_ids: Iterable[int], *,
                   limit: int = 20) -> Callable[[], dict[int, list[dict[str, Any]]]]:
    """`customer_history` for many customers in one query (each customer's latest through
    the index; see `_histories_statement`). Added to `reads`; call the result once they ran."""
    ids = list(set(customer_ids))
    params = {"ids": ids, "limit": max(1, limit)}
    rows = reads.add(_HISTORIES[reads.dialect], params) if ids else []

    def done() -> dict[int, list[dict[str, Any]]]:
        out: dict[int, list[dict[str, Any]]] = {cid: [] for cid in ids}
        for customer_id, *fields, created, answered, closed in rows:
            entry = dict(zip(_HISTORY_KEYS, fields, strict=True))  # one call, not one per key
            entry["created_at"] = created  # ISO text already (iso_times)
            entry["answered_at"] = answered
            entry["closed_at"] = closed
            out[customer_id].append(entry)
        return out
    return done


async def audit_trail(
    session: AsyncSession, customer_id: int, *, limit: int = 50
) -> list[dict[str, Any]]:
    """Who changed what on the card and when, newest first."""
    stmt = (
        select(AuditEntry, User.username)
        .outerjoin(User, User.id == AuditEntry.actor_user_id)
        .where(AuditEntry.entity == AUDIT_ENTITY, AuditEntry.entity_id == customer_id)
        .order_by(AuditEntry.at.desc(), AuditEntry.id.desc())
        .limit(max(1, limit))
    )
    return [
        {
            "id": entry.id,
            "at": entry.at.isoformat(),
            "actor_id": entry.actor_user_id,
            "actor": username,
            "action": entry.action,
            "before": entry.before,
            "after": entry.after,
        }
        for entry, username in await session.execute(stmt)
    ]
