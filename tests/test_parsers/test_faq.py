"""The FAQ keyword matcher: one table of messages and the rule that must answer them (or none)."""

from __future__ import annotations

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from parsers.faq import FaqReply, FaqRule, MatchMode, is_agent_request, keyword_found, match_faq
from parsers.normalize import normalize_text


def rule(key: str, *keywords: str, match: MatchMode = MatchMode.ANY, priority: int = 0) -> FaqRule:
    return FaqRule(key=key, keywords=keywords, reply=FaqReply(f"answer {key}"), match=match, priority=priority)


RULES = (
    rule("hours", "hours", "opening hours", "open", "營業時間", "幾點開", "幾點閂"),
    rule("address", "address", "where are you", "地址", "喺邊", "在哪"),
    rule("delivery", "delivery", "shipping", "運費", "送貨", "邮费"),
    rule("delivery_fee", "delivery", "fee", match=MatchMode.ALL, priority=5),
    rule("sizes", "size", "size chart", "尺碼", "尺寸"),
    rule("greeting", "hi", "hello", "你好", match=MatchMode.EXACT),
    rule("sale", "sale", "優惠", priority=-1),
    rule("holiday", "holiday hours", "假期營業時間", priority=10),
)

CASES = [
    # English
    ("What are your opening hours?", "hours"),
    ("HOURS", "hours"),
    ("are you open today", "hours"),
    ("what's your address", "address"),
    ("Where are you?", "address"),
    ("how much is shipping", "delivery"),
    ("do you have a size chart", "sizes"),
    ("hi", "greeting"),
    ("Hello!!", "greeting"),
    ("  hi 👋 ", "greeting"),
    # Chinese
    ("營業時間？", "hours"),
    ("請問你哋幾點開門呀", "hours"),
    ("你哋地址喺邊度", "address"),
    ("運費幾錢", "delivery"),
    ("有冇尺碼表", "sizes"),
    ("你好", "greeting"),
    ("邮费多少", "delivery"),
    # mixed
    ("想問hours係幾點", "hours"),
    ("delivery要幾耐", "delivery"),
    ("M size 有冇貨", "sizes"),
    # full-width and odd spacing
    ("ＯＰＥＮＩＮＧ　ＨＯＵＲＳ？", "hours"),
    ("Ｈｉ！", "greeting"),
    ("opening\u200b hours", "hours"),
    # rules competing by priority
    ("delivery fee to Kowloon?", "delivery_fee"),  # both keywords: the higher priority rule
    ("delivery to Kowloon?", "delivery"),  # only one of all: the any rule
    ("holiday hours?", "holiday"),  # priority 10 beats hours
    ("假期營業時間係點", "holiday"),
    ("sale hours", "hours"),  # sale has a lower priority
    ("hi, what are your hours", "hours"),  # greeting is exact: not inside a longer message
    # near-misses that must not match
    ("hourse", None),
    ("showers today", None),
    ("opener", None),
    ("addresses", None),
    ("sizes", None),
    ("this", None),  # contains "hi"
    ("hi there", None),  # greeting is exact
    ("reopen", None),
    ("營業", None),
    ("", None),
    ("🙂", None),
]


@pytest.mark.parametrize(("text", "expected"), CASES)
def test_the_right_rule_answers(text: str, expected: str | None) -> None:
    found = match_faq(RULES, text)
    assert (found.rule.key if found.rule else None) == expected, found.explain()


def test_explanation_names_the_keywords_and_why_others_lost() -> None:
    found = match_faq(RULES, "delivery fee?")
    lines = found.explain()
    assert lines[0] == '✔ delivery_fee: answers (matched "delivery", "fee"; all, priority 5)'
    assert '✘ delivery: matched "delivery" but lost to delivery_fee: lower priority (0 < 5)' in lines
    assert '✘ hours: no match: none of "hours", "opening hours", "open", "營業時間", "幾點開", "幾點閂"' in lines


def test_explanation_of_an_all_rule_with_a_keyword_missing() -> None:
    outcome = {o.key: o for o in match_faq(RULES, "delivery to Kowloon").outcomes}["delivery_fee"]
    assert (outcome.matched, outcome.missing, outcome.won) == (("delivery",), ("fee",), False)
    assert outcome.reason == 'no match: needs all keywords; found "delivery", missing "fee"'


def test_ties_go_to_the_more_specific_then_longer_then_earlier_rule() -> None:
    rules = (rule("a", "open"), rule("b", "open now"), rule("c", "open"))
    assert match_faq(rules, "are you open now").rule == rules[1]  # longer matched keyword
    assert match_faq(rules, "open?").rule == rules[0]  # same everything: the first listed
    exact = (rule("any", "open"), rule("exact", "open", match=MatchMode.EXACT))
    assert match_faq(exact, "open").rule == exact[1]
    assert "less specific match mode" in match_faq(exact, "open").explain()[1]


def test_an_all_rule_without_keywords_never_matches() -> None:
    assert match_faq((rule("empty", match=MatchMode.ALL),), "anything").rule is None


words = st.text(alphabet="abcdefghijklmnopqrstuvwxyz", min_size=1, max_size=8)


@given(keyword=words, before=words, after=words)
def test_a_latin_keyword_never_matches_inside_a_longer_word(keyword: str, before: str, after: str) -> None:
    assert keyword_found(keyword, f"{keyword} x")
    assert keyword_found(keyword, f"問{keyword}呢")  # next to Chinese: still a word of its own
    assert not keyword_found(keyword, f"{before}{keyword}{after}")


@given(keyword=st.text(alphabet="營業時間地址運費尺碼送貨", min_size=1, max_size=4), before=st.text(max_size=10))
@example(keyword="地", before="¸")  # NFKC leaves a lone combining cedilla in front: found by Hypothesis
def test_a_chinese_keyword_matches_anywhere_in_any_width_or_case(keyword: str, before: str) -> None:
    assert keyword_found(keyword, normalize_text(before + keyword + "ＡＢ？"))


@given(text=st.text(max_size=40))
def test_matching_never_raises_and_any_winner_applies(text: str) -> None:
    found = match_faq(RULES, text)
    winners = [o for o in found.outcomes if o.won]
    assert len(winners) == (1 if found.rule else 0)
    if found.rule is not None:
        assert winners[0].key == found.rule.key and winners[0].matched


@pytest.mark.parametrize(
    ("text", "asks"),
    [
        ("agent", True),
        ("Ａｇｅｎｔ!!", True),
        ("真人", True),
        ("轉人工？", True),
        ("人工花有貨嗎", False),
        ("", False),
        (None, False),
    ],
)
def test_only_a_whole_message_asks_for_a_person(text: str | None, asks: bool) -> None:
    assert is_agent_request(text) is asks
