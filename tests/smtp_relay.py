"""The outside world for the email channel: a local `aiosmtpd` relay that records what our
server sends (the `relay` fixture in conftest.py starts one per test)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser

from aiosmtpd.smtp import SMTP, Envelope, Session


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage

    def header(self, name: str) -> str:
        return str(self.message[name] or "")

    @property
    def text(self) -> str:
        body = self.message.get_body(preferencelist=("plain",))
        assert body is not None
        return body.get_content().replace("\r\n", "\n").strip()


class Relay:
    def __init__(self) -> None:
        self.received: asyncio.Queue[Received] = asyncio.Queue()
        self.refuse: set[str] = set()  # recipients this relay says do not exist
        self.port = 0
        self._server: asyncio.AbstractServer | None = None

    async def handle_RCPT(self, server: SMTP, session: Session, envelope: Envelope,
                          address: str, rcpt_options: list[str]) -> str:
        if address in self.refuse:
            return "550 5.1.1 no such user here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        message = BytesParser(policy=policy.default).parsebytes(envelope.original_content or b"")
        assert isinstance(message, EmailMessage)
        self.received.put_nowait(Received(envelope.mail_from or "", list(envelope.rcpt_tos),
                                          message))
        return "250 OK"

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: SMTP(self, hostname="relay.test", loop=loop), "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def next(self, timeout: float = 10.0) -> Received:
        return await asyncio.wait_for(self.received.get(), timeout)

    async def nothing_for(self, seconds: float) -> None:
        await asyncio.sleep(seconds)
        assert self.received.empty(), f"unexpected mail: {self.received.get_nowait()}"

    async def stop(self) -> None:
        assert self._server is not None
        self._server.close()
