"""Settings from the environment, validated once at start-up (fail fast)."""

import ipaddress
import json
import os
import re
import secrets
import sys
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal, NoReturn, Self

from pydantic import BeforeValidator, Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from sqlalchemy.engine import make_url

MIN_SECRET_KEY_LENGTH = 32


class ConfigError(RuntimeError):
    """The configuration cannot run the service; the message names the variable."""


CONFIG_ERROR_EXIT_STATUS = 2


@dataclass(frozen=True, slots=True)
class Rate:
    """At most `limit` requests per `window` seconds (a rate limit's policy)."""

    limit: int
    window: int

    def __str__(self) -> str:
        return f"{self.limit}/{self.window}s"


_RATE = re.compile(r"([1-9][0-9]*)/([1-9][0-9]*)([smh]?)")
_UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600}


def _parse_rate(value: Any) -> Any:
    """'300/60', '300/60s', '300/1m', '30/1h': requests per window."""
    if not isinstance(value, str):
        return value
    match = _RATE.fullmatch(value.strip())
    if match is None:
        raise ValueError("a rate is COUNT/WINDOW, e.g. 300/1m (s, m or h; seconds by default)")
    limit, window, unit = match.groups()
    return Rate(int(limit), int(window) * _UNIT_SECONDS[unit])


RateSetting = Annotated[Rate, NoDecode, BeforeValidator(_parse_rate)]

MFA_ROLES = ("admin", "doctor", "patient")


def _parse_roles(value: Any) -> Any:
    """'admin,doctor' (or a JSON list, or empty): the roles that must use a second factor."""
    if not isinstance(value, str):
        return value
    text = value.strip()
    if text.startswith("["):
        return json.loads(text)
    return [part.strip() for part in text.split(",") if part.strip()]


RolesSetting = Annotated[frozenset[str], NoDecode, BeforeValidator(_parse_roles)]


