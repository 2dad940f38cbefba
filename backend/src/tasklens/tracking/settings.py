"""The settings the library reads (`TASKLENS_*` variables and `.env`), each defined and
validated once: the server's `Settings` extends this class."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from tasklens.tracking.database import DEFAULT_SCHEMA, check_schema_name

DEFAULT_DATA_DIR = Path("data")


class TrackingSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="TASKLENS_", env_file=".env", extra="ignore", frozen=True
    )

    database_url: str = Field(
        default=f"sqlite+aiosqlite:///./{DEFAULT_DATA_DIR}/tasklens.db",
        description="SQLAlchemy async URL: sqlite+aiosqlite:///… or postgresql+asyncpg://…",
    )
    redis_url: str | None = Field(
        default=None, description="Unset = embedded mode; redis://… = distributed mode."
    )
    db_schema: str = Field(
        default=DEFAULT_SCHEMA,
        description="PostgreSQL schema holding every TaskLens table and its Alembic version "
        "table, apart from the app's own (SQLite has no schemas: there TaskLens's names all "
        "start with `tasklens_`)",
    )
    event_flush_interval_ms: int = Field(default=25, ge=1, le=10_000)
    log_write_interval_ms: int = Field(default=100, ge=1, le=60_000)
    log_batch_size: int = Field(default=500, ge=1, le=100_000)
    log_buffer_max: int = Field(default=200_000, ge=100)
    redact_keys: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Comma-separated words added to the sensitive key words: a param or "
        "result key containing one is stored and broadcast as ***",
    )
    result_max_chars: int = Field(
        default=64_000,
        ge=1_000,
        le=10_000_000,
        description="A task result longer than this as JSON is stored cut short, marked truncated",
    )

    @field_validator("database_url")
    @classmethod
    def _known_database(cls, value: str) -> str:
        if not value.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
            raise ValueError("must start with sqlite+aiosqlite:// or postgresql+asyncpg://")
        return value

    @field_validator("db_schema")
    @classmethod
    def _own_schema(cls, value: str) -> str:
        return check_schema_name(value)

    @field_validator("redis_url")
    @classmethod
    def _known_redis(cls, value: str | None) -> str | None:
        if value in (None, ""):
            return None
        if not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must start with redis://, rediss:// or unix://")
        return value

    @field_validator("redact_keys", mode="before")
    @classmethod
    def _split_words(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip().lower() for part in value.split(",") if part.strip()]
        return value

    @field_validator("redact_keys")
    @classmethod
    def _plain_words(cls, value: list[str]) -> list[str]:
        for word in value:
            if len(word) < 2 or not all(c.isalnum() or c in "_-" for c in word):
                raise ValueError(f"{word!r}: a key word is 2+ letters, digits, _ or -")
        return [word.lower() for word in value]
