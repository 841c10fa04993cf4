"""Customer records against a real database (SQLite and PostgreSQL via the `engine` fixture)."""

from __future__ import annotations

import asyncio
from datetime import date, timedelta
from typing import Any

import pytest
from pydantic import ValidationError
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from contactcenter.customers import (
    CustomerIn,
    CustomerPatch,
    audit_trail,
    create_customer,
    customer_card,
    customer_history,
    find_by_email,
    find_by_phone,
    find_or_create_by_address,
    get_customer,
    owner_ids,
    parse_input,
    read_cards,
    read_histories,
    search_customers,
    taken_phones,
    update_customer,
)
from contactcenter.errors import Conflict, InvalidInput, NotFound
from contactcenter.phones import normalize_email, normalize_phone
from contactcenter.storage import direct
from contactcenter.storage.db import make_engine, sessionmaker
from contactcenter.storage.models import (
    AuditEntry,
    Contact,
    Customer,
    CustomerPhone,
    Queue,
    TierChange,
)
from contactcenter.users import create_user
from tests.conftest import NOW

Sessions = async_sessionmaker[AsyncSession]


@pytest.fixture
def sm(engine: AsyncEngine) -> Sessions:
    return sessionmaker(engine)


async def _user(sm: Sessions, username: str) -> int:
    async with sm() as s:
        user = await create_user(s, username=username, password="secret-pw", role="agent", now=NOW)
        await s.commit()
        return user.id


async def _create(sm: Sessions, **fields: Any) -> Customer:
    async with sm() as s:
        customer = await create_customer(s, CustomerIn(**fields), actor_id=None, now=NOW)
        await s.commit()
        return customer


# --- phones and emails -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "e164"),
    [
        ("138 0013 8000", "+8613800138000"),
        ("+86 138-0013-8000", "+8613800138000"),
        ("0086 13800138000", "+8613800138000"),
        ("13800138000", "+8613800138000"),
        ("tel:+8613800138000", "+8613800138000"),
        ("１３８００１３８０００", "+8613800138000"),
        ("010 6552 9988", "+861065529988"),
        ("+1 415 555 0100", "+14155550100"),
        ("+44 7911 123456", "+447911123456"),
    ],
)
def test_normalize_phone_valid(raw: str, e164: str) -> None:
    assert normalize_phone(raw) == e164


def test_normalize_phone_default_region() -> None:
    assert normalize_phone("(415) 555-0100", "US") == "+14155550100"


@pytest.mark.parametrize(
    "raw", ["", "   ", "12ab", "abc", "123", "1380013800", "+86 ext", "1-800-FLOWERS"]
)
def test_normalize_phone_invalid(raw: str) -> None:
    with pytest.raises(InvalidInput) as exc:
        normalize_phone(raw)
    assert repr(raw) in exc.value.message


@pytest.mark.parametrize(
    ("raw", "expected"),
    [(" Wang.Fang@Example.COM ", "wang.fang@example.com"), ("a@b.cn", "a@b.cn")],
)
def test_normalize_email_valid(raw: str, expected: str) -> None:
    assert normalize_email(raw) == expected


@pytest.mark.parametrize(
    "raw",
    ["", "wang", "@example.com", "wang@", "wang@localhost", "a@b@c.com", "a b@c.com", "a@.cn"],
)
def test_normalize_email_invalid(raw: str) -> None:
    with pytest.raises(InvalidInput):
        normalize_email(raw)


# --- input models ------------------------------------------------------------------------------


def test_extra_field_rejected() -> None:
    with pytest.raises(ValidationError):
        CustomerIn(name="王芳", nmae="typo")  # type: ignore[call-arg]
    with pytest.raises(InvalidInput) as exc:
        parse_input(CustomerPatch, {"nmae": "typo"})
    assert "nmae" in exc.value.message


def test_input_validation_messages() -> None:
    with pytest.raises(InvalidInput) as exc:
        parse_input(CustomerIn, {"name": "x", "phones": ["12ab"], "timezone": "Mars/Base"})
    assert "phones: '12ab' is not a phone number" in exc.value.message
    assert "timezone: unknown time zone 'Mars/Base'" in exc.value.message
    with pytest.raises(InvalidInput):
        parse_input(CustomerIn, {"name": ""})
    with pytest.raises(InvalidInput):
        parse_input(CustomerIn, {"name": "x", "tier": "E"})
    with pytest.raises(InvalidInput) as exc:
        parse_input(CustomerPatch, {"name": None})
    assert "name: may not be null" in exc.value.message


