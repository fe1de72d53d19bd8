"""Hypothesis strategies for the fuzz tests (tests/test_fuzz.py): junk webhook bodies and junk admin requests.

Webhook bodies come in four families, each built to reach a different layer once the signature passes:
bytes that are not JSON, JSON that is not a delivery, Meta-shaped deliveries (comments on the campaign
post and elsewhere, edits, removals, messages, quick replies, echoes, postbacks, referrals, reactions,
receipts, live videos, test pings; several per delivery) with texts meant to upset the handlers, and the
real samples (tests/data/meta/, /work/shared/meta-samples/). The last two are then mutated at a few random
places: a value replaced by junk of any type (deep nesting, huge strings and numbers, lone surrogates,
digits int() refuses), a key deleted, a value wrapped in a list; the samples now and then at byte level."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from hypothesis import strategies as st

from bot.inbound import webhook_factory as wf
from tests.conftest import DATA, PAGE_ID

POST = f"{PAGE_ID}_2000000000001"  # the seeded campaign's post (tests/test_bot/test_handlers/test_comments.py)
SAMPLE_DIRS = (DATA / "meta", Path("/work/shared/meta-samples"))
MAX_BODY = 1024 * 1024  # Settings.max_body_bytes' default: bodies over it must get a 413, not a 5xx


def load_samples() -> list[bytes]:
    """The real webhook deliveries (both copies of the samples, once each); the Send API bodies are not ones."""
    seen: dict[str, bytes] = {}
    for folder in SAMPLE_DIRS:
        if not folder.is_dir():
            continue
        for path in sorted(folder.glob("*.json")):
            raw = path.read_bytes()
            try:
                data = json.loads(raw)
            except ValueError:
                continue
            if isinstance(data, dict) and "object" in data:
                seen.setdefault(json.dumps(data, sort_keys=True), raw)
    return list(seen.values())


SAMPLES = load_samples()


class Raw(str):
    """JSON text spliced into a body as is (numbers Python's json module will not write, deep nesting)."""


def encode(value: Any) -> bytes:
    """Compact JSON like Meta's, with `Raw` pieces spliced in verbatim."""
    pieces: list[str] = []

    def marker(raw: Raw) -> str:
        pieces.append(raw)
        return f"\x00raw{len(pieces) - 1}\x00"

    def swap(node: Any) -> Any:
        if isinstance(node, Raw):
            return marker(node)
        if isinstance(node, dict):
            return {(k if isinstance(k, str) else str(k)): swap(v) for k, v in node.items()}
        if isinstance(node, list):
            return [swap(v) for v in node]
        return node

    text = json.dumps(swap(value), separators=(",", ":"))
    for i, raw in enumerate(pieces):
        text = text.replace(json.dumps(f"\x00raw{i}\x00"), raw, 1)
    return text.encode("utf-8", "surrogatepass")


def weighted(*choices: tuple[int, st.SearchStrategy[Any]]) -> st.SearchStrategy[Any]:
    """One of the strategies, each as often as its weight (st.one_of would favour the first ones)."""
    table = [strategy for weight, strategy in choices for _ in range(weight)]
    return st.sampled_from(range(len(table))).flatmap(table.__getitem__)


# --- junk values -----------------------------------------------------------------------------------------


def _nested(depth: int, kind: str) -> Raw:
    if kind == "list":
        return Raw("[" * depth + "]" * depth)
    return Raw('{"a":' * depth + "null" + "}" * depth)


def _repeated(low: int, high: int) -> st.SearchStrategy[str]:
    chars = st.sampled_from(["x", "好", "😀", "A+1 ", "\u0000", "\\", '"', "\u202e", "\ufeff", "\n"])
    return st.builds(lambda char, n: char * n, chars, st.integers(low, high))


def _number(low: int, high: int) -> st.SearchStrategy[Raw]:
    return st.builds(
        lambda digits, sign, frac: Raw(sign + "9" * digits + frac),
        st.integers(low, high),
        st.sampled_from(["", "-"]),
        st.sampled_from(["", ".5", "e999", "E-999", "e-5"]),
    )


kinds = st.sampled_from(["list", "dict"])
# Big junk is rare (one junk value in twenty), so that 10,000 bodies stay quick to send; small junk is
# still deeper, longer and larger than anything Meta sends.
big_junk = st.one_of(
    st.builds(_nested, st.integers(900, 200_000), kinds), _repeated(10_000, 300_000), _number(4_000, 6_000)
)
deep = st.builds(_nested, st.integers(20, 900), kinds)
long_text = _repeated(100, 3_000)
huge_number = _number(19, 400)
lone_surrogate = st.sampled_from([Raw('"\\ud800"'), Raw('"a\\udfffb"'), Raw('"\\ud83d"')])
# Text that str.isdigit() calls digits though int() refuses it (superscripts, circled), or that int() reads
# though it is not ASCII (Arabic-Indic, full-width): ids and numbers written by someone else's keyboard.
odd_digits = st.sampled_from(
    ["³", "²³", "①", "١٢٣", "１２３", "1²", "٣-0", "0-³", "1700000000000-0", "+1", "1_000", " 1"]
)
scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=30)
    | st.sampled_from(["", " ", "0", "-1", "1e3", "null", "true", "A+1", "v1:", "v1:add:A", "💥", "\u200b"])
    | odd_digits
)
small_json = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=4,
)
small_junk = weighted(
    (3, small_json), (1, odd_digits), (1, deep), (1, long_text), (1, huge_number), (1, lone_surrogate)
)
junk = weighted((19, small_junk), (1, big_junk))


