"""Settings: the only module that reads the environment.

Values come, strongest first, from `PLUSONE_*` environment variables, the TOML file named by
`PLUSONE_SETTINGS_FILE`, and `secrets.toml` in the data directory (which `ensure_secrets` writes on a
first run so that `plusone serve` works with nothing configured). Everything else receives a `Settings`
object; nothing imports settings as a global.
"""

from __future__ import annotations

import ipaddress
import os
import re
import secrets
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
)

ENV_PREFIX = "PLUSONE_"
SECRETS_FILE_NAME = "secrets.toml"
DEFAULT_GRAPH_URL = "https://graph.facebook.com"
DEFAULT_STREAM_GRAPH_URL = "https://streaming-graph.facebook.com"  # Meta's Server-Sent Events host


class SettingsError(Exception):
    """A bad or missing setting; the message is one line naming it."""


class Settings(BaseModel):
    """Every setting PlusOne reads. Field `x` is the environment variable `PLUSONE_X`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    app_secret: SecretStr | None = None
    verify_token: SecretStr | None = None
    app_id: str | None = None
    # Meta granted the app the Human Agent permission (App Review): only then may a person answer in the
    # inbox after 24 hours (for 7 days) with the HUMAN_AGENT tag. Without it Meta refuses the tag.
    human_agent_permission: bool = False
    admin_token: SecretStr | None = None
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=1, le=65535)
    data_dir: Path = Path("data")
    redis_url: str | None = None
    redis_appendfsync: Literal["always", "everysec", "no"] = "always"
    # redis_url is then any node of a Redis Cluster; the client finds the others (bot.runtime.redis.redis_client).
    redis_cluster: bool = False
    database_url: str | None = None
    graph_url: str = DEFAULT_GRAPH_URL
    graph_version: str = Field(default="v26.0", pattern=r"^v\d+\.\d+$")
    page_tokens: dict[str, SecretStr] = Field(default_factory=dict)
    max_body_bytes: int = Field(default=1024 * 1024, ge=1024, le=64 * 1024 * 1024)
    # How long a client may take to send a request's headers (and how long an idle connection is kept), and
    # then its whole body: a client that stalls is cut off instead of holding a socket for ever.
    http_read_timeout_s: float = Field(default=30.0, gt=0, le=600)
    worker_max_attempts: int = Field(default=5, ge=1, le=100)
    # Run the whole product this far ahead of (or behind) the machine's clock: demos of holds expiring,
    # journeys' waits, birthdays and lapsed members without waiting days. "3d", "36h", "-90m", "2d12h" or
    # seconds; every process of one `serve` reads the same value (bot.runtime.clock).
    clock_offset: timedelta = timedelta(0)
    worker_claim_idle_ms: int = Field(default=30_000, ge=10)
    # Up to this many stream entries per transaction. The worker reads what is there, so quiet times make small
    # batches; in a live's burst each batch's fixed cost (a few dozen statements) is shared by more comments.
    worker_batch_size: int = Field(default=1_000, ge=1, le=10_000)
    # How many `plusone worker` processes `plusone serve` starts and looks after. 0: the worker runs in the
    # web's process. auto: one on a machine with two cores or more (the web and the worker then each have a
    # core: in bench_live about 1.6x the comments/s of one process), else 0.
    worker_processes: Literal["auto"] | Annotated[int, Field(ge=0, le=32)] = "auto"
    # The event loop of `plusone serve` and `plusone worker`. uvloop (libuv) does the loop's and the sockets'
    # work in C: in bench_live about 1.4x the comments/s of asyncio's own loop. `asyncio` is the fallback.
    event_loop: Literal["uvloop", "asyncio"] = "uvloop"
    worker_block_ms: int = Field(default=1_000, ge=1)
    worker_retry_backoff_ms: int = Field(default=500, ge=1)
    graph_timeout_s: float = Field(default=20.0, gt=0, le=120)
    send_rate_per_page: float = Field(default=300.0, gt=0)
    send_rate_per_thread: float = Field(default=2.0, gt=0)
    outbox_max_attempts: int = Field(default=8, ge=1, le=100)
    # Unset: the bot's own welcome and fallback, in each shopper's language (bot.replies.chat); a text set here
    # (or the shop file's faq section) is sent as written to everyone.
    welcome_text: str | None = Field(default=None, min_length=1, max_length=1999)
    fallback_text: str | None = Field(default=None, min_length=1, max_length=1999)
    fallback_cooldown_s: int = Field(default=6 * 3600, ge=0)
    # After a person writes in a conversation (or the shopper asks for one) the bot stays silent there until
    # an agent hands back, or this long after the person's last message.
    handoff_quiet_s: int = Field(default=2 * 3600, ge=60, le=7 * 24 * 3600)
    public_url: str | None = None  # where shoppers reach us (checkout links); default http://HOST:PORT
    # Reverse proxies (addresses or networks, comma-separated) whose X-Forwarded-For is believed: the inbox's
    # sign-in limits count per client address, and behind a proxy every peer is the proxy.
    trusted_proxies: tuple[str, ...] = ()
    payment_secret: SecretStr | None = None  # signs POST /api/payments notifications (HMAC-SHA256)
    # Card payments by Stripe (bot.web.stripe_pay): none set, no card payments. The demo and the tests point
    # stripe_api_url at localstripe, whose Stripe.js stand-in is at {stripe_api_url}/js.stripe.com/v3/.
    stripe_secret_key: SecretStr | None = None
    stripe_publishable_key: str | None = None
    stripe_webhook_secret: SecretStr | None = None  # checks Stripe-Signature on POST /stripe/webhook
    stripe_api_url: str | None = None  # default: Stripe's own
    stripe_js_url: str = "https://js.stripe.com/v3/"
    demo_stripe_port: int = Field(default=8420, ge=0, le=65535)  # demo mode's localstripe; 0: any free port
    demo_emulator_port: int = Field(default=8090, ge=0, le=65535)  # 0: any free port
    # E-mail (bot.outbound.mailer; journeys' messages outside Messenger). No smtp_host: no e-mail is sent,
    # except in demo mode, where a local SMTP server (bot.runtime.local_smtp) on demo_smtp_port takes it and
    # the console's Demo mailbox shows what it received.
    smtp_host: str | None = None
    smtp_port: int = Field(default=587, ge=1, le=65535)
    smtp_tls: Literal["none", "starttls", "tls"] = "starttls"  # tls: implicit TLS (port 465)
    smtp_user: str | None = None
    smtp_password: SecretStr | None = None
    smtp_timeout_s: float = Field(default=30.0, gt=0, le=300)
    mail_from_address: str = Field(default="shop@localhost", pattern=r"^[^@\s<>]+@[^@\s<>]+$")
    mail_from_name: str = Field(default="PlusOne", max_length=100)
    email_max_attempts: int = Field(default=6, ge=1, le=50)
    # Signs the links in e-mails (unsubscribe). Unset: derived from app_secret (bot.web.signed_links), which
    # ensure_secrets already makes; set it to keep links valid across an app secret's rotation.
    link_secret: SecretStr | None = None
    demo_smtp_port: int = Field(default=8025, ge=0, le=65535)  # demo mode's local SMTP server; 0: any free port
    key_prefix: str = Field(default="plusone", pattern=r"^[A-Za-z0-9_.-]+$")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    # Live comments read beside the webhook while a campaign's video is live (bot.inbound.live_comments).
    live_stream_url: str | None = None  # default: Meta's streaming-graph host, or graph_url when that is not Meta's
    live_comment_rate: Literal["one_per_two_seconds", "ten_per_second", "one_hundred_per_second"] = (
        "one_hundred_per_second"
    )
    live_check_interval_s: float = Field(default=2.0, gt=0, le=300)  # how often to look for videos going live
    live_poll_interval_s: float = Field(default=5.0, gt=0, le=3600)  # the comments edge backstop
    live_poll_overlap_s: int = Field(default=10, ge=0, le=3600)  # re-read this far behind the cursor
    live_reconnect_min_s: float = Field(default=1.0, gt=0, le=600)
    live_reconnect_max_s: float = Field(default=60.0, gt=0, le=3600)
    live_stream_read_timeout_s: float = Field(default=90.0, gt=0, le=3600)  # silence (no ping) before reconnecting

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _check_trusted_proxies(cls, value: object) -> object:
        items = value.split(",") if isinstance(value, str) else value
        if not isinstance(items, list | tuple):
            raise ValueError("must be addresses or networks, comma-separated")
        out = []
        for item in (str(i).strip() for i in items):
            if not item:
                continue
            try:
                out.append(str(ipaddress.ip_network(item, strict=False)))
            except ValueError:
                raise ValueError(f"{item!r} is not an IP address or network like 10.0.0.0/8") from None
        return tuple(out)

    @field_validator("clock_offset", mode="before")
    @classmethod
    def _clock_offset(cls, value: Any) -> Any:
        if isinstance(value, str):
            return parse_clock_offset(value)
        return value

    @field_validator("redis_url")
    @classmethod
    def _check_redis_url(cls, value: str | None) -> str | None:
        if value and not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must start with redis://, rediss:// or unix://")
        return value or None

    @field_validator("redis_cluster")
    @classmethod
    def _check_redis_cluster(cls, value: bool, info: ValidationInfo) -> bool:
        url = info.data.get("redis_url")
        if value and not (url and url.startswith(("redis://", "rediss://"))):
            # The embedded server is a single node, and a cluster's nodes are reached over TCP.
            raise ValueError("needs PLUSONE_REDIS_URL set to a node's redis:// or rediss:// URL")
        return value

    @field_validator("worker_processes", mode="before")
    @classmethod
    def _check_worker_processes(cls, value: object) -> object:
        if isinstance(value, str) and value.strip() != "auto" and not value.strip().isdigit():
            raise ValueError("must be auto or a number of processes (0: the worker runs in the web's process)")
        return value.strip() if isinstance(value, str) and value.strip() == "auto" else value

    @field_validator("database_url")
    @classmethod
    def _check_database_url(cls, value: str | None) -> str | None:
        if value and not value.startswith(("sqlite", "postgres")):
            raise ValueError("must be a sqlite:/// or postgresql:// URL")
        return value or None

    @field_validator("graph_url")
    @classmethod
    def _check_graph_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL")
        return value.rstrip("/")

    @field_validator("live_stream_url")
    @classmethod
    def _check_live_stream_url(cls, value: str | None) -> str | None:
        if value and not value.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL")
        return value or None

    @field_validator("page_tokens", mode="before")
    @classmethod
    def _parse_page_tokens(cls, value: Any) -> Any:
        # From the environment this is JSON: {"<page id>": "<page access token>"}.
        if isinstance(value, str):
            import json

            try:
                value = json.loads(value) if value.strip() else {}
            except json.JSONDecodeError as exc:
                raise ValueError(f'must be JSON like {{"<page id>": "<token>"}} ({exc.msg})') from None
        if isinstance(value, Mapping):
            for page_id in value:
                if not str(page_id).isdigit():
                    raise ValueError(f"page id {page_id!r} is not numeric")
        return value

    # Derived values, so callers never re-parse URLs themselves.
    @property
    def worker_process_count(self) -> int:
        """`worker_processes` with auto resolved for this machine."""
        if self.worker_processes == "auto":
            return 1 if (os.cpu_count() or 1) >= 2 else 0
        return self.worker_processes

    @property
    def public_base_url(self) -> str:
        """Where shoppers reach us (checkout and e-mail links): `public_url`, else this server's own address."""
        return (self.public_url or f"http://{self.host}:{self.port}").rstrip("/")

    @property
    def sqlalchemy_url(self) -> str:
        """The async SQLAlchemy URL: aiosqlite for SQLite (default file in the data dir), asyncpg for PG."""
        url = self.database_url
        if not url:
            return f"sqlite+aiosqlite:///{(self.data_dir / 'plusone.db').resolve()}"
        if url.startswith("sqlite+aiosqlite"):
            return url
        if url.startswith("sqlite"):
            return "sqlite+aiosqlite" + url[len("sqlite") :]
        for prefix in ("postgresql+asyncpg://", "postgresql://", "postgres://"):
            if url.startswith(prefix):
                return "postgresql+asyncpg://" + url[len(prefix) :]
        return url

    @property
    def stream_graph_url(self) -> str:
        """Where Live Comments streams are read: Meta's own host for Meta, else the Graph URL (the emulator)."""
        if self.live_stream_url:
            return self.live_stream_url.rstrip("/")
        return DEFAULT_STREAM_GRAPH_URL if self.graph_url == DEFAULT_GRAPH_URL else self.graph_url

    @property
    def embedded_redis(self) -> bool:
        return self.redis_url is None

    def require_secrets(self) -> None:
        for name in ("app_secret", "verify_token", "admin_token"):
            if getattr(self, name) is None:
                raise SettingsError(f"{ENV_PREFIX}{name.upper()} is not set")


