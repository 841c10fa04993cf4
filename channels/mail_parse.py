"""Reading an inbound mail: headers, text, attachments, threading ids and quoted text.

Pure functions over bytes, no I/O, so each rule is testable on its own. Parsing uses the standard
`email` package (`policy.default`); decoding is done here where the package would get Chinese
mail wrong: parts and encoded words declared GB2312 are decoded as GB18030 (mailers label GBK
text as GB2312 all the time, and characters such as 喆 or 镕 exist only in GBK), Big5 as CP950
or Big5-HKSCS, and 8-bit headers sent without any encoding are guessed (UTF-8, then GB18030).
"""

from __future__ import annotations

import codecs
import hashlib
import mimetypes
import re
from dataclasses import dataclass, field
from email import policy
from email.errors import HeaderParseError
from email.header import decode_header
from email.message import EmailMessage, Message
from email.parser import BytesParser
from email.utils import getaddresses, parseaddr
from html.parser import HTMLParser
from typing import Any

from contactcenter.contacts import AttachmentIn
from contactcenter.phones import try_normalize_email

# Declared charset (as codecs names it) -> what to try, in order, before the generic guesses.
_CHARSETS: dict[str, tuple[str, ...]] = {
    "gb2312": ("gb18030",),
    "gbk": ("gb18030",),
    "big5": ("cp950", "big5hkscs"),
    "cp950": ("cp950", "big5hkscs"),
    "big5hkscs": ("big5hkscs", "cp950"),
    "euc_kr": ("cp949",),
    "iso8859-1": ("cp1252", "latin-1"),
}
# Labels seen in real mail that Python's codec registry does not know.
_ALIASES = {"x-gbk": "gbk", "csgb2312": "gb2312", "gb_2312-80": "gb2312", "x-big5": "big5",
            "x-euc-cn": "gb2312", "windows-936": "gbk"}
_GUESSES = ("utf-8", "gb18030")

MAX_REFERENCES = 50  # a References header is kept this long (newest ids)
_MAX_ID = 120  # Contact.external_id is 128 characters; longer ids are stored as a digest
SYNTHETIC_DOMAIN = ".invalid"  # ids we made up: never named in a header we send


def decode_bytes(data: bytes, charset: str | None) -> str:
    """Text of `data` labelled `charset`, with the repairs the module docstring lists."""
    label = (charset or "").strip().strip('"').lower()
    label = _ALIASES.get(label, label)
    try:
        name = codecs.lookup(label).name if label else ""
    except LookupError:
        name = ""
    candidates = [*_CHARSETS.get(name, (name,) if name else ()), *_GUESSES]
    for candidate in candidates:
        try:
            return data.decode(candidate)
        except (UnicodeDecodeError, LookupError):
            continue
    return data.decode(candidates[0], errors="replace")


def clean(text: str) -> str:
    # PostgreSQL text holds neither NUL nor lone surrogates; SQLite would, so refuse both alike.
    return text.replace("\x00", "").encode("utf-8", "replace").decode("utf-8")


def decode_header_value(raw: str) -> str:
    """A header's text: RFC 2047 encoded words and raw 8-bit bytes decoded, lines unfolded."""
    raw = re.sub(r"\r?\n(?=[ \t])", "", raw)
    if any("\udc80" <= ch <= "\udcff" for ch in raw):
        # 8-bit bytes sent without encoding (the parser kept them as surrogates): guess.
        raw = decode_bytes(raw.encode("utf-8", "surrogateescape"), None)
    try:
        chunks = decode_header(raw)
    except (HeaderParseError, ValueError):
        return clean(raw).strip()
    parts = []
    for chunk, charset in chunks:
        if isinstance(chunk, str):
            parts.append(chunk)
        elif charset is None:  # the text between encoded words, as decode_header escaped it
            parts.append(chunk.decode("raw-unicode-escape"))
        else:
            parts.append(decode_bytes(chunk, charset))
    return clean("".join(parts)).strip()