shopper_ids = st.integers(10**4, 10**17).map(str)
comment_texts = (
    st.text(max_size=80)
    | st.sampled_from(["A+1", "A+2, B+1 L", "b+99", "A+0", "A-1", "A+999999999999", "a+1 a+1 a+1", "+1", "B+1 XXL"])
    | long_text
    | odd_digits
)


# --- mutations -------------------------------------------------------------------------------------------


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(node, dict):
        for key, value in node.items():
            out += _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            out += _paths(value, (*prefix, i))
    return out


def _replace(node: Any, path: tuple[Any, ...], value: Any, op: str) -> Any:
    """A copy of `node` with the value at `path` replaced, deleted, or wrapped in a list."""
    if not path:
        return [node] if op == "wrap" else value
    head, rest = path[0], path[1:]
    copy: Any = dict(node) if isinstance(node, dict) else list(node)
    if not rest and op == "delete":
        del copy[head]
        return copy
    copy[head] = _replace(copy[head], rest, value, op)
    return copy


def _mutate(draw: st.DrawFn, data: Any, most: int) -> Any:
    """Up to `most` mutations at random places: a value set to junk, a key deleted, a value wrapped in a list."""
    for _ in range(draw(st.integers(0, most))):
        path = draw(st.sampled_from(_paths(data)))
        op = draw(st.sampled_from(["set", "set", "delete", "wrap"]))
        if op == "delete" and not path:
            continue
        data = _replace(data, path, draw(junk), op)
    return data


# --- Meta-shaped deliveries ------------------------------------------------------------------------------
# Built whole by the webhook factory (so most reach a handler), then mutated at a few places. Few draws per
# body: Hypothesis' bookkeeping per draw is what makes 10,000 bodies slow.

_psids = st.sampled_from([f"31000000{n:05d}" for n in range(40)]) | shopper_ids  # some shoppers come back
_unique = st.uuids().map(lambda u: str(u.int % 10**15))
_texts = comment_texts | st.sampled_from(["cart", "購物車", "checkout", "結帳", "agent", "真人", "hours"])
_now_s = 1_795_000_000


def _comment(kind: str, uid: str, psid: str, text: str) -> dict[str, Any]:
    on_campaign = kind != "comment_elsewhere"
    return wf.comment_change(
        page_id=PAGE_ID,
        post_id=POST if on_campaign else f"{PAGE_ID}_2999",
        message=text,
        user_id=psid,
        comment_id=f"2000000000001_9{uid}",
        verb={"comment_edit": "edited", "comment_remove": "remove"}.get(kind, "add"),
        created_time=_now_s,
    )


def _messaging(kind: str, uid: str, psid: str, text: str) -> dict[str, Any]:
    ts = _now_s * 1000
    if kind == "message":
        return wf.message_item(page_id=PAGE_ID, psid=psid, text=text, mid=f"m_{uid}", timestamp=ts)
    if kind == "quick_reply":
        return wf.message_item(page_id=PAGE_ID, psid=psid, text=text, mid=f"m_{uid}", timestamp=ts, quick_reply=text)
    if kind == "echo":
        return wf.message_item(
            page_id=PAGE_ID, psid=psid, text=text, mid=f"m_{uid}", timestamp=ts, echo=True, metadata=text
        )
    if kind == "postback":
        return wf.postback_item(page_id=PAGE_ID, psid=psid, payload=text, title=text, ref=text, timestamp=ts)
    if kind == "referral":
        return wf.referral_item(page_id=PAGE_ID, psid=psid, ref=text, timestamp=ts)
    base = {"sender": {"id": psid}, "recipient": {"id": PAGE_ID}, "timestamp": ts}
    if kind == "reaction":
        return {**base, "reaction": {"mid": f"m_{uid}", "reaction": text, "action": "react"}}
    if kind == "delivery":
        return {**base, "delivery": {"mids": [f"m_{uid}"], "watermark": ts}}
    return {**base, "read": {"watermark": ts}}


_CHANGES = ["comment", "comment", "comment", "comment_edit", "comment_remove", "comment_elsewhere", "live"]
_MESSAGING = ["message", "message", "quick_reply", "echo", "postback", "referral", "reaction", "delivery", "read"]


