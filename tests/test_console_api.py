"""What the console needs from the REST API beyond the rest of it: the user's own language,
remembered on the server so it follows the user to any browser; private notes; canned
responses; the agent directory; owner changes; email attachments."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from harness import Agent, Api, Node, add_queue, add_user, login, start_node

from contactcenter.clock import ManualClock
from contactcenter.contacts import AttachmentIn, Inbound, take_in
from contactcenter.storage.models import Queue, User


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


async def held_contact(staff: dict[str, Api], username: str = "li", *,
                       inbound: Inbound | None = None, **contact: object) -> tuple[Agent, int]:
    """A contact (posted by the supervisor, or taken in from `inbound` as a channel would),
    offered to and accepted by `username`."""
    node = staff["boss"].node
    if inbound is None:
        posted = await staff["boss"].post_contact("+8613800138000", "where is my parcel?",
                                                  **contact)
    else:
        posted = (await take_in(node.rt, inbound)).contact
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
    await add_user(node, "wu", display_name="Wu Lei", team="north")
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


async def test_admins_keep_canned_responses_and_agents_see_global_and_their_teams(
    node: Node, staff: dict[str, Api]
) -> None:
    root = staff["root"]
    made = {}
    thanks = "Thank you, {{ customer.name }}! — {{ agent.name }}"
    for payload in ({"name": "thanks", "body": thanks},
                    {"name": "hours", "body": "We are open 9–18."},
                    {"name": "hours", "team": "north", "body": "North desk: 8–20."}):
        status, body = await root.call("POST", "/canned", json=payload)
        assert status == 201, body
        made[(payload["name"], payload.get("team"))] = body["id"]

    for bad, code in (({"name": "hours", "body": "again"}, 409),
                      ({"name": "two words", "body": "x"}, 422),
                      ({"name": "typo", "body": "{{ custmer.name }}"}, 422),
                      ({"name": "broken", "body": "{{ customer.name "}, 422),
                      ({"name": "escape", "body": "{{ ''.__class__.__mro__ }}"}, 422)):
        status, body = await root.call("POST", "/canned", json=bad)
        assert status == code, (bad, body)
    status, _ = await staff["li"].call("POST", "/canned", json={"name": "x", "body": "y"})
    assert status == 403
    status, _ = await staff["boss"].call("GET", "/canned", params={"all": "true"})
    assert status == 403

    # li has no team: the global ones; wu (north) gets the north "hours" instead.
    _, li = await staff["li"].call("GET", "/canned")
    assert [(c["name"], c["body"]) for c in li["canned"]] == [
        ("hours", "We are open 9–18."), ("thanks", thanks)]
    _, wu = await staff["wu"].call("GET", "/canned")
    assert [(c["name"], c["team"]) for c in wu["canned"]] == [("hours", "north"), ("thanks", None)]
    _, every = await root.call("GET", "/canned", params={"all": "true"})
    assert len(every["canned"]) == 3

    status, body = await root.call("PATCH", f"/canned/{made[('hours', None)]}",
                                   json={"body": "We are open 9–17."})
    assert status == 200 and body["body"] == "We are open 9–17."
    status, body = await root.call("PATCH", f"/canned/{made[('hours', None)]}",
                                   json={"team": "north"})
    assert status == 409, body
    status, body = await root.call("DELETE", f"/canned/{made[('hours', 'north')]}")
    assert status == 200
    _, wu = await staff["wu"].call("GET", "/canned")
    assert (wu["canned"][0]["name"], wu["canned"][0]["body"]) == ("hours", "We are open 9–17.")
    status, _ = await root.call("DELETE", f"/canned/{made[('hours', 'north')]}")
    assert status == 404


async def test_a_canned_response_is_filled_for_a_held_contact_and_customer_text_stays_text(
    node: Node, staff: dict[str, Api]
) -> None:
    # The customer's name looks like a template: it must come out as typed, not be evaluated.
    agent, contact_id = await held_contact(staff, name="{{ agent.name }} <b>")
    _, thanks = await staff["root"].call("POST", "/canned", json={
        "name": "thanks", "body": "Thank you, {{ customer.name }}! — {{ agent.name }}"})
    status, body = await staff["li"].call("POST", f"/canned/{thanks['id']}/render",
                                          json={"contact_id": contact_id})
    assert status == 200, body
    assert body["text"] == "Thank you, {{ agent.name }} <b>! — Li Na"
    status, _ = await staff["wu"].call("POST", f"/canned/{thanks['id']}/render",
                                       json={"contact_id": contact_id})
    assert status == 403  # wu does not hold the contact
    _, north = await staff["root"].call("POST", "/canned", json={
        "name": "north", "team": "north", "body": "hi"})
    status, _ = await staff["li"].call("POST", f"/canned/{north['id']}/render",
                                       json={"contact_id": contact_id})
    assert status == 404  # not offered to li's team
    await agent.close()


async def test_every_user_reads_the_directory_of_active_colleagues_by_name(
    node: Node, staff: dict[str, Api]
) -> None:
    gone = await add_user(node, "gone", display_name="Left Last Year")
    async with node.rt.sessions.begin() as session:
        (await session.get(User, gone)).active = False  # type: ignore[union-attr]
    await add_user(node, "plain")
    status, body = await staff["li"].call("GET", "/directory")
    assert status == 200, body
    named = {u["name"]: (u["role"], u["team"]) for u in body["users"]}
    assert named == {"Li Na": ("agent", None), "Wu Lei": ("agent", "north"),
                     "Zhou Min": ("supervisor", None), "root": ("admin", None),
                     "plain": ("agent", None)}
    assert set(body["users"][0]) == {"id", "name", "role", "team"}  # no hashes, no settings


async def test_a_supervisor_reassigns_a_customers_owner_and_the_audit_keeps_it(
    node: Node, staff: dict[str, Api]
) -> None:
    _, me = await staff["li"].call("GET", "/me")
    _, wu = await staff["wu"].call("GET", "/me")
    status, created = await staff["boss"].call("POST", "/customers", json={
        "name": "Wang Fang", "owner_ids": [me["id"]]})
    assert status == 201, created
    cid = created["id"]
    status, body = await staff["li"].call("PATCH", f"/customers/{cid}",
                                          json={"owner_ids": [me["id"], wu["id"]]})
    assert status == 403 and "owner_ids" in body["error"]["message"], body
    status, edited = await staff["boss"].call("PATCH", f"/customers/{cid}",
                                              json={"owner_ids": [wu["id"]]})
    assert status == 200 and edited["owners"] == [wu["id"]], edited
    _, trail = await staff["boss"].call("GET", f"/customers/{cid}/audit")
    change = trail["audit"][0]
    assert change["before"]["owners"] == [me["id"]] and change["after"]["owners"] == [wu["id"]]
    status, body = await staff["boss"].call("PATCH", f"/customers/{cid}",
                                            json={"owner_ids": [987654]})
    assert status == 422, body


async def test_a_supervisor_reads_a_live_contact_an_agent_does_not_hold(
    node: Node, staff: dict[str, Api]
) -> None:
    agent, contact_id = await held_contact(staff)
    _, live = await staff["boss"].call("GET", "/contacts", params={"state": "active"})
    assert [c["id"] for c in live["contacts"]] == [contact_id]
    status, body = await staff["boss"].call("GET", f"/contacts/{contact_id}")
    assert status == 200 and body["messages"][0]["body"] == "where is my parcel?"
    status, _ = await staff["wu"].call("GET", f"/contacts/{contact_id}")
    assert status == 403
    await agent.close()


async def test_a_supervisor_reassigns_a_live_contact_to_another_agent_or_queue(
    node: Node, staff: dict[str, Api]
) -> None:
    li, contact_id = await held_contact(staff)
    _, wu_me = await staff["wu"].call("GET", "/me")
    wu = await Agent.connect(node, await login(node, "wu"), wu_me["id"])
    await wu.available()
    boss = staff["boss"]
    for bad, code in (({}, 422), ({"agent_id": wu_me["id"], "queue_id": 1}, 422),
                      ({"agent_id": 98765}, 422), ({"queue_id": 98765}, 422)):
        status, body = await boss.call("POST", f"/contacts/{contact_id}/reassign", json=bad)
        assert status == code, (bad, body)
    status, _ = await staff["li"].call("POST", f"/contacts/{contact_id}/reassign",
                                       json={"agent_id": wu_me["id"]})
    assert status == 403  # an agent transfers over the socket; reassigning is a supervisor's

    status, body = await boss.call("POST", f"/contacts/{contact_id}/reassign",
                                   json={"agent_id": wu_me["id"]})
    assert status == 202, body
    await li.expect("contact", contact__id=contact_id, contact__state="queued")
    await wu.expect("offer", contact__id=contact_id)
    await wu.send(type="accept", contact_id=contact_id)
    await wu.expect("contact", contact__id=contact_id, contact__state="active")
    _, detail = await boss.call("GET", f"/contacts/{contact_id}")
    assert detail["contact"]["agent_id"] == wu_me["id"]
    assert "transferred" in [e["kind"] for e in detail["events"]]

    status, body = await boss.call("POST", f"/contacts/{contact_id}/reassign",
                                   json={"agent_id": wu_me["id"]})
    assert status == 409, body  # already with wu
    await wu.send(type="end", contact_id=contact_id)
    await wu.expect("contact", contact__id=contact_id, contact__state="wrapup")
    status, body = await boss.call("POST", f"/contacts/{contact_id}/reassign",
                                   json={"agent_id": wu_me["id"]})
    assert status == 409 and "wrapup" in body["error"]["message"], body
    await li.close()
    await wu.close()


async def test_a_contact_can_be_reassigned_to_a_queue_another_node_just_added(
    node: Node, staff: dict[str, Api]
) -> None:
    """Another node's new queue reaches this node's cache only when it next reads; a transfer
    to it must not be refused meanwhile. (Added here as another node adds one: stored, and the
    router told, but this node's cache not cleared.)"""
    li, contact_id = await held_contact(staff)
    boss = staff["boss"]
    status, _ = await boss.call("POST", f"/contacts/{contact_id}/reassign",
                                json={"queue_id": 98765})
    assert status == 422  # the cache has been read: the queue below is not in it
    async with node.rt.sessions.begin() as session:
        queue = Queue(name="escalations", channels=["api"], dispositions=["resolved"])
        session.add(queue)
        await session.flush()
        escalations = queue.id
    await node.rt.broker.submit({"op": "reload"})
    status, body = await boss.call("POST", f"/contacts/{contact_id}/reassign",
                                   json={"queue_id": escalations})
    assert status == 202, body
    await li.expect("contact", contact__id=contact_id, contact__state="queued",
                    contact__queue_id=escalations)
    await li.close()


EVIL_HTML = b"<script>alert(document.cookie)</script>"


async def test_email_attachments_download_only_as_files_and_only_to_who_may_see_them(
    node: Node, staff: dict[str, Api]
) -> None:
    agent, contact_id = await held_contact(staff, inbound=Inbound(
        channel="email", address="wang.fang@example.com", subject="Invoice", body="attached",
        attachments=[AttachmentIn("发票 10月.pdf", "application/pdf", b"%PDF-1.4 invoice"),
                     AttachmentIn("page.html", "text/html; charset=utf-8", EVIL_HTML),
                     AttachmentIn('../../etc/"x".svg', "image/svg+xml", b"<svg onload=1/>")]))
    status, body = await staff["li"].call("GET", f"/contacts/{contact_id}/attachments")
    assert status == 200, body
    listed = body["attachments"]
    assert [(a["filename"], a["content_type"], a["size"]) for a in listed] == [
        ("发票 10月.pdf", "application/pdf", 16),
        ("page.html", "text/html; charset=utf-8", len(EVIL_HTML)),
        ('../../etc/"x".svg', "image/svg+xml", 15)]

    async def fetch(who: str, attachment_id: int) -> tuple[int, dict[str, str], bytes]:
        api = staff[who]
        async with api.http.get(f"{node.url}/api/v1/attachments/{attachment_id}",
                                headers={"Authorization": f"Bearer {api.token}"}) as r:
            return r.status, dict(r.headers), await r.read()

    pdf, html, svg = (a["id"] for a in listed)
    status, headers, content = await fetch("li", pdf)
    assert status == 200 and content == b"%PDF-1.4 invoice"
    assert headers["Content-Type"] == "application/pdf"
    assert headers["Content-Disposition"] == (
        "attachment; filename=\"__ 10_.pdf\"; "
        "filename*=UTF-8''%E5%8F%91%E7%A5%A8%2010%E6%9C%88.pdf")
    assert headers["X-Content-Type-Options"] == "nosniff"
    status, headers, content = await fetch("li", html)  # never rendered as a page of ours
    assert status == 200 and content == EVIL_HTML
    assert headers["Content-Type"] == "application/octet-stream"
    assert headers["Content-Disposition"].startswith('attachment; filename="page.html"')
    status, headers, _ = await fetch("boss", svg)
    assert status == 200 and headers["Content-Type"] == "application/octet-stream"
    assert headers["Content-Disposition"].startswith('attachment; filename="_.._etc__x_.svg"')

    status, _, _ = await fetch("wu", pdf)  # not wu's contact
    assert status == 403
    status, body = await staff["wu"].call("GET", f"/contacts/{contact_id}/attachments")
    assert status == 403
    status, _, _ = await fetch("li", 987654)
    assert status == 404
    await agent.close()