def raw_header(part: Message, name: str) -> str | None:
    """The header as sent: `policy.default` would decode encoded words with the declared charset
    (wrong for GBK labelled GB2312), so decoding starts from the raw value."""
    for key, value in part.raw_items():
        if key.lower() == name:
            return str(value)
    return None


def message_ids(raw: str | None) -> list[str]:
    """The ids in a Message-ID, In-Reply-To or References header, without angle brackets."""
    if not raw:
        return []
    found = re.findall(r"<([^<>\s]+)>", raw)
    if not found:  # some clients drop the brackets
        found = [t for t in raw.split() if "@" in t]
    return list(dict.fromkeys(found))


def id_key(message_id: str) -> str:
    """How a Message-ID is stored as an external id (short enough for every column)."""
    if len(message_id) <= _MAX_ID:
        return message_id
    return hashlib.sha256(message_id.encode()).hexdigest()[:40] + "@long-id" + SYNTHETIC_DOMAIN


def is_real_id(key: str) -> bool:
    return "@" in key and not key.endswith(SYNTHETIC_DOMAIN)


# -- subjects ---------------------------------------------------------------------------------

_REPLY_PREFIX = re.compile(r"^\s*(re|aw|sv|antw|回复|回覆|答复)\s*(\[\d+\]|\(\d+\))?\s*[:：]\s*",
                           re.IGNORECASE)


def base_subject(subject: str | None) -> str:
    """The subject without any reply prefixes ("Re: RE: 回复: x" -> "x")."""
    s = (subject or "").strip()
    while (m := _REPLY_PREFIX.match(s)) is not None:
        s = s[m.end():]
    return s


def reply_subject(subject: str | None) -> str:
    base = base_subject(subject)
    return f"Re: {base}" if base else "Re:"


# -- HTML to text ------------------------------------------------------------------------------

_PARAGRAPHS = {"p", "blockquote", "table", "pre", "h1", "h2", "h3", "h4", "h5", "h6", "ul", "ol"}
_BLOCKS = {"p", "div", "br", "tr", "table", "ul", "ol", "li", "pre", "hr", "section", "article",
           "header", "footer", "blockquote", "dl", "dt", "dd", "address", "form", "fieldset",
           "h1", "h2", "h3", "h4", "h5", "h6"}
_SKIPPED = {"script", "style", "head", "template", "title", "noscript", "svg", "object"}


