"""The pure plan of an order comment: its items' outcomes, its claims, an edit's difference, its outcome."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

from carts.comment_orders import (
    CampaignInfo,
    CampaignProductInfo,
    CommentOutcome,
    ItemOutcome,
    OrderComment,
    Used,
    hold_back,
    plan_edit,
    plan_new_comment,
    plan_product_choice,
    settled_outcome,
)
from parsers.order_comment import CatalogEntry, OrderParser

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def campaign(limit: int | None = None, open_now: bool = True) -> CampaignInfo:
    products = {
        "A": CampaignProductInfo(1, "A", "Floral dress", {"size": ("S", "M")}),
        "B": CampaignProductInfo(2, "B", "Scarf", {}),
    }
    parser = OrderParser(CatalogEntry(code=p.order_code, name=p.name, variants=p.variants) for p in products.values())
    starts = NOW - timedelta(hours=1)
    ends = NOW + timedelta(hours=1) if open_now else NOW - timedelta(minutes=1)
    return CampaignInfo(7, "xmas", starts, ends, limit, 30, products, parser, closed_reply="Closed!")


def comment(message: str, psid: str = "p1") -> OrderComment:
    return OrderComment("post_c1", "page", psid, message)


def test_the_stored_values_are_the_strings_the_comment_log_holds() -> None:
    assert [o.value for o in ItemOutcome] == [
        "claimed",
        "needs_variant",
        "over_limit",
        "unknown_code",
        "ambiguous",
        "ambiguous_product",
        "unreadable_quantity",
        "choose_product",
    ]
    assert [o.value for o in CommentOutcome] == [
        "received",
        "ignored",
        "no_campaign",
        "not_an_order",
        "pending",
        "added",
        "waitlisted",
        "campaign_closed",
        "offer",
        "needs_variant",
        "over_limit",
        "unknown_code",
        "ambiguous",
        "ambiguous_product",
        "unreadable_quantity",
        "choose_product",
        "product_chosen",
        "edited",
        "unchanged",
        "released",
        "nothing_to_release",
        "blocked",
    ]


def test_a_new_comment_claims_what_it_can_and_says_why_not_the_rest() -> None:
    used: Used = {}
    plan = plan_new_comment(comment("A+1, B+2, Z+1"), campaign(), "arrival-1", NOW, used)
    assert plan.outcome == "pending" and not plan.answer_now
    assert [(i["outcome"], i.get("code")) for i in plan.detail["items"]] == [
        ("needs_variant", "A"),
        ("claimed", "B"),
        ("unknown_code", "Z"),
    ]
    assert plan.detail["items"][0]["missing"] == ["size"] and plan.detail["items"][0]["values"] == {"size": ["S", "M"]}
    [row] = plan.claims
    assert (row["key"], row["product_id"], row["qty"], row["status"], row["source"]) == (
        "post_c1:2:",
        2,
        2,
        "pending",
        "comment",
    )
    assert (row["arrival"], row["hold_minutes"], row["created_at"], row["campaign_id"]) == ("arrival-1", 30, NOW, 7)
    assert used == {(7, "p1", 2): 2}


def test_the_per_shopper_limit_counts_what_the_shopper_already_claimed() -> None:
    used: Used = {(7, "p1", 2): 2}
    plan = plan_new_comment(comment("B+3"), campaign(limit=3), "a", NOW, used)
    assert [(i["outcome"], i["qty"]) for i in plan.detail["items"]] == [("over_limit", 2), ("claimed", 1)]
    assert plan.detail["items"][0]["limit"] == 3
    assert used == {(7, "p1", 2): 3}
    again = plan_new_comment(comment("B+1"), campaign(limit=3), "b", NOW, used)
    assert again.outcome == "over_limit" and again.answer_now and again.claims == []


def test_a_comment_without_claims_takes_its_first_items_outcome_or_is_not_an_order() -> None:
    assert plan_new_comment(comment("A+1"), campaign(), "a", NOW, {}).outcome == "needs_variant"
    assert plan_new_comment(comment("lovely!"), campaign(), "a", NOW, {}).outcome == "not_an_order"
    closed = plan_new_comment(comment("B+1"), campaign(open_now=False), "a", NOW, {})
    assert (closed.outcome, closed.detail, closed.claims) == (
        "campaign_closed",
        {"items": [], "closed_reply": "Closed!"},
        [],
    )


def test_an_edit_asks_for_the_difference_per_line() -> None:
    claims = [
        SimpleNamespace(product_id=2, variant="", qty=2, status="held"),
        SimpleNamespace(product_id=1, variant='{"size": "M"}', qty=1, status="waitlisted"),
        SimpleNamespace(product_id=2, variant="", qty=5, status="released"),  # given back: not counted
    ]
    assert plan_edit(campaign(), "B+3", claims, NOW) == {(1, '{"size": "M"}'): -1, (2, ""): 1}
    assert plan_edit(campaign(), "B+2, A+1 M", claims, NOW) == {}
    assert plan_edit(campaign(open_now=False), "B+3", claims, NOW) == {(1, '{"size": "M"}'): -1, (2, ""): -2}


def test_a_comment_is_settled_once_no_claim_is_pending() -> None:
    assert settled_outcome({"held", "waitlisted"}) == "added"
    assert settled_outcome({"waitlisted"}) == "waitlisted"
    assert settled_outcome({"held", "pending"}) is None


def test_a_blocked_buyers_order_claims_nothing_and_anything_else_stays_as_planned() -> None:
    used: Used = {}
    order = plan_new_comment(comment("A+1 M, B+2"), campaign(), "arrival-1", NOW, used)
    assert order.claims  # as anyone's would
    held_back = hold_back(order)
    assert (held_back.outcome, held_back.claims, held_back.answer_now) == (CommentOutcome.BLOCKED, [], True)
    chat = plan_new_comment(comment("so pretty"), campaign(), "arrival-2", NOW, used)
    assert hold_back(chat) == chat  # not an order: no answer at all
    closed = plan_new_comment(comment("A+1 M"), campaign(open_now=False), "arrival-3", NOW, used)
    assert hold_back(closed) == closed  # the sale's own closed answer
    unknown = plan_new_comment(comment("Z+1"), campaign(), "arrival-4", NOW, used)
    assert hold_back(unknown).outcome == CommentOutcome.BLOCKED  # an order all the same: the polite answer


# --- the live's "now selling" pointer (issue 20) ---


def test_a_quantity_without_a_code_orders_the_one_product_on_screen() -> None:
    for text, qty in [("+1", 1), ("+2", 2), ("要", 1), ("我要兩件", 2), ("want 2", 2)]:
        plan = plan_new_comment(comment(text), campaign(), "arrival-1", NOW, {}, on_screen=("B",))
        assert plan.outcome == "pending", text
        assert [(c["product_id"], c["qty"], c["source"]) for c in plan.claims] == [(2, qty, "comment")], text
        assert plan.detail["items"][0]["code"] == "B" and plan.detail["items"][0]["pointed"] is True


def test_the_size_after_a_bare_quantity_is_the_pointed_products() -> None:
    plan = plan_new_comment(comment("+1 M"), campaign(), "arrival-1", NOW, {}, on_screen=("A",))
    assert [(c["product_id"], c["variant"]) for c in plan.claims] == [(1, '{"size": "M"}')]
    asked = plan_new_comment(comment("+1"), campaign(), "arrival-1", NOW, {}, on_screen=("A",))
    assert asked.detail["items"][0]["outcome"] == "needs_variant" and not asked.claims


def test_when_the_pointer_moved_within_the_delay_the_shopper_is_asked_which_one() -> None:
    plan = plan_new_comment(comment("+2"), campaign(), "arrival-1", NOW, {}, on_screen=("A", "B"))
    assert plan.outcome == "choose_product" and plan.answer_now and plan.claims == []
    assert plan.detail["items"] == [
        {
            "qty": 2,
            "outcome": "choose_product",
            "candidates": [{"code": "A", "name": "Floral dress"}, {"code": "B", "name": "Scarf"}],
        }
    ]


def test_a_code_in_the_comment_always_wins_over_the_pointer() -> None:
    plan = plan_new_comment(comment("B+1"), campaign(), "arrival-1", NOW, {}, on_screen=("A",))
    assert [(c["product_id"], c["qty"]) for c in plan.claims] == [(2, 1)]
    assert "pointed" not in plan.detail["items"][0]


def test_nothing_on_screen_is_todays_answer_to_a_quantity_without_a_code() -> None:
    for screen in [(), ("Z",)]:  # never pointed, or at a product that left the campaign since
        plan = plan_new_comment(comment("+1"), campaign(), "arrival-1", NOW, {}, on_screen=screen)
        assert plan.outcome == "ambiguous" and plan.claims == []
        assert plan_new_comment(comment("要"), campaign(), "arrival-1", NOW, {}, on_screen=screen).outcome == (
            "not_an_order"
        )


def test_the_chosen_product_is_claimed_at_the_comments_arrival_and_decided_in_the_chat() -> None:
    entries, claims = plan_product_choice(comment("+1 S"), campaign(), "A", "arrival-1", NOW, {})
    assert [(e["code"], e["outcome"], e["pointed"]) for e in entries] == [("A", "claimed", True)]
    assert [(c["product_id"], c["variant"], c["arrival"], c["source"]) for c in claims] == [
        (1, '{"size": "S"}', "arrival-1", "messenger")
    ]
    assert plan_product_choice(comment("+1"), campaign(open_now=False), "A", "arrival-1", NOW, {}) == ([], [])


def test_an_edited_bare_quantity_changes_the_pointed_product() -> None:
    claims = [SimpleNamespace(product_id=2, variant="", qty=1, status="held")]
    assert plan_edit(campaign(), "+3", claims, NOW, now_selling="B") == {(2, ""): 2}
    assert plan_edit(campaign(), "+1", claims, NOW, now_selling="B") == {}
