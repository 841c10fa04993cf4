"""The IVR configuration: a menu per called number, and where each agent takes calls.

It lives in a TOML file (shipped: channels/ivr.toml; `CC_IVR_FILE` for a company's own), is
validated when the server starts, and an invalid file stops the start with an error naming the
entry, so a typo is found before the first caller hears a broken menu:

    [default]                     # any called number without its own menu
    default_queue = "support"     # nothing pressed, or a digit that is not on the menu
    [[default.options]]
    digit = "1"
    queue = "repairs"
    label = { en = "repairs", zh-CN = "报修" }

    [numbers."+8657112345678"]    # a called number (E.164) with its own menu
    default_queue = "sales"

    [agents]                      # optional; everyone else is the browser client:<username>
    wang = "+8613800138000"
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from contactcenter.errors import InvalidInput
from contactcenter.phones import try_normalize_phone
from contactcenter.templates import LANGUAGES

SHIPPED = Path(__file__).with_name("ivr.toml")

Seconds = Annotated[int, Field(ge=1, le=3600)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Option(_Strict):
    digit: str
    queue: str = Field(min_length=1, max_length=64)
    label: dict[str, str]  # spoken in the ivr_menu template, per language

    @field_validator("digit", mode="before")
    @classmethod
    def _one_digit(cls, value: object) -> object:
        if isinstance(value, int) and not isinstance(value, bool):
            value = str(value)  # digit = 1 is as clear as digit = "1"
        if not (isinstance(value, str) and len(value) == 1 and value.isdigit()):
            raise ValueError(f"must be one key 0-9, not {value!r}")
        return value

    @field_validator("label")
    @classmethod
    def _every_language(cls, value: dict[str, str]) -> dict[str, str]:
        missing = [lang for lang in LANGUAGES if not (value.get(lang) or "").strip()]
        if missing:
            raise ValueError(f"needs a {missing[0]!r} text")
        return value


class Menu(_Strict):
    default_queue: str = Field(min_length=1, max_length=64)
    options: tuple[Option, ...] = ()
    timeout_seconds: Annotated[int, Field(ge=1, le=60)] = 5  # to press a key
    hold_music: str | None = None  # an audio URL played while waiting; else silence
    hold_seconds: Seconds = 20  # between two announcements of the place in line
    voicemail_max_seconds: Seconds = 120

    @field_validator("options")
    @classmethod
    def _distinct_digits(cls, value: tuple[Option, ...]) -> tuple[Option, ...]:
        seen: set[str] = set()
        for option in value:
            if option.digit in seen:
                raise ValueError(f"digit {option.digit} is used twice")
            seen.add(option.digit)
        return value

    @field_validator("hold_music")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("https://", "http://")):
            raise ValueError(f"must be an http(s) URL, not {value!r}")
        return value

    def queue_for(self, digit: str | None) -> str:
        return next((o.queue for o in self.options if o.digit == digit), self.default_queue)


class Ivr(_Strict):
    default: Menu
    numbers: dict[str, Menu] = {}  # by called number, E.164
    agents: dict[str, str] = {}  # username -> client:<identity>, sip:<uri> or a phone number

    @field_validator("numbers", mode="before")
    @classmethod
    def _e164(cls, value: object) -> object:
        if not isinstance(value, Mapping):
            return value
        out: dict[str, Any] = {}
        for raw, menu in value.items():
            number = try_normalize_phone(str(raw))
            if number is None:
                raise ValueError(f"{raw!r} is not a phone number")
            if number in out:
                raise ValueError(f"{raw!r} is {number}, which has a menu already")
            out[number] = menu
        return out

    @field_validator("agents")
    @classmethod
    def _targets(cls, value: dict[str, str]) -> dict[str, str]:
        out = {}
        for username, target in value.items():
            if target.startswith(("client:", "sip:")) and len(target.split(":", 1)[1]) > 0:
                out[username] = target
                continue
            number = try_normalize_phone(target)
            if number is None:
                raise ValueError(
                    f"{username}: {target!r} is not client:<identity>, sip:<uri> or a phone number"
                )
            out[username] = number
        return out

    def menu_for(self, called: str | None) -> Menu:
        number = try_normalize_phone(called or "")
        return self.numbers.get(number or "", self.default)

    def agent_target(self, username: str) -> str:
        """Where an agent answers calls: the browser's Twilio Client by default."""
        return self.agents.get(username, f"client:{username}")


def _where(loc: tuple[int | str, ...]) -> str:
    parts: list[str] = []
    for item in loc:
        if isinstance(item, int):
            parts.append(f"[{item}]")
        else:
            text = item if item.replace("_", "").isalnum() else f'"{item}"'
            parts.append(("." if parts else "") + text)
    return "".join(parts) or "(top level)"


def load_ivr(path: Path | None = None) -> Ivr:
    """The validated IVR file; InvalidInput naming the file and the entry when it is wrong."""
    path = path or SHIPPED
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
        raise InvalidInput(f"IVR file {path}: {e}") from None
    try:
        return Ivr.model_validate(raw)
    except ValidationError as e:
        problems = [
            f"{_where(err['loc'])}: {err['msg'].removeprefix('Value error, ')}"
            for err in e.errors()
        ]
        raise InvalidInput(f"IVR file {path}: " + "; ".join(problems)) from None
