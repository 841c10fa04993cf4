"""A customer's follow-ups for the screen-pop (spec §10): recent callbacks with their
outcomes, visits with theirs, and satisfaction scores, for many customers in one query.

One UNION ALL over the three sources, each numbered per customer newest first with a window
function, so every customer gets at most `per_kind` of each, whatever the number of
customers asked for: no per-customer loop.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from sqlalchemy import Integer, String, bindparam, cast, func, literal, null, select, union_all

from contactcenter.storage import direct
from contactcenter.storage.models import (
    CallbackOutcome,
    ScheduledWork,
    Survey,
    Visit,
    iso_times,
)
from contactcenter.storage.one_of import one_of


def _statement() -> Any:
    text = String(200)
    callbacks = (
        select(literal("callback", text).label("kind"), ScheduledWork.id.label("id"),
               ScheduledWork.customer_id.label("customer_id"),
               ScheduledWork.due_at.label("at"), ScheduledWork.latest_at.label("until"),
               ScheduledWork.state.label("state"), ScheduledWork.rule_id.label("rule"),
               CallbackOutcome.outcome.label("outcome"),
               CallbackOutcome.recorded_at.label("done_at"),
               CallbackOutcome.notes.label("notes"), cast(null(), Integer).label("score"),
               func.row_number().over(partition_by=ScheduledWork.customer_id,
                                      order_by=(ScheduledWork.due_at.desc(),
                                                ScheduledWork.id.desc())).label("n"))
        .outerjoin(CallbackOutcome, CallbackOutcome.work_key == ScheduledWork.key)
        .where(one_of(ScheduledWork.customer_id, "ids"), ScheduledWork.kind == "callback"))
    visits = (
        select(literal("visit", text), Visit.id, Visit.customer_id, Visit.due_at,
               Visit.latest_at, Visit.state, Visit.rule_id, Visit.outcome, Visit.done_at,
               Visit.notes, cast(null(), Integer),
               func.row_number().over(partition_by=Visit.customer_id,
                                      order_by=(Visit.due_at.desc(), Visit.id.desc())))
        .where(one_of(Visit.customer_id, "ids")))
    surveys = (
        select(literal("survey", text), Survey.id, Survey.customer_id, Survey.sent_at,
               Survey.open_until, Survey.subject, cast(Survey.subject_id, text), null(),
               Survey.replied_at, Survey.reply_text, Survey.score,
               func.row_number().over(partition_by=Survey.customer_id,
                                      order_by=(Survey.sent_at.desc(), Survey.id.desc())))
        .where(one_of(Survey.customer_id, "ids")))
    both = union_all(callbacks, visits, surveys).subquery()
    return (select(*iso_times(*both.c)).where(both.c.n <= bindparam("per_kind"))
            .order_by(both.c.customer_id, both.c.kind, both.c.n))


_FOLLOWUPS = direct.Hot(_statement())  # built once: see customers.read_cards


def read_followups(reads: direct.Reads, customer_ids: Iterable[int], *,
                   per_kind: int = 5) -> Callable[[], dict[int, dict[str, Any]]]:
    """{customer id: {"callbacks": [...], "visits": [...], "surveys": [...]}}, newest first;
    every asked-for customer is in the answer, with empty lists when there is nothing. One
    query added to `reads`: call the result once they ran."""
    ids = sorted(set(customer_ids))
    rows = reads.add(_FOLLOWUPS, {"ids": ids, "per_kind": per_kind}) if ids else []

    def done() -> dict[int, dict[str, Any]]:
        out: dict[int, dict[str, Any]] = {
            cid: {"callbacks": [], "visits": [], "surveys": []} for cid in ids}
        for r in rows:
            entry: dict[str, Any] = {"id": r.id, "at": r.at}
            if r.kind == "callback":
                entry |= {"rule": r.rule, "state": r.state, "latest": r.until,
                          "outcome": r.outcome, "outcome_at": r.done_at, "notes": r.notes}
                out[r.customer_id]["callbacks"].append(entry)
            elif r.kind == "visit":
                entry |= {"rule": r.rule, "state": r.state, "latest": r.until,
                          "outcome": r.outcome, "done_at": r.done_at, "notes": r.notes}
                out[r.customer_id]["visits"].append(entry)
            else:
                entry |= {"about": r.state, "about_id": int(r.rule), "open_until": r.until,
                          "score": r.score, "replied_at": r.done_at, "reply": r.notes}
                out[r.customer_id]["surveys"].append(entry)
        return out
    return done
