"""`contactcenter serve --demo`: queues, agents and a few hundred customers with past contacts,
so a fresh install has something to route, search and report on.

Everything except the passwords follows from the seed, so a demo database can be rebuilt exactly.
"""

from __future__ import annotations

import random
import secrets
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from contactcenter.customers import AUDIT_ENTITY, customer_card
from contactcenter.domain import Channel, ContactState, Direction, EventKind, Role
from contactcenter.phones import try_normalize_phone
from contactcenter.storage.models import (
    AuditEntry,
    Consent,
    Contact,
    ContactEvent,
    Customer,
    CustomerEmail,
    CustomerOwner,
    CustomerPhone,
    CustomerTag,
    Queue,
    TierChange,
    User,
)
from contactcenter.users import create_user

CUSTOMERS = 300
# A 5%, B 15%, C 30%, D the rest: the grading split of callback-rules §1.
TIER_SHARES = (("A", 0.05), ("B", 0.15), ("C", 0.30))
HISTORY_DAYS = 180
OUR_NUMBER = "+862150001000"
OUR_EMAIL = "service@example.com"

# --- queues and staff ---------------------------------------------------------------------------

DISPOSITIONS = ["resolved", "follow-up", "escalated", "no-action"]
WEEKDAYS = {day: [["09:00", "18:00"]] for day in ("mon", "tue", "wed", "thu", "fri")}
ALL_CHANNELS = [c.value for c in Channel]

QUEUES: list[dict[str, Any]] = [
    {
        "name": "sales",
        "description": "New orders, quotes and product questions",
        "channels": ["voice", "sms", "chat", "email", "api"],
        "required_skills": ["sales"],
    },
    {
        "name": "support",
        "description": "General service and account questions",
        "channels": ALL_CHANNELS,
        "required_skills": ["support"],
    },
    {
        "name": "repairs",
        "description": "Repair requests and visits",
        "channels": ["voice", "sms", "api"],
        "required_skills": ["repairs"],
        "sticky_seconds": 30,
    },
    {
        "name": "complaints",
        "description": "Complaints; answered before everything else",
        "channels": ALL_CHANNELS,
        "required_skills": ["complaints"],
        "base_priority": 10,
    },
]

# username, display name, skills, team, language
AGENTS: list[tuple[str, str, list[str], str, str]] = [
    ("agent1", "王静", ["sales"], "sales", "zh-CN"),
    ("agent2", "李强", ["sales", "support"], "sales", "zh-CN"),
    ("agent3", "张敏", ["support"], "service", "zh-CN"),
    ("agent4", "刘洋", ["support", "repairs"], "service", "zh-CN"),
    ("agent5", "陈磊", ["repairs"], "field", "zh-CN"),
    ("agent6", "Emma Wilson", ["support", "complaints"], "service", "en"),
    ("agent7", "杨丽", ["sales", "complaints"], "sales", "zh-CN"),
    ("agent8", "James Brown", ["support", "repairs", "complaints"], "service", "en"),
]
STAFF: list[tuple[str, str, str, list[str]]] = [
    ("supervisor", "周涛", Role.SUPERVISOR, ["sales", "support", "repairs", "complaints"]),
    ("admin", "Administrator", Role.ADMIN, []),
]

# --- names --------------------------------------------------------------------------------------