def test_input_normalises() -> None:
    data = CustomerIn(
        name="  李伟 ",
        kind="Organization",
        tier="b",
        honorific="",
        preferred_channel="sms",
        phones=["138 0013 8000", {"number": "+8613800138000", "label": "dup"}, "+1 415 555 0100"],
        emails=["A@B.cn", "a@b.cn"],
        tags=["vip", "vip", "wholesale"],
    )
    assert data.name == "李伟"
    assert data.kind == "organisation"
    assert data.tier == "B"
    assert data.honorific is None
    assert data.preferred_channel == "sms"
    assert [p.number for p in data.phones] == ["+8613800138000", "+14155550100"]
    assert data.emails == ["a@b.cn"]
    assert data.tags == ["vip", "wholesale"]
    assert CustomerPatch(notes="x").model_fields_set == {"notes"}


# --- create ------------------------------------------------------------------------------------


async def test_create_with_phones_and_emails(sm: Sessions) -> None:
    owner = await _user(sm, "agent1")
    async with sm() as s:
        customer = await create_customer(
            s,
            CustomerIn(
                name="王芳",
                honorific="女士",
                birthday=date(1985, 3, 8),
                phones=["138 0013 8000", {"number": "010 6552 9988", "label": "office"}],
                emails=["Wang.Fang@Example.com"],
                tags=["vip"],
                owner_ids=[owner],
                consents={"sms-marketing": False},
                tier="B",
            ),
            actor_id=owner,
            now=NOW,
        )
        await s.commit()
        cid = customer.id

    async with sm() as s:
        customer = await get_customer(s, cid)
        card = customer_card(customer)
        assert card["phones"] == [
            {"number": "+8613800138000", "label": None},
            {"number": "+861065529988", "label": "office"},
        ]
        assert card["emails"] == ["wang.fang@example.com"]
        assert card["owners"] == [owner]
        assert card["consents"] == {"sms-marketing": False}
        assert card["birthday"] == "1985-03-08"
        assert card["language"] == "zh-CN" and card["timezone"] == "Asia/Shanghai"
        assert card["source"] == "manual" and card["is_new"] is False
        assert (await find_by_phone(s, "+86 138-0013-8000")).id == cid  # type: ignore[union-attr]
        assert (await find_by_phone(s, "13800138000")).id == cid  # type: ignore[union-attr]
        assert (await find_by_email(s, "WANG.FANG@example.com ")).id == cid  # type: ignore[union-attr]
        assert await find_by_phone(s, "13900139000") is None
        assert await find_by_phone(s, "not a number") is None
        assert await owner_ids(s, cid) == [owner]

        changes = (await s.scalars(select(TierChange).where(TierChange.customer_id == cid))).all()
        assert [(c.tier_from, c.tier_to, c.reason) for c in changes] == [(None, "B", "initial")]
        trail = await audit_trail(s, cid)
        assert [(t["action"], t["actor"]) for t in trail] == [("create", "agent1")]
        assert trail[0]["before"] is None
        assert trail[0]["after"]["name"] == "王芳"
        assert trail[0]["after"]["phones"][0]["number"] == "+8613800138000"


async def test_duplicate_phone_or_email_conflicts(sm: Sessions) -> None:
    first = await _create(sm, name="李伟", phones=["13800138000"], emails=["li@example.com"])
    async with sm() as s:
        with pytest.raises(Conflict) as exc:
            await create_customer(
                s, CustomerIn(name="other", phones=["+86 138 0013 8000"]), actor_id=None, now=NOW
            )
    assert "+8613800138000" in exc.value.message
    assert str(first.id) in exc.value.message
    assert exc.value.details["customer_id"] == first.id
    async with sm() as s:
        with pytest.raises(Conflict) as exc:
            await create_customer(
                s, CustomerIn(name="other", emails=["LI@example.com"]), actor_id=None, now=NOW
            )
    assert exc.value.details == {
        "field": "emails",
        "value": "li@example.com",
        "customer_id": first.id,
    }
    async with sm() as s:
        assert await s.scalar(select(func.count()).select_from(Customer)) == 1


