"""The cart's pure core and the messages a shopper reads about it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from bot.replies.carts import (
    VIEW_CART_PAYLOAD,
    CommentResult,
    ItemResult,
    hold_time_left,
    parse_pick_payload,
    pick_payload,
    render_cart,
    render_comment_reply,
)
from carts.core import CartInfo, CartLineInfo, format_money, merge_lines


def line(pid: int, code: str, qty: int, price: str, variant: tuple[tuple[str, str], ...] = ()) -> CartLineInfo:
    return CartLineInfo(pid, code, f"Product {code}", variant, qty, Decimal(price))


@pytest.mark.parametrize(
    ("amount", "currency", "shown"),
    [
        ("1280", "HKD", "HK$1,280"),
        ("450.5", "HKD", "HK$450.50"),
        ("390", "TWD", "NT$390"),
        ("390.4", "TWD", "NT$390"),
        ("12.345", "USD", "US$12.35"),
        ("7", "EUR", "EUR 7"),
    ],
)
def test_money_is_written_the_way_shops_write_it(amount: str, currency: str, shown: str) -> None:
    assert format_money(Decimal(amount), currency) == shown


def test_the_same_product_and_variant_add_up_to_one_line() -> None:
    size_l = (("size", "L"),)
    merged = merge_lines(
        [
            line(1, "A", 1, "100", size_l),
            line(2, "B", 2, "50"),
            line(1, "A", 2, "100", size_l),
            line(1, "A", 1, "100", (("size", "S"),)),
        ]
    )
    assert [(m.code, m.variant, m.qty) for m in merged] == [("A", size_l, 3), ("B", (), 2), ("A", (("size", "S"),), 1)]
    cart = CartInfo(merged, "HKD")
    assert (cart.units, cart.subtotal) == (6, Decimal("500"))


def test_a_comment_reply_says_what_each_item_did_and_the_cart_total() -> None:
    cart = CartInfo((line(1, "A", 1, "1280", (("size", "L"),)),), "HKD")
    result = CommentResult(
        "c1",
        (
            ItemResult("A", "Wrap dress", 1, "added", variant_text="L"),
            ItemResult("B", "Linen shirt", 2, "waitlisted"),
            ItemResult("C", "Scarf", 1, "needs_variant", missing=(("colour", ("Red", "紅色", "Light Blue")),)),
            ItemResult("A", "Wrap dress", 2, "over_limit", limit=3),
            ItemResult("D", "", 1, "unknown_code"),
        ),
    )
    message = render_comment_reply("en", "陳大文", [result], cart)
    payload = message["attachment"]["payload"]
    assert payload["template_type"] == "button"
    assert payload["text"].splitlines() == [
        "Hi 陳大文!",
        "✅ A Wrap dress (L) ×1 added",
        "⏳ B Linen shirt ×2: sold out, you are on the waitlist",
        "❓ C Scarf ×1: which colour? Tap below",
        "⚠️ A Wrap dress ×2 not added: the limit is 3 per person",
        "❔ D is not on sale in this post",
        "",
        "🛒 Cart: 1 item · HK$1,280",
    ]
    assert payload["buttons"] == [{"type": "postback", "title": "View cart", "payload": VIEW_CART_PAYLOAD}]
    titles = [q["title"] for q in message["quick_replies"]]
    assert titles == ["Red", "紅色", "Light Blue"]
    pick = parse_pick_payload(message["quick_replies"][1]["payload"])
    assert pick is not None and (pick.comment_id, pick.code, pick.chosen) == ("c1", "C", {"colour": "紅色"})


def test_a_long_reply_keeps_the_total_and_says_what_was_left_out() -> None:
    cart = CartInfo((line(1, "A", 40, "10"),), "HKD")
    items = tuple(ItemResult(f"A{i}", "A rather long product name here", 1, "waitlisted") for i in range(40))
    text = render_comment_reply("en", "Amy", [CommentResult("c1", items)], cart)["attachment"]["payload"]["text"]
    assert len(text) <= 640
    assert text.endswith("🛒 Cart: 40 items · HK$400")
    assert "more" in text.splitlines()[-3]


def test_a_closed_campaign_answers_with_its_closing_text() -> None:
    message = render_comment_reply(
        "en",
        None,
        [CommentResult("c1", (), closed_text="This sale has ended, see you next live!")],
        CartInfo((), "HKD"),
    )
    assert message["attachment"]["payload"]["text"].splitlines()[1] == "This sale has ended, see you next live!"


@pytest.mark.parametrize(
    "payload",
    ["", "CART:v1", "PICK:v0:c1:A:size=L", "PICK:v1:", "PICK:v1:c1", "PICK:v1::A:size=L", "PICK:v1:c1:A:size"],
)
def test_bad_or_old_pick_payloads_are_refused(payload: str) -> None:
    assert parse_pick_payload(payload) is None


def test_pick_payloads_round_trip_awkward_text() -> None:
    payload = pick_payload("123_456", "玫瑰", {"colour": "Light Blue", "size": "M:L&x=y"})
    pick = parse_pick_payload(payload)
    assert pick is not None and pick.chosen == {"colour": "Light Blue", "size": "M:L&x=y"} and pick.code == "玫瑰"


def test_the_full_cart_lists_every_line() -> None:
    cart = CartInfo((line(1, "A", 2, "1280", (("size", "L"),)), line(2, "玫瑰", 1, "380")), "HKD")
    [message] = render_cart("en", cart)
    assert message["text"].splitlines() == [
        "🛒 Your cart",
        "• A Product A (L) ×2  HK$2,560",
        "• 玫瑰 Product 玫瑰 ×1  HK$380",
        "Total: HK$2,940",
    ]
    assert "empty" in render_cart("en", CartInfo((), "HKD"))[0]["text"]


NOW = datetime(2026, 12, 20, 11, 52, 10, tzinfo=UTC)


@pytest.mark.parametrize(
    ("left", "shown", "shown_zh"),
    [
        (timedelta(minutes=23), "23 min left", "尚餘 23 分鐘"),
        (timedelta(minutes=22, seconds=1), "23 min left", "尚餘 23 分鐘"),  # rounded up: never "0 min"
        (timedelta(seconds=5), "1 min left", "尚餘 1 分鐘"),
        (timedelta(hours=2), "2 h left", "尚餘 2 小時"),
        (timedelta(hours=1, minutes=5), "1 h 5 min left", "尚餘 1 小時 5 分鐘"),
    ],
)
def test_the_holds_time_left_reads_as_minutes_or_hours(left: timedelta, shown: str, shown_zh: str) -> None:
    assert hold_time_left("en", NOW + left, NOW) == f"⏳ Held for you: {shown}"
    assert hold_time_left("zh_Hant", NOW + left, NOW) == f"⏳ 為你保留：{shown_zh}"


def test_the_hold_ends_at_a_clock_time_of_the_shops_zone_and_says_nothing_once_over() -> None:
    # 11:52 UTC + 23 min is 20:15 in Hong Kong (UTC+8).
    text = hold_time_left("en", NOW + timedelta(minutes=23), NOW, ZoneInfo("Asia/Hong_Kong"))
    assert text == "⏳ Held for you: 23 min left (until 20:15)"
    text = hold_time_left("zh_Hant", NOW + timedelta(minutes=23), NOW, ZoneInfo("Asia/Hong_Kong"))
    assert text == "⏳ 為你保留：尚餘 23 分鐘（至 20:15）"
    assert hold_time_left("en", NOW, NOW) is None and hold_time_left("en", None, NOW) is None


def test_the_cart_carries_the_checkout_button_and_the_time_left() -> None:
    cart = CartInfo((line(1, "A", 2, "1280", (("size", "L"),)),), "HKD")
    hold = hold_time_left("zh_Hant", NOW + timedelta(minutes=23), NOW)
    [message] = render_cart("zh_Hant", cart, "https://shop.example/checkout/t0k", hold)
    payload = message["attachment"]["payload"]
    assert payload["text"].splitlines()[-2:] == ["總數：HK$2,560", hold]
    assert payload["buttons"] == [{"type": "web_url", "title": "結帳", "url": "https://shop.example/checkout/t0k"}]


def test_a_long_cart_keeps_its_lines_as_text_and_the_total_with_the_button() -> None:
    cart = CartInfo(tuple(line(i, f"X{i}", 1, "10") for i in range(1, 40)), "HKD")
    *parts, last = render_cart("en", cart, "https://shop.example/checkout/t0k", "⏳ Held for you: 5 min left")
    assert all("text" in p for p in parts) and "• X39 Product X39 ×1  HK$10" in parts[-1]["text"]
    assert last["attachment"]["payload"]["text"] == "Total: HK$390\n⏳ Held for you: 5 min left"
    assert [b["title"] for b in last["attachment"]["payload"]["buttons"]] == ["Checkout"]
