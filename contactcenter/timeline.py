"""The rest of a customer's story for the screen-pop, beyond their contacts: purchases, repairs
and other events, complaints with their step, and (from `followups`) callbacks and visits with
their outcomes and satisfaction surveys with their scores. Read for a whole batch of customers
in a few windowed queries, newest first, a few of each, so a screen-pop costs the same
whatever a customer's past."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from sqlalchemy import bindparam, func, select

from contactcenter.followups import read_followups
from contactcenter.storage import direct
from contactcenter.storage.models import Complaint, CustomerEvent, iso_times
from contactcenter.storage.one_of import one_of

PER_KIND = 5  # of each part of the timeline, newest first; the console fetches more on demand

# The event kinds an agent wants to see, and the part of the timeline each goes to.
_EVENT_PARTS = {
    "purchase": "purchases", "installation-completed": "purchases",
    "repair-dispatched": "repairs", "repair-overrun": "repairs", "repair-completed": "repairs",
    "paid-service-ordered": "repairs", "paid-service-completed": "repairs",
}
PARTS = ("purchases", "repairs", "complaints", "callbacks", "visits", "surveys")


def _events_statement() -> Any:
    newest = func.row_number().over(
        partition_by=(CustomerEvent.customer_id, CustomerEvent.kind),
        order_by=(CustomerEvent.at.desc(), CustomerEvent.id.desc()))
    events = select(
        CustomerEvent.customer_id, CustomerEvent.id, CustomerEvent.kind, CustomerEvent.at,
        CustomerEvent.data, newest.label("rank"),
    ).where(one_of(CustomerEvent.customer_id, "ids"),
            one_of(CustomerEvent.kind, "kinds", list(_EVENT_PARTS))).subquery()
    return (select(*iso_times(*events.c)).where(events.c.rank <= bindparam("limit"))
            .order_by(events.c.at.desc()))


def _complaints_statement() -> Any:
    newest = func.row_number().over(
        partition_by=Complaint.customer_id,
        order_by=(Complaint.created_at.desc(), Complaint.id.desc()))
    complaints = select(
        Complaint.customer_id, Complaint.id, Complaint.channel, Complaint.summary,
        Complaint.step, Complaint.level, Complaint.owner_user_id, Complaint.deadline_at,
        Complaint.created_at, Complaint.archived_at, newest.label("rank"),
    ).where(one_of(Complaint.customer_id, "ids")).subquery()
    return (select(*iso_times(*complaints.c)).where(complaints.c.rank <= bindparam("limit"))
            .order_by(complaints.c.created_at.desc()))


# Built once: see customers.read_cards.
_EVENTS = direct.Hot(_events_statement())
_COMPLAINTS = direct.Hot(_complaints_statement())


def read_timelines(
    reads: direct.Reads, customer_ids: Iterable[int], *, limit: int = PER_KIND
) -> Callable[[], dict[int, dict[str, list[dict[str, Any]]]]]:
    """{customer id: {part: [entries, newest first]}} for every part in `PARTS`, in three
    queries added to `reads`: call the result once they ran."""
    ids = set(customer_ids)
    params = {"ids": list(ids), "limit": limit}
    events = reads.add(_EVENTS, params) if ids else []
    complaints = reads.add(_COMPLAINTS, params) if ids else []
    followups = read_followups(reads, ids, per_kind=limit)

    def done() -> dict[int, dict[str, list[dict[str, Any]]]]:
        out: dict[int, dict[str, list[dict[str, Any]]]] = {
            cid: {part: [] for part in PARTS} for cid in ids}
        for row in events:
            part = out[row.customer_id][_EVENT_PARTS[row.kind]]
            if len(part) < limit:
                part.append({"id": row.id, "kind": row.kind, "at": row.at,
                             "data": row.data or {}})
        for row in complaints:
            out[row.customer_id]["complaints"].append({
                "id": row.id, "channel": row.channel, "summary": row.summary, "step": row.step,
                "level": row.level, "owner_id": row.owner_user_id,
                "deadline_at": row.deadline_at, "created_at": row.created_at,
                "archived_at": row.archived_at})
        for cid, found in followups().items():
            out[cid].update(found)
        return out
    return done
