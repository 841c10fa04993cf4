"""Message templates: the texts the server sends or says by itself, in zh-CN and en.

They live in a TOML file (shipped: contactcenter/messages.toml; `CC_MESSAGES_FILE` for a
company's own copy), are checked when loaded, and render in a sandboxed Jinja2 environment so
an edited template can read the values it is given and nothing else.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from jinja2 import StrictUndefined, Template, TemplateError
from jinja2.sandbox import SandboxedEnvironment

from contactcenter.errors import InvalidInput

SHIPPED = Path(__file__).with_name("messages.toml")
LANGUAGES = ("en", "zh-CN")


class Templates:
    def __init__(self, compiled: Mapping[str, Mapping[str, Template]]) -> None:
        self._compiled = compiled

    @classmethod
    def load(cls, path: Path | None = None) -> Templates:
        path = path or SHIPPED
        try:
            raw = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as e:
            raise InvalidInput(f"{path}: {e}") from None
        env = SandboxedEnvironment(undefined=StrictUndefined, autoescape=False)
        compiled: dict[str, dict[str, Template]] = {}
        for name, texts in raw.items():
            if not isinstance(texts, dict):
                raise InvalidInput(f"{path}: [{name}] must be a table of languages")
            for language in LANGUAGES:
                if not isinstance(texts.get(language), str):
                    raise InvalidInput(f"{path}: [{name}] has no {language!r} text")
            try:
                compiled[name] = {lang: env.from_string(text) for lang, text in texts.items()}
            except TemplateError as e:
                raise InvalidInput(f"{path}: [{name}]: {e}") from None
        return cls(compiled)

    def render(self, name: str, language: str | None, /, **values: Any) -> str:
        """The text in the customer's language (zh-CN for Chinese variants, else en)."""
        texts = self._compiled.get(name)
        if texts is None:
            raise KeyError(f"no message template {name!r}")
        lang = "zh-CN" if (language or "").lower().startswith("zh") else "en"
        template = texts.get(language or "") or texts[lang]
        try:
            return template.render(**values).strip()
        except TemplateError as e:
            raise InvalidInput(f"message template [{name}] ({lang}): {e}") from None
