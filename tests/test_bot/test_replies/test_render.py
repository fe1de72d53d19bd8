"""Message rendering against Meta's limits, counted in characters (Chinese included)."""

from __future__ import annotations

import pytest

from bot.replies.render import (
    Button,
    Element,
    QuickReply,
    RenderError,
    RenderErrorCode,
    render_buttons,
    render_generic,
    render_text,
    split_text,
    with_metadata,
)


def test_a_short_text_is_one_message() -> None:
    assert render_text("營業時間：上午11時至晚上9時") == [{"text": "營業時間：上午11時至晚上9時"}]


def test_chinese_text_gets_the_full_allowance_in_characters_not_bytes() -> None:
    text = "貨" * 1999  # 5,997 bytes of UTF-8, 1,999 characters: one message
    assert render_text(text, split=False) == [{"text": text}]
    with pytest.raises(RenderError) as info:
        render_text("貨" * 2000, split=False)
    assert info.value.code is RenderErrorCode.TEXT_TOO_LONG
    assert "2000 characters" in str(info.value)


def test_long_text_is_split_on_line_breaks_and_keeps_every_character() -> None:
    lines = [f"第{i}項：玫瑰花束 HK$680" for i in range(200)]
    text = "\n".join(lines)
    messages = render_text(text)
    assert len(messages) > 1
    assert all(len(m["text"]) < 2000 for m in messages)
    assert "\n".join(m["text"] for m in messages) == text  # split only where a line ended
    assert all(m["text"].startswith("第") for m in messages)


def test_text_without_breaks_is_cut_between_whole_emoji() -> None:
    family = "👨‍👩‍👧‍👦"  # one cluster of 7 code points
    text = family * 400
    parts = split_text(text, limit=100)
    assert "".join(parts) == text
    assert all(part and len(part) <= 100 and len(part) % len(family) == 0 for part in parts)


def test_quick_replies_go_on_the_last_part_and_are_checked() -> None:
    messages = render_text("x " * 1500, [QuickReply("S", "SIZE:S"), QuickReply("M", "SIZE:M")])
    assert "quick_replies" not in messages[0]
    assert messages[-1]["quick_replies"] == [
        {"content_type": "text", "title": "S", "payload": "SIZE:S"},
        {"content_type": "text", "title": "M", "payload": "SIZE:M"},
    ]
    with pytest.raises(RenderError) as info:
        render_text("pick", [QuickReply(str(i), str(i)) for i in range(14)])
    assert info.value.code is RenderErrorCode.TOO_MANY_QUICK_REPLIES
    with pytest.raises(RenderError) as info:
        render_text("pick", [QuickReply("超長的標題超長的標題超長的標題超長的標題超", "x")])  # 21 characters
    assert info.value.code is RenderErrorCode.TITLE_TOO_LONG


def test_button_template_limits() -> None:
    message = render_buttons(
        "你的購物車", [Button("結帳", url="https://shop.example/c/abc"), Button("查看", payload="CART")]
    )
    payload = message["attachment"]["payload"]
    assert payload["template_type"] == "button"
    assert payload["buttons"][0] == {"type": "web_url", "title": "結帳", "url": "https://shop.example/c/abc"}
    assert payload["buttons"][1] == {"type": "postback", "title": "查看", "payload": "CART"}
    for bad, code in [
        (lambda: render_buttons("x", []), RenderErrorCode.BAD_BUTTONS),
        (lambda: render_buttons("x", [Button(str(i), payload="p") for i in range(4)]), RenderErrorCode.BAD_BUTTONS),
        (lambda: render_buttons("字" * 641, [Button("a", payload="p")]), RenderErrorCode.TEXT_TOO_LONG),
        (lambda: render_buttons("x", [Button("a")]), RenderErrorCode.BAD_BUTTONS),
        (lambda: render_buttons("x", [Button("a", url="javascript:alert(1)")]), RenderErrorCode.BAD_URL),
        (lambda: render_buttons(" ", [Button("a", payload="p")]), RenderErrorCode.EMPTY_TEXT),
    ]:
        with pytest.raises(RenderError) as info:
            bad()
        assert info.value.code is code


def test_generic_template_limits() -> None:
    card = Element("玫瑰花束", subtitle="HK$680", buttons=(Button("+1", payload="ADD:ROSE"),))
    message = render_generic([card])
    element = message["attachment"]["payload"]["elements"][0]
    assert element == {
        "title": "玫瑰花束",
        "subtitle": "HK$680",
        "buttons": [{"type": "postback", "title": "+1", "payload": "ADD:ROSE"}],
    }
    with pytest.raises(RenderError):
        render_generic([card] * 11)
    with pytest.raises(RenderError):
        render_generic([Element("t" * 81)])


def test_metadata_is_attached_and_bounded() -> None:
    assert with_metadata({"text": "hi"}, "plusone:outbox:7") == {"text": "hi", "metadata": "plusone:outbox:7"}
    with pytest.raises(RenderError):
        with_metadata({"text": "hi"}, "m" * 1001)


def test_empty_text_is_refused() -> None:
    with pytest.raises(RenderError) as info:
        render_text("   ")
    assert info.value.code is RenderErrorCode.EMPTY_TEXT
