"""The shop file's `faq:` section: the sample's FAQ answers its questions, and every mistake is one line
naming the file, the line and the field (the same checks serve the admin API's JSON)."""

from __future__ import annotations

from pathlib import Path

import pytest

from config.faq_file import parse_faq_rule_json
from config.shop_file import ShopFileError, load_shop_file, parse_shop_text
from parsers.faq import FaqButton, FaqQuickReply, MatchMode, match_faq

SAMPLE = Path(__file__).parents[2] / "config" / "samples" / "demo_shop.yaml"

# Line numbers matter below: 4 faq, 5 welcome, 7 first rule (key), 8 keywords, 9 reply, 10 quick replies,
# 11 second rule, 14 its buttons.
BASE = """\
shop: {name: Blossom, currency: HKD, page_id: "1000000000001"}
products:
  - {code: A, name: Dress, price: 100}
faq:
  welcome: Hi! 你好！
  rules:
    - key: hours
      keywords: [hours, 營業時間]
      reply: 11:00-20:00
      quick_replies: [{title: Address 地址, rule: address}]
    - key: address
      keywords: [address, 地址]
      reply: Mong Kok 旺角
      buttons: [{title: Map, url: "https://maps.example/shop"}]
"""


def edit(old: str, new: str) -> str:
    assert BASE.count(old) == 1, old
    return BASE.replace(old, new)


def test_base_faq_parses() -> None:
    (faq,) = parse_shop_text(BASE, "shop.yaml").faq
    assert (faq.page_id, faq.welcome, faq.fallback) == ("1000000000001", "Hi! 你好！", None)
    hours, address = faq.rules
    assert (hours.key, hours.keywords, hours.match, hours.priority) == (
        "hours",
        ("hours", "營業時間"),
        MatchMode.ANY,
        0,
    )
    assert hours.reply.quick_replies == (FaqQuickReply("Address 地址", "address"),)
    assert address.reply.buttons == (FaqButton("Map", url="https://maps.example/shop"),)


