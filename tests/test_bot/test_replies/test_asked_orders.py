"""The private reply to an order the parser would not guess (issue 20): which product, or how many, with
quick replies whose payload orders it (`v1:ORDER`), in English and Traditional Chinese."""

from __future__ import annotations

import pytest

from bot.replies.carts import (
    CommentResult,
    ItemResult,
    OrderChoice,
    order_payload,
    parse_order_payload,
    render_comment_reply,
)
from bot.replies.payload_codec import PayloadAction, encode_payload
from carts.comment_orders import ItemOutcome
from carts.core import CartInfo

EMPTY = CartInfo((), "HKD")
ROSES = ItemResult("玫瑰", "", 2, ItemOutcome.AMBIGUOUS_PRODUCT, candidates=[("E", "Rose bouquet"), ("F", "玫瑰香薰")])
HOW_MANY = ItemResult("A", "Floral dress", 0, ItemOutcome.UNREADABLE_QUANTITY)


def reply(locale: str, *items: ItemResult) -> tuple[list[str], list[tuple[str, str]]]:
    message = render_comment_reply(locale, "Amy Chan", [CommentResult("c1", items)], EMPTY)
    text = message["attachment"]["payload"]["text"]
    quick = [(q["title"], q["payload"]) for q in message.get("quick_replies", [])]
    return text.splitlines(), quick


@pytest.mark.parametrize(
    ("locale", "line"),
    [("en", "❔ “玫瑰” ×2: which one do you mean? Tap below"), ("zh_Hant", "❔「玫瑰」×2：你想要哪一款？請按下面選擇")],
)
def test_a_name_of_two_products_offers_each_as_a_quick_reply(locale: str, line: str) -> None:
    lines, quick = reply(locale, ROSES)
    assert lines[1] == line
    assert quick == [("E Rose bouquet", order_payload("c1", "E", 2)), ("F 玫瑰香薰", order_payload("c1", "F", 2))]


@pytest.mark.parametrize(
    ("locale", "line"),
    [
        ("en", "❔ A Floral dress: how many would you like? Tap below"),
        ("zh_Hant", "❔ A Floral dress：你想要幾件？請按下面選擇"),
    ],
)
def test_an_unreadable_quantity_offers_one_two_three(locale: str, line: str) -> None:
    lines, quick = reply(locale, HOW_MANY)
    assert lines[1] == line
    assert quick == [(str(n), order_payload("c1", "A", n)) for n in (1, 2, 3)]


def test_the_second_question_of_one_reply_says_how_to_answer_it_by_comment() -> None:
    lines, quick = reply("en", HOW_MANY, ROSES)
    assert lines[1:3] == [
        "❔ A Floral dress: how many would you like? Tap below",
        "❔ “玫瑰” ×2: which one? Please comment the code (E / F)",
    ]
    assert [title for title, _ in quick] == ["1", "2", "3"]  # one question's quick replies at a time


def test_an_ambiguous_removal_is_explained_not_offered() -> None:
    removal = ItemResult("玫瑰", "", 0, ItemOutcome.AMBIGUOUS_PRODUCT, candidates=[("E", ""), ("F", "")])
    lines, quick = reply("en", removal)
    assert lines[1] == "❔ “玫瑰” could be E / F: please comment the code" and quick == []


@pytest.mark.parametrize(
    ("payload", "choice"),
    [
        (order_payload("c1", "E", 2), OrderChoice("c1", "E", 2)),
        (encode_payload(PayloadAction.ORDER, "c1", "E", "0"), None),
        (encode_payload(PayloadAction.ORDER, "c1", "E", "1000"), None),
        (encode_payload(PayloadAction.ORDER, "c1", "E", "２"), None),
        (encode_payload(PayloadAction.PICK, "c1", "E"), None),
        ("v1:ORDER:c1:E", None),
        ("nonsense", None),
    ],
)
def test_order_payloads_are_read_or_refused(payload: str, choice: OrderChoice | None) -> None:
    assert parse_order_payload(payload) == choice
