"""How the Graph emulator is set up: the Pages it plays, the app it answers for, where webhooks go.

Also the demo Page (`DEMO_*`) that `plusone serve --demo` and `plusone emulator` use by default, and how
processes find the demo emulator: `plusone serve` in demo mode writes its base URL to `DEMO_EMULATOR_FILE`
in the data dir, where `plusone worker` and `plusone simulate` read it (`running_demo_emulator`). Standard
library only: the command line names these in its help and reads the marker without loading aiohttp.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "DEMO_APP_ID",
    "DEMO_EMULATOR_FILE",
    "DEMO_EMULATOR_STATE_FILE",
    "DEMO_PAGE_ID",
    "DEMO_PAGE_NAME",
    "DEMO_PAGE_TOKEN",
    "DEMO_PAGE_USERNAME",
    "EmulatedPage",
    "EmulatedUser",
    "EmulatorConfig",
    "demo_config",
    "local_webhook_url",
    "running_demo_emulator",
]

DEMO_PAGE_ID = "1000000000001"
DEMO_PAGE_TOKEN = "demo-page-token"
DEMO_PAGE_NAME = "PlusOne Demo Shop"
DEMO_PAGE_USERNAME = "plusonedemo"
DEMO_APP_ID = "555000555"
DEMO_EMULATOR_FILE = "emulator.url"  # in the data dir, while `plusone serve` runs in demo mode
DEMO_EMULATOR_STATE_FILE = "emulator-state.json"  # in the data dir: what the demo's Meta remembers


@dataclass(frozen=True)
class EmulatedPage:
    """A Facebook Page the emulator knows: its Page access token and public names."""

    token: str
    name: str = DEMO_PAGE_NAME
    username: str = ""
    subscribed_fields: tuple[str, ...] = ()  # the app's webhook subscription at start; empty = unsubscribed
    instagram_account_id: str | None = None  # the Instagram professional account linked to the Page


@dataclass(frozen=True)
class EmulatedUser:
    """A Facebook user who manages Pages: the short-lived user token `plusone page-token` starts from."""

    token: str
    name: str = "Shop Owner"
    pages: tuple[str, ...] = ()  # the Page ids the user manages (their tokens are the Pages' own)


@dataclass
class EmulatorConfig:
    pages: dict[str, EmulatedPage]
    app_id: str = DEMO_APP_ID
    app_secret: str = ""  # checks appsecret_proof and signs the webhooks the emulator delivers
    webhook_url: str | None = None  # our server's /webhook
    send_echoes: bool = True
    messages_per_second: int = 300  # per Page, Send API calls (Meta: 300/s for text messages)
    # Usage headers' limits (bot.emulator.usage). Meta: 200 calls an hour per app user, 4,800 a day per engaged
    # user of the Page, Messenger 200 a day per engaged user; emulator choice: 10,000 users and 10,000 engaged,
    # a Page with a following that runs lives (a bench's tens of thousands of replies stay far from 75%, where
    # the sender starts to slow down); a test that wants a Page near its limit sets these low.
    app_calls_per_hour: int = 2_000_000
    page_calls_per_day: int = 48_000_000
    messenger_calls_per_day: int = 2_000_000
    users: dict[str, EmulatedUser] = field(default_factory=dict)  # by user id (bot.emulator.tokens)
    verify_appsecret_proof: bool = True  # a wrong proof is refused (code 100)
    # Meta's "Require App Secret" app setting, off by default: only then is a missing proof refused.
    require_appsecret_proof: bool = False
    app_name: str = "PlusOne"
    # Meta's Human Agent permission, granted through App Review: without it the HUMAN_AGENT tag is refused.
    human_agent_permission: bool = False
    # Meta retries failed deliveries for hours; the emulator keeps the idea on a shorter scale.
    webhook_retry_delays: tuple[float, ...] = (1.0, 4.0, 15.0)
    webhook_timeout_s: float = 10.0
    max_records: int = 10_000  # recorded calls and deliveries kept (oldest dropped first)
    # Keep-alive cadence of live comment streams. Emulator choice: Meta documents `: ping` lines, not how often.
    sse_ping_s: float = 5.0
    # Where the state is kept across restarts (read at start, written on change and at stop); None: in
    # memory only. The demo inside `plusone serve` keeps it in the data dir (`DEMO_EMULATOR_STATE_FILE`).
    state_file: Path | None = None
    state_save_s: float = 1.0  # how often a changed state is written


def demo_config(app_secret: str, webhook_url: str | None, *, app_id: str = DEMO_APP_ID) -> EmulatorConfig:
    """The one demo Page `plusone serve --demo` and `plusone emulator` use by default."""
    page = EmulatedPage(DEMO_PAGE_TOKEN, DEMO_PAGE_NAME, DEMO_PAGE_USERNAME)
    return EmulatorConfig(pages={DEMO_PAGE_ID: page}, app_id=app_id, app_secret=app_secret, webhook_url=webhook_url)


def running_demo_emulator(data_dir: Path) -> str | None:
    """The base URL of the demo emulator `plusone serve` runs for `data_dir`, or None when none runs."""
    marker = data_dir / DEMO_EMULATOR_FILE
    return marker.read_text().strip() if marker.exists() else None


def local_webhook_url(host: str, port: int) -> str:
    """Our server's webhook as reached from this machine: where the emulator delivers, and `simulate` posts.

    A server bound to 0.0.0.0 (or ::) listens on every interface, but that is no address to send to."""
    address = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    return f"http://{address}:{port}/webhook"
