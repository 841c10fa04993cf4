"""Channel adapters. Each speaks to the core through one small interface:

- inbound: build a `contactcenter.contacts.Inbound` and call `take_in(rt, inbound)`; it stores
  the item (idempotent by provider id), joins it to its conversation or queues a new contact;
- outbound: register a `contactcenter.outbound.Sender` in `rt.senders[channel]`; agents'
  replies are handed to it with retries and visible status; report provider delivery status
  with `outbound.status_by_provider_id`;
- contact events: optionally register `rt.event_hooks[channel]` to act when the router offers,
  connects or ends a contact of that channel (voice connects the caller to the agent);
- texts: `rt.templates.render(name, language, **values)` (contactcenter/messages.toml);
- opening hours: `contactcenter.hours` (queue business hours with China's holidays and 调休).

The core imports nothing from here; `mount` is called by the server when it builds the app.
"""

from __future__ import annotations

from aiohttp import web

from channels import chat, mail, sms, voice


def mount(app: web.Application) -> None:
    """Add every adapter's routes, senders and start-up hooks to the application."""
    for adapter in (sms, voice, mail, chat):
        adapter.mount(app)
