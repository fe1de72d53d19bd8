"""The shop file's `messenger_profile:` section: Get Started, greeting, ice breakers and the persistent menu
per Meta locale, checked against Meta's limits, each mistake one line naming the file, line and field; and the
profile PlusOne builds from it (or from its defaults, in English and Chinese)."""

from __future__ import annotations

import pytest

from bot.replies.messenger_profile import build_profile, profile_changes
from bot.replies.payload_codec import Payload, PayloadAction, decode_payload
from config.catalog_file import CatalogFileError
from config.messenger_profile_file import IceBreaker, MenuItem, profile_from_json, profile_to_json
from config.shop_file import parse_shop_text

# Line 4: the section, 6: greeting.default, 7: greeting.zh_TW, 9: ice_breakers.default, 11: the menu's default.
BASE = """\
shop: {name: Blossom, currency: HKD, page_id: "1000000000001", language: zh_Hant}
products:
  - {code: A, name: Dress, price: 100}
messenger_profile:
  greeting:
    default: "Hi {{user_first_name}}!"
    zh_TW: "你好 {{user_first_name}}！"
  ice_breakers:
    default: [{question: "How do I order?", payload: "v1:FAQ:how"}]
  persistent_menu:
    default: [cart, checkout, points, person, {title: Our shop, url: "https://shop.example/"}]
    zh_HK: [cart, {title: 營業時間, payload: "v1:FAQ:hours"}]
"""


LONG_TITLE = "This title is far too long for Meta"


def edit(old: str, new: str) -> str:
    assert BASE.count(old) == 1, old
    return BASE.replace(old, new)


def test_the_section_parses_per_locale_and_survives_the_database() -> None:
    profile = parse_shop_text(BASE, "shop.yaml").messenger_profile
    assert profile is not None
    assert profile.get_started == "GET_STARTED"
    assert profile.greeting == (("default", "Hi {{user_first_name}}!"), ("zh_TW", "你好 {{user_first_name}}！"))
    assert profile.ice_breakers == (("default", (IceBreaker("How do I order?", "v1:FAQ:how"),)),)
    assert profile.persistent_menu is not None
    default_menu = dict(profile.persistent_menu)["default"]
    assert [i.action for i in default_menu[:4]] == ["cart", "checkout", "points", "person"]
    assert default_menu[4] == MenuItem(title="Our shop", url="https://shop.example/")
    assert profile_from_json(profile_to_json(profile)) == profile
    assert parse_shop_text(BASE[: BASE.index("messenger_profile:")], "shop.yaml").messenger_profile is None


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        (
            'default: "Hi {{user_first_name}}!"',
            f'default: "{"x" * 161}"',
            "shop.yaml:6: messenger_profile.greeting.default: is 161 characters; Meta allows 160",
        ),
        (
            "    zh_TW:",
            "    Chinese:",
            "shop.yaml:7: messenger_profile.greeting.Chinese: must be default or a Meta locale",
        ),
        (
            '    default: "Hi {{user_first_name}}!"\n',
            "",
            "shop.yaml:6: messenger_profile.greeting: needs a default locale",
        ),
        (
            'default: [{question: "How do I order?", payload: "v1:FAQ:how"}]',
            "default: [" + ", ".join(f"{{question: q{i}, payload: p}}" for i in range(5)) + "]",
            "shop.yaml:9: messenger_profile.ice_breakers.default: has 5 questions; Meta allows 4",
        ),
        (
            'question: "How do I order?", ',
            "",
            "shop.yaml:9: messenger_profile.ice_breakers.default[0].question: missing",
        ),
        (
            "default: [cart, checkout",
            "default: [basket, checkout",
            "shop.yaml:11: messenger_profile.persistent_menu.default[0]: "
            "must be one of cart, checkout, points, person, language",
        ),
        (
            "{title: Our shop, ",
            f"{{title: {LONG_TITLE}, ",
            "shop.yaml:11: messenger_profile.persistent_menu.default[4].title: "
            f"is {len(LONG_TITLE)} characters; Meta allows 30",
        ),
        (
            'url: "https://shop.example/"',
            'url: "http://shop.example/"',
            "shop.yaml:11: messenger_profile.persistent_menu.default[4].url: must start with https://",
        ),
        (
            "default: [cart, checkout, points, person,",
            "default: [" + ", ".join(["cart"] * 20) + ",",
            "shop.yaml:11: messenger_profile.persistent_menu.default: has 21 items; Meta allows 20",
        ),
        (
            "  greeting:\n",
            "  get_started: HELLO\n  greeting:\n",
            "shop.yaml:5: messenger_profile.get_started: must be one of GET_STARTED",
        ),
        ("  greeting:\n", "  welcome:\n", "shop.yaml:5: messenger_profile.welcome: unknown field"),
    ],
)
def test_each_mistake_names_its_field(old: str, new: str, message: str) -> None:
    with pytest.raises(CatalogFileError) as caught:
        parse_shop_text(edit(old, new), "shop.yaml")
    assert str(caught.value).startswith(message), str(caught.value)