async def test_unknown_owner_rejected(sm: Sessions) -> None:
    async with sm() as s:
        with pytest.raises(InvalidInput) as exc:
            await create_customer(s, CustomerIn(name="x", owner_ids=[999]), actor_id=None, now=NOW)
    assert "999" in exc.value.message


# --- update ------------------------------------------------------------------------------------


async def test_update_audits_only_changed_fields(sm: Sessions) -> None:
    editor = await _user(sm, "supervisor")
    created = await _create(
        sm, name="Alice Smith", phones=["+1 415 555 0100"], employer="Acme", tags=["a"]
    )
    later = NOW + timedelta(hours=1)
    async with sm() as s:
        patch = CustomerPatch(name="Alice Jones", phones=["+14155550100", "+44 7911 123456"])
        customer = await update_customer(s, created.id, patch, actor_id=editor, now=later)
        await s.commit()
        assert customer.updated_at == later

    async with sm() as s:
        card = customer_card(await get_customer(s, created.id))
        assert card["name"] == "Alice Jones"
        assert card["employer"] == "Acme"  # not in the patch, so untouched
        assert card["tags"] == ["a"]
        assert [p["number"] for p in card["phones"]] == ["+14155550100", "+447911123456"]
        assert card["updated_at"] == later.isoformat()
        trail = await audit_trail(s, created.id)
        assert [t["action"] for t in trail] == ["update", "create"]
        update = trail[0]
        assert update["actor"] == "supervisor" and update["actor_id"] == editor
        assert update["at"] == later.isoformat()
        assert set(update["before"]) == {"name", "phones"} == set(update["after"])
        assert update["before"]["name"] == "Alice Smith"
        assert update["after"]["name"] == "Alice Jones"
        assert len(update["before"]["phones"]) == 1 and len(update["after"]["phones"]) == 2

    # A patch that changes nothing leaves no trace.
    async with sm() as s:
        await update_customer(
            s, created.id, CustomerPatch(name="Alice Jones"), actor_id=editor, now=later
        )
        await s.commit()
    async with sm() as s:
        assert len(await audit_trail(s, created.id)) == 2


async def test_update_lists_and_clearing(sm: Sessions) -> None:
    a, b = await _user(sm, "a1"), await _user(sm, "a2")
    created = await _create(
        sm,
        name="张伟",
        honorific="先生",
        phones=["13800138000"],
        emails=["z@example.com"],
        owner_ids=[a],
        consents={"sms-marketing": True},
    )
    later = NOW + timedelta(days=1)
    async with sm() as s:
        patch = CustomerPatch(
            honorific=None,
            phones=[{"number": "13800138000", "label": "mobile"}],
            emails=[],
            owner_ids=[b, a],
            consents={"sms-marketing": False, "email-marketing": True},
            tags=["repeat-buyer"],
        )
        await update_customer(s, created.id, patch, actor_id=None, now=later)
        await s.commit()
    async with sm() as s:
        customer = await get_customer(s, created.id)
        card = customer_card(customer)
        assert card["honorific"] is None
        assert card["phones"] == [{"number": "+8613800138000", "label": "mobile"}]
        assert card["emails"] == []
        assert card["owners"] == [a, b]  # a has owned the customer longer
        assert await owner_ids(s, created.id) == [a, b]
        assert card["consents"] == {"email-marketing": True, "sms-marketing": False}
        assert {c.purpose: c.at for c in customer.consents} == {
            "sms-marketing": later,
            "email-marketing": later,
        }
        assert card["tags"] == ["repeat-buyer"]
        assert await find_by_email(s, "z@example.com") is None


async def test_update_conflicts_and_missing(sm: Sessions) -> None:
    first = await _create(sm, name="one", phones=["13800138000"])
    second = await _create(sm, name="two", phones=["13900139000"])
    async with sm() as s:
        with pytest.raises(Conflict) as exc:
            await update_customer(
                s, second.id, CustomerPatch(phones=["13800138000"]), actor_id=None, now=NOW
            )
        assert exc.value.details["customer_id"] == first.id
    async with sm() as s:
        with pytest.raises(NotFound):
            await update_customer(s, 424242, CustomerPatch(name="x"), actor_id=None, now=NOW)
        with pytest.raises(NotFound):
            await get_customer(s, 424242)