class _Text(HTMLParser):
    """Readable text of an HTML document: block elements break lines, quoted blocks get "> "
    (so they fold like plain-text quotes), link targets follow their text, markup goes."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.lines: list[str] = []
        self.line: list[str] = []
        self.depth = 0  # blockquote nesting
        self.line_depth = 0
        self.skipping = 0
        self.pre = 0
        self.links: list[tuple[str, int]] = []  # (href, length of the text before the link)

    def _break(self, kind: str = "line") -> None:
        """End the line. A paragraph also leaves one blank line; a <br> breaks even an empty
        line (two make a blank line); any other block only ends a line that has text."""
        text = "".join(self.line).strip() if not self.pre else "".join(self.line).rstrip()
        if text:
            self.lines.append(("> " * self.line_depth + text).rstrip())
        if (kind == "paragraph" and self.lines and self.lines[-1].strip("> ")) or (
                kind == "br" and not text):
            self.lines.append(">" * self.line_depth)
        self.line = []
        self.line_depth = self.depth

    def _block(self, tag: str) -> None:
        self._break("br" if tag == "br" else "paragraph" if tag in _PARAGRAPHS else "line")

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIPPED:
            self.skipping += 1
            return
        if tag in _BLOCKS:
            self._block(tag)
        if tag == "blockquote":
            self.depth += 1
            self.line_depth = self.depth
        elif tag == "pre":
            self.pre += 1
        elif tag == "li":
            self.line.append("- ")
        elif tag == "a":
            href = dict(attrs).get("href") or ""
            self.links.append((href, len("".join(self.line))))
        elif tag in ("td", "th") and self.line:
            self.line.append("\t")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _BLOCKS:
            self._block(tag)
        elif tag == "img" and not self.skipping:
            alt = (dict(attrs).get("alt") or "").strip()
            if alt:
                self.line.append(f"[{alt}]")

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIPPED:
            self.skipping = max(0, self.skipping - 1)
            return
        if tag == "a" and self.links:
            href, start = self.links.pop()
            text = "".join(self.line)[start:].strip()
            if re.match(r"(?i)https?://", href) and href not in text:
                self.line.append(f" <{href}>")
        if tag in _BLOCKS:
            self._block(tag)
        if tag == "blockquote":
            self.depth = max(0, self.depth - 1)
        elif tag == "pre":
            self.pre = max(0, self.pre - 1)

    def handle_data(self, data: str) -> None:
        if self.skipping:
            return
        if self.pre:
            for i, piece in enumerate(data.split("\n")):
                if i:
                    self._break("br")
                self.line.append(piece)
            return
        text = re.sub(r"\s+", " ", data)
        if not self.line or "".join(self.line).endswith((" ", "\t")):
            text = text.lstrip()
        self.line.append(text)

    def text(self) -> str:
        self.close()
        self._break()
        return re.sub(r"\n{3,}", "\n\n", "\n".join(self.lines)).strip()


def html_to_text(html: str) -> str:
    """Text to show for an HTML-only mail; nothing of the markup survives."""
    parser = _Text()
    parser.feed(html)
    return parser.text()


# -- quoted text -------------------------------------------------------------------------------

# (pattern, whether a ">" quote must follow): "On Monday I wrote:" in running text is no
# attribution, while Chinese clients often put the earlier mail below "在…写道:" unquoted.
_ATTRIBUTION = [
    (re.compile(r"^\s*On\b.{0,300}\bwrote\s*:\s*$", re.IGNORECASE | re.DOTALL), True),
    (re.compile(r"^\s*[在於].{0,300}[写寫]道\s*[:：]\s*$", re.DOTALL), False),
    # Gmail "王芳 <…> 于2026年11月23日周一 10:00写道:", Apple Mail "2026年11月23日 10:00,王芳 写道:"
    (re.compile(r"^.{0,300}\d{4}\s*年.{0,200}[写寫]道\s*[:：]\s*$", re.DOTALL), False),
]
_SEPARATOR = re.compile(
    r"^\s*(-{2,}\s*(Original Message|原始邮件|原始郵件)\s*-{2,}"
    r"|_{10,})\s*$", re.IGNORECASE)
_HEADER_FROM = re.compile(r"^\s*\**(From|发件人|寄件者|寄件人)\**\s*[:：]", re.IGNORECASE)
_HEADER_NEXT = re.compile(
    r"^\s*\**(Sent|Date|To|发送时间|日期|时间|收件人|寄件日期|收件者)\**\s*[:：]", re.IGNORECASE)


def _quote_starts(lines: list[str]) -> int | None:
    """Index of the line where the quoted earlier mail starts, if any."""
    for i, line in enumerate(lines):
        if line.lstrip().startswith(">"):
            continue
        if _SEPARATOR.match(line):
            return i
        if _HEADER_FROM.match(line) and any(_HEADER_NEXT.match(n) for n in lines[i + 1:i + 4]):
            return i  # Outlook's "From: / Sent: / To:" block
        for span in (1, 2):  # Gmail wraps a long attribution over two lines
            joined = " ".join(lines[i:i + span])
            for pattern, needs_quote in _ATTRIBUTION:
                if i + span <= len(lines) and pattern.match(joined):
                    following = [n for n in lines[i + span:] if n.strip()]
                    if not needs_quote or not following or following[0].lstrip().startswith(">"):
                        return i
    return None


def visible_text(text: str) -> str | None:
    """What to show of a reply: the text above the quoted earlier mail, without `>` lines.
    None when nothing is folded (or folding would leave nothing to show)."""
    lines = text.splitlines()
    cut = _quote_starts(lines)
    kept = lines if cut is None else lines[:cut]
    kept = [line for line in kept if not line.lstrip().startswith(">")]
    visible = re.sub(r"\n{3,}", "\n\n", "\n".join(kept)).strip()
    if not visible or visible == text.strip():
        return None
    return visible


# -- the whole mail ----------------------------------------------------------------------------


@dataclass
class ParsedMail:
    message_id: str | None  # as sent, without brackets
    key: str  # the external id: the Message-ID, or a digest of the bytes when there is none
    subject: str
    from_name: str | None
    from_address: str | None  # normalised, or None when the From header has no usable address
    to: list[str]
    cc: list[str]
    in_reply_to: list[str]
    references: list[str]  # oldest first, as sent
    text: str
    visible: str | None
    from_html: bool
    attachments: list[AttachmentIn] = field(default_factory=list)
    automatic: bool = False  # an auto-reply, a list or bulk mail: never answered automatically
    date: str | None = None

    @property
    def thread_ids(self) -> list[str]:
        """Earlier messages this one answers, the most specific first."""
        return list(dict.fromkeys([*self.in_reply_to, *reversed(self.references)]))


def parse_mail(raw: bytes) -> ParsedMail:
    msg = BytesParser(policy=policy.default).parsebytes(raw)
    assert isinstance(msg, EmailMessage)

    def header(name: str) -> str | None:
        value = raw_header(msg, name)
        return None if value is None else decode_header_value(value)

    from_raw = raw_header(msg, "from") or ""
    name_raw, address = parseaddr(re.sub(r"\r?\n(?=[ \t])", "", from_raw))
    from_name = decode_header_value(name_raw) if name_raw else None
    ids = message_ids(raw_header(msg, "message-id"))
    message_id = ids[0] if ids else None
    key = (id_key(message_id) if message_id else
           hashlib.sha256(raw).hexdigest()[:40] + "@no-message-id" + SYNTHETIC_DOMAIN)

    text, html_used, body_parts = _body(msg)
    attachments, extra = _attachments(msg, body_parts)
    if extra:
        text = "\n\n".join([text, *extra]) if text else "\n\n".join(extra)
    text = clean(text)
    return ParsedMail(
        message_id=message_id, key=key, subject=(header("subject") or "")[:300],
        from_name=from_name or None, from_address=try_normalize_email(address or ""),
        to=_addresses(msg, "to"), cc=_addresses(msg, "cc"),
        in_reply_to=[id_key(i) for i in message_ids(raw_header(msg, "in-reply-to"))],
        references=[id_key(i) for i in message_ids(raw_header(msg, "references"))
                    ][-MAX_REFERENCES:],
        text=text, visible=visible_text(text), from_html=html_used, attachments=attachments,
        automatic=_automatic(msg), date=header("date"),
    )


def _addresses(msg: Message, name: str) -> list[str]:
    raws = [v for k, v in msg.raw_items() if k.lower() == name]
    found = []
    for _, address in getaddresses([re.sub(r"\r?\n(?=[ \t])", "", str(r)) for r in raws]):
        normalised = try_normalize_email(address)
        if normalised:
            found.append(normalised)
    return found


def _automatic(msg: Message) -> bool:
    """RFC 3834: auto-replies, lists and bulk mail must not be answered by a machine."""
    auto = (raw_header(msg, "auto-submitted") or "no").strip().lower()
    precedence = (raw_header(msg, "precedence") or "").strip().lower()
    suppress = (raw_header(msg, "x-auto-response-suppress") or "").lower()
    return (
        auto != "no"
        or precedence in ("bulk", "junk", "list", "auto_reply")
        or any(raw_header(msg, h) is not None
               for h in ("list-id", "list-unsubscribe", "x-autoreply", "x-autorespond"))
        or any(w in suppress for w in ("all", "autoreply", "oof"))
    )


def _part_text(part: Message) -> str:
    data = part.get_payload(decode=True)
    if not isinstance(data, bytes):
        return ""
    charset = part.get_content_charset()
    if charset is None and part.get_content_subtype() == "html":
        m = re.search(rb"""<meta[^>]+charset=["']?([\w.:-]+)""", data[:4096], re.IGNORECASE)
        charset = m.group(1).decode("ascii") if m else None
    return decode_bytes(data, charset).replace("\r\n", "\n").replace("\r", "\n")


