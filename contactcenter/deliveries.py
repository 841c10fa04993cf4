"""When each outbound message left and arrived, per provider (spec §9: a slow or failing SMS
provider must show). Written with every delivery status a provider-sent message gets; read by
the supervisor's provider report."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from contactcenter.storage.models import MessageDelivery

SENT, DELIVERED = "sent", "delivered"
FAILED = frozenset({"failed", "undelivered"})


async def record_delivery(
    session: AsyncSession, message_id: int, channel: str, provider: str, status: str, at: datetime
) -> None:
    """Note `status` at `at`; the first `sent` counts, latency is sent → delivered."""
    if status not in (SENT, DELIVERED) and status not in FAILED:
        return
    insert = pg_insert if session.bind.dialect.name == "postgresql" else sqlite_insert
    # The status report may race the sender's own "sent": whoever comes first creates the row.
    await session.execute(
        insert(MessageDelivery)
        .values(message_id=message_id, channel=channel, provider=provider)
        .on_conflict_do_nothing(index_elements=["message_id"])
    )
    row = await session.get(MessageDelivery, message_id, populate_existing=True)
    assert row is not None
    if status == SENT and row.sent_at is None:
        row.sent_at = at
    elif status == DELIVERED and row.delivered_at is None:
        row.delivered_at = at
        if row.sent_at is not None:
            row.latency_seconds = (at - row.sent_at).total_seconds()
    elif status in FAILED and row.failed_at is None:
        row.failed_at = at
    await session.flush()
