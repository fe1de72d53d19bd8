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
    plan_edit,
    plan_new_comment,
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
        "needs_variant",
        "over_limit",
        "unknown_code",
        "ambiguous",
        "ambiguous_product",
        "unreadable_quantity",
        "edited",
        "unchanged",
        "released",
        "nothing_to_release",
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