def test_several_pages_and_no_faq() -> None:
    text = BASE[: BASE.index("faq:")] + (
        "faq:\n"
        "  - rules: [{key: hours, keywords: [hours], reply: '11:00'}]\n"
        "  - page_id: 2000000000002\n"
        "    fallback: Soon 稍後回覆\n"
    )
    first, second = parse_shop_text(text).faq
    assert (first.page_id, [r.key for r in first.rules]) == ("1000000000001", ["hours"])
    assert (second.page_id, second.rules, second.fallback) == ("2000000000002", (), "Soon 稍後回覆")
    assert parse_shop_text(BASE[: BASE.index("faq:")]).faq == ()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            edit("  welcome: Hi! 你好！\n", "  colour: pink\n"),
            "shop.yaml:5: faq.colour: unknown field (expected page_id, welcome, fallback, rules)",
        ),
        (
            edit('page_id: "1000000000001"', "currency: HKD").replace("currency: HKD, currency: HKD", "currency: HKD"),
            "shop.yaml:5: faq.page_id: missing (and shop.page_id gives no default)",
        ),
        (edit("  welcome: Hi! 你好！\n", '  welcome: "  "\n'), "shop.yaml:5: faq.welcome: must not be empty"),
        (
            edit("  rules:\n", "  rules: hours\n  x:\n"),
            "shop.yaml:7: faq.x: unknown field (expected page_id, welcome, fallback, rules)",
        ),
        (
            edit("    - key: hours\n", "    - key: Opening Hours\n"),
            "shop.yaml:7: faq.rules[0].key: must be lower-case letters, digits, - and _ (like opening-hours), "
            "at most 80 characters",
        ),
        (
            edit("    - key: address\n", "    - key: hours\n"),
            "shop.yaml:11: faq.rules[1].key: duplicate key 'hours' (faq.rules[0])",
        ),
        (edit("      keywords: [hours, 營業時間]\n", ""), "shop.yaml:7: faq.rules[0].keywords: missing"),
        (edit("[hours, 營業時間]", "[]"), "shop.yaml:8: faq.rules[0].keywords: must list at least one keyword"),
        (
            edit("[hours, 營業時間]", "hours"),
            "shop.yaml:8: faq.rules[0].keywords: must be a list of keywords, like [hours, 營業時間]",
        ),
        (
            edit("[hours, 營業時間]", "[hours, HOURS]"),
            "shop.yaml:8: faq.rules[0].keywords[1]: is the same keyword as keywords[0] (case and width do not count)",
        ),
        (edit("[hours, 營業時間]", '[hours, "  "]'), "shop.yaml:8: faq.rules[0].keywords[1]: must not be empty"),
        (
            edit("      reply: 11:00-20:00\n", "      reply: 11:00-20:00\n      match: some\n"),
            "shop.yaml:10: faq.rules[0].match: must be any, all or exact",
        ),
        (
            edit("      reply: 11:00-20:00\n", "      reply: 11:00-20:00\n      match: exact\n").replace(
                "[hours, 營業時間]", '[hours, "?!"]'
            ),
            "shop.yaml:8: faq.rules[0].keywords[1]: has nothing to match once punctuation and spaces are set aside",
        ),
        (
            edit("      reply: 11:00-20:00\n", "      reply: 11:00-20:00\n      priority: high\n"),
            "shop.yaml:10: faq.rules[0].priority: must be a whole number from -1000 to 1000",
        ),
        (
            edit("      reply: 11:00-20:00\n", "      reply: 11:00-20:00\n      priority: 5000\n"),
            "shop.yaml:10: faq.rules[0].priority: must be a whole number from -1000 to 1000",
        ),
        (edit("      reply: 11:00-20:00\n", ""), "shop.yaml:7: faq.rules[0].reply: missing"),
        (
            edit("      reply: 11:00-20:00\n", "      reply: " + "x" * 2000 + "\n"),
            "shop.yaml:9: faq.rules[0].reply: must be at most 1999 characters",
        ),
        (
            edit("      reply: Mong Kok 旺角\n", "      reply: " + "x" * 641 + "\n"),
            "shop.yaml:13: faq.rules[1].reply: must be at most 640 characters",
        ),
        (
            edit("rule: address}", "rule: adress}"),
            "shop.yaml:10: faq.rules[0].quick_replies[0].rule: no rule with key 'adress' in this FAQ",
        ),
        (
            edit("{title: Address 地址, rule: address}", "{title: Our address and map 地址, rule: address}"),
            "shop.yaml:10: faq.rules[0].quick_replies[0].title: must be at most 20 characters",
        ),
        (
            edit("{title: Address 地址, rule: address}", "{title: Address 地址}"),
            "shop.yaml:10: faq.rules[0].quick_replies[0].rule: missing",
        ),
        (
            edit("[{title: Address 地址, rule: address}]", "[" + ", ".join(["{title: A, rule: address}"] * 14) + "]"),
            "shop.yaml:10: faq.rules[0].quick_replies: Messenger allows at most 13",
        ),
        (
            edit('{title: Map, url: "https://maps.example/shop"}', "{title: Map}"),
            "shop.yaml:14: faq.rules[1].buttons[0]: give either url (a link) or rule (another answer)",
        ),
        (
            edit('{title: Map, url: "https://maps.example/shop"}', '{title: Map, url: "https://x", rule: hours}'),
            "shop.yaml:14: faq.rules[1].buttons[0]: give either url (a link) or rule (another answer)",
        ),
        (
            edit('url: "https://maps.example/shop"', 'url: "javascript:alert(1)"'),
            "shop.yaml:14: faq.rules[1].buttons[0].url: must be an http(s) address without spaces, "
            "like https://maps.example/shop",
        ),
    ],
)
def test_invalid_faq_gives_one_line(text: str, message: str) -> None:
    with pytest.raises(ShopFileError) as caught:
        parse_shop_text(text, "shop.yaml")
    assert str(caught.value) == message


