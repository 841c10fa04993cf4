"""What the console needs from the REST API beyond the rest of it: the user's own language,
remembered on the server so it follows the user to any browser; private notes; canned
responses; the agent directory; owner changes; email attachments."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from harness import Agent, Api, Node, add_queue, add_user, login, start_node

from contactcenter.clock import ManualClock


@pytest.fixture
async def node(stack: tuple[str, str | None, str]) -> AsyncIterator[Node]:
    n = await start_node(*stack, clock=ManualClock(1_795_000_000.0))
    await add_user(n, "li", language="en", display_name="Li Na")
    yield n
    await n.stop()


async def test_a_user_sets_their_language_and_a_new_login_keeps_it(node: Node) -> None:
    api = Api(node, await login(node, "li"))
    status, me = await api.call("PATCH", "/me", json={"language": "zh-CN"})
    assert status == 200 and me["language"] == "zh-CN"
    assert (await api.call("GET", "/me"))[1]["language"] == "zh-CN"
    await api.close()
    again = Api(node, await login(node, "li"))
    assert (await again.call("GET", "/me"))[1]["language"] == "zh-CN"
    await again.close()


@pytest.mark.parametrize("payload", [{"language": "fr"}, {"language": None}, {},
                                     {"language": "en", "role": "admin"}],
                         ids=["unsupported", "null", "missing", "extra-field"])
async def test_a_bad_preference_is_refused_and_nothing_changes(node: Node, payload: dict) -> None:
    api = Api(node, await login(node, "li"))
    status, body = await api.call("PATCH", "/me", json=payload)
    assert status == 422, body
    assert (await api.call("GET", "/me"))[1]["language"] == "en"
    await api.close()


async def held_contact(staff: dict[str, Api], username: str = "li",
                       **contact: object) -> tuple[Agent, int]:
    """A contact posted by the supervisor, offered to and accepted by `username`."""
    node = staff["boss"].node
    posted = await staff["boss"].post_contact("+8613800138000", "where is my parcel?", **contact)
    _, me = await staff[username].call("GET", "/me")
    agent = await Agent.connect(node, await login(node, username), me["id"])
    await agent.available()
    await agent.expect("offer", contact__id=posted["id"])
    await agent.send(type="accept", contact_id=posted["id"])
    await agent.expect("contact", contact__state="active")
    return agent, posted["id"]


@pytest.fixture
async def staff(node: Node) -> AsyncIterator[dict[str, Api]]:
    await add_user(node, "boss", role="supervisor", display_name="Zhou Min")
    await add_user(node, "wu", display_name="Wu Lei")
    await add_user(node, "root", role="admin")
    await add_queue(node, "support")
    clients = {name: Api(node, await login(node, name)) for name in ("li", "wu", "boss", "root")}
    yield clients
    for client in clients.values():
        await client.close()


async def test_the_agent_holding_a_contact_adds_a_private_note_others_may_not(
    node: Node, staff: dict[str, Api]
) -> None:
    agent, contact_id = await held_contact(staff)
    status, body = await staff["li"].call("POST", f"/contacts/{contact_id}/notes",
                                          json={"body": "Customer prefers a call after 6pm."})
    assert status == 201, body
    note = body["message"]
    assert note["private"] is True and note["status"] is None
    assert note["author_user_id"] == agent.user_id

    # Another agent does not hold it; a supervisor may always annotate.
    status, body = await staff["wu"].call("POST", f"/contacts/{contact_id}/notes",
                                          json={"body": "mine too"})
    assert status == 403, body
    status, body = await staff["boss"].call("POST", f"/contacts/{contact_id}/notes",
                                            json={"body": "Checked: refund approved."})
    assert status == 201, body

    for bad in ({"body": "   "}, {"body": ""}, {}, {"body": "x", "private": False}):
        status, body = await staff["li"].call("POST", f"/contacts/{contact_id}/notes", json=bad)
        assert status == 422, (bad, body)
    status, _ = await staff["li"].call("POST", "/contacts/999999/notes", json={"body": "x"})
    assert status == 404

    _, read = await staff["li"].call("GET", f"/contacts/{contact_id}")
    notes = [(m["body"], m["private"], m["status"]) for m in read["messages"]
             if m["private"]]
    assert notes == [("Customer prefers a call after 6pm.", True, None),
                     ("Checked: refund approved.", True, None)]
    await agent.close()
