"""Phone numbers and email addresses in the one form we store and match on.

Phones are kept as E.164 (`+8613800138000`) so that "138 0013 8000", "+86 138-0013-8000" and a
Twilio caller id all find the same customer; emails are kept lower-cased for the same reason.
"""

from __future__ import annotations

from functools import lru_cache

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumberFormat

from contactcenter.errors import InvalidInput

DEFAULT_REGION = "CN"
_MAX_RAW = 64


def normalize_phone(raw: str, default_region: str = DEFAULT_REGION) -> str:
    """E.164 for a number written any usual way; national numbers are read in `default_region`."""
    text = raw.strip()
    if text.lower().startswith("tel:"):
        text = text[4:]
    # phonenumbers reads letters as keypad digits (1-800-FLOWERS); typed customer data with
    # letters in it is far more likely a mistake than a vanity number.
    if not text or len(text) > _MAX_RAW or any(ch.isalpha() for ch in text):
        raise InvalidInput(f"{raw!r} is not a phone number", value=raw)
    try:
        parsed = phonenumbers.parse(text, default_region)
    except NumberParseException:
        raise InvalidInput(f"{raw!r} is not a phone number", value=raw) from None
    if not phonenumbers.is_valid_number(parsed):
        raise InvalidInput(f"{raw!r} is not a valid phone number", value=raw)
    return phonenumbers.format_number(parsed, PhoneNumberFormat.E164)


@lru_cache(maxsize=65_536)
def try_normalize_phone(raw: str, default_region: str = DEFAULT_REGION) -> str | None:
    # Memoised: every inbound call, SMS and chat line parses its sender, mostly repeat callers,
    # and parsing is a measurable part of the intake (benchmarks/routing.py profile).
    try:
        return normalize_phone(raw, default_region)
    except InvalidInput:
        return None


def normalize_email(raw: str) -> str:
    """Lower-cased address after a deliberately small check: one @, a local part, a dotted domain.

    Real validation is delivery; this only keeps obvious garbage out of the unique index.
    """
    address = raw.strip().lower()
    if address.startswith("mailto:"):
        address = address[7:]
    local, at, domain = address.partition("@")
    ok = (
        at == "@"
        and "@" not in domain
        and bool(local)
        and "." in domain
        and not domain.startswith(".")
        and not domain.endswith(".")
        and ".." not in domain
        and not any(ch.isspace() or ord(ch) < 32 for ch in address)
        and len(address) <= 254
    )
    if not ok:
        raise InvalidInput(f"{raw!r} is not an email address", value=raw)
    return address


def try_normalize_email(raw: str) -> str | None:
    try:
        return normalize_email(raw)
    except InvalidInput:
        return None
