"""`plusone demo-shop`: play a Hong Kong shop's busy evening against a running demo server.

    plusone serve            # demo mode (no Page token): the sample shop and the Graph emulator
    plusone demo-shop        # in another terminal: shoppers comment, ask, check out; orders paid and shipped

Everything goes the way real traffic does: the demo emulator (Meta) delivers the shoppers' comments and
messages to our webhook, the bot's own handlers answer them, shoppers check out on the checkout page that
their private reply links to, and the orders move on through the admin API. So the inbox, the live board,
the orders and the member cards then show what a real shop's would: the docs' screenshots are made from it
(tests/test_bot/test_docs_screenshots.py). Standard library only (urllib), like `plusone simulate`.
Exit codes: 0 played; 1 the server or the emulator did not answer as expected; 2 no demo emulator running.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

__all__ = ["DEMO_POST", "SHOPPERS", "DemoError", "Shopper", "play_demo_shop", "register", "run_demo_shop"]

DEMO_PAGE = "1000000000001"
DEMO_POST = "2000000000001"  # the sample shop's post campaign (config/samples/demo_shop.yaml, demo-post)


@dataclass(frozen=True)
class Shopper:
    psid: str
    first_name: str
    last_name: str
    comments: tuple[str, ...] = ()  # under the sale's post, in order
    messages: tuple[str, ...] = ()  # in Messenger, after commenting
    checkout: dict[str, str] | None = None  # the checkout form they fill in, when they buy
    after: tuple[str, ...] = ()  # what the shop does with the order then: paid, pack, ship, deliver
    checkout_word: str = "checkout"  # what they type in Messenger for the checkout link

    @property
    def name(self) -> str:
        return f"{self.first_name} {self.last_name}".strip()


# The evening's shoppers: Hong Kong names as Facebook shows them, comments and questions as people type them.
SHOPPERS = (
    Shopper(
        "3000000000101",
        "陳美玲",
        "",
        ("A+1 M 紅色", "玫瑰+2 白色"),
        ("請問幾時寄出？",),
        {
            "name": "陳美玲",
            "phone": "9123 4567",
            "delivery_method": "delivery",
            "delivery_option": "van/Kowloon",
            "address": "九龍旺角彌敦道 688 號 12 樓 B 室",
            "payment_method": "fps",
        },
        ("paid", "pack", "ship"),
        checkout_word="結帳",
    ),
    Shopper(
        "3000000000102",
        "Ka Yan",
        "Wong",
        ("Flower+1", "Card+1"),
        ("what are your opening hours?",),
        {
            "name": "Wong Ka Yan",
            "phone": "6234 5678",
            "delivery_method": "pickup",
            "delivery_option": "mong-kok",
            "payment_method": "payme",
        },
        ("paid",),
    ),
    Shopper(
        "3000000000103",
        "Chris",
        "Lau",
        ("B+1",),  # no size yet: the bot asks which
        ("L",),
    ),
    Shopper(
        "3000000000104",
        "李志明",
        "",
        ("A1+2",),
        ("運費幾多？",),
        {
            "name": "李志明",
            "phone": "5567 8899",
            "delivery_method": "delivery",
            "delivery_option": "courier",
            "address": "新界沙田大圍積輝街 12 號",
            "payment_method": "bank_transfer",
        },
    ),
    Shopper("3000000000105", "Karen", "Ho", ("好靚呀！😍",), ("Do you have size XL for A?",)),
    Shopper(
        "3000000000106",
        "曾雅詩",
        "",
        ("玫瑰+1 粉紅色",),
        ("我想搵真人",),  # asks for a person: the chat waits in the inbox
        {
            "name": "曾雅詩",
            "phone": "9876 1234",
            "delivery_method": "delivery",
            "delivery_option": "courier",
            "address": "香港銅鑼灣軒尼詩道 500 號 18 樓",
            "payment_method": "fps",
        },
        ("paid", "pack", "ship", "deliver"),
        checkout_word="埋單",
    ),
    Shopper("3000000000107", "Ka Ho", "Leung", ("A+1 L Black",), ("cart",)),
    Shopper(
        "3000000000108",
        "張曼婷",
        "",
        ("B+1 M",),
        ("聽日下晝三點後嚟拎得唔得？",),
        {
            "name": "張曼婷",
            "phone": "6011 2233",
            "delivery_method": "pickup",
            "delivery_option": "mong-kok",
            "payment_method": "cash_on_pickup",
        },
    ),
    Shopper("3000000000109", "吳寶儀", "", ("A+9 S 紅色",), ("營業時間？",)),  # over the limit per shopper
    Shopper("3000000000110", "Jessica", "Tsang", ("Tulip+1",), ("Is the tulip jar sold in the live only?",)),
)


class DemoError(Exception):
    """The server or the emulator did not answer as the evening needs."""


def _http(
    method: str, url: str, body: object | None = None, *, form: dict[str, str] | None = None, token: str = ""
) -> tuple[int, str]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    data = None
    if form is not None:
        data = urllib.parse.urlencode(form).encode()
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    elif body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    request = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(errors="replace")
    except OSError as exc:
        raise DemoError(f"{method} {url}: {exc}") from exc


class _FormReader(HTMLParser):
    """The values a browser would post from the checkout form as it stands (hidden fields, choices made)."""

    def __init__(self) -> None:
        super().__init__()
        self.values: dict[str, str] = {}
        self._select: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "input" and a.get("name"):
            if a.get("type") == "hidden" or (a.get("type") == "radio" and "checked" in a):
                self.values[a["name"]] = a.get("value", "")
        elif tag == "select":
            self._select = a.get("name")
        elif tag == "option" and self._select and self._select not in self.values:
            self.values[self._select] = a.get("value", "")

    def handle_endtag(self, tag: str) -> None:
        if tag == "select":
            self._select = None


class DemoPlayer:
    def __init__(self, emulator: str, server: str, admin_token: str, timeout_s: float = 60) -> None:
        self.emulator = emulator.rstrip("/") + "/_emulator/"
        self.server = server.rstrip("/")
        self.token = admin_token
        self.timeout_s = timeout_s

    def control(self, method: str, path: str, body: object | None = None) -> object:
        status, text = _http(method, self.emulator + path, body)
        if status >= 400:
            raise DemoError(f"the emulator answered {status} to {path}: {text[:200]}")
        return json.loads(text or "null")

    def wait_for(self, found: Callable[[], str | None], what: str) -> str:
        # Waiting for the server to answer, as a person would: the bot's work is asynchronous.
        deadline = time.monotonic() + self.timeout_s
        while time.monotonic() < deadline:
            value = found()
            if value:
                return value
            time.sleep(0.1)
        raise DemoError(f"timed out waiting for {what}")

    def sent_to(self, psid: str, containing: str) -> str | None:
        calls = self.control("GET", "calls?path_contains=/messages")
        for call in reversed(calls if isinstance(calls, list) else []):
            body = call.get("body") or {}
            text = json.dumps(body.get("message", {}), ensure_ascii=False)
            if call.get("status") == 200 and (body.get("recipient") or {}).get("id") == psid and containing in text:
                return text
        return None

    def comment(self, shopper: Shopper, text: str) -> None:
        body = {
            "page_id": DEMO_PAGE,
            "post_id": DEMO_POST,
            "user_id": shopper.psid,
            "user_name": shopper.name,
            "message": text,
        }
        self.control("POST", "webhooks/comment", body)

    def message(self, shopper: Shopper, text: str) -> None:
        self.control("POST", "webhooks/message", {"page_id": DEMO_PAGE, "psid": shopper.psid, "text": text})

    def check_out(self, shopper: Shopper, form: dict[str, str]) -> str:
        """The shopper opens the checkout link the bot sent them and confirms; the order's number."""
        self.message(shopper, shopper.checkout_word)
        sent = self.wait_for(lambda: self.sent_to(shopper.psid, "/checkout/"), f"{shopper.name}'s checkout link")
        link = next(u for u in json.loads(sent).get("attachment", {}).get("payload", {}).get("buttons", []))["url"]
        path = urllib.parse.urlsplit(link).path  # the server's public URL may not be how we reach it here
        status, page = _http("GET", self.server + path)
        if status != 200:
            raise DemoError(f"the checkout page answered {status}")
        reader = _FormReader()
        reader.feed(page)
        status, answer = _http("POST", self.server + path, form={**reader.values, **form})
        if status != 200:
            said = "; ".join(re.findall(r'<p class="error">([^<]*)</p>', answer)) or answer[:300]
            raise DemoError(f"the checkout answered {status}: {said}")
        status, text = _http("GET", f"{self.server}/api/orders?psid={shopper.psid}", token=self.token)
        mine = json.loads(text).get("orders", []) if status == 200 else []
        if not mine:
            raise DemoError(f"no order found for {shopper.name} after checkout")
        return str(mine[0]["number"])

    def move_order(self, number: str, step: str) -> None:
        body = (
            {"carrier": "SF Express 順豐速運", "tracking_number": f"SF{number[-4:]}1234567"} if step == "ship" else {}
        )
        status, text = _http("POST", f"{self.server}/api/orders/{number}/{step}", body, token=self.token)
        if status != 200:
            raise DemoError(f"{step} {number}: {status} {text[:200]}")


