"""Every status and outcome a merchant reads has words in both languages (bot.replies.statuses)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from bot.replies import statuses
from carts.comment_orders import CommentOutcome, ItemOutcome
from carts.order_rules import OrderStatus
from carts.payment_rules import PaymentKind
from carts.stock_rules import ClaimStatus

CASES: list[tuple[Callable[[str, str], str], list[str]]] = [
    (statuses.comment_outcome, [o.value for o in CommentOutcome]),
    (statuses.item_outcome, [o.value for o in ItemOutcome]),
    (statuses.claim_status, [s.value for s in ClaimStatus]),
    (statuses.order_status, [s.value for s in OrderStatus]),
    (statuses.payment_method, [k.value for k in PaymentKind]),
    (statuses.send_status, ["due", "queued", "pending", "sending", "sent", "failed", "refused"]),
    (statuses.send_reason, ["outside_window", "no_window", "unavailable", "page_restricted", "throttled"]),
    (statuses.order_step, ["placed", "paid", "reminded", "merged_in"]),
]


@pytest.mark.parametrize(("words", "values"), CASES, ids=lambda c: getattr(c, "__name__", ""))
def test_every_value_has_words_in_both_languages(words: Callable[[str, str], str], values: list[str]) -> None:
    for value in values:
        english, chinese = words("en", value), words("zh_Hant", value)
        assert english and "_" not in english, (value, english)
        # Chinese differs from the English (a translation), and carries Chinese characters.
        assert chinese != english or english == "PayMe", (value, chinese)
        assert any("\u4e00" <= ch <= "\u9fff" for ch in chinese) or english == "PayMe", (value, chinese)


def test_the_live_boards_raw_words_are_known() -> None:
    assert {"needs_variant", "over_limit", "not_an_order", "pending_payment"} <= statuses.RAW_WORDS
    assert statuses.comment_outcome("zh_Hant", "needs_variant") == "等待選擇款式（尺碼、顏色…）"


def test_an_unknown_value_is_shown_as_words_not_hidden() -> None:
    assert statuses.comment_outcome("en", "brand_new_kind") == "brand new kind"
