"""Settings read from ``ERRAND_*`` environment variables."""

from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


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
    # Where providers reach the sandbox marketplace over HTTP; defaults to this server.
    sandbox_url: str | None = None
    idempotency_ttl_hours: int = 24
    # How long a concurrent duplicate waits for the first request before answering 409.
    idempotency_wait_seconds: float = 5.0
    # An in-progress idempotency claim older than this is presumed dead and may be taken over.
    idempotency_stale_seconds: float = 60.0
    approval_ttl_minutes: int = 120
    provider_timeout_seconds: float = 10.0
    log_level: str = "INFO"
    default_rate_limit_per_day: int = Field(default=10_000, ge=1)

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'errand.db').resolve()}"

    @property
    def effective_sandbox_url(self) -> str:
        return self.sandbox_url or f"http://127.0.0.1:{self.port}/sandbox"


@lru_cache
def get_settings() -> Settings:
    return Settings()