SURNAMES = [
    ("王", "wang"), ("李", "li"), ("张", "zhang"), ("刘", "liu"), ("陈", "chen"), ("杨", "yang"),
    ("黄", "huang"), ("赵", "zhao"), ("吴", "wu"), ("周", "zhou"), ("徐", "xu"), ("孙", "sun"),
    ("马", "ma"), ("朱", "zhu"), ("胡", "hu"), ("郭", "guo"), ("何", "he"), ("高", "gao"),
    ("林", "lin"), ("罗", "luo"), ("郑", "zheng"), ("梁", "liang"), ("谢", "xie"), ("宋", "song"),
]  # fmt: skip
GIVEN_FEMALE = [
    ("芳", "fang"), ("娜", "na"), ("敏", "min"), ("静", "jing"), ("丽", "li"), ("艳", "yan"),
    ("娟", "juan"), ("霞", "xia"), ("秀英", "xiuying"), ("桂英", "guiying"), ("婷", "ting"),
    ("雪", "xue"), ("慧", "hui"), ("玉兰", "yulan"), ("晓燕", "xiaoyan"), ("佳怡", "jiayi"),
]  # fmt: skip
GIVEN_MALE = [
    ("伟", "wei"), ("强", "qiang"), ("磊", "lei"), ("军", "jun"), ("洋", "yang"), ("勇", "yong"),
    ("杰", "jie"), ("涛", "tao"), ("明", "ming"), ("超", "chao"), ("刚", "gang"), ("平", "ping"),
    ("建华", "jianhua"), ("志强", "zhiqiang"), ("俊杰", "junjie"), ("浩然", "haoran"),
]  # fmt: skip
FIRST_FEMALE = [
    "Emma", "Olivia", "Sophia", "Isabella", "Mia", "Charlotte", "Amelia", "Grace", "Lucy",
    "Hannah", "Chloe", "Emily", "Sarah", "Laura", "Rachel", "Megan",
]  # fmt: skip
FIRST_MALE = [
    "James", "Oliver", "William", "Henry", "Jack", "Thomas", "Daniel", "Michael", "David",
    "George", "Samuel", "Benjamin", "Andrew", "Peter", "Robert", "Edward",
]  # fmt: skip
LAST_NAMES = [
    "Smith", "Johnson", "Williams", "Brown", "Jones", "Miller", "Davis", "Wilson", "Taylor",
    "Clark", "Walker", "Hall", "Young", "King", "Wright", "Green", "Baker", "Evans", "Turner",
    "Hughes", "Cooper", "Morgan", "Bennett", "Reed",
]  # fmt: skip

CN_MOBILE_PREFIXES = [
    "130", "131", "132", "133", "135", "136", "137", "138", "139", "150", "151", "152", "155",
    "156", "157", "158", "159", "180", "181", "182", "185", "186", "187", "188", "189",
]  # fmt: skip
CN_CITIES = [
    ("上海市", "浦东新区", "21"), ("北京市", "朝阳区", "10"), ("广州市", "天河区", "20"),
    ("深圳市", "南山区", "755"), ("杭州市", "西湖区", "571"), ("成都市", "武侯区", "28"),
    ("南京市", "鼓楼区", "25"), ("武汉市", "江汉区", "27"),
]  # fmt: skip
CN_ROADS = ["中山路", "人民路", "解放路", "建设路", "和平路", "世纪大道", "长江路", "南京路"]
US_AREAS = [
    ("212", "New York, NY", "America/New_York"),
    ("415", "San Francisco, CA", "America/Los_Angeles"),
    ("617", "Boston, MA", "America/New_York"),
    ("312", "Chicago, IL", "America/Chicago"),
    ("206", "Seattle, WA", "America/Los_Angeles"),
    ("303", "Denver, CO", "America/Denver"),
]
UK_TOWNS = ["London", "Manchester", "Bristol", "Leeds", "Edinburgh", "Cambridge"]
EN_STREETS = ["High Street", "Station Road", "Park Avenue", "Church Lane", "Main Street"]

CN_EMAIL_DOMAINS = ["163.com", "qq.com", "126.com", "sina.com", "foxmail.com"]
EN_EMAIL_DOMAINS = ["gmail.com", "outlook.com", "yahoo.com", "icloud.com"]
CN_COMPANY_WORDS = ["华信", "恒达", "金泰", "宏图", "瑞丰", "新源", "东方", "天成", "博远", "嘉禾"]
CN_COMPANY_KINDS = ["贸易", "科技", "实业", "电子", "建材", "物流"]
EN_COMPANY_WORDS = ["Northwind", "Bluebell", "Summit", "Harbor", "Crescent", "Oakridge"]
EN_COMPANY_KINDS = ["Trading", "Logistics", "Foods", "Engineering", "Supplies"]
CN_HOBBIES = ["书法", "钓鱼", "太极拳", "摄影", "旅游", "围棋", "羽毛球", "茶艺", "登山"]
EN_HOBBIES = ["golf", "hiking", "photography", "cooking", "cycling", "chess", "gardening"]
CN_OCCUPATIONS = ["教师", "工程师", "医生", "会计", "律师", "个体经营", "设计师", "公务员"]
EN_OCCUPATIONS = ["teacher", "engineer", "nurse", "accountant", "architect", "consultant"]
CN_POSITIONS = ["采购经理", "总经理", "财务主管", "行政主管", "技术总监"]
EN_POSITIONS = ["Purchasing Manager", "Director", "Office Manager", "Head of IT"]
TAGS = ["wholesale", "retail", "repeat-buyer", "newsletter", "warranty", "price-sensitive"]

