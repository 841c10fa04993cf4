"""Settings from `CC_*` environment variables or a `.env` file."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CC_", env_file=".env", extra="ignore")

    # No URL -> the embedded default: a SQLite file here and an in-process broker.
    database_url: str | None = None
    redis_url: str | None = None
    redis_prefix: str = "cc"  # keys and channels; lets deployments share one Redis
    sqlite_path: Path = Path("contactcenter.db")

    host: str = "127.0.0.1"
    port: int = 8080
    public_url: str = "http://127.0.0.1:8080"
    node_id: str | None = None  # defaults to host:port:pid

    timezone: str = "Asia/Shanghai"
    token_ttl_hours: float = 12.0

    # Routing defaults; queues override the per-queue ones.
    offer_timeout_seconds: float = 15.0
    wrapup_seconds: float = 60.0
    tier_boost: dict[str, float] = Field(default_factory=lambda: {"A": 30, "B": 20, "C": 0, "D": 0})
    aging_per_minute: float = 1.0
    max_missed_offers: int = 3
    heartbeat_seconds: float = 10.0  # websocket ping; presence expires after 3 missed

    # Twilio: webhooks are signed with the auth token over CC_PUBLIC_URL + path.
    twilio_account_sid: str | None = None
    twilio_auth_token: str | None = None
    twilio_api_base: str | None = None  # e.g. a fake Twilio on loopback in tests
    sms_from: str | None = None  # our number for automated SMS (greetings), E.164
    sms_conversation_hours: float = 24.0  # an SMS within this joins the open conversation
    ivr_file: Path | None = None  # IVR menus per called number; default channels/ivr.toml
    callback_offer_seconds: float = 120.0  # waiting callers may then press 1 for a callback

    # Email in (our SMTP server) and out (a relay).
    inbound_smtp_host: str = "127.0.0.1"
    inbound_smtp_port: int = 2525
    inbound_smtp_max_bytes: int = 10 * 1024 * 1024
    email_domain: str = "support.example.com"  # we accept mail for it; reply+<token>@ it
    email_address: str = "support@support.example.com"  # From: of our mail
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 25
    smtp_username: str | None = None
    smtp_password: str | None = None
    smtp_starttls: bool = False

    # Web chat: the sites (scheme://host[:port]) that may embed the widget; empty = any site.
    chat_allowed_origins: list[str] = Field(default_factory=list)

    # How often each node looks for due scheduled work; 0: this node runs none (another does).
    scheduler_seconds: float = Field(default=30.0, ge=0)
    # Offer the periodic account jobs (regrade, health sweep, selections) from this node's loop;
    # each runs once per period on one node anyway. False keeps heavy jobs off a node.
    periodic_jobs: bool = True
    rules_file: Path | None = None  # callback rules; default contactcenter/rules/default_rules.toml
    company_name: str = "contactcenter"  # {{ company }} in message templates
    messages_file: Path | None = None  # a company's copy of contactcenter/messages.toml
    # Pauses between attempts to send an outbound message; then it is marked failed.
    send_retry_seconds: list[float] = Field(default_factory=lambda: [2.0, 10.0, 60.0])

    log_level: str = "INFO"

    def resolved_database_url(self) -> str:
        if self.database_url:
            return _async_driver(self.database_url)
        return f"sqlite+aiosqlite:///{self.sqlite_path}"


def _async_driver(url: str) -> str:
    """Accept the plain URLs people paste (postgresql://…) and pick the async driver."""
    for plain, async_ in (
        ("postgresql://", "postgresql+asyncpg://"),
        ("postgres://", "postgresql+asyncpg://"),
        ("sqlite://", "sqlite+aiosqlite://"),
    ):
        if url.startswith(plain):
            return async_ + url[len(plain) :]
    return url