@st.composite
def _entry(draw: st.DrawFn) -> dict[str, Any]:
    kind = draw(st.sampled_from(_CHANGES + _MESSAGING + ["standby", "test_ping"]))
    uid, psid, text = draw(_unique), draw(_psids), draw(_texts)
    entry: dict[str, Any] = {"id": PAGE_ID, "time": _now_s}
    if kind == "live":
        status = draw(st.sampled_from(["live", "live_stopped", "vod", "processing"]))
        entry["changes"] = [{"field": "live_videos", "value": {"id": f"5{uid}", "status": status}}]
    elif kind == "test_ping":
        entry.update(id="0", changes=[{"field": text, "value": {"page_id": PAGE_ID}}])
    elif kind in _CHANGES:
        entry["changes"] = [_comment(kind, uid, psid, text)]
    else:
        name = "standby" if kind == "standby" else "messaging"
        entry[name] = [_messaging("message" if kind == "standby" else kind, uid, psid, text)]
    return entry


@st.composite
def shaped_delivery(draw: st.DrawFn) -> bytes:
    delivery = {"object": draw(st.sampled_from(["page"] * 8 + ["instagram", "user"])), "entry": draw(_entries)}
    return encode(_mutate(draw, delivery, 3))


_entries = st.lists(_entry(), min_size=1, max_size=3)
shaped = shaped_delivery()


# --- mutated real samples ----------------------------------------------------------------------------


@st.composite
def mutated_sample(draw: st.DrawFn) -> bytes:
    data: Any = json.loads(draw(st.sampled_from(SAMPLES)))
    if draw(st.booleans()):  # aim it at our Page and the campaign post, so it goes further in
        raw = (
            json.dumps(data)
            .replace('"1234567890321_', f'"{PAGE_ID}_2000000000001_')
            .replace('"1234567890321"', f'"{PAGE_ID}"')
        )
        data = json.loads(raw)
    body = encode(_mutate(draw, data, 4))
    if draw(st.integers(0, 4)) == 0:  # and now and then at the byte level
        at = draw(st.integers(0, len(body)))
        cut = draw(st.integers(0, 20))
        body = body[:at] + draw(st.binary(max_size=12)) + body[at + cut :]
    return body


# --- not a delivery at all -------------------------------------------------------------------------------

not_json = st.one_of(
    st.binary(max_size=200),
    st.sampled_from([b"", b"{", b"[]", b"null", b'{"object":', b"\xff\xfe{}", b'"page"', b"NaN", b"{}" * 3]),
    st.builds(lambda n: b"[" * n, st.integers(1, 5_000)),
    st.integers(0, 39).flatmap(  # rarely: deep or around the body limit (which must answer 413, not 5xx)
        lambda i: (
            st.builds(lambda n: b"[" * n, st.integers(5_000, 500_000))
            if i == 0
            else st.builds(lambda n: b"x" * n, st.integers(MAX_BODY - 10, MAX_BODY + 10))
            if i == 1
            else st.binary(max_size=50)
        )
    ),
)
json_not_delivery = junk.map(encode)

webhook_bodies = weighted((6, shaped), (3, mutated_sample()), (1, not_json), (1, json_not_delivery))


# --- admin API -------------------------------------------------------------------------------------------

path_ids = st.one_of(
    odd_digits,
    st.sampled_from(["A", "a", "B", "live", "PO-000001", "1", "0", "-1", "99999999999999999999", "%00", "%2F", ".."]),
    st.text(min_size=1, max_size=40),
    st.builds(lambda n: "9" * n, st.integers(1, 2_000)),
)
query_values = st.one_of(
    odd_digits,
    st.sampled_from(["", "true", "false", "1", "0", "-1", "1001", "1e3", "paid", "9" * 400, "\x00"]),
    st.text(max_size=40),
)
form_values = st.one_of(odd_digits, st.text(max_size=30), _repeated(1, 3_000), st.sampled_from(["delivery", "pickup"]))
form_bodies = st.dictionaries(
    st.sampled_from(["nonce", "version", "name", "phone", "delivery_method", "address", "points", "email"]),
    form_values,
    max_size=8,
).map(lambda form: urlencode(form).encode())
json_bodies = st.one_of(
    form_bodies,
    st.dictionaries(
        st.sampled_from(
            [
                "name",
                "price",
                "stock",
                "active",
                "title",
                "starts_at",
                "ends_at",
                "per_shopper_limit",
                "hold_minutes",
                "pinned_text",
                "closed_reply",
                "reference",
                "lines",
                "campaign",
                "video_id",
                "points",
                "reason",
                "birthday",
                "text",
                "keywords",
                "match",
                "priority",
                "reply",
                "quick_replies",
                "buttons",
                "order_number",
                "amount",
                "currency",
            ]
        )
        | st.text(max_size=10),
        junk,
        max_size=5,
    ).map(encode),
    json_not_delivery,
    not_json,
)
