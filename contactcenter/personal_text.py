"""Operator-written texts addressed to one customer (greetings, campaign SMS and email): a
sandboxed Jinja2 template that may use {{ name }} (the honorific when the card has one) and
{{ company }}. The sandbox because the text comes from an operator, not from the code."""

from __future__ import annotations

from jinja2 import TemplateSyntaxError
from jinja2.sandbox import SandboxedEnvironment

from contactcenter.errors import InvalidInput
from contactcenter.storage.models import Customer

_env = SandboxedEnvironment()


def check_template(text: str, field: str) -> None:
    """Refuse a text that does not parse, naming the field (422), before anything is planned."""
    try:
        _env.parse(text)
    except TemplateSyntaxError as e:
        raise InvalidInput(f"{field}: does not parse as a template: {e.message}",
                           field=field) from None


def render_for(template: str, customer: Customer, company: str,
               values: dict[str, str] | None = None) -> str:
    return _env.from_string(template).render(
        name=customer.honorific or customer.name, company=company, **(values or {}))
