"""Configuration of the HTTP API, read from PGCAPACITY_* environment variables
(docs/contract.md, "Configuration")."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass

import psycopg
from psycopg.conninfo import conninfo_to_dict

from pgcapacity import rules


class SettingsError(ValueError):
    """An environment variable holds a value the API cannot use."""


def _int(env: Mapping[str, str], name: str, default: int | None, minimum: int = 0) -> int | None:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{name}={raw!r}: expected an integer") from None
    if value < minimum:
        raise SettingsError(f"{name}={value}: must be at least {minimum}")
    return value


def _float(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name, "").strip()
    try:
        return float(raw) if raw else default
    except ValueError:
        raise SettingsError(f"{name}={raw!r}: expected a number") from None


DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def _idle_expiry(env: Mapping[str, str]) -> tuple[bool, int | None]:
    """PGCAPACITY_EXPIRE_IDLE: on (the SQL function's own idle interval), off, or how long
    a claim may stay idle: seconds, or a number with s, m, h or d (`90s`, `30m`, `2h`)."""
    name = "PGCAPACITY_EXPIRE_IDLE"
    raw = env.get(name, "").strip().lower()
    if raw in ("", "1", "on", "true", "yes"):
        return True, None
    if raw in ("0", "off", "false", "no"):
        return False, None
    duration = re.fullmatch(r"(\d{1,9})\s*([smhd]?)", raw)
    if duration is None:
        raise SettingsError(f"{name}={raw!r}: expected on, off, or a duration like 30m or 1800")
    seconds = int(duration[1]) * DURATION_UNITS.get(duration[2], 1)
    if seconds > rules.MAX_IDLE_SECONDS:
        raise SettingsError(f"{name}={raw!r}: at most {rules.MAX_IDLE_SECONDS} seconds")
    return True, seconds


def _origins(env: Mapping[str, str]) -> tuple[str, ...]:
    """PGCAPACITY_CORS_ORIGINS: comma-separated origins (https://app.example.com) browsers
    may call the API from, or * for any."""
    name = "PGCAPACITY_CORS_ORIGINS"
    origins = tuple(o.strip().rstrip("/") for o in env.get(name, "").split(",") if o.strip())
    for origin in origins:
        if origin != "*" and not re.fullmatch(r"https?://[^/\s]+", origin):
            raise SettingsError(f"{name}: {origin!r} is not an origin (scheme://host[:port], or *)")
    return origins


def _read_urls(env: Mapping[str, str]) -> tuple[str, ...]:
    """PGCAPACITY_READ_URL: standbys serving reads; one connection string, or several
    postgresql:// URLs separated by spaces."""
    name = "PGCAPACITY_READ_URL"
    raw = env.get(name, "").strip()
    if not raw:
        return ()
    uri = re.match(r"postgres(ql)?://", raw)
    urls = tuple(raw.split()) if uri else (raw,)
    for url in urls:
        if uri and not re.match(r"postgres(ql)?://", url):
            raise SettingsError(f"{name}: {url!r} is not a postgresql:// URL")
        try:
            conninfo_to_dict(url)
        except psycopg.ProgrammingError as err:
            raise SettingsError(f"{name}: {url!r} is not a connection string ({err})") from None
    return urls


def _flag(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in ("1", "on", "true", "yes"):
        return True
    if raw in ("0", "off", "false", "no"):
        return False
    raise SettingsError(f"{name}={raw!r}: expected on/off (or 1/0)")


@dataclass(frozen=True)
class Settings:
    """Everything the app needs; `Settings.from_env()` is what `serve` and `make run` use."""

    database_url: str
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 1  # API processes sharing the port (serve); each is a full instance
    admin_token: str | None = None
    client_tokens: tuple[str, ...] = ()
    auth: bool = True
    pool_min: int = 2
    pool_max: int = 10
    pool_timeout_ms: int = 3000
    pool_check_idle_ms: int = 1000  # check a pooled connection idle longer than this; 0: always
    statement_timeout_ms: int = 30000
    lock_timeout_ms: int = 5000
    pgbouncer: bool = False
    listen_url: str | None = None  # LISTEN needs a session: set it when DATABASE_URL is PgBouncer
    read_urls: tuple[str, ...] = ()  # standbys serving check, batch usage and the dashboard
    max_replica_lag_ms: int = 1000  # a standby further behind serves nothing
    cache_ttl_ms: int = 1000
    cache_size: int = 10000
    dashboard_refresh_ms: int = 500
    change_feed_ms: int = 50
    # A plain code this busy gets hot_slots slot rows (capacity.tune_slots); None: the SQL
    # function's defaults; 0: never.
    hot_claims_per_min: int | None = None
    hot_slots: int | None = None
    # Idle expiry run by the API itself (capacity.expire_idle_claims(): one runner at a
    # time across instances); idle_seconds None: the SQL function's default.
    expire_idle: bool = True
    expire_idle_seconds: int | None = None
    expire_every_ms: int = 60_000
    max_body_bytes: int = 1_048_576
    cors_origins: tuple[str, ...] = ()  # browser origins allowed to call the API; () = none
    lock_mode: str | None = None  # None: the SQL default of capacity.claim()
    max_wait_ms: int = 10_000  # the longest "wait_ms" a claim may ask for
    alert_avg_ms: float = 1000.0
    alert_success_rate: float = 0.95
    alert_concurrency: int = 50

    def __post_init__(self) -> None:
        if self.pool_max < max(self.pool_min, 1):
            raise SettingsError("PGCAPACITY_POOL_MAX must be at least PGCAPACITY_POOL_MIN and 1")
        if self.hot_slots is not None and self.hot_slots > rules.MAX_SLOTS:
            raise SettingsError(f"PGCAPACITY_HOT_SLOTS must be between 1 and {rules.MAX_SLOTS}")
        if self.lock_mode is not None and self.lock_mode not in rules.LOCK_MODES:
            raise SettingsError(
                f"PGCAPACITY_LOCK_MODE={self.lock_mode!r}: one of {rules.LOCK_MODES}"
            )

    @property
    def write_tokens(self) -> frozenset[str]:
        """Tokens accepted on write endpoints: the client tokens and the admin token."""
        tokens = set(self.client_tokens)
        if self.admin_token:
            tokens.add(self.admin_token)
        return frozenset(tokens)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides) -> Settings:
        env = os.environ if env is None else env
        url = overrides.pop("database_url", None) or env.get("DATABASE_URL", "")
        if not url:
            raise SettingsError("DATABASE_URL is not set (e.g. postgresql://user@host/dbname)")
        tokens = tuple(
            t.strip() for t in env.get("PGCAPACITY_CLIENT_TOKENS", "").split(",") if t.strip()
        )
        expire_idle, expire_idle_seconds = _idle_expiry(env)
        values = dict(
            database_url=url,
            host=env.get("PGCAPACITY_HOST", "127.0.0.1"),
            port=_int(env, "PGCAPACITY_PORT", 8000, 1),
            workers=_int(env, "PGCAPACITY_WORKERS", 1, 1),
            admin_token=env.get("PGCAPACITY_ADMIN_TOKEN") or None,
            client_tokens=tokens,
            auth=_flag(env, "PGCAPACITY_AUTH", True),
            pool_min=_int(env, "PGCAPACITY_POOL_MIN", 2),
            pool_max=_int(env, "PGCAPACITY_POOL_MAX", 10, 1),
            pool_timeout_ms=_int(env, "PGCAPACITY_POOL_TIMEOUT_MS", 3000, 1),
            pool_check_idle_ms=_int(env, "PGCAPACITY_POOL_CHECK_IDLE_MS", 1000),
            statement_timeout_ms=_int(env, "PGCAPACITY_STATEMENT_TIMEOUT_MS", 30000),
            lock_timeout_ms=_int(env, "PGCAPACITY_LOCK_TIMEOUT_MS", 5000),
            pgbouncer=_flag(env, "PGCAPACITY_PGBOUNCER", False),
            listen_url=env.get("PGCAPACITY_LISTEN_URL") or None,
            read_urls=_read_urls(env),
            max_replica_lag_ms=_int(env, "PGCAPACITY_MAX_REPLICA_LAG_MS", 1000),
            cache_ttl_ms=_int(env, "PGCAPACITY_CACHE_TTL_MS", 1000),
            cache_size=_int(env, "PGCAPACITY_CACHE_SIZE", 10000),
            dashboard_refresh_ms=_int(env, "PGCAPACITY_DASHBOARD_REFRESH_MS", 500, 10),
            change_feed_ms=_int(env, "PGCAPACITY_CHANGE_FEED_MS", 50, 5),
            hot_claims_per_min=_int(env, "PGCAPACITY_HOT_CLAIMS_PER_MIN", None, 0),
            hot_slots=_int(env, "PGCAPACITY_HOT_SLOTS", None, 1),
            expire_idle=expire_idle,
            expire_idle_seconds=expire_idle_seconds,
            expire_every_ms=_int(env, "PGCAPACITY_EXPIRE_EVERY_MS", 60_000, 10),
            max_body_bytes=_int(env, "PGCAPACITY_MAX_BODY_BYTES", 1_048_576, 1024),
            cors_origins=_origins(env),
            lock_mode=env.get("PGCAPACITY_LOCK_MODE") or None,
            max_wait_ms=_int(env, "PGCAPACITY_MAX_WAIT_MS", 10_000, 0),
            alert_avg_ms=_float(env, "PGCAPACITY_ALERT_AVG_MS", 1000.0),
            alert_success_rate=_float(env, "PGCAPACITY_ALERT_SUCCESS_RATE", 0.95),
            alert_concurrency=_int(env, "PGCAPACITY_ALERT_CONCURRENCY", 50),
        )
        values.update(overrides)
        if values["max_wait_ms"] >= values["statement_timeout_ms"]:
            raise SettingsError(
                f"PGCAPACITY_MAX_WAIT_MS={values['max_wait_ms']}: must be below"
                f" PGCAPACITY_STATEMENT_TIMEOUT_MS ({values['statement_timeout_ms']}),"
                " or waiting claims would be cut off by the statement timeout"
            )
        return cls(**values)