def _fields_from_env(env: Mapping[str, str]) -> dict[str, str]:
    known = {name.upper(): name for name in Settings.model_fields}
    out: dict[str, str] = {}
    for key, value in env.items():
        if not key.startswith(ENV_PREFIX):
            continue
        name = key[len(ENV_PREFIX) :]
        if name == "SETTINGS_FILE":
            continue
        if name not in known:
            raise SettingsError(f"{key} is not a PlusOne setting")
        out[known[name]] = value
    return out


def _read_toml(path: Path, what: str) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            data = tomllib.load(fh)
    except FileNotFoundError:
        raise SettingsError(f"{what} {path} does not exist") from None
    except (tomllib.TOMLDecodeError, OSError) as exc:
        raise SettingsError(f"{what} {path} cannot be read: {exc}") from None
    unknown = sorted(set(data) - set(Settings.model_fields))
    if unknown:
        raise SettingsError(f"{what} {path}: {unknown[0]!r} is not a PlusOne setting")
    return data


def _describe(error: ValidationError) -> str:
    first = error.errors()[0]
    field = str(first["loc"][0]) if first["loc"] else "settings"
    value = first.get("input")
    hidden = any(word in field for word in ("secret", "token", "password")) or isinstance(value, dict)
    shown = "" if hidden else f" (got {value!r})"
    return f"{ENV_PREFIX}{field.upper()}: {first['msg']}{shown}"


