"""What the Twilio voice and SMS adapters share: signed webhooks, TwiML answers, the REST client."""

from __future__ import annotations

from aiohttp import web
from multidict import MultiDictProxy
from twilio.http.async_http_client import AsyncTwilioHttpClient
from twilio.request_validator import RequestValidator
from twilio.rest import Client

from contactcenter.errors import BadRequest, Forbidden
from contactcenter.runtime import Runtime


async def signed_form(rt: Runtime, request: web.Request) -> MultiDictProxy[str]:
    """The webhook's form fields, once `X-Twilio-Signature` proves Twilio sent them.

    Twilio signs the URL it called, which is our public URL (the server may sit behind a proxy),
    so the signature is checked against CC_PUBLIC_URL + path + query, not the socket address.
    """
    token = rt.settings.twilio_auth_token
    if not token:
        raise Forbidden("Twilio webhooks are not configured (CC_TWILIO_AUTH_TOKEN)")
    if request.content_type != "application/x-www-form-urlencoded":
        raise BadRequest("a Twilio webhook posts application/x-www-form-urlencoded")
    try:
        form = await request.post()
    except ValueError:
        raise BadRequest("the form body cannot be read") from None
    url = rt.settings.public_url.rstrip("/") + request.path_qs
    signature = request.headers.get("X-Twilio-Signature", "")
    params = {k: v for k, v in form.items() if isinstance(v, str)}
    if not RequestValidator(token).validate(url, params, signature):
        raise Forbidden("invalid X-Twilio-Signature")
    return form  # type: ignore[return-value]


def twiml(document: object) -> web.Response:
    return web.Response(text=str(document), content_type="application/xml")


def rest_client(rt: Runtime) -> Client:
    """An async REST client; with CC_TWILIO_API_BASE every API host is replaced by that base."""
    s = rt.settings
    client = Client(s.twilio_account_sid, s.twilio_auth_token,
                    http_client=AsyncTwilioHttpClient())
    if s.twilio_api_base:
        base = s.twilio_api_base.rstrip("/")
        client.api.base_url = base
    return client