CN_TEXTS = {
    "body": [
        "你好，我想查询一下订单的发货时间。",
        "请问你们的售后电话是多少？",
        "上周买的空调不制冷了，能安排维修吗？",
        "发票还没有收到，麻烦帮忙看一下。",
        "我想了解一下新产品的价格。",
        "对上次的服务很不满意，希望有人联系我。",
    ],
    "subject": ["订单查询", "维修申请", "发票问题", "产品咨询", "投诉"],
    "notes": [
        "已告知发货时间，客户满意。",
        "已安排师傅上门维修。",
        "客户要求回电，已记录。",
        "已转交主管处理。",
        "重新开具发票并邮寄。",
        "报价已发送，等待客户确认。",
    ],
}
EN_TEXTS = {
    "body": [
        "Hi, when will my order ship?",
        "My unit stopped working, can someone come and look at it?",
        "I have not received the invoice yet.",
        "Could you send me a quote for 50 units?",
        "I am unhappy with how my last request was handled.",
    ],
    "subject": ["Order status", "Repair request", "Invoice", "Quote request", "Complaint"],
    "notes": [
        "Gave the shipping date; customer happy.",
        "Booked a technician visit.",
        "Customer asked for a call back tomorrow.",
        "Escalated to the supervisor.",
        "Quote sent by email.",
    ],
}


@dataclass
class _Person:
    customer: Customer
    chinese: bool
    phone: str
    email: str | None


class _Unique:
    """Draws values until one is new, so generated phones and emails never collide."""

    def __init__(self) -> None:
        self.seen: set[str] = set()

    def take(self, value: str | None) -> str | None:
        if value is None or value in self.seen:
            return None
        self.seen.add(value)
        return value


def _tiers(rng: random.Random, n: int) -> list[str]:
    tiers = []
    for tier, share in TIER_SHARES:
        tiers += [tier] * round(n * share)
    tiers += ["D"] * (n - len(tiers))
    rng.shuffle(tiers)
    return tiers


def _cn_mobile(rng: random.Random) -> str | None:
    return try_normalize_phone(
        "+86" + rng.choice(CN_MOBILE_PREFIXES) + f"{rng.randrange(10**8):08d}"
    )


def _cn_landline(rng: random.Random, area: str) -> str | None:
    return try_normalize_phone(f"+86{area}{rng.randint(5, 8)}{rng.randrange(10**7):07d}")


def _us_number(rng: random.Random, area: str) -> str | None:
    return try_normalize_phone(f"+1{area}{rng.randint(201, 989)}{rng.randrange(10**4):04d}")


def _uk_mobile(rng: random.Random) -> str | None:
    return try_normalize_phone(f"+447{rng.randint(400, 999)}{rng.randrange(10**6):06d}")


def _draw(unique: _Unique, make: Any, *args: Any) -> str:
    for _ in range(1000):
        value = unique.take(make(*args))
        if value is not None:
            return value
    raise RuntimeError(f"demo data: {make.__name__} keeps making invalid or duplicate values")


def _birthday(rng: random.Random) -> date:
    return date(1950, 1, 1) + timedelta(days=rng.randrange(54 * 365))