def test_without_the_section_every_shop_gets_get_started_a_greeting_and_the_menu_in_english_and_chinese() -> None:
    profile = build_profile(None, "en")
    assert decode_payload(profile["get_started"]["payload"]) == Payload(PayloadAction.GET_STARTED)
    assert "ice_breakers" not in profile, "they would take the Get Started button's place"
    greetings = {g["locale"]: g["text"] for g in profile["greeting"]}
    assert set(greetings) == {"default", "en_US", "zh_TW", "zh_HK"}
    assert greetings["default"].startswith("Hi {{user_first_name}}!") and "留言" in greetings["zh_HK"]
    assert all(len(text) <= 160 for text in greetings.values())
    menus = {m["locale"]: m["call_to_actions"] for m in profile["persistent_menu"]}
    assert [i["title"] for i in menus["en_US"]] == ["Cart", "Checkout", "My points", "Talk to a person", "中文"]
    assert [i["title"] for i in menus["zh_TW"]] == ["購物車", "結帳", "我的積分", "真人客服", "English"]
    # Each item is a postback the bot answers; the last switches to the other language.
    actions = [decode_payload(i["payload"]) for i in menus["default"]]
    assert actions == [
        *(Payload(a) for a in (PayloadAction.CART, PayloadAction.CHECKOUT, PayloadAction.POINTS, PayloadAction.AGENT)),
        Payload(PayloadAction.LANGUAGE, ("zh_Hant",)),
    ]
    assert decode_payload(menus["zh_HK"][-1]["payload"]) == Payload(PayloadAction.LANGUAGE, ("en",))
    # A Chinese shop's default locale speaks Chinese.
    assert build_profile(None, "zh_Hant")["persistent_menu"][0]["call_to_actions"][0]["title"] == "購物車"


def test_the_shop_files_section_replaces_the_defaults_and_only_changed_fields_are_sent() -> None:
    config = parse_shop_text(BASE, "shop.yaml").messenger_profile
    profile = build_profile(config, "zh_Hant")
    assert profile["ice_breakers"] == [
        {"locale": "default", "call_to_actions": [{"question": "How do I order?", "payload": "v1:FAQ:how"}]}
    ]
    menus = {m["locale"]: m["call_to_actions"] for m in profile["persistent_menu"]}
    assert menus["default"][0]["title"] == "購物車"  # the shop's language for `default`
    assert menus["default"][4] == {"type": "web_url", "title": "Our shop", "url": "https://shop.example/"}
    assert menus["zh_HK"][1] == {"type": "postback", "title": "營業時間", "payload": "v1:FAQ:hours"}
    assert profile_changes(profile, profile) == {}
    current = {**profile, "greeting": [{"locale": "default", "text": "old"}]}
    assert profile_changes(profile, current) == {"greeting": profile["greeting"]}