_OFFSET_PART = re.compile(r"(\d+)([dhms])")
_OFFSET_UNITS = {"d": 86400, "h": 3600, "m": 60, "s": 1}
_MAX_OFFSET = timedelta(days=3660)


def parse_clock_offset(text: str) -> timedelta:
    """ "3d", "36h", "-90m", "2d12h", "+1d" or a number of seconds, at most ten years either way."""
    body = text.strip().lower()
    sign = -1 if body.startswith("-") else 1
    body = body.lstrip("+-").replace(" ", "")
    if body.isdigit():
        seconds = int(body)
    elif body and _OFFSET_PART.sub("", body) == "":
        seconds = sum(int(n) * _OFFSET_UNITS[unit] for n, unit in _OFFSET_PART.findall(body))
    else:
        raise ValueError(f"{text!r} is not a time offset: write it like 3d, 36h, -90m, 2d12h or seconds")
    offset = timedelta(seconds=sign * seconds)
    if abs(offset) > _MAX_OFFSET:
        raise ValueError(f"{text!r} is more than ten years")
    return offset


def load_settings(env: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
    """Build Settings from the environment, the settings file and the data dir's secrets file."""
    env = os.environ if env is None else env
    values: dict[str, Any] = {}
    settings_file = env.get(f"{ENV_PREFIX}SETTINGS_FILE")
    if settings_file:
        values.update(_read_toml(Path(settings_file), "settings file"))
    values.update(_fields_from_env(env))
    values.update(overrides)
    data_dir = Path(values.get("data_dir") or Settings.model_fields["data_dir"].default)
    secrets_path = data_dir / SECRETS_FILE_NAME
    if secrets_path.exists():
        for key, value in _read_toml(secrets_path, "secrets file").items():
            values.setdefault(key, value)
    try:
        return Settings(**values)
    except ValidationError as exc:
        raise SettingsError(_describe(exc)) from None


@dataclass(frozen=True)
class GeneratedSecrets:
    path: Path
    names: tuple[str, ...]
    settings: Settings


def make_private_dir(path: Path) -> Path:
    """Create the data directory readable by its owner alone (0700), and tighten one made looser before.

    It holds the database, Redis's append-only file (with the inbox's sessions) and the secrets file: a
    0700 directory keeps other local users out whatever its files' own modes.
    """
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    if path.stat().st_mode & 0o077:
        path.chmod(0o700)
    return path


def private_file(path: Path) -> Path:
    """Create `path` empty with mode 0600 if it is missing, else take away group and other access."""
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        if path.stat().st_mode & 0o077:
            path.chmod(path.stat().st_mode & 0o700)
    return path


def ensure_secrets(settings: Settings) -> GeneratedSecrets | None:
    """Generate the app secret, verify token and admin token once into the data dir when unset.

    Returns what was generated (so the CLI can print it and say how to set real values), or None.
    """
    missing = [n for n in ("app_secret", "verify_token", "admin_token") if getattr(settings, n) is None]
    if not missing:
        return None
    make_private_dir(settings.data_dir)
    path = settings.data_dir / SECRETS_FILE_NAME
    existing: dict[str, Any] = _read_toml(path, "secrets file") if path.exists() else {}
    for name in missing:
        existing.setdefault(name, secrets.token_urlsafe(24))
    lines = ["# Generated by PlusOne on first run. Set PLUSONE_* environment variables to override.\n"]
    lines += [f'{key} = "{value}"\n' for key, value in sorted(existing.items())]
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.writelines(lines)
    updated = settings.model_copy(update={n: SecretStr(str(existing[n])) for n in missing})
    return GeneratedSecrets(path=path, names=tuple(missing), settings=updated)
