"""The one typed settings object, read from the environment once.

Every field is documented under a heading of its environment variable in README.md
(``tests/config/test_settings_docs.py`` fails when one is missing).
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import secrets
from pathlib import Path
from typing import Annotated, Literal

from pydantic import (
    AliasChoices,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from sqlalchemy.engine import make_url


class SettingsError(Exception):
    """A setting has a bad value; the message names the variable and what it expects."""


def _env(name: str) -> AliasChoices:
    return AliasChoices(name)


class Settings(BaseSettings):
    """liveshop's configuration. Build it with :func:`load_settings`."""

    model_config = SettingsConfigDict(
        env_prefix="LIVESHOP_", extra="ignore", frozen=True, populate_by_name=True
    )

    database_url: str | None = Field(default=None, validation_alias=_env("DATABASE_URL"))
    redis_url: str | None = Field(default=None, validation_alias=_env("REDIS_URL"))
    data_dir: Path = Field(default=Path("data"))
    secret_key: str | None = Field(default=None, min_length=32)
    admin_secret: str | None = Field(default=None, min_length=12)
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    public_url: str | None = None
    token_ttl_s: int = Field(default=12 * 3600, ge=60, le=30 * 24 * 3600)
    max_body_bytes: int = Field(default=64 * 1024, ge=1024, le=16 * 1024 * 1024)
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_format: Literal["json", "text"] = "json"
    cart_hold_s: int = Field(default=600, ge=10, le=24 * 3600)
    payment_hold_s: int = Field(default=300, ge=10, le=3600)
    ice_servers: Annotated[list[str], NoDecode] = Field(default_factory=list)
    ice_host_addresses: Annotated[list[str], NoDecode] = Field(default_factory=list)
    # (visible ASCII: they travel in HTTP headers)
    turn_username: str | None = Field(default=None, max_length=200, pattern=r"^[!-~]+$")
    turn_credential: str | None = Field(default=None, max_length=200, pattern=r"^[!-~]+$")
    turn_secret: str | None = Field(default=None, min_length=16, max_length=200)
    turn_ttl_s: int = Field(default=24 * 3600, ge=60, le=7 * 24 * 3600)
    reconnect_grace_s: float = Field(default=30.0, ge=0, le=3600)
    ws_compression: bool = False
    recording_dir: Path | None = None
    hls: bool = True
    redis_max_connections: int = Field(default=200, ge=4, le=10_000)
    max_sockets_per_user: int = Field(default=5, ge=1, le=1000)
    max_sockets_per_address: int = Field(default=50, ge=1, le=1_000_000)
    request_read_timeout_s: float = Field(default=10.0, ge=0.5, le=300)
    max_header_bytes: int = Field(default=16 * 1024, ge=4096, le=1024 * 1024)
    payment_provider: Literal["test", "stripe"] = "test"
    # (visible ASCII: they travel in HTTP headers)
    stripe_secret_key: str | None = Field(default=None, max_length=500, pattern=r"^[!-~]+$")
    stripe_publishable_key: str | None = Field(default=None, max_length=500, pattern=r"^[!-~]+$")
    stripe_webhook_secret: str | None = Field(default=None, max_length=500, pattern=r"^[!-~]+$")
    stripe_api_base: str = Field(default="https://api.stripe.com", pattern=r"^https?://[!-~]+$")
    stripe_js_url: str = Field(default="https://js.stripe.com/v3/", pattern=r"^https?://[!-~]+$")
    webhook_timeout_s: float = Field(default=15.0, ge=0.1, le=120)
    webhook_max_age_s: float = Field(default=3 * 24 * 3600.0, ge=1, le=30 * 24 * 3600)
    webhook_retry_schedule_s: Annotated[list[float], NoDecode] = Field(
        default_factory=lambda: [0.0, 5.0, 300.0, 1800.0, 7200.0, 18000.0, 36000.0],
        min_length=1,
        max_length=50,
    )
    webhook_allow_private: bool = False
    questions_public: bool = False  # viewers' questions seen by all at once, not on approval
    auto_answers: bool = True  # questions the show's data settles are answered at once

    @field_validator("database_url")
    @classmethod
    def _check_database_url(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        if value.startswith("postgres://"):
            value = "postgresql+asyncpg://" + value.removeprefix("postgres://")
        elif value.startswith("postgresql://"):
            value = "postgresql+asyncpg://" + value.removeprefix("postgresql://")
        elif value.startswith("sqlite://") and not value.startswith("sqlite+aiosqlite://"):
            value = "sqlite+aiosqlite://" + value.removeprefix("sqlite://")
        if not value.startswith(("postgresql+asyncpg://", "sqlite+aiosqlite://")):
            raise ValueError("expected a sqlite:/// or postgresql:// URL")
        if value.startswith("sqlite"):
            url = make_url(value)
            mode = url.query.get("mode")
            modes = [mode] if isinstance(mode, str) else list(mode or ())
            if not url.database or ":memory:" in url.database or "memory" in modes:
                # every worker process and the order writer's own connection would each
                # get a database of their own: confirmed orders would not be where reads go
                raise ValueError("an in-memory SQLite database cannot be shared; give a file")
        return value

    @field_validator("redis_url")
    @classmethod
    def _check_redis_url(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        if not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("expected a redis://, rediss:// or unix:// URL")
        return value

    @field_validator("ice_servers", "ice_host_addresses", "webhook_retry_schedule_s", mode="before")
    @classmethod
    def _split_list(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("webhook_retry_schedule_s")
    @classmethod
    def _check_schedule(cls, value: list[float]) -> list[float]:
        if any(not 0 <= delay <= 7 * 24 * 3600 for delay in value):
            raise ValueError("expected delays from 0 to 604800 seconds")
        return value

    @field_validator("ice_host_addresses")
    @classmethod
    def _check_addresses(cls, value: list[str]) -> list[str]:
        for address in value:
            try:
                ipaddress.ip_address(address)
            except ValueError:
                raise ValueError(f"expected IP addresses, got {address!r}") from None
        return value

    @field_validator("ice_servers")
    @classmethod
    def _check_ice_servers(cls, value: list[str]) -> list[str]:
        for url in value:
            if not url.startswith(("stun:", "turn:", "turns:")):
                raise ValueError(f"expected stun:, turn: or turns: URLs, got {url!r}")
        return value

    @field_validator("turn_credential")
    @classmethod
    def _credential_needs_username(cls, value: str | None, info: ValidationInfo) -> str | None:
        if (value is None) != (info.data.get("turn_username") is None):
            raise ValueError("LIVESHOP_TURN_USERNAME and LIVESHOP_TURN_CREDENTIAL go together")
        return value

    @field_validator("turn_secret")
    @classmethod
    def _secret_or_static(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is not None and info.data.get("turn_username") is not None:
            raise ValueError("give a TURN shared secret or a static TURN credential, not both")
        return value

    @model_validator(mode="after")
    def _stripe_needs_keys(self) -> Settings:
        if self.payment_provider == "stripe":
            missing = [
                env_name(name)
                for name in ("stripe_secret_key", "stripe_webhook_secret")
                if getattr(self, name) is None
            ]
            if missing:
                raise ValueError(
                    "LIVESHOP_PAYMENT_PROVIDER=stripe needs " + " and ".join(missing) + " set"
                )
        return self

    @property
    def effective_database_url(self) -> str:
        """The configured database, or the SQLite file in the data folder."""
        if self.database_url:
            return self.database_url
        self.data_dir.mkdir(parents=True, exist_ok=True)
        return f"sqlite+aiosqlite:///{(self.data_dir / 'liveshop.db').resolve()}"

    @property
    def effective_public_url(self) -> str:
        if self.public_url:
            return self.public_url.rstrip("/")
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::", "") else self.host  # noqa: S104
        return f"http://{host}:{self.port}"

    def signing_key(self) -> str:
        """The token signing key: the setting, or a random one kept in the data folder.

        Kept in a file so every worker process and every restart signs alike.
        """
        if self.secret_key:
            return self.secret_key
        path = self.data_dir / "secret.key"
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if not path.exists():
            # Written whole to a temporary file, then linked into place: several workers
            # starting at once all read the one key that won, never a half-written file.
            tmp = self.data_dir / f".secret.key.{os.getpid()}.{secrets.token_hex(4)}"
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as fh:
                fh.write(secrets.token_urlsafe(32))
            with contextlib.suppress(FileExistsError):
                os.link(tmp, path)
            tmp.unlink()
        return path.read_text().strip()


_ENV_NAMES = {"database_url": "DATABASE_URL", "redis_url": "REDIS_URL"}


def env_name(field: str) -> str:
    """The environment variable that sets ``field``."""
    return _ENV_NAMES.get(field, f"LIVESHOP_{field.upper()}")


def load_settings(**overrides: object) -> Settings:
    """Read the settings from the environment (and ``overrides``), or raise SettingsError."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            if not err["loc"]:  # a rule across settings: its message names them (no values)
                problems.append(str(err["msg"]).removeprefix("Value error, "))
                continue
            loc = err["loc"][0]
            field = str(loc)
            name = field if field.isupper() else env_name(field)
            problems.append(f"{name}: {err['msg']} (got {err.get('input')!r})")
        raise SettingsError("bad configuration: " + "; ".join(problems)) from None
