"""What the bot writes to shoppers, in both languages: every reply function rendered in English and in
Traditional Chinese, failing on a text the catalog does not translate or English left in the Chinese; money
and numbers in Babel's formats; the rule that picks a shopper's language."""

from __future__ import annotations

import inspect
import json
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from babel.support import Translations

import bot.replies.i18n as i18n
from bot.replies import carts, chat, draws, fulfilment, members, orders, payments
from bot.replies.carts import CommentResult, ItemResult
from bot.replies.i18n import LocaleSource, money, number, script_locale, shopper_locale
from bot.replies.members import MemberCardInfo
from carts.core import CartInfo, CartLineInfo
from carts.order_rules import OrderInfo, OrderLineInfo
from carts.payment_rules import PaymentKind, PaymentMethod
from crm_bridge.rules import Program, RuleError, RuleErrorCode, Tier

NOW = datetime(2026, 12, 20, 11, 52, tzinfo=UTC)
ZONE = ZoneInfo("Asia/Hong_Kong")
CART = CartInfo(
    (
        CartLineInfo(1, "A", "連身裙", (("size", "L"),), 2, Decimal("1280")),
        CartLineInfo(2, "B", "絲巾", (), 1, Decimal("99.5")),
    ),
    "HKD",
)
EMPTY = CartInfo((), "HKD")
ORDER = OrderInfo(
    id=1,
    number="PO-000007",
    page_id="1",
    psid="2",
    status="pending_payment",
    currency="HKD",
    subtotal=Decimal("2659.5"),
    total=Decimal("2689.5"),
    customer_name="陳大文",
    phone="91234567",
    delivery_method="delivery",
    address="九龍彌敦道 1 號",
    payment_reference=None,
    placed_at=NOW,
    paid_at=None,
    cancelled_at=None,
    lines=(OrderLineInfo(1, 1, "A", "連身裙", (("size", "L"),), 2, Decimal("1280")),),
    shipping_fee=Decimal(30),
    expires_at=NOW + timedelta(hours=5),
)
TIERS = (Tier("basic", "銀卡"), Tier("gold", "金卡", threshold=Decimal(5000)))
CARD = MemberCardInfo("M0001", TIERS[0], Decimal(1200), 1280, 40, "HKD", "花店", "flowershop", False, False)
ITEMS = (
    ItemResult("A", "連身裙", 1, "added", variant_text="L"),
    ItemResult("B", "絲巾", 2, "waitlisted"),
    ItemResult("C", "頸巾", 1, "needs_variant", missing=(("colour", ("紅", "藍")),)),
    ItemResult("D", "外套", 1, "needs_variant", missing=(("size", ("S", "M")),)),
    ItemResult("A", "連身裙", 9, "over_limit", limit=3),
    ItemResult("Z", "", 1, "unknown_code"),
    ItemResult("", "", 2, "ambiguous"),
)
FPS = PaymentMethod(PaymentKind.FPS, fps_id="1234567", name="花店")