def play_demo_shop(emulator: str, server: str, admin_token: str, *, say: Callable[[str], None] = print) -> list[str]:
    """Play the evening: every shopper comments, writes, checks out; the shop moves the orders on. The order
    numbers placed, in order."""
    player = DemoPlayer(emulator, server, admin_token)
    for shopper in SHOPPERS:
        player.control(
            "POST",
            "people",
            {"page_id": DEMO_PAGE, "psid": shopper.psid, "first_name": shopper.first_name}
            | ({"last_name": shopper.last_name} if shopper.last_name else {}),
        )
        for text in shopper.comments:
            player.comment(shopper, text)
        say(f"{shopper.name}: commented {', '.join(shopper.comments)}")
    numbers = []
    for shopper in SHOPPERS:
        if shopper.checkout is None:
            continue
        number = player.check_out(shopper, shopper.checkout)
        for step in shopper.after:
            player.move_order(number, step)
        numbers.append(number)
        say(f"{shopper.name}: order {number}" + (f" ({', '.join(shopper.after)})" if shopper.after else ""))
    # Their questions last: a chat's preview in the inbox is what the shopper said last.
    for shopper in SHOPPERS:
        for text in shopper.messages:
            player.message(shopper, text)
    return numbers


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add the `demo-shop` subcommand to `plusone`'s subparsers."""
    demo = subparsers.add_parser(
        "demo-shop", help="play a Hong Kong shop's evening (comments, chats, orders) against `plusone serve`'s demo"
    )
    demo.add_argument("--server", help="the running server (default: http://HOST:PORT from settings)")
    demo.add_argument("--emulator", help="the demo emulator's base URL (default: the one `plusone serve` runs)")
    demo.set_defaults(func=run_demo_shop)


def run_demo_shop(args: argparse.Namespace) -> int:
    from bot.emulator.config import local_webhook_url, running_demo_emulator
    from config.settings import load_settings

    settings = load_settings()
    emulator = args.emulator or running_demo_emulator(Path(settings.data_dir))
    if not emulator:
        print("plusone demo-shop: no demo emulator runs: start `plusone serve` without Page tokens", file=sys.stderr)
        return 2
    if settings.admin_token is None:
        print("plusone demo-shop: PLUSONE_ADMIN_TOKEN is needed to move the orders on", file=sys.stderr)
        return 2
    server = args.server or local_webhook_url(settings.host, settings.port).removesuffix("/webhook")
    try:
        play_demo_shop(emulator, server, settings.admin_token.get_secret_value())
    except DemoError as exc:
        print(f"plusone demo-shop: {exc}", file=sys.stderr)
        return 1
    return 0