def _chinese_customer(
    rng: random.Random, phones: _Unique, emails: _Unique, organisation: bool
) -> tuple[dict[str, Any], str, str | None, str | None]:
    city, district, area = rng.choice(CN_CITIES)
    address = f"{city}{district}{rng.choice(CN_ROADS)}{rng.randint(1, 999)}号"
    surname, surname_py = rng.choice(SURNAMES)
    female = rng.random() < 0.5
    given, given_py = rng.choice(GIVEN_FEMALE if female else GIVEN_MALE)
    person = surname + given
    mobile = _draw(phones, _cn_mobile, rng)
    second = _draw(phones, _cn_landline, rng, area) if rng.random() < 0.15 else None
    email = None
    if rng.random() < 0.5:
        email = _draw(
            emails,
            lambda: f"{surname_py}{given_py}{rng.randint(1, 999)}@{rng.choice(CN_EMAIL_DOMAINS)}",
        )
    fields: dict[str, Any] = {"language": "zh-CN", "timezone": "Asia/Shanghai", "address": address}
    if organisation:
        word, kind = rng.choice(CN_COMPANY_WORDS), rng.choice(CN_COMPANY_KINDS)
        fields |= {
            "kind": "organisation",
            "name": f"{city[:-1]}{word}{kind}有限公司",
            "legal_representative": person,
            "general_manager": rng.choice(SURNAMES)[0] + rng.choice(GIVEN_MALE)[0],
            "main_business": f"{kind}、批发零售",
            "employee_count": rng.choice([12, 35, 80, 150, 420, 1200]),
        }
    else:
        fields |= {
            "kind": "person",
            "name": person,
            "honorific": "女士" if female else "先生",
            "birthday": _birthday(rng) if rng.random() < 0.7 else None,
            "hobbies": "、".join(rng.sample(CN_HOBBIES, rng.randint(1, 2)))
            if rng.random() < 0.5
            else None,
            "occupation": rng.choice(CN_OCCUPATIONS) if rng.random() < 0.6 else None,
            "wechat_id": f"wx_{surname_py}{given_py}{rng.randint(10, 9999)}"
            if rng.random() < 0.5
            else None,
            "qq_id": str(rng.randint(10**5, 10**10)) if rng.random() < 0.2 else None,
        }
        if rng.random() < 0.3:
            fields["employer"] = (
                f"{city[:-1]}{rng.choice(CN_COMPANY_WORDS)}{rng.choice(CN_COMPANY_KINDS)}有限公司"
            )
            fields["position"] = rng.choice(CN_POSITIONS)
    return fields, mobile, second, email


def _english_customer(
    rng: random.Random, phones: _Unique, emails: _Unique, organisation: bool
) -> tuple[dict[str, Any], str, str | None, str | None]:
    female = rng.random() < 0.5
    first = rng.choice(FIRST_FEMALE if female else FIRST_MALE)
    last = rng.choice(LAST_NAMES)
    if rng.random() < 0.6:
        area, town, tz = rng.choice(US_AREAS)
        phone = _draw(phones, _us_number, rng, area)
        address = f"{rng.randint(1, 999)} {rng.choice(EN_STREETS)}, {town}"
    else:
        tz = "Europe/London"
        phone = _draw(phones, _uk_mobile, rng)
        address = f"{rng.randint(1, 200)} {rng.choice(EN_STREETS)}, {rng.choice(UK_TOWNS)}"
    email = None
    if rng.random() < 0.7:
        email = _draw(
            emails,
            lambda: f"{first}.{last}{rng.randint(1, 99)}@{rng.choice(EN_EMAIL_DOMAINS)}".lower(),
        )
    fields: dict[str, Any] = {"language": "en", "timezone": tz, "address": address}
    if organisation:
        word, kind = rng.choice(EN_COMPANY_WORDS), rng.choice(EN_COMPANY_KINDS)
        fields |= {
            "kind": "organisation",
            "name": f"{word} {kind} Ltd",
            "legal_representative": f"{first} {last}",
            "general_manager": f"{rng.choice(FIRST_MALE)} {rng.choice(LAST_NAMES)}",
            "main_business": kind.lower(),
            "employee_count": rng.choice([8, 25, 60, 240, 900]),
        }
    else:
        fields |= {
            "kind": "person",
            "name": f"{first} {last}",
            "honorific": rng.choice(["Ms", "Mrs", "Dr"] if female else ["Mr", "Dr"]),
            "birthday": _birthday(rng) if rng.random() < 0.7 else None,
            "hobbies": ", ".join(rng.sample(EN_HOBBIES, rng.randint(1, 2)))
            if rng.random() < 0.5
            else None,
            "occupation": rng.choice(EN_OCCUPATIONS) if rng.random() < 0.6 else None,
        }
        if rng.random() < 0.3:
            fields["employer"] = f"{rng.choice(EN_COMPANY_WORDS)} {rng.choice(EN_COMPANY_KINDS)}"
            fields["position"] = rng.choice(EN_POSITIONS)
    return fields, phone, None, email