async def test_tier_changes_recorded(sm: Sessions) -> None:
    sup = await _user(sm, "sup")
    created = await _create(sm, name="王芳", tier="C")
    t1, t2, t3 = (NOW + timedelta(days=n) for n in (1, 2, 3))
    async with sm() as s:
        await update_customer(s, created.id, CustomerPatch(tier="B"), actor_id=sup, now=t1)
        await s.commit()
    async with sm() as s:
        c = await update_customer(
            s, created.id, CustomerPatch(tier_override="A"), actor_id=sup, now=t2
        )
        await s.commit()
        card = customer_card(c)
        assert (card["tier"], card["tier_computed"], card["tier_override"]) == ("A", "B", "A")
    async with sm() as s:
        c = await update_customer(
            s, created.id, CustomerPatch(tier_override=None), actor_id=sup, now=t3
        )
        await s.commit()
        assert customer_card(c)["tier"] == "B"
    async with sm() as s:
        rows = (
            await s.scalars(
                select(TierChange)
                .where(TierChange.customer_id == created.id)
                .order_by(TierChange.id)
            )
        ).all()
        assert [(r.tier_from, r.tier_to, r.reason, r.at) for r in rows] == [
            (None, "C", "initial", NOW),
            ("C", "B", "manual", t1),
            ("B", "A", "override", t2),
            ("A", "B", "override-cleared", t3),
        ]
        assert all(r.actor_user_id == sup for r in rows[1:])
        trail = await audit_trail(s, created.id)
        assert trail[1]["after"] == {"tier": "A", "tier_override": "A"}


# --- inbound identification --------------------------------------------------------------------


async def test_find_or_create_new_and_known(sm: Sessions) -> None:
    known = await _create(sm, name="李伟", phones=["13800138000"], emails=["li@example.com"])
    async with sm() as s:
        found, created = await find_or_create_by_address(s, "voice", "+8613800138000", now=NOW)
        assert (found.id, created) == (known.id, False)
        found, created = await find_or_create_by_address(s, "email", "LI@example.com", now=NOW)
        assert (found.id, created) == (known.id, False)
        found, created = await find_or_create_by_address(s, "chat", "138 0013 8000", now=NOW)
        assert (found.id, created) == (known.id, False)

        new, created = await find_or_create_by_address(s, "sms", "+1 415 555 0100", now=NOW)
        assert created
        card = customer_card(new)
        assert card["is_new"] and card["source"] == "auto"
        assert card["name"] == "+14155550100"
        assert card["phones"] == [{"number": "+14155550100", "label": None}]
        assert (card["language"], card["timezone"]) == ("en", "America/Los_Angeles")

        mail, created = await find_or_create_by_address(
            s, "email", "Zhao Lei <Zhao.Lei@Example.cn>", now=NOW
        )
        assert created and mail.name == "Zhao Lei"
        assert customer_card(mail)["emails"] == ["zhao.lei@example.cn"]

        visitor, created = await find_or_create_by_address(
            s, "chat", "visitor-8f2a", now=NOW, display_name="小王"
        )
        assert created and visitor.name == "小王" and visitor.phones == []
        await s.commit()

    async with sm() as s:
        again, created = await find_or_create_by_address(s, "voice", "+1 (415) 555-0100", now=NOW)
        assert (again.id, created) == (new.id, False)
        trail = await audit_trail(s, new.id)
        assert [(t["action"], t["actor_id"]) for t in trail] == [("create", None)]
        # A withheld caller id or broken sender address is a new, unidentified customer.
        hidden, created = await find_or_create_by_address(s, "voice", "anonymous", now=NOW)
        assert created and hidden.name == "anonymous" and hidden.phones == []
        odd, created = await find_or_create_by_address(
            s, "email", "not-an-address", now=NOW, display_name="Sender"
        )
        assert created and odd.name == "Sender" and odd.emails == []
        # An email address is not looked up as a phone, nor a phone channel's address as email.
        _, created = await find_or_create_by_address(s, "sms", "li@example.com", now=NOW)
        assert created
        with pytest.raises(InvalidInput):
            await find_or_create_by_address(s, "fax", "+8613800138000", now=NOW)


