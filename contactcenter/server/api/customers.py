from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from contactcenter.clock import utc
from contactcenter.customers import (
    CustomerIn,
    CustomerPatch,
    audit_trail,
    create_customer,
    customer_card,
    customer_history,
    get_customer,
    search_customers,
    update_customer,
)
from contactcenter.domain import Role
from contactcenter.errors import Forbidden
from contactcenter.server.api import api
from contactcenter.server.endpoint import Call

_TIER_FIELDS = {"tier", "tier_override"}


def _tier_is_a_supervisors_call(call: Call, data: CustomerIn | CustomerPatch) -> None:
    """Tiers come from grading; only a supervisor may set or override one (and it is logged).
    Owners of an existing customer too: they decide who is offered the customer's contacts
    first (sticky routing), so an agent may not move a customer to or from anyone."""
    # In a patch, clearing a tier counts too; on create, only a tier actually given.
    touched = {f for f in _TIER_FIELDS & data.model_fields_set
               if isinstance(data, CustomerPatch) or getattr(data, f) is not None}
    if isinstance(data, CustomerPatch) and "owner_ids" in data.model_fields_set:
        touched.add("owner_ids")
    if touched and not Role(call.actor.role).includes(Role.SUPERVISOR):
        raise Forbidden(f"only a supervisor may set {' or '.join(sorted(touched))}")


class SearchQuery(BaseModel):
    q: str = Field("", max_length=200, description="name, phone number or email")
    limit: int = Field(20, ge=1, le=200)
    offset: int = Field(0, ge=0)


@api.route("GET", "/customers", role=Role.AGENT, query=SearchQuery,
           summary="Search customers by name, phone or email")
async def search(call: Call) -> dict[str, Any]:
    async with call.rt.sessions() as session:
        found = await search_customers(session, call.query.q, limit=call.query.limit,
                                       offset=call.query.offset)
        return {"customers": [customer_card(c) for c in found]}


@api.route("POST", "/customers", role=Role.AGENT, body=CustomerIn, status=201,
           summary="Create a customer")
async def create(call: Call) -> dict[str, Any]:
    _tier_is_a_supervisors_call(call, call.body)
    async with call.rt.sessions.begin() as session:
        customer = await create_customer(session, call.body, actor_id=call.actor.id,
                                         now=utc(call.rt.clock.now()))
        return customer_card(customer)


@api.route("GET", "/customers/{customer_id}", role=Role.AGENT,
           summary="A customer's card with their history on every channel")
async def read(call: Call) -> dict[str, Any]:
    async with call.rt.sessions() as session:
        customer = await get_customer(session, call.params["customer_id"])
        return {"customer": customer_card(customer),
                "history": await customer_history(session, customer.id, limit=50)}


@api.route("PATCH", "/customers/{customer_id}", role=Role.AGENT, body=CustomerPatch,
           summary="Edit a customer (every change is audited)")
async def edit(call: Call) -> dict[str, Any]:
    _tier_is_a_supervisors_call(call, call.body)
    async with call.rt.sessions.begin() as session:
        customer = await update_customer(session, call.params["customer_id"], call.body,
                                         actor_id=call.actor.id, now=utc(call.rt.clock.now()))
        return customer_card(customer)


@api.route("GET", "/customers/{customer_id}/audit", role=Role.AGENT,
           summary="Who changed what on a customer record, and when")
async def audit(call: Call) -> dict[str, Any]:
    async with call.rt.sessions() as session:
        await get_customer(session, call.params["customer_id"])
        return {"audit": await audit_trail(session, call.params["customer_id"])}