def _customers(rng: random.Random, now: datetime, agent_ids: list[int]) -> list[_Person]:
    phones, emails = _Unique(), _Unique()
    chinese_flags = [True] * (CUSTOMERS // 2) + [False] * (CUSTOMERS - CUSTOMERS // 2)
    rng.shuffle(chinese_flags)
    people = []
    for chinese, tier in zip(chinese_flags, _tiers(rng, CUSTOMERS), strict=True):
        organisation = rng.random() < 0.1
        make = _chinese_customer if chinese else _english_customer
        fields, phone, second, email = make(rng, phones, emails, organisation)
        created = now - timedelta(
            days=rng.randint(HISTORY_DAYS + 20, 900), minutes=rng.randrange(1440)
        )
        owners = rng.sample(agent_ids, 2 if tier in ("A", "B") else 1)
        tags = set(rng.sample(TAGS, rng.randint(0, 2)))
        if tier == "A":
            tags.add("vip")
        consents = {"sms-marketing": rng.random() < 0.7}
        if email:
            consents["email-marketing"] = rng.random() < 0.5
        customer = Customer(
            **fields,
            tier=tier,
            preferred_channel=rng.choice(["voice", "sms", "chat"] + (["email"] if email else [])),
            contact_frequency=rng.choice(["weekly", "monthly"]) if tier in ("A", "B") else None,
            notes=("重要客户，请优先处理。" if chinese else "Key account; handle first.")
            if tier == "A"
            else None,
            source="demo",
            created_at=created,
            updated_at=created,
            phones=[CustomerPhone(number=phone, label="mobile")]
            + ([CustomerPhone(number=second, label="office")] if second else []),
            emails=[CustomerEmail(address=email)] if email else [],
            tags=[CustomerTag(tag=t) for t in sorted(tags)],
            owners=[CustomerOwner(user_id=u, since=created) for u in owners],
            consents=[
                Consent(purpose=p, granted=g, at=created, source="demo")
                for p, g in consents.items()
            ],
        )
        people.append(_Person(customer, chinese, phone, email))
    return people


def _history(
    rng: random.Random,
    now: datetime,
    person: _Person,
    queues: list[Queue],
    agents: dict[str, list[int]],
) -> list[tuple[Contact, list[tuple[str, datetime, int | None, dict[str, Any]]]]]:
    """0-6 closed past contacts with the event rows that tell how each one went."""
    texts = CN_TEXTS if person.chinese else EN_TEXTS
    channels = ["voice"] * 4 + ["sms"] * 2 + ["chat"] * 2 + ["callback"] + ["api"]
    if person.email:
        channels += ["email"] * 2
    out = []
    for _ in range(rng.randint(0, 6)):
        channel = rng.choice(channels)
        queue = rng.choice([q for q in queues if channel in q.channels])
        agent = rng.choice(agents[queue.required_skills[0]])
        entered = now - timedelta(seconds=rng.randint(3 * 3600, HISTORY_DAYS * 86400))
        offered = entered + timedelta(seconds=rng.randint(2, 120))
        accepted = offered + timedelta(seconds=rng.randint(2, 15))
        talk = {"voice": (60, 900), "callback": (60, 600), "chat": (180, 1500)}.get(
            channel, (300, 5400)
        )
        ended = accepted + timedelta(seconds=rng.randint(*talk))
        completed = ended + timedelta(seconds=rng.randint(10, 90))
        disposition = rng.choices(DISPOSITIONS, weights=[70, 15, 8, 7])[0]
        outbound = channel == Channel.CALLBACK
        address = person.email if channel == Channel.EMAIL else person.phone
        ours = OUR_EMAIL if channel == Channel.EMAIL else OUR_NUMBER
        text = rng.choice(texts["body"]) if channel in ("sms", "chat", "email", "api") else None
        contact = Contact(
            channel=channel,
            direction=(Direction.OUTBOUND if outbound else Direction.INBOUND).value,
            state=ContactState.CLOSED.value,
            customer_id=person.customer.id,
            queue_id=queue.id,
            agent_id=agent,
            tier=person.customer.tier,
            from_address=ours if outbound else address,
            to_address=address if outbound else ours,
            subject=rng.choice(texts["subject"]) if channel == Channel.EMAIL else None,
            body=text,
            disposition=disposition,
            notes=rng.choice(texts["notes"]),
            created_at=entered,
            answered_at=accepted,
            ended_at=ended,
            closed_at=completed,
        )
        events = [
            (EventKind.ENTERED, entered, None, {"channel": channel, "tier": contact.tier}),
            (EventKind.OFFERED, offered, agent, {}),
            # The router records the wait with every answer; the live statistics fold it.
            (EventKind.ACCEPTED, accepted, agent, {"wait": (accepted - entered).total_seconds()}),
            (EventKind.ENDED, ended, agent, {}),
            (EventKind.COMPLETED, completed, agent, {"disposition": disposition}),
        ]
        out.append((contact, [(k.value, at, a, d) for k, at, a, d in events]))
    return out


async def _is_empty(session: AsyncSession) -> bool:
    for model in (Customer, User):
        if await session.scalar(select(model.id).limit(1)) is not None:
            return False
    return True


async def load_demo(
    sessionmaker: async_sessionmaker[AsyncSession], *, now: datetime, seed: int = 7
) -> dict[str, str] | None:
    """Fill an empty database with demo data; returns {username: password}, or None (and
    changes nothing) when the database already has customers or users."""
    rng = random.Random(seed)
    async with sessionmaker() as session:
        if not await _is_empty(session):
            return None

        queues = [
            Queue(
                **spec,
                sl_threshold_seconds=20,
                dispositions=list(DISPOSITIONS),
                business_hours={"timezone": "Asia/Shanghai", "weekly": WEEKDAYS},
            )
            for spec in QUEUES
        ]
        session.add_all(queues)

        passwords: dict[str, str] = {}
        by_skill: dict[str, list[int]] = {}
        agent_ids = []
        for username, display, skills, team, language in AGENTS:
            passwords[username] = secrets.token_urlsafe(9)
            user = await create_user(
                session,
                username=username,
                password=passwords[username],
                role=Role.AGENT,
                now=now,
                display_name=display,
                skills=skills,
                team=team,
                language=language,
            )
            agent_ids.append(user.id)
            for skill in skills:
                by_skill.setdefault(skill, []).append(user.id)
        for username, display, role, skills in STAFF:
            passwords[username] = secrets.token_urlsafe(9)
            await create_user(
                session,
                username=username,
                password=passwords[username],
                role=role,
                now=now,
                display_name=display,
                skills=skills,
            )

        people = _customers(rng, now, agent_ids)
        session.add_all(p.customer for p in people)
        await session.flush()
        # Rows nobody reads back go in as one executemany per table; ORM objects would cost an
        # INSERT ... RETURNING each on SQLite.
        customers = [p.customer for p in people]
        await session.execute(
            insert(TierChange),
            [
                {"customer_id": c.id, "tier_to": c.tier, "at": c.created_at, "reason": "initial"}
                for c in customers
            ],
        )
        await session.execute(
            insert(AuditEntry),
            [
                {
                    "at": c.created_at,
                    "entity": AUDIT_ENTITY,
                    "entity_id": c.id,
                    "action": "create",
                    "after": customer_card(c),
                }
                for c in customers
            ],
        )

        histories = [h for p in people for h in _history(rng, now, p, queues, by_skill)]
        session.add_all(contact for contact, _ in histories)
        await session.flush()
        await session.execute(
            insert(ContactEvent),
            [
                {
                    "at": at,
                    "kind": kind,
                    "contact_id": contact.id,
                    "queue_id": contact.queue_id,
                    "agent_id": agent,
                    "data": data,
                }
                for contact, events in histories
                for kind, at, agent, data in events
            ],
        )
        await session.commit()
    return passwords