def test_a_page_given_two_faqs_is_refused() -> None:
    text = BASE[: BASE.index("faq:")] + "faq:\n  - {page_id: 1, welcome: a}\n  - {page_id: 1, welcome: b}\n"
    with pytest.raises(ShopFileError, match=r"shop.yaml:6: faq\[1\]: Page 1 already has an FAQ \(faq\[0\]\)"):
        parse_shop_text(text, "shop.yaml")


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("營業時間？", "hours"),
        ("What are your opening hours", "hours"),
        ("地址喺邊", "address"),
        ("運費幾錢", "delivery"),
        ("delivery fee?", "delivery"),
        ("same day delivery to Kowloon?", "same-day-delivery"),
        ("有冇尺碼表", "sizes"),
        ("M size", "sizes"),
        ("showers", None),
        ("人工花有冇", None),
    ],
)
def test_the_sample_faq_answers_its_questions(text: str, key: str | None) -> None:
    (faq,) = load_shop_file(SAMPLE).faq
    found = match_faq(faq.rules, text)
    assert (found.rule.key if found.rule else None) == key


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ([], "body: must be a JSON object with key, keywords, match, priority, reply, quick_replies, buttons"),
        (
            {"keywords": ["a"], "reply": "x", "colour": 1},
            "colour: unknown field (expected key, keywords, match, priority, reply, quick_replies, buttons)",
        ),
        ({"key": "other", "keywords": ["a"], "reply": "x"}, "key: the body's key 'other' is not the address's 'hours'"),
        ({"keywords": "hours", "reply": "x"}, 'keywords: must be a list of text, like ["hours", "營業時間"]'),
        ({"keywords": [], "reply": "x"}, "keywords: must list at least one keyword"),
        ({"keywords": ["a"], "reply": "x", "match": "some"}, "match: must be any, all or exact"),
        ({"keywords": ["a"], "reply": "x", "priority": True}, "priority: must be a whole number from -1000 to 1000"),
        ({"keywords": ["a"], "reply": ""}, "reply: must not be empty"),
        (
            {"keywords": ["a"], "reply": "x", "buttons": [{"title": "Map"}]},
            "buttons[0]: give either url (a link) or rule (another answer)",
        ),
        ({"keywords": ["a"], "reply": "x", "quick_replies": [{"title": "A"}]}, "quick_replies[0].rule: missing"),
    ],
)
def test_invalid_json_rule(body: object, message: str) -> None:
    with pytest.raises(ValueError) as caught:
        parse_faq_rule_json(body, "hours")
    assert str(caught.value) == message


def test_json_rule() -> None:
    rule = parse_faq_rule_json(
        {
            "keywords": ["delivery", "fee"],
            "match": "all",
            "priority": 3,
            "reply": " HK$30 ",
            "buttons": [{"title": "Rates", "url": "https://example.com/rates"}],
        },
        "fee",
    )
    assert (rule.key, rule.match, rule.priority, rule.reply.text) == ("fee", MatchMode.ALL, 3, "HK$30")
    assert rule.reply.buttons == (FaqButton("Rates", url="https://example.com/rates"),)


def test_a_reply_per_language_in_the_file_and_in_json() -> None:
    (faq,) = parse_shop_text(
        edit("      reply: 11:00-20:00\n", "      reply: {zh_Hant: 營業時間 11:00-20:00, en: Open 11:00-20:00}\n"),
        "shop.yaml",
    ).faq
    reply = faq.rules[0].reply
    assert reply.texts == (("en", "Open 11:00-20:00"), ("zh_Hant", "營業時間 11:00-20:00"))
    assert (reply.text_for("zh_Hant"), reply.text_for("en"), reply.text) == (
        "營業時間 11:00-20:00",
        "Open 11:00-20:00",
        "Open 11:00-20:00",
    )
    json_rule = parse_faq_rule_json({"keywords": ["hours"], "reply": {"zh_Hant": " 營業時間 ", "en": ""}}, "hours")
    assert json_rule.reply.texts == (("zh_Hant", "營業時間"),) and json_rule.reply.text_for("en") == "營業時間"


@pytest.mark.parametrize(
    ("reply", "message"),
    [
        ("{fr: Bonjour}", "shop.yaml:9: faq.rules[0].reply.fr: unknown language: en or zh_Hant"),
        ("{}", "shop.yaml:9: faq.rules[0].reply: give the answer in en, zh_Hant or both"),
        ("{en: ''}", "shop.yaml:9: faq.rules[0].reply.en: must not be empty"),
    ],
)
def test_a_bad_reply_per_language_names_the_field(reply: str, message: str) -> None:
    with pytest.raises(ShopFileError) as caught:
        parse_shop_text(edit("      reply: 11:00-20:00\n", f"      reply: {reply}\n"), "shop.yaml")
    assert str(caught.value) == message
