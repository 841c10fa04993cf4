"""The voice channel: Twilio Programmable Voice calls through an IVR menu into a queue.

Every step of a call is a webhook signed by Twilio and answered with TwiML:

    POST /twilio/voice                  welcome, and the called number's menu (<Gather>)
    POST /twilio/voice/menu             the key pressed -> a queue. Open: the call becomes a
                                        contact (take_in) and waits in a Twilio queue
                                        (<Enqueue>); closed: a message, then <Record>
    POST /twilio/voice/wait             while waiting (repeated): place in line and estimate;
                                        after CC_CALLBACK_OFFER_SECONDS, press 1 for a callback
    POST /twilio/voice/callback-choice  1: a callback contact keeps the caller's place in line
    POST /twilio/voice/enqueue-action   the call left the Twilio queue (hung up -> abandoned)
    POST /twilio/voice/dial-action      the agent's leg ended (not answered -> back to waiting)
    POST /twilio/voice/voicemail        the recording -> a voicemail contact in the queue
    POST /twilio/voice/status           the call's status callback: final status, duration

When an agent accepts the contact, the event hook redirects the waiting call through the REST
API to <Dial> that agent: the router, not Twilio's first-in-first-out queue, decides which
caller an agent gets. See docs/channels.md.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlencode

import aiohttp
from aiohttp import web
from multidict import MultiDictProxy
from sqlalchemy import select
from twilio.base.exceptions import TwilioRestException
from twilio.rest import Client
from twilio.twiml.voice_response import Gather, VoiceResponse

from channels.ivr import Ivr, Menu, load_ivr
from channels.twilio import rest_client, signed_form, twiml
from contactcenter.clock import utc
from contactcenter.contacts import Inbound, take_in
from contactcenter.customers import find_by_phone
from contactcenter.domain import Channel, ContactState, EventKind
from contactcenter.errors import BadRequest, InvalidInput, NotFound
from contactcenter.hours import is_open
from contactcenter.phones import try_normalize_phone
from contactcenter.queues import active_queues, select_queue
from contactcenter.routing import ContactEvent
from contactcenter.runtime import Runtime
from contactcenter.server.keys import RUNTIME
from contactcenter.storage.models import Contact, Queue, User

log = logging.getLogger(__name__)

VOICE = Channel.VOICE.value
CALLBACK = Channel.CALLBACK.value
SAY_LANGUAGE = {"zh-CN": "zh-CN", "en": "en-US"}
# Seconds per caller ahead in line, until the queue has an average speed of answer today.
DEFAULT_PACE = 60.0
_WAITING = (ContactState.QUEUED.value, ContactState.OFFERED.value)
_IN_CALL = (*_WAITING, ContactState.ACTIVE.value)
# A call that ends in any of these is over, whoever ended it.
_FINAL_CALL = {"completed", "busy", "failed", "no-answer", "canceled"}
# The caller is no longer waiting in Twilio's queue and cannot be bridged any more.
_LEFT_QUEUE = {"hangup", "error", "system-error", "system-shutdown", "queue-full"}


def twilio_queue_name(queue_name: str) -> str:
    return f"cc-{queue_name}"[:64]  # Twilio's limit for a queue name


def _int(value: str | None, default: int = 0) -> int:
    try:
        return int(value or "")
    except ValueError:
        return default


def _language(language: str | None) -> str:
    return "zh-CN" if (language or "").lower().startswith("zh") else "en"


class VoiceChannel:
    def __init__(self, rt: Runtime, ivr: Ivr) -> None:
        self.rt = rt
        self.ivr = ivr
        self._client: Client | None = None

    # -- helpers -----------------------------------------------------------------------------
    def url(self, path: str, **query: Any) -> str:
        """Absolute, so that Twilio calls us back (and signs) at our public URL."""
        base = self.rt.settings.public_url.rstrip("/") + path
        return f"{base}?{urlencode(query)}" if query else base

    def _say(self, verb: VoiceResponse | Gather, template: str, language: str,
             **values: Any) -> None:
        text = self.rt.templates.render(template, language,
                                        company=self.rt.settings.company_name, **values)
        verb.say(text, language=SAY_LANGUAGE[language])

    async def _form(self, request: web.Request, *required: str) -> MultiDictProxy[str]:
        form = await signed_form(self.rt, request)
        missing = [name for name in ("CallSid", *required) if not form.get(name)]
        if missing:
            raise BadRequest(f"the webhook lacks {', '.join(missing)}")
        return form

    async def _caller_language(self, caller: str) -> str:
        """The known customer's language, else by the number's country (+86: Chinese)."""
        async with self.rt.sessions() as session:
            customer = await find_by_phone(session, caller)
        if customer is not None:
            return _language(customer.language)
        number = try_normalize_phone(caller) or ""
        return "zh-CN" if number.startswith("+86") else "en"

    async def _call(self, call_sid: str) -> Contact | None:
        async with self.rt.sessions() as session:
            return await session.scalar(select(Contact).where(
                Contact.channel == VOICE, Contact.external_id == call_sid))

    async def _note(self, call_sid: str, **changes: Any) -> Contact | None:
        """Add call details to the contact's meta; the contact, or None for an unknown call."""
        async with self.rt.sessions.begin() as session:
            contact = await session.scalar(
                select(Contact).where(Contact.channel == VOICE, Contact.external_id == call_sid)
                .with_for_update()
            )
            if contact is not None:
                # A new dict, so that the JSON column is written.
                contact.meta = {**(contact.meta or {}), **changes}
            return contact

    async def _left(self, contact: Contact) -> None:
        """The caller is gone: abandoned while waiting, wrap-up when it was with an agent."""
        if contact.state in _IN_CALL and not (contact.meta or {}).get("voicemail"):
            await self.rt.broker.submit({"op": "customer_left", "contact_id": contact.id})

    @staticmethod
    def _pick_queue(queues: Sequence[Queue], name: str) -> Queue:
        try:
            return select_queue(queues, VOICE, name=name)
        except (NotFound, InvalidInput) as e:
            # A menu naming a queue that was renamed or closed must not drop the caller.
            log.warning("IVR queue %r unusable (%s); using the first voice queue", name,
                        e.message)
            return select_queue(queues, VOICE)

    async def _callback_queue(self, queue_id: int) -> Queue | None:
        """The caller's own queue if it takes callbacks, else the first one that does."""
        async with self.rt.sessions() as session:
            queues = await active_queues(session)
        own = next((q for q in queues if q.id == queue_id and CALLBACK in q.channels), None)
        return own or next((q for q in queues if CALLBACK in q.channels), None)

    def _wait_minutes(self, queue_id: int, position: int) -> int:
        asa = next((q.get("asa") for q in self.rt.live_stats.get("queues", ())
                    if q.get("id") == queue_id), None)
        pace = asa if asa else DEFAULT_PACE
        return max(1, math.ceil(pace * max(position, 1) / 60))

    def _enqueue(self, response: VoiceResponse, twilio_queue: str) -> None:
        response.enqueue(
            twilio_queue, action=self.url("/twilio/voice/enqueue-action"), method="POST",
            wait_url=self.url("/twilio/voice/wait"), wait_url_method="POST",
        )

    # -- webhooks ----------------------------------------------------------------------------
    async def incoming(self, request: web.Request) -> web.Response:
        form = await self._form(request, "From")
        menu = self.ivr.menu_for(form.get("To"))
        language = await self._caller_language(form["From"])
        response = VoiceResponse()
        if not menu.options:
            self._say(response, "ivr_welcome", language)
            response.redirect(self.url("/twilio/voice/menu"), method="POST")
            return twiml(response)
        # actionOnEmptyResult: no key pressed also goes to the menu step (the default queue).
        gather = response.gather(
            num_digits=1, action=self.url("/twilio/voice/menu"), method="POST",
            timeout=menu.timeout_seconds, action_on_empty_result=True,
        )
        self._say(gather, "ivr_welcome", language)
        options = [{"digit": o.digit, "label": o.label[language]} for o in menu.options]
        self._say(gather, "ivr_menu", language, options=options)
        return twiml(response)

    async def menu(self, request: web.Request) -> web.Response:
        form = await self._form(request, "From")
        menu = self.ivr.menu_for(form.get("To"))
        digit = form.get("Digits") or None
        language = await self._caller_language(form["From"])
        async with self.rt.sessions() as session:
            queue = self._pick_queue(await active_queues(session), menu.queue_for(digit))
        response = VoiceResponse()
        if not is_open(queue.business_hours, utc(self.rt.clock.now())):
            self._closed(response, menu, queue, digit, language)
            return twiml(response)
        twilio_queue = twilio_queue_name(queue.name)
        await take_in(self.rt, Inbound(
            channel=VOICE, address=form["From"], to=form.get("To"), queue=queue.name,
            external_id=form["CallSid"], display_name=form.get("CallerName"),
            contact_meta={"ivr_digit": digit, "twilio_queue": twilio_queue,
                          "language": language},
        ))
        self._enqueue(response, twilio_queue)
        return twiml(response)

    def _closed(self, response: VoiceResponse, menu: Menu, queue: Queue, digit: str | None,
                language: str) -> None:
        self._say(response, "ivr_closed", language)
        query = {"queue": queue.id, **({"digit": digit} if digit else {})}
        response.record(action=self.url("/twilio/voice/voicemail", **query), method="POST",
                        max_length=menu.voicemail_max_seconds, play_beep=True)
        response.hangup()  # nothing recorded: Twilio goes on here instead of the action

    async def wait(self, request: web.Request) -> web.Response:
        form = await self._form(request)
        contact = await self._call(form["CallSid"])
        response = VoiceResponse()
        if contact is not None and ContactState(contact.state).is_final:
            response.hangup()  # we gave up on it (a supervisor closed it): do not hold forever
            return twiml(response)
        meta = (contact.meta if contact else None) or {}
        language = meta.get("language") or await self._caller_language(form.get("From", ""))
        menu = self.ivr.menu_for(form.get("To"))
        position = _int(form.get("QueuePosition"), 1)
        queue_time = _int(form.get("QueueTime"))  # Twilio's count, not a timer of ours
        minutes = self._wait_minutes(contact.queue_id if contact else 0, position)
        self._say(response, "ivr_wait", language, position=position, minutes=minutes)
        hold: VoiceResponse | Gather = response
        if (contact is not None and contact.state in _WAITING
                and queue_time >= self.rt.settings.callback_offer_seconds
                and await self._callback_queue(contact.queue_id) is not None):
            hold = response.gather(num_digits=1, method="POST",
                                   action=self.url("/twilio/voice/callback-choice"))
            self._say(hold, "ivr_offer_callback", language)
        if menu.hold_music:
            hold.play(menu.hold_music)
        else:
            hold.pause(length=menu.hold_seconds)
        return twiml(response)

    async def callback_choice(self, request: web.Request) -> web.Response:
        form = await self._form(request)
        contact = await self._call(form["CallSid"])
        meta = (contact.meta if contact else None) or {}
        language = meta.get("language") or "en"
        # Already booked: Twilio retried the request, and gets the same answer.
        booked = bool(meta.get("callback_requested"))
        if contact is not None and form.get("Digits") == "1" and not booked:
            booked = await self._book_callback(contact, language)
        response = VoiceResponse()
        if not booked:
            response.redirect(self.url("/twilio/voice/wait"), method="POST")  # keep waiting
            return twiml(response)
        self._say(response, "ivr_callback_confirmed", language)
        response.hangup()
        return twiml(response)

    async def _book_callback(self, contact: Contact, language: str) -> bool:
        """A callback contact in the caller's place in line; the call leaves the queue."""
        queue = await self._callback_queue(contact.queue_id)
        if contact.state not in _WAITING or queue is None or contact.external_id is None:
            return False
        await take_in(self.rt, Inbound(
            channel=CALLBACK, address=contact.from_address or "", to=contact.to_address,
            queue=queue.name, external_id=contact.external_id,
            entered_at=contact.created_at.timestamp(),
            contact_meta={"voice_contact_id": contact.id, "language": language},
        ))
        await self._note(contact.external_id, callback_requested=True)
        await self.rt.broker.submit({"op": "customer_left", "contact_id": contact.id})
        return True

    async def enqueue_action(self, request: web.Request) -> web.Response:
        form = await self._form(request)
        result = form.get("QueueResult", "")
        contact = await self._note(form["CallSid"], queue_result=result,
                                   queue_time=_int(form.get("QueueTime")))
        response = VoiceResponse()
        if result == "redirected":
            return twiml(response)  # to the agent (see connect): that TwiML runs, not this
        if contact is not None and result in _LEFT_QUEUE:
            await self._left(contact)
        response.hangup()
        return twiml(response)

    async def dial_action(self, request: web.Request) -> web.Response:
        form = await self._form(request)
        status = form.get("DialCallStatus", "")
        answered = status in ("completed", "answered")
        contact = await self._note(form["CallSid"], dial_status=status, answered=answered,
                                   talk_seconds=_int(form.get("DialCallDuration")))
        response = VoiceResponse()
        if contact is None or contact.state != ContactState.ACTIVE.value:
            response.hangup()  # the caller is gone, or the agent sent it elsewhere
        elif answered or contact.agent_id is None:
            await self._left(contact)  # they talked and one hung up: the agent wraps up
            response.hangup()
        else:
            # The agent's phone did not answer: back to waiting.
            await self._requeue(contact, contact.agent_id)
            self._enqueue(response, (contact.meta or {}).get("twilio_queue")
                          or twilio_queue_name(str(contact.queue_id)))
        return twiml(response)

    async def voicemail(self, request: web.Request) -> web.Response:
        form = await self._form(request, "From", "RecordingUrl")
        menu = self.ivr.menu_for(form.get("To"))
        language = await self._caller_language(form["From"])
        wanted = _int(request.query.get("queue"), -1)
        async with self.rt.sessions() as session:
            queues = await active_queues(session)
        chosen = next((q.name for q in queues if q.id == wanted), menu.default_queue)
        queue = self._pick_queue(queues, chosen)
        url, seconds = form["RecordingUrl"], _int(form.get("RecordingDuration"))
        recording = {"recording_url": url, "recording_duration": seconds,
                     "recording_sid": form.get("RecordingSid")}
        await take_in(self.rt, Inbound(
            channel=VOICE, address=form["From"], to=form.get("To"), queue=queue.name,
            external_id=form["CallSid"], display_name=form.get("CallerName"),
            subject=f"Voicemail ({seconds} s)", body=url, meta=recording,
            contact_meta={"voicemail": True, **recording,
                          "ivr_digit": request.query.get("digit"), "language": language},
        ))
        response = VoiceResponse()
        response.hangup()
        return twiml(response)

    async def status(self, request: web.Request) -> web.Response:
        form = await self._form(request, "CallStatus")
        status = form["CallStatus"]
        changes: dict[str, Any] = {"call_status": status}
        if status in _FINAL_CALL:
            changes["duration"] = _int(form.get("CallDuration"))
        contact = await self._note(form["CallSid"], **changes)
        if contact is not None and status in _FINAL_CALL:
            await self._left(contact)
        return twiml(VoiceResponse())

    # -- agents ------------------------------------------------------------------------------
    async def on_event(self, rt: Runtime, event: ContactEvent) -> None:
        if event.kind != EventKind.ACCEPTED or event.agent_id is None:
            return
        try:
            await self._connect(event.contact_id, event.agent_id)
        except Exception:
            log.exception("connecting call of contact %s to agent %s failed",
                          event.contact_id, event.agent_id)

    async def _connect(self, contact_id: int, agent_id: int) -> None:
        """Take the accepted caller out of the Twilio queue and ring the agent.

        Updating the caller's own call, rather than dialing the agent into the Twilio queue,
        bridges exactly the caller the router chose: <Dial><Queue> would take whoever is
        first in Twilio's queue, ignoring tiers, aging and owners.
        """
        async with self.rt.sessions() as session:
            contact = await session.get(Contact, contact_id)
            agent = await session.get(User, agent_id)
        if contact is None or agent is None or contact.external_id is None:
            return
        if (contact.meta or {}).get("voicemail"):
            return  # a recording to listen to: there is no call to connect
        target = self.ivr.agent_target(agent.username)
        response = VoiceResponse()
        dial = response.dial(caller_id=contact.to_address, method="POST",
                             action=self.url("/twilio/voice/dial-action"))
        if target.startswith("client:"):
            dial.client(target.removeprefix("client:"))
        elif target.startswith("sip:"):
            dial.sip(target)
        else:
            dial.number(target)
        await self._note(contact.external_id, agent_target=target)
        try:
            if self._client is None:
                self._client = rest_client(self.rt)
            await self._client.calls(contact.external_id).update_async(twiml=str(response))
        except (TwilioRestException, aiohttp.ClientError, TimeoutError) as e:
            log.warning("could not connect call %s to %s: %s", contact.external_id, target, e)
            await self.rt.broker.deliver(agent_id, {
                "type": "error", "request": "accept", "contact_id": contact.id,
                "message": f"the call could not be connected to {target}: {e}",
            })
            await self._requeue(contact, agent_id)

    async def _requeue(self, contact: Contact, agent_id: int) -> None:
        """The agent could not be reached: the caller waits again (in the router's order, so
        with the same place in line), for any agent."""
        await self.rt.broker.submit({"op": "transfer", "agent_id": agent_id,
                                     "contact_id": contact.id, "to_queue_id": contact.queue_id})

    async def close(self) -> None:
        if self._client is not None:
            await self._client.http_client.close()  # type: ignore[attr-defined]


def mount(app: web.Application) -> None:
    """Routes and the accept hook; the IVR file is checked now, so a bad one stops the start."""
    rt = app[RUNTIME]
    channel = VoiceChannel(rt, load_ivr(rt.settings.ivr_file))
    for path, handler in (
        ("/twilio/voice", channel.incoming),
        ("/twilio/voice/menu", channel.menu),
        ("/twilio/voice/wait", channel.wait),
        ("/twilio/voice/callback-choice", channel.callback_choice),
        ("/twilio/voice/enqueue-action", channel.enqueue_action),
        ("/twilio/voice/dial-action", channel.dial_action),
        ("/twilio/voice/voicemail", channel.voicemail),
        ("/twilio/voice/status", channel.status),
    ):
        app.router.add_post(path, handler)

    async def start(app: web.Application) -> None:
        rt.event_hooks[VOICE] = channel.on_event

    async def stop(app: web.Application) -> None:
        await channel.close()

    app.on_startup.append(start)
    app.on_cleanup.append(stop)
