"""The pure rules of stock holds: arrival order, first come first served, splits, the order of releases."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

from carts.stock_rules import (
    END_OF_STREAM,
    ClaimChange,
    ClaimSource,
    ClaimStatus,
    allocate_claims,
    arrival_key,
    release_order,
    status_after_release,
    units_free,
    waitlist_grants,
)

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def claim(claim_id: int, product_id: int, qty: int, arrival: str, status: str = "pending") -> SimpleNamespace:
    return SimpleNamespace(
        id=claim_id,
        key=f"c{claim_id}:{product_id}:",
        campaign_id=1,
        product_id=product_id,
        page_id="page",
        psid=f"s{claim_id}",
        comment_id=f"c{claim_id}",
        variant="",
        qty=qty,
        arrival=arrival,
        status=status,
        source="comment",
        hold_minutes=30,
    )


def test_the_stored_values_are_the_strings_the_database_holds() -> None:
    assert [s.value for s in ClaimStatus] == [
        "pending",
        "held",
        "waitlisted",
        "sold",
        "expired",
        "released",
        "cancelled",
    ]
    assert [s.value for s in ClaimSource] == ["comment", "messenger", "agent"]
    assert [c.value for c in ClaimChange] == ["held", "waitlisted", "promoted", "expired", "released", "reminder"]
    assert ClaimStatus.HELD == "held" and f"hold-{ClaimChange.PROMOTED}:k" == "hold-promoted:k"


def test_arrival_keys_sort_like_the_stream() -> None:
    keys = [arrival_key("1700000000000-2", 0), arrival_key("1700000000000-10", 0), arrival_key("1700000000001-0", 3)]
    assert keys == sorted(keys)
    assert arrival_key("1700000000000-2", 1) > arrival_key("1700000000000-2", 0)
    assert all(k < END_OF_STREAM for k in keys)


def test_units_free_never_goes_below_zero_and_none_is_unlimited() -> None:
    assert units_free(10, 3, 2) == 5
    assert units_free(4, 3, 2) == 0
    assert units_free(None, 3, 2) is None


def test_claims_are_held_in_arrival_order_and_the_one_that_runs_out_is_split() -> None:
    free: dict[int, int | None] = {1: 5, 2: None}
    claims = [claim(1, 1, 3, "a"), claim(2, 1, 4, "b"), claim(3, 1, 1, "c"), claim(4, 2, 7, "a")]
    allocation = allocate_claims(free, claims, NOW)
    assert [(d.psid, d.status, d.qty) for d in allocation.decisions] == [
        ("s1", "held", 3),
        ("s2", "waitlisted", 2),  # the split-off rest, in the claim's place in line
        ("s2", "held", 2),
        ("s3", "waitlisted", 1),  # a later small order does not slip past the earlier big one
        ("s4", "held", 7),
    ]
    assert [(c["_id"], c["status"], c["qty"]) for c in allocation.changes] == [
        (1, "held", 3),
        (2, "held", 2),
        (3, "waitlisted", 1),
        (4, "held", 7),
    ]
    assert allocation.changes[0]["expires_at"] == NOW + timedelta(minutes=30)
    assert allocation.changes[2]["expires_at"] is None
    [(index, rest)] = allocation.rests
    assert index == 1 and allocation.decisions[index].claim_id == -1  # its id comes with its row
    assert (rest["qty"], rest["status"], rest["arrival"], rest["decided_at"]) == (2, "waitlisted", "b", NOW)
    assert rest["key"].startswith("c2:1::w")
    assert allocation.taken == {1: 5, 2: 7}
    assert free == {1: 0, 2: None}


def test_the_waitlist_is_served_in_line_and_stops_at_the_first_it_cannot_serve() -> None:
    assert waitlist_grants(3, [2, 2, 1]) == [2, 1]
    assert waitlist_grants(0, [1]) == []
    assert waitlist_grants(None, [4, 5]) == [4, 5]


def test_releases_give_back_waitlisted_then_pending_then_held_units_latest_first() -> None:
    claims = [
        claim(1, 1, 1, "a", "held"),
        claim(2, 1, 1, "b", "held"),
        claim(3, 1, 1, "c", "pending"),
        claim(4, 1, 1, "d", "waitlisted"),
        claim(5, 1, 1, "e", "sold"),
        claim(6, 1, 1, "f", "waitlisted"),
    ]
    assert [c.id for c in release_order(claims)] == [6, 4, 3, 2, 1]  # sold units stay the order's
    assert status_after_release("held") == "released"
    assert status_after_release("waitlisted") == "cancelled"
    assert status_after_release("pending") == "cancelled"