async def test_concurrent_find_or_create_makes_one_customer(sm: Sessions) -> None:
    number = "+8613912345678"
    async with sm() as first, sm() as second:
        winner, created = await find_or_create_by_address(first, "voice", number, now=NOW)
        assert created
        # The second request starts before the first commits; its insert must wait for the
        # first transaction and then fall back to the winner's row instead of failing.
        racing = asyncio.create_task(find_or_create_by_address(second, "sms", number, now=NOW))
        await asyncio.sleep(0.2)
        await first.commit()
        loser, created_again = await asyncio.wait_for(racing, 20)
        await second.commit()
    assert created_again is False
    assert loser.id == winner.id
    async with sm() as s:
        assert await s.scalar(select(func.count()).select_from(Customer)) == 1
        assert await s.scalar(select(func.count()).select_from(CustomerPhone)) == 1


async def test_concurrent_find_or_create_gathered(sm: Sessions) -> None:
    async def identify() -> int:
        async with sm() as s:
            customer, _ = await find_or_create_by_address(s, "voice", "13700137000", now=NOW)
            await s.commit()
            return customer.id

    ids = await asyncio.gather(*(identify() for _ in range(4)))
    assert len(set(ids)) == 1
    async with sm() as s:
        assert await s.scalar(select(func.count()).select_from(Customer)) == 1


# --- search ------------------------------------------------------------------------------------


async def test_search(sm: Sessions) -> None:
    wang_fang = await _create(sm, name="王芳", phones=["13800138000"], emails=["wf@example.cn"])
    wang_wei = await _create(sm, name="王伟", phones=["13900139000"])
    fang = await _create(sm, name="方芳", emails=["fangfang@mail.cn"])
    alice = await _create(sm, name="Alice Smith", phones=["+1 415 555 0100"])
    bob = await _create(sm, name="Bob Alison", emails=["bob_alison@example.com"])

    async def names(q: str, **kw: Any) -> list[str]:
        async with sm() as s:
            return [c.name for c in await search_customers(s, q, **kw)]

    assert set(await names("王")) == {"王伟", "王芳"}
    assert set(await names("芳")) == {"王芳", "方芳"}
    assert await names("王芳") == ["王芳"]
    assert await names("ali") == ["Alice Smith", "Bob Alison"]  # prefix match first
    assert await names("smith") == ["Alice Smith"]
    assert await names("ALISON") == ["Bob Alison"]
    assert await names("nobody") == []
    assert await names("100%") == []  # LIKE wildcards are literal

    assert await names("+86 138-0013-8000") == ["王芳"]
    assert await names("0086 13800138000") == ["王芳"]
    assert await names("00138") == ["王芳"]  # digits anywhere in the number
    assert set(await names("138")) == {"王芳"}
    assert set(await names("415 555")) == {"Alice Smith"}

    assert await names("wf@example.cn") == ["王芳"]
    assert await names("@example") == ["王芳", "Bob Alison"]
    assert await names("FANG@") == ["方芳"]
    assert await names("_alison@") == ["Bob Alison"]

    assert len(await names("", limit=2)) == 2
    page1, page2 = await names("王", limit=1), await names("王", limit=1, offset=1)
    assert len(page1) == len(page2) == 1 and {*page1, *page2} == {"王伟", "王芳"}
    async with sm() as s:
        found = await search_customers(s, "13900139000")
        assert [c.id for c in found] == [wang_wei.id]
        assert customer_card(found[0])["phones"][0]["number"] == "+8613900139000"
    assert {wang_fang.id, fang.id, alice.id, bob.id}


# --- history and card --------------------------------------------------------------------------


