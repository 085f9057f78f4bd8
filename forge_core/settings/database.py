"""Where the Platform API keeps its state: a SQLite file by default, PostgreSQL in a fleet."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator

SUPPORTED_DRIVERS = ("sqlite+aiosqlite", "postgresql+asyncpg")
DEFAULT_STATE_DIR = Path.home() / ".local" / "state" / "catalyst-forge"


class DatabaseSettings(BaseModel):
    """The database URL (async SQLAlchemy drivers) and the pool size for PostgreSQL."""

    model_config = ConfigDict(extra="forbid")

    url: str | None = Field(
        default=None,
        description="SQLAlchemy URL: 'postgresql+asyncpg://user@host/db' or "
        "'sqlite+aiosqlite:///path'. Unset: a SQLite file in the state directory.",
    )
    state_dir: Path = Field(
        default=DEFAULT_STATE_DIR, description="Folder for the SQLite file and local keys."
    )
    pool_size: int = Field(
        default=10, ge=1, le=200, description="Connections per process (PostgreSQL)."
    )

    @field_validator("url")
    @classmethod
    def _known_driver(cls, value: str | None) -> str | None:
        if value is None:
            return None
        scheme = value.partition("://")[0]
        if scheme == "postgresql" or scheme == "postgres":
            return "postgresql+asyncpg://" + value.partition("://")[2]
        if scheme == "sqlite":
            return "sqlite+aiosqlite://" + value.partition("://")[2]
        if scheme not in SUPPORTED_DRIVERS:
            raise ValueError(
                f"unsupported database URL scheme {scheme!r}; "
                f"use one of {', '.join(SUPPORTED_DRIVERS)}"
            )
        return value

    def resolved_url(self) -> str:
        """The URL to connect to; the default SQLite file lives in ``state_dir``."""
        return self.url or f"sqlite+aiosqlite:///{self.state_dir / 'forge.db'}"
