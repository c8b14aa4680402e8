"""Settings read from ``ERRAND_*`` environment variables."""

import base64
import hashlib
import hmac
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from errand.kit.crypto import load_or_create_key


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ERRAND_", extra="ignore")

    data_dir: Path = Path("./var")
    database_url: str | None = None
    redis_url: str | None = None
    # Fernet key for personal data at rest; generated into data_dir on first use when unset.
    secret_key: str | None = None
    host: str = "127.0.0.1"
    port: int = 3000
    # Run background work (approval expiry, job pickup) in the API process itself.
    worker: bool = True
    # Jobs the in-process runner executes at once.
    job_concurrency: int = Field(default=8, ge=1, le=64)
    # Who runs execution jobs: the API process itself (``inprocess``), or any number of
    # ``errand worker`` processes consuming a procrastinate queue on the same PostgreSQL.
    runner: Literal["inprocess", "procrastinate"] = "inprocess"
    # On SIGTERM a procrastinate worker stops taking jobs and waits this long for running
    # ones; jobs still running then are aborted and recovered (re-run) by another worker.
    worker_shutdown_seconds: float = Field(default=30.0, ge=0)
    # Where providers reach the sandbox marketplace over HTTP; defaults to this server.
    sandbox_url: str | None = None
    # Whether ``errand serve`` mounts the sandbox itself; None: unless ``sandbox_url`` names
    # another server (see ``sandbox_embedded_here``).
    sandbox_embedded: bool | None = None
    # The database of a sandbox served alone (``errand sandbox``); its own SQLite file by default.
    sandbox_database_url: str | None = None
    # Injected sandbox faults per provider, JSON in ERRAND_SANDBOX_FAULTS, e.g.
    # {"sandbox-air": {"latency_ms": 200, "error_rate": 0.1}} (see errand.sandbox.faults).
    sandbox_faults: dict[str, dict[str, Any]] = {}
    # How long a hold placed through a sandbox web site waits for payment at its checkout page.
    sandbox_hold_ttl_seconds: int = Field(default=900, ge=1, le=86_400)
    # Master secret from which each provider's Standard Webhooks secret (``whsec_…``) for the
    # provider events it sends Errand is derived; the data dir's key when unset.
    provider_events_secret: str | None = None
    # Where the sandbox POSTs those provider events; by default this server's own
    # http://{host}:{port}/api/v1/provider-events. Never taken from a request.
    provider_events_url: str | None = None
    # How long an Idempotency-Key replays its first answer (Stripe keeps keys 24 h).
    idempotency_ttl_hours: int = Field(default=24, ge=1, le=24 * 30)
    # How long a concurrent duplicate waits for the first request before answering 409.
    idempotency_wait_seconds: float = Field(default=5.0, ge=0, le=60)
    # An in-progress idempotency claim older than this is presumed dead and may be taken over.
    idempotency_stale_seconds: float = Field(default=60.0, ge=1)
    approval_ttl_minutes: int = 120
    provider_timeout_seconds: float = 10.0
    # The browser the web-site providers drive: Debian's Chromium, never a downloaded one.
    # When it cannot be launched, the planner skips browser providers (browser_unavailable).
    browser_path: str = "/usr/bin/chromium"
    # Browser contexts (one per job step) open at once in this process; more jobs wait.
    browser_contexts: int = Field(default=4, ge=1, le=64)
    log_level: str = "INFO"
    default_rate_limit_per_day: int = Field(default=10_000, ge=1)
    # How long this process trusts an API key it read from the database without asking again. A
    # revocation made in this process is seen at once; one made by another process (`errand
    # revoke-api-key`, another worker) within this bound, at most 1 s as the contract promises for
    # revoked keys. 0 turns the cache off. (Policies need no such bound: every process sees a
    # change before its next action, errand.guard.policy_cache.)
    auth_cache_seconds: float = Field(default=1.0, ge=0, le=1)
    # How often API keys' last-use times are written (in one transaction, off the request path).
    last_used_flush_seconds: float = Field(default=5.0, gt=0, le=300)
    # Per provider id, the Standard Webhooks secret (``whsec_…``) its provider events are
    # signed with, JSON in ERRAND_PROVIDER_EVENTS_SECRETS; others are derived (see
    # provider_events_signing_secret).
    provider_events_secrets: dict[str, str] = {}
    # Outbound webhooks (errand.webhooks, docs/webhooks.md). Hosts (comma-separated, exact,
    # case-insensitive) a webhook URL may name although they resolve to private, loopback or
    # link-local addresses: for development and tests only (ERRAND_WEBHOOK_ALLOWED_HOSTS).
    webhook_allowed_hosts: str = ""
    # Seconds to wait before each retry of a failed delivery, comma-separated; empty is the
    # Standard Webhooks schedule (5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h after the first,
    # immediate attempt). Tests shorten it (ERRAND_WEBHOOK_RETRY_SCHEDULE=0.2,0.2).
    webhook_retry_schedule: str = ""
    # An endpoint is disabled after this many consecutive deliveries failed every attempt.
    webhook_disable_after_failures: int = Field(default=5, ge=1, le=1000)

    @field_validator("webhook_retry_schedule")
    @classmethod
    def _retry_schedule(cls, value: str) -> str:
        try:
            delays = [float(part) for part in value.split(",") if part.strip()]
        except ValueError:
            raise ValueError("ERRAND_WEBHOOK_RETRY_SCHEDULE: comma-separated seconds, e.g. 5,300,1800") from None
        if any(not 0 <= delay <= 7 * 86400 for delay in delays) or len(delays) > 20:
            raise ValueError("ERRAND_WEBHOOK_RETRY_SCHEDULE: at most 20 delays, each 0 to 604800 seconds")
        return value

    @property
    def webhook_retry_delays(self) -> tuple[float, ...]:
        """Seconds before each retry of a webhook delivery (the first attempt is immediate)."""
        delays = tuple(float(part) for part in self.webhook_retry_schedule.split(",") if part.strip())
        return delays or (5.0, 300.0, 1800.0, 7200.0, 18000.0, 36000.0, 36000.0)

    @property
    def webhook_allowed_host_set(self) -> frozenset[str]:
        """ERRAND_WEBHOOK_ALLOWED_HOSTS as lower-case host names (IPv6 literals without brackets)."""
        return frozenset(host.strip().strip("[]").lower() for host in self.webhook_allowed_hosts.split(",")
                         if host.strip())

    # Automations' notification step (errand.notify, docs/notifications.md). E-mail goes through
    # this SMTP server; unset, a step that e-mails fails at once with channel_not_configured.
    smtp_host: str | None = None
    smtp_port: int = Field(default=587, ge=1, le=65535)
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    # STARTTLS after connecting (port 587); ERRAND_SMTP_TLS instead for implicit TLS (port 465).
    smtp_starttls: bool = True
    smtp_tls: bool = False
    smtp_from: str = "Errand <errand@localhost>"
    # SMS through an HTTP API in Twilio's shape: POST {sms_url}/2010-04-01/Accounts/{sms_account}/
    # Messages.json with basic auth account:token. Unset URL and token: the sandbox's fake provider.
    sms_url: str | None = None
    sms_account: str = "ACsandbox"
    sms_token: SecretStr | None = None
    sms_from: str = "+15550001000"
    # Chat through Slack's Web API shape: POST {chat_url}/api/chat.postMessage with a Bearer token.
    # Unset URL and token: the sandbox's fake chat API.
    chat_url: str | None = None
    chat_token: SecretStr | None = None
    # Master secret from which each organization's webhook notification secret (whsec_…) is
    # derived; the data dir's key when unset (see notify_webhook_signing_secret).
    notify_webhook_secret: SecretStr | None = None

    @property
    def effective_sms_url(self) -> str:
        """Where SMS are posted: ``sms_url``, else the sandbox's fake provider (``{sandbox}/sms``)."""
        return (self.sms_url or self.effective_sandbox_url.rstrip("/") + "/sms").rstrip("/")

    @property
    def effective_chat_url(self) -> str:
        """Where chat messages are posted: ``chat_url``, else the sandbox's fake chat API (``{sandbox}/chat``)."""
        return (self.chat_url or self.effective_sandbox_url.rstrip("/") + "/chat").rstrip("/")

    def effective_sms_token(self) -> str:
        """The SMS API's auth token: ``sms_token``, else the sandbox's (which its fake provider checks)."""
        return self.sms_token.get_secret_value() if self.sms_token else self.sandbox_api_token("sandbox-sms")

    def effective_chat_token(self) -> str:
        """The chat API's bearer token: ``chat_token``, else the sandbox's (which its fake chat API checks)."""
        return self.chat_token.get_secret_value() if self.chat_token else self.sandbox_api_token("sandbox-chat")

    def notify_webhook_signing_secret(self, organization_id: str) -> str:
        """The ``whsec_`` secret signing an organization's webhook notifications: HMAC-SHA256 of
        ``"notify-webhook:" + organization_id`` under ``notify_webhook_secret`` or the data dir's key.
        One per organization, so one organization's receiver cannot forge another's messages;
        ``errand set-contact --org NAME --show-webhook-secret`` prints it."""
        master = self.notify_webhook_secret.get_secret_value() if self.notify_webhook_secret else None
        return "whsec_" + base64.b64encode(self._derived("notify-webhook", organization_id, master)).decode()

    # Active custom agents (automations) an organization may have at once: activating one more
    # answers 429 agent_limit_reached (the contract's "subscription tier limit").
    automations_agent_limit: int = Field(default=25, ge=0)
    # The LLM that automations' ai_reason steps reason with (docs/llm.md, issue 12 "Steps"):
    # ``none`` (the default) makes such a step fail with llm_not_configured, never a made-up answer.
    llm_provider: Literal["none", "openai", "anthropic", "openai-compatible"] = "none"
    # The provider's API base URL; required for openai-compatible (e.g. http://127.0.0.1:11434/v1).
    llm_base_url: str | None = None
    # A secret: shown as ********** in reprs, never logged (unset: the SDK's OPENAI_API_KEY/ANTHROPIC_API_KEY).
    llm_api_key: SecretStr | None = None
    # One model name per tier; unset: the provider's default (errand.llm.schemas.DEFAULT_MODELS).
    llm_model_quick: str | None = None
    llm_model_standard: str | None = None
    llm_model_premium: str | None = None
    llm_model_expert: str | None = None
    # The longest one ai_reason call may take, every request and retry included.
    llm_timeout_seconds: float = Field(default=60.0, gt=0, le=3600)

    @model_validator(mode="after")
    def _llm_compatible_needs_base_url(self) -> "Settings":
        if self.llm_provider == "openai-compatible" and not self.llm_base_url:
            raise ValueError("ERRAND_LLM_PROVIDER=openai-compatible needs ERRAND_LLM_BASE_URL (the server's /v1 URL)")
        return self

    @field_validator("provider_events_secrets")
    @classmethod
    def _whsec_secrets(cls, secrets: dict[str, str]) -> dict[str, str]:
        for provider_id, secret in secrets.items():
            try:
                key = base64.b64decode(secret.removeprefix("whsec_"), validate=True)
            except ValueError:
                key = b""
            if not secret.startswith("whsec_") or len(key) < 16:
                raise ValueError(f"the provider events secret of {provider_id!r} must be whsec_ and the base64 "
                                 "of at least 16 bytes")
        return secrets

    @model_validator(mode="after")
    def _runner_needs_postgres(self) -> "Settings":
        if self.runner == "procrastinate" and not self.effective_database_url.startswith("postgresql"):
            raise ValueError(
                "ERRAND_RUNNER=procrastinate needs PostgreSQL: set ERRAND_DATABASE_URL=postgresql+asyncpg://… "
                "(the database is SQLite now), or use ERRAND_RUNNER=inprocess"
            )
        return self

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'errand.db').resolve()}"

    @property
    def effective_sandbox_url(self) -> str:
        return self.sandbox_url or f"http://127.0.0.1:{self.port}/sandbox"

    @property
    def sandbox_embedded_here(self) -> bool:
        """Whether this server mounts the sandbox at ``/sandbox`` (and runs its hold sweep).

        ``sandbox_embedded`` when set; otherwise yes unless ``sandbox_url`` names another server
        (one served by ``errand sandbox``): a URL on this server's own port, at this server's
        host or the loopback address, with the path ``/sandbox``, is still this server.
        """
        if self.sandbox_embedded is not None:
            return self.sandbox_embedded
        if not self.sandbox_url:
            return True
        url = urlsplit(self.sandbox_url)
        try:
            port = url.port or {"http": 80, "https": 443}.get(url.scheme)
        except ValueError:
            return False
        own_hosts = {"127.0.0.1", "localhost", "::1", self.host.strip("[]")}
        return url.hostname in own_hosts and port == self.port and url.path.rstrip("/") == "/sandbox"

    @property
    def effective_sandbox_database_url(self) -> str:
        """The database of a sandbox served alone: ``sandbox_database_url``, else ``data_dir/sandbox.db``.

        Its own file rather than Errand's, so two processes do not contend for one SQLite writer.
        """
        if self.sandbox_database_url:
            return self.sandbox_database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'sandbox.db').resolve()}"

    @property
    def effective_provider_events_url(self) -> str:
        """Where provider events go: ``provider_events_url``, else this server's own receiver.

        Built from configuration only (``host``, ``port``), never from a request's ``Host``,
        so nobody can send a payment notification elsewhere. A wildcard bind address
        (``0.0.0.0``, ``::``) is reached on the loopback address.
        """
        if self.provider_events_url:
            return self.provider_events_url
        host = {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "[::1]"}.get(self.host, self.host)
        if ":" in host and not host.startswith("["):
            host = f"[{host}]"
        return f"http://{host}:{self.port}/api/v1/provider-events"

    def _derived(self, purpose: str, provider_id: str, master: str | None = None) -> bytes:
        """HMAC-SHA256 of ``purpose:provider_id`` under ``master`` or the data dir's secret key."""
        key = master or load_or_create_key(self.secret_key, self.data_dir)
        return hmac.new(key.encode(), f"{purpose}:{provider_id}".encode(), hashlib.sha256).digest()

    def provider_events_signing_secret(self, provider_id: str) -> str:
        """The ``whsec_`` secret with which ``provider_id`` signs its provider events, and Errand verifies them.

        One secret per provider, so that one provider cannot speak for another:
        ``provider_events_secrets[provider_id]`` when configured; otherwise derived as
        HMAC-SHA256(``provider_events_secret`` or the data dir's key (created on first use),
        ``"provider-events:" + provider_id``), so the processes of one deployment agree without
        configuration and no fixed value is ever trusted.
        """
        if provider_id in self.provider_events_secrets:
            return self.provider_events_secrets[provider_id]
        derived = self._derived("provider-events", provider_id, self.provider_events_secret)
        return "whsec_" + base64.b64encode(derived).decode()

    def sandbox_api_token(self, provider_id: str) -> str:
        """The bearer token Errand presents to the sandbox provider ``provider_id``'s JSON API, and the sandbox checks.

        Derived per provider as HMAC-SHA256(data dir's key, ``"sandbox-api:" + provider_id``):
        a token for one provider opens no other provider's API.
        """
        return "sbx_" + self._derived("sandbox-api", provider_id).hex()


@lru_cache
def get_settings() -> Settings:
    return Settings()