async def test_history_newest_first(sm: Sessions) -> None:
    agent = await _user(sm, "agent1")
    customer = await _create(sm, name="王芳", phones=["13800138000"])
    other = await _create(sm, name="other")
    async with sm() as s:
        queue = Queue(name="support", channels=["voice", "email"])
        s.add(queue)
        await s.flush()
        long_body = "投诉" * 300
        for days, channel, body in [
            (30, "voice", None),
            (2, "email", long_body),
            (10, "sms", "你好"),
        ]:
            s.add(
                Contact(
                    channel=channel,
                    state="closed",
                    customer_id=customer.id,
                    queue_id=queue.id,
                    agent_id=agent,
                    subject="subject" if channel == "email" else None,
                    body=body,
                    disposition="resolved",
                    notes=f"note {days}",
                    created_at=NOW - timedelta(days=days),
                    answered_at=NOW - timedelta(days=days) + timedelta(seconds=20),
                    closed_at=NOW - timedelta(days=days) + timedelta(minutes=5),
                )
            )
        s.add(
            Contact(
                channel="chat",
                state="closed",
                customer_id=other.id,
                queue_id=queue.id,
                created_at=NOW,
            )
        )
        await s.commit()

    async with sm() as s:
        history = await customer_history(s, customer.id)
        assert [h["channel"] for h in history] == ["email", "sms", "voice"]
        email = history[0]
        assert email["body"] == long_body[:200]
        assert email["subject"] == "subject"
        assert email["queue"] == "support" and email["agent"] == "agent1"
        assert email["agent_id"] == agent and email["disposition"] == "resolved"
        assert email["created_at"] == (NOW - timedelta(days=2)).isoformat()
        assert email["closed_at"] == (NOW - timedelta(days=2, minutes=-5)).isoformat()
        assert history[2]["body"] is None
        assert set(email) == {
            "contact_id", "channel", "direction", "state", "queue_id", "queue", "agent_id",
            "agent", "subject", "body", "disposition", "notes", "created_at", "answered_at",
            "closed_at",
        }  # fmt: skip
        assert [h["channel"] for h in await customer_history(s, customer.id, limit=2)] == [
            "email",
            "sms",
        ]
        assert await customer_history(s, 424242) == []


async def test_histories_give_each_customer_their_own_latest_contacts(sm: Sessions) -> None:
    """Many customers in one read: each gets their newest `limit`, newest first, however long
    their past and whatever the others have; a tie in time goes to the later contact."""
    a = await _create(sm, name="甲", phones=["13800138101"])
    b = await _create(sm, name="乙", phones=["13800138102"])
    c = await _create(sm, name="丙", phones=["13800138103"])
    async with sm() as s:
        queue = Queue(name="history-q", channels=["sms"])
        s.add(queue)
        await s.flush()
        made: dict[int, list[tuple[int, Contact]]] = {a.id: [], b.id: []}
        for cid, count in ((a.id, 9), (b.id, 2)):
            for n in range(count):
                # Two of a's contacts share a time: the later id counts as newer.
                at = NOW - timedelta(hours=3 if cid == a.id and n in (4, 5) else 10 - n)
                contact = Contact(channel="sms", state="closed", customer_id=cid,
                                  queue_id=queue.id, body=f"{cid}-{n}", created_at=at)
                s.add(contact)
                made[cid].append((n, contact))
        await s.commit()
        newest_a = sorted(made[a.id], key=lambda nc: (nc[1].created_at, nc[1].id),
                          reverse=True)
        histories = await direct.read_now(await s.connection(), lambda reads: read_histories(
            reads, [a.id, b.id, c.id], limit=4))
    assert [h["contact_id"] for h in histories[a.id]] == [x.id for _, x in newest_a[:4]]
    assert [h["body"] for h in histories[b.id]] == [f"{b.id}-1", f"{b.id}-0"]
    assert histories[c.id] == []


async def test_owner_lookup_takes_any_number_of_values_in_one_read(sm: Sessions) -> None:
    """The values go as one list parameter, so a lookup longer than SQLite's 32,766 bound
    parameters (an import's worth) is still one statement and finds exactly the taken ones."""
    a = await _create(sm, name="甲", phones=["13800138201"])
    b = await _create(sm, name="乙", phones=["13800138202"])
    wanted = [f"+8613900{n:06d}" for n in range(40_000)]
    wanted[17] = normalize_phone("13800138201")
    wanted[39_000] = normalize_phone("13800138202")
    async with sm() as s:
        assert await taken_phones(s, wanted) == {wanted[17]: a.id, wanted[39_000]: b.id}
        assert await taken_phones(s, []) == {}