# Every public reply function that takes a locale, with the calls that reach each of its texts.
SAMPLES: dict[Callable[..., Any], list[tuple[Any, ...]]] = {
    carts.option_label: [("colour",), ("顏色",), ("尺寸",), ("材質",)],
    carts.cart_summary: [(CART,), (EMPTY,), (CartInfo(CART.lines[1:], "HKD"),)],
    carts.hold_news: [
        (change, "A 連身裙", 1, CART) for change in ("held", "waitlisted", "promoted", "expired", "reminder")
    ],
    carts.expired_choice: [()],
    carts.held_back_reply: [()],
    carts.render_choice_question: [("c1", "C", "頸巾", 1, {}, "colour", ("紅", "藍"))],
    carts.render_next_option: [("c1", "C", "頸巾", {"size": "M"}, "colour", ("紅", "藍"))],
    carts.hold_time_left: [
        (NOW + timedelta(minutes=23), NOW),
        (NOW + timedelta(hours=2), NOW),
        (NOW + timedelta(hours=1, minutes=5), NOW, ZONE),
    ],
    carts.cart_buttons: [(CART, "https://shop.example/c/t")],
    carts.render_checkout: [(CART, "https://shop.example/c/t"), (EMPTY, None)],
    carts.greeting: [("Amy Chan",), (None,)],
    carts.render_comment_reply: [
        ("陳大文", [CommentResult("c1", ITEMS)], CART, "https://shop.example/c/t"),
        (None, [CommentResult("c1", ITEMS * 12)], CART),
        ("Amy", [CommentResult("c1", (), closed=True)], EMPTY),
        ("Amy", [CommentResult("c1", (), held_back=True)], EMPTY),
        (
            "Amy",
            [CommentResult("c2", (ItemResult("", "", 2, "choose_product", candidates=(("A", "連身裙"),)),))],
            EMPTY,
        ),
    ],
    carts.render_cart: [(CART, "https://shop.example/c/t", "⏳"), (EMPTY,)],
    # The live's pointer moved within the viewers' delay: which product on screen (issue 20).
    carts.already_chosen: [("A",)],
    chat.welcome_text: [()],
    chat.welcome: [()],
    chat.fallback: [()],
    chat.agent_request: [()],
    chat.stale_payload: [()],
    chat.public_fallback: [(False,), (True,)],
    chat.language_set: [()],
    chat.language_ask: [()],
    members.share_text: [("花店", "flowershop", "M0001")],
    members.render_member_card: [(Program(TIERS), CARD)],
    members.render_referral_welcome: [(None, 50, "陳小美"), (None, 0, None)],
    members.render_referral_refused: [(RuleError(code, "x"),) for code in RuleErrorCode],
    members.render_linked: [("phone",), ("email",)],
    members.render_contact_taken: [("phone", True), ("email", False)],
    members.render_link_code: [("phone", "123456")],
    members.render_link_confirmed: [()],
    members.render_link_code_wrong: [(0,), (1,), (2,)],
    members.points_reason: [
        ("order_earned", {"order": "#1001", "tier": "金卡"}, "x"),
        ("referral_purchase", {"which": "first", "member": "M0002", "order": "#1002", "level": "1"}, "x"),
        ("referral_purchase", {"member": "M0002", "order": "#1003", "level": "2"}, "x"),
        ("refunded", {"order": "#1004"}, "x"),
        ("reversed", {"kind": "returned", "order": "#1005"}, "x"),
        ("reversed", {"kind": "cancelled", "order": "#1006"}, "x"),
        ("paid_at_checkout", '{"value": "HK$20", "order": "#1007"}', "x"),
        ("signup", None, "x"),
        ("referral_signup", {"member": "M0003", "level": "1"}, "x"),
        ("birthday", {"year": "2026"}, "x"),
        ("expired", {"date": "2026-06-30"}, "x"),
        ("self_referral_reversed", {}, "x"),
        ("tier_reached", {"tier": "金卡", "order": "#1008"}, "x"),
        ("tier_period", {"tier": "金卡", "date": "2026-01-01"}, "x"),
    ],
    members.render_signup_gift: [("🎁 SIGNUP10",)],
    orders.order_expiring: [(ORDER, NOW, "https://shop.example/o")],
    orders.order_expired: [(ORDER,)],
    orders.order_cancelled: [("PO-000007",)],
    orders.order_returned: [("PO-000007", 1, False), ("PO-000007", 2, True)],
    fulfilment.order_packed: [("PO-000007",)],
    fulfilment.order_shipped: [("PO-000007", "順豐", "SF123")],
    fulfilment.order_delivered: [("PO-000007",)],
    payments.history_steps: [([("placed", NOW), ("paid", NOW)], ZONE)],
    payments.method_label: [(kind.value,) for kind in PaymentKind],
    payments.status_label: [("paid",), ("shipped",)],
    payments.how_to_pay: [(ORDER, None), (ORDER, FPS)],
    payments.order_summary: [(ORDER, FPS, "https://shop.example/o")],
    payments.proof_received: [("PO-000007",)],
    payments.proof_without_order: [()],
    payments.payment_received: [("PO-000007",)],
    payments.proof_rejected: [("PO-000007",)],
    draws.draw_win: [("Amy Chan", "Friday live"), (None, "週五直播"), ("陳大文", "Friday live")],
}
# Words that are names, not English to translate.
_NAMES = {"FPS", "PayMe", "WhatsApp", "HK", "PO", "SF", "Messenger", "Instagram", "Direct", "App", "English", "QR"}
_SAME_IN_BOTH = {"PayMe"}  # a brand: its Chinese is its name


