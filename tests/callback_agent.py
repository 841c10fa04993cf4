"""An agent working callbacks over the websocket, for the follow-up tests: connected and
available, takes the callback offered to them, and wraps it up afterwards."""

from __future__ import annotations

from harness import Agent, Node


async def available_agent(node: Node, token: str, user_id: int) -> Agent:
    agent = await Agent.connect(node, token, user_id)
    assert (await agent.recv())["type"] == "snapshot"
    await agent.available()
    return agent


async def take(agent: Agent, contact_id: int | None = None) -> int:
    """Accept the offer of this callback (default: whichever comes); the agent now holds it."""
    match = {} if contact_id is None else {"contact__id": contact_id}
    offer = await agent.expect("offer", **match)
    contact_id = offer["contact"]["id"]
    await agent.send(type="accept", contact_id=contact_id)
    await agent.expect("contact", contact__state="active", contact__id=contact_id)
    return contact_id


async def wrap_up(agent: Agent, contact_id: int) -> None:
    """Hang up and close the contact, so the agent has room for the next callback."""
    await agent.send(type="end", contact_id=contact_id)
    await agent.expect("contact", contact__state="wrapup", contact__id=contact_id)
    await agent.send(type="wrapup", contact_id=contact_id, disposition="resolved")
    await agent.expect("contact", contact__state="closed", contact__id=contact_id)