async def test_customer_card_shape(sm: Sessions) -> None:
    customer = await _create(
        sm,
        name="华信贸易有限公司",
        kind="organisation",
        legal_representative="刘强",
        employee_count=120,
        phones=["021 6888 8888"],
    )
    async with sm() as s:
        card = customer_card(await get_customer(s, customer.id))
    assert set(card) == {
        "id", "kind", "name", "honorific", "employer", "position", "address", "birthday",
        "hobbies", "occupation", "wechat_id", "qq_id", "preferred_channel", "contact_frequency",
        "language", "timezone", "legal_representative", "general_manager", "main_business",
        "employee_count", "notes", "phones", "emails", "tags", "owners", "consents", "tier",
        "tier_computed", "tier_override", "source", "is_new", "created_at", "updated_at",
    }  # fmt: skip
    assert card["kind"] == "organisation"
    assert card["legal_representative"] == "刘强"
    assert card["employee_count"] == 120
    assert card["tier"] is None
    assert card["created_at"] == NOW.isoformat()
    assert card["phones"] == [{"number": "+862168888888", "label": None}]


async def test_audit_rows_are_customer_scoped(sm: Sessions) -> None:
    one = await _create(sm, name="one")
    await _create(sm, name="two")
    async with sm() as s:
        rows = (await s.scalars(select(AuditEntry).order_by(AuditEntry.id))).all()
        assert [(r.entity, r.action) for r in rows] == [("customer", "create")] * 2
        assert len(await audit_trail(s, one.id)) == 1


async def test_cards_read_as_rows_equal_the_cards_of_the_records(sm: Sessions) -> None:
    """`read_cards` (the screen-pop's batched read) and `customer_card` agree on every field,
    for a full card, a bare one and several owners."""
    first, second = await _user(sm, "li"), await _user(sm, "wu")
    async with sm() as s:
        full = await create_customer(s, CustomerIn(
            name="王芳", honorific="女士", birthday=date(1985, 3, 8), employer="好家电",
            phones=["138 0013 8000", {"number": "010 6552 9988", "label": "office"}],
            emails=["Wang.Fang@Example.com", "wf@example.org"], tags=["vip", "member"],
            owner_ids=[second, first], consents={"sms-marketing": False, "email": True},
            tier="B"), actor_id=first, now=NOW)
        bare = await create_customer(s, CustomerIn(name="Li Wei"), actor_id=None, now=NOW)
        await s.commit()
        ids = [full.id, bare.id]
    async with sm() as s:
        cards = await direct.read_now(await s.connection(),
                                      lambda reads: read_cards(reads, [*ids, 987654]))
        expected = {cid: customer_card(await get_customer(s, cid)) for cid in ids}
    assert cards == expected
    assert cards[full.id]["owners"] == [first, second]  # owned since the same moment: by id
    assert cards[bare.id]["phones"] == [] and cards[bare.id]["owners"] == []


async def test_the_history_read_reaches_contacts_only_through_the_index(pg_url: str) -> None:
    """PostgreSQL keeps a prepared statement's generic plan, made when the table may have
    been nearly empty; a plan that scans all of `contacts` grows with every contact stored.
    (SQLite plans each statement when prepared, without statistics, and keeps to the index.)"""
    from contactcenter.customers import _HISTORIES

    engine = make_engine(pg_url)
    compiled = _HISTORIES["postgresql"].compiled(engine.dialect)
    args = compiled.args({"ids": [1, 2, 3], "limit": 5})
    literals = ", ".join("'{" + ",".join(map(str, a)) + "}'" if isinstance(a, list) else str(a)
                         for a in args)
    async with engine.connect() as conn:
        raw = (await conn.get_raw_connection()).driver_connection
        await raw.execute("SET plan_cache_mode = force_generic_plan")
        await raw.execute(f"PREPARE history AS {compiled.sql}")
        plan = "\n".join(r[0] for r in await raw.fetch(f"EXPLAIN EXECUTE history({literals})"))
        await raw.execute("DEALLOCATE history; RESET plan_cache_mode")
    await engine.dispose()
    assert "Seq Scan on contacts" not in plan, plan
    assert "Index Scan Backward using ix_contacts_customer_created on contacts" in plan, plan