def _body(msg: EmailMessage) -> tuple[str, bool, list[Message]]:
    """(text, whether it came from HTML, the parts used for it): text/plain when it says
    anything, else the HTML alternative converted to text."""
    plain = msg.get_body(preferencelist=("plain",))
    html = msg.get_body(preferencelist=("html",))
    used = [p for p in (plain, html) if p is not None]
    if plain is not None:
        text = _part_text(plain).strip()
        if text or html is None:
            return text, False, used
    if html is not None:
        return html_to_text(_part_text(html)), True, used
    return "", False, used


def _filename(part: Message) -> str | None:
    for header, param in (("content-disposition", "filename"), ("content-type", "name")):
        raw = raw_header(part, header)
        if raw is None:
            continue
        holder = Message()  # compat32 leaves the parameter as sent, for decoding here
        holder[header] = raw
        value: Any = holder.get_param(param, header=header)
        if value is None:
            continue
        if isinstance(value, tuple):  # RFC 2231: (charset, language, %-decoded text)
            charset, _language, text = value
            name = decode_bytes(str(text).encode("raw-unicode-escape"), charset)
        else:
            name = decode_header_value(str(value))
        name = re.split(r"[\\/]", clean(name))[-1]
        name = re.sub(r"[\x00-\x1f\x7f]", "", name).strip()
        if name:
            return name[:255]
    return None