def _reply_functions() -> set[Callable[..., Any]]:
    found = set()
    for module in (carts, chat, draws, fulfilment, members, orders, payments):
        for name, function in inspect.getmembers(module, inspect.isfunction):
            ours = function.__module__ == module.__name__ and not name.startswith("_")
            if ours and next(iter(inspect.signature(function).parameters), None) == "locale":
                found.add(function)
    return found


def test_every_reply_function_has_samples() -> None:
    assert _reply_functions() - set(SAMPLES) == set()


class _Recording(Translations):
    """A catalog that notes every msgid asked for and not translated."""

    def __init__(self, inner: Translations, missing: set[str]) -> None:
        super().__init__()
        self.inner, self.missing = inner, missing

    def ugettext(self, message: str) -> str:
        text = self.inner.ugettext(message)
        if text == message:
            self.missing.add(message)
        return text


_NOT_SHOWN = {"payload", "url", "content_type", "type", "template_type"}


def _texts(value: Any) -> str:
    """The words a shopper sees in a reply (texts, titles), one a line; not payloads, URLs or Meta's keys."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        return "\n".join(_texts(v) for k, v in value.items() if k not in _NOT_SHOWN or not isinstance(v, str))
    if isinstance(value, list | tuple):
        return "\n".join(_texts(v) for v in value)
    if hasattr(value, "title"):  # a quick reply or button before it is rendered
        return str(value.title)
    if hasattr(value, "__dataclass_fields__"):
        return "\n".join(_texts(getattr(value, name)) for name in value.__dataclass_fields__)
    return str(value)


@pytest.mark.parametrize("function", sorted(SAMPLES, key=lambda f: f.__qualname__), ids=lambda f: f.__name__)
def test_every_reply_reads_in_chinese_with_nothing_left_in_english(
    function: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    missing: set[str] = set()
    chinese = _Recording(i18n.translations("zh_Hant"), missing)
    monkeypatch.setattr(i18n, "translations", lambda locale: chinese if locale == "zh_Hant" else Translations())
    for args in SAMPLES[function]:
        english, translated = function("en", *args), function("zh_Hant", *args)
        text = re.sub(r"https://\S+", "", _texts(translated))
        given = set(re.findall(r"[A-Za-z]{2,}", json.dumps(args, ensure_ascii=False, default=repr)))
        words = set(re.findall(r"[A-Za-z]{2,}", text)) - _NAMES - given
        assert not words, f"{function.__name__}{args}: English left in the Chinese: {sorted(words)}"
        # The Chinese differs from the English (a shop's own option name and a brand stay as written).
        assert english != translated or english is None or function is carts.option_label or english in _SAME_IN_BOTH
    missing -= _SAME_IN_BOTH
    assert not missing, f"{function.__name__}: no zh_Hant translation of {sorted(missing)}"


@pytest.mark.parametrize(
    ("option", "english", "chinese"),
    [
        ("colour", "colour", "顏色"),
        ("顏色", "colour", "顏色"),
        ("Size", "size", "尺碼"),
        ("Colour / 顏色", "Colour", "顏色"),  # the shop's own words in both languages
        ("款式|Cut", "Cut", "款式"),
        ("材質", "材質", "材質"),  # a name we do not know: as the shop wrote it
    ],
)
def test_an_option_reads_in_the_shoppers_language(option: str, english: str, chinese: str) -> None:
    assert (carts.option_label("en", option), carts.option_label("zh_Hant", option)) == (english, chinese)


def test_a_reply_in_english_has_no_chinese_of_ours() -> None:
    """The old copy wrote both languages in one message ("Hi! 你好！"): now one language per reply."""
    english = _texts(carts.render_comment_reply("en", "Amy", [CommentResult("c1", ITEMS[:1])], CART))
    assert "你好" not in english and "購物車" not in english and "Hi Amy!" in english
    assert "which colour?" in _texts(carts.render_choice_question("en", "c1", "C", "頸巾", 1, {}, "顏色", ("紅",)))
    assert "請選擇顏色" in _texts(carts.render_choice_question("zh_Hant", "c1", "C", "頸巾", 1, {}, "colour", ("紅",)))


@pytest.mark.parametrize(
    ("locale", "amount", "currency", "shown"),
    [
        ("en", "1280", "HKD", "HK$1,280"),
        ("zh_Hant", "1280", "HKD", "HK$1,280"),
        ("en", "450.5", "HKD", "HK$450.50"),
        ("zh_Hant", "390", "TWD", "NT$390"),
        ("en", "12.345", "USD", "US$12.35"),
        ("en", "-30", "HKD", "-HK$30"),
    ],
)
def test_money_is_written_in_babels_format_for_the_locale(locale: str, amount: str, currency: str, shown: str) -> None:
    assert money(locale, Decimal(amount), currency) == shown


def test_counts_are_grouped_the_locales_way() -> None:
    assert number("en", 12800) == "12,800" and number("zh_Hant", 1280) == "1,280"
    [card, _] = members.render_member_card("zh_Hant", Program(TIERS), CARD)
    assert "⭐ 積分：1,280 分可用" in card["text"]


def test_chinese_characters_mean_chinese_and_latin_letters_mean_nothing() -> None:
    assert script_locale("我要 A 兩件") == "zh_Hant"
    assert script_locale("A+1 唔該") == "zh_Hant"
    assert script_locale("A+1") is None and script_locale("cart please") is None and script_locale(None) is None


def test_a_shoppers_choice_beats_metas_locale_which_beats_their_script() -> None:
    assert shopper_locale(None, None, "zh_Hant", LocaleSource.SCRIPT) == ("zh_Hant", LocaleSource.SCRIPT)
    assert shopper_locale("zh_Hant", LocaleSource.SCRIPT, "en_US", LocaleSource.META) == ("en", LocaleSource.META)
    assert shopper_locale("en", LocaleSource.CHOSEN, "zh_Hant", LocaleSource.SCRIPT) is None  # their choice stays
    assert shopper_locale("en", LocaleSource.CHOSEN, "zh_HK", LocaleSource.META) is None
    assert shopper_locale("en", LocaleSource.CHOSEN, "zh_Hant", LocaleSource.CHOSEN) == ("zh_Hant", LocaleSource.CHOSEN)
    assert shopper_locale("zh_Hant", LocaleSource.SCRIPT, "zh_Hant", LocaleSource.SCRIPT) is None  # nothing new
    assert shopper_locale(None, None, "fr_FR", LocaleSource.META) is None  # not a language we write


@pytest.mark.parametrize(
    ("typed", "locale"),
    [("English", "en"), ("english!", "en"), ("中文", "zh_Hant"), ("廣東話", "zh_Hant"), ("hi", None)],
)
def test_typing_a_language_chooses_it(typed: str, locale: str | None) -> None:
    assert chat.chosen_language(typed) == locale


def test_the_language_switch_offers_each_language_in_its_own_words() -> None:
    assert [q.title for q in chat.language_quick_replies()] == ["中文", "English"]
    [message] = chat.fallback("zh_Hant")
    assert [q["title"] for q in message["quick_replies"]] == ["中文", "English"]
    assert chat.fallback("en", "Our own words")[0]["text"] == "Our own words"


def _checkout_msgids() -> set[str]:
    """The checkout page's own texts: its one-message pages (`_message(shop, locale, status, heading, text)`) and
    every literal it translates."""
    import ast
    from pathlib import Path

    tree = ast.parse((Path(__file__).resolve().parents[3] / "bot" / "web" / "checkout.py").read_text())
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            if node.func.id == "_message":
                found |= {a.value for a in node.args[3:5] if isinstance(a, ast.Constant)}
            if node.func.id == "gettext" and len(node.args) > 1 and isinstance(node.args[1], ast.Constant):
                found.add(node.args[1].value)
    return found


def test_the_checkout_page_and_its_refusals_read_in_chinese() -> None:
    from carts.order_rules import parse_checkout_form
    from crm_bridge.checkout_points import parse_checkout_extras

    refusals: set[str] = set()
    for data in (
        {},
        {"name": "x" * 200, "phone": "1", "delivery_method": "delivery", "address": "y" * 600},
        {"name": "a\x00", "address": "\x00", "delivery_method": "delivery"},
        {"name": "a", "phone": "91234567", "delivery_method": "delivery"},
    ):
        refusals |= set(parse_checkout_form(data)[1].values())
    refusals |= set(parse_checkout_extras({"points": "many", "email": "not an email"})[2].values())
    texts = _checkout_msgids()
    assert "Checkout not found" in texts and "Please enter your name." in refusals  # the collectors see them
    untranslated = {text for text in texts | refusals if i18n.gettext("zh_Hant", text) == text}
    assert not untranslated