def exit_for(error: ConfigError) -> NoReturn:
    """What every entry point does with a configuration it cannot run: one line on stderr
    and exit status 2 (no traceback: the message says all there is)."""
    sys.stderr.write(f"configuration error: {error}\n")
    raise SystemExit(CONFIG_ERROR_EXIT_STATUS)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    environment: Literal["development", "production", "test"] = "development"
    database_url: str = "sqlite+aiosqlite:///./hospital.db"
    secret_key: str | None = Field(default=None, repr=False)
    access_token_expire_minutes: int = Field(default=30, ge=1)
    refresh_token_expire_days: int = Field(default=7, ge=1)
    first_admin_username: str | None = None
    first_admin_password: str | None = Field(default=None, repr=False)

    db_pool_size: int = Field(default=10, ge=1)
    # No overflow by default: overflow connections are opened and closed with every burst,
    # a connection storm on the server exactly when it is busiest; a request waits instead.
    db_max_overflow: int = Field(default=0, ge=0)
    db_pool_timeout: float = Field(default=10.0, gt=0)
    db_statement_timeout_ms: int = Field(default=30_000, ge=0)
    # PgBouncer in transaction mode between the app and PostgreSQL: no prepared-statement cache.
    db_pgbouncer: bool = False

    login_max_failures: int = Field(default=5, ge=1)
    login_window_minutes: int = Field(default=15, ge=1)
    # Per client address (app.core.ratelimit), on top of the per-account lock-out. Generous:
    # a ward's staff log in from behind one address; docs/api.md has the trade-off.
    rate_limit_enabled: bool = True
    rate_limit_login: RateSetting = Rate(300, 60)
    rate_limit_refresh: RateSetting = Rate(600, 60)
    rate_limit_register: RateSetting = Rate(30, 600)
    # The counters in Redis rather than in the database (e.g. redis://redis:6379/0).
    redis_url: str | None = Field(default=None, repr=False)  # may hold a password
    rate_limit_mfa: RateSetting = Rate(300, 60)
    emergency_access_minutes: int = Field(default=60, ge=1)
    # Multi-factor authentication (app.auth.mfa). Roles whose users must enrol a second
    # factor before anything else; none by default, so existing deployments keep working.
    mfa_required_roles: RolesSetting = frozenset()
    # The root of the keys that encrypt TOTP secrets and hash recovery codes. Unset: derived
    # from SECRET_KEY (then rotating SECRET_KEY makes enrolled secrets unreadable).
    mfa_encryption_key: str | None = Field(default=None, repr=False)
    mfa_token_expire_minutes: int = Field(default=5, ge=1, le=60)
    mfa_issuer: str = Field(default="Hospital API", min_length=1, max_length=100)
    max_body_bytes: int = Field(default=1024 * 1024, ge=1024)

    cors_origins: list[str] = Field(default_factory=list)
    # The proxies whose X-Forwarded-For (and -Proto) is believed, comma-separated addresses
    # or networks (uvicorn's format; `*` believes any peer). None: the peer is the client.
    forwarded_allow_ips: str = ""
    # Default: "json" with ENVIRONMENT=production (what log collectors read), else "text".
    log_format: Literal["json", "text"] = "text"
    log_level: str = "INFO"
    access_log: bool = True  # one line per request; off, only the 5xx ones
    # How often each process links list pages' events to their patients (audit.links).
    audit_link_seconds: float = Field(default=2.0, gt=0)
    web_concurrency: int = Field(default=1, ge=1)
    # The base of the URIs that name this service's own FHIR identifier systems (usernames,
    # license numbers) and extensions: a URL the hospital controls, the same on every host.
    fhir_system_base: str = Field(default="https://hospital.example.org", pattern=r"^\S+:\S+$")

    @field_validator("database_url")
    @classmethod
    def _async_driver(cls, value: str) -> str:
        """Accept the plain URLs that hosting platforms hand out, meaning asyncpg."""
        for prefix in ("postgres://", "postgresql://"):
            if value.startswith(prefix):
                return "postgresql+asyncpg://" + value[len(prefix) :]
        return value

    @field_validator("forwarded_allow_ips")
    @classmethod
    def _addresses(cls, value: str) -> str:
        """Each entry an address or a network, so that a typo is refused at start-up rather
        than silently never matching."""
        entries = [entry.strip() for entry in value.split(",") if entry.strip()]
        if entries == ["*"]:
            return "*"
        for entry in entries:
            try:
                ipaddress.ip_network(entry, strict=False)
            except ValueError:
                raise ValueError(f"not an IP address or network: {entry!r}") from None
        return ",".join(entries)

    @field_validator("mfa_required_roles")
    @classmethod
    def _known_roles(cls, value: frozenset[str]) -> frozenset[str]:
        unknown = sorted(value - set(MFA_ROLES))
        if unknown:
            raise ValueError(f"unknown roles {unknown}: choose among {', '.join(MFA_ROLES)}")
        return value

    @field_validator("mfa_encryption_key")
    @classmethod
    def _strong_mfa_key(cls, value: str | None) -> str | None:
        if not value:
            return None  # unset, or set empty (compose's default): derived from SECRET_KEY
        if len(value) < MIN_SECRET_KEY_LENGTH:
            raise ValueError(f"must be at least {MIN_SECRET_KEY_LENGTH} characters")
        return value

    def trusted_proxies(self) -> list[str]:
        return self.forwarded_allow_ips.split(",") if self.forwarded_allow_ips else []

    @model_validator(mode="after")
    def _production_logs_json(self) -> Self:
        if self.environment == "production" and "log_format" not in self.model_fields_set:
            self.log_format = "json"
        return self

    @property
    def is_sqlite(self) -> bool:
        return make_url(self.database_url).get_backend_name() == "sqlite"

    def sqlite_path(self) -> Path | None:
        """The database file of an embedded database, None for memory or a server."""
        if not self.is_sqlite:
            return None
        database = make_url(self.database_url).database
        if not database or database == ":memory:":
            return None
        return Path(database)

    def signing_key(self) -> str:
        """The JWT key: required in production, else generated once and kept on disk."""
        if self.secret_key and len(self.secret_key) >= MIN_SECRET_KEY_LENGTH:
            return self.secret_key
        if self.environment == "production":
            raise ConfigError(
                "SECRET_KEY must be set to at least "
                f"{MIN_SECRET_KEY_LENGTH} characters when ENVIRONMENT=production"
            )
        if self.secret_key:
            raise ConfigError(f"SECRET_KEY is shorter than {MIN_SECRET_KEY_LENGTH} characters")
        return _persisted_key(self._key_file())

    def _key_file(self) -> Path:
        database = self.sqlite_path()
        folder = database.parent if database else Path(".")
        return folder / ".hospital_secret_key"


def _persisted_key(path: Path) -> str:
    """Read the key file, or create it atomically so concurrent workers agree on one key."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        candidate = path.with_name(f"{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
        candidate.write_text(secrets.token_urlsafe(48))
        candidate.chmod(0o600)
        try:
            os.link(candidate, path)  # fails if another process won the race: use its key
        except FileExistsError:
            pass
        finally:
            candidate.unlink()
    return path.read_text().strip()


@lru_cache
def get_settings() -> Settings:
    try:
        return Settings()
    except ValidationError as error:
        # Name the variables, never their values (one may be a secret).
        problems = "; ".join(
            f"{'_'.join(str(part) for part in item['loc']).upper()}: {item['msg']}"
            for item in error.errors()
        )
        raise ConfigError(problems) from None
