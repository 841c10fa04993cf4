"""What the console needs from the REST API beyond the rest of it: the user's own language,
remembered on the server so it follows the user to any browser."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from harness import Api, Node, add_user, login, start_node

from contactcenter.clock import ManualClock


@pytest.fixture
async def node(stack: tuple[str, str | None, str]) -> AsyncIterator[Node]:
    n = await start_node(*stack, clock=ManualClock(1_795_000_000.0))
    await add_user(n, "li", language="en")
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