def _attachments(
    msg: EmailMessage, body_parts: list[Message]
) -> tuple[list[AttachmentIn], list[str]]:
    """Every attached or inline file (pasted screenshots too), and any further inline text
    (Apple Mail splits a body around an inline image)."""
    found: list[AttachmentIn] = []
    extra_text: list[str] = []

    def visit(part: Message, in_alternative: bool) -> None:
        ctype = part.get_content_type()
        if part.is_multipart() and part.get_content_maintype() == "multipart":
            for child in part.iter_parts():  # type: ignore[attr-defined]
                visit(child, in_alternative or ctype == "multipart/alternative")
            return
        if any(part is p for p in body_parts):
            return
        filename = _filename(part)
        disposition = part.get_content_disposition()
        if ctype == "message/rfc822":
            inner = part.get_payload(0)
            content = inner.as_bytes() if isinstance(inner, Message) else b""
            found.append(AttachmentIn(filename or "message.eml", ctype, content))
            return
        if filename is None and disposition != "attachment" and ctype in ("text/plain",
                                                                          "text/html"):
            if ctype == "text/plain" and not in_alternative:
                extra = _part_text(part).strip()
                if extra:
                    extra_text.append(extra)
            return  # another rendering of the body
        data = part.get_payload(decode=True)
        if isinstance(data, bytes):
            content = data
        else:  # message/delivery-status and the like hold header blocks, not a payload
            blocks = part.get_payload()
            content = b"".join(b.as_bytes() for b in blocks if isinstance(b, Message)) \
                if isinstance(blocks, list) else b""
        if filename is None:
            extension = mimetypes.guess_extension(ctype) or {
                "text": ".txt", "message": ".txt"}.get(part.get_content_maintype(), ".bin")
            filename = f"part-{len(found) + 1}{extension}"
        found.append(AttachmentIn(filename, ctype[:128], content))

    visit(msg, False)
    return found, extra_text
