"""Every text the code asks the catalog for has a Traditional Chinese translation with the same parameters.

The msgids are collected from the code, not listed by hand: each `gettext(locale, X)` call in bot/replies
(X a literal, a module constant, a conditional of them, or a label table's `.get`), every `t("...")` in the
shopper's page templates, and the checkout's refusals of a payment choice (carts.payment_rules).
"""

from __future__ import annotations

import ast
import re
import string
from pathlib import Path

import pytest
from babel.messages.pofile import read_po

from bot.replies.fulfilment import order_shipped
from bot.replies.i18n import LOCALE_DIR
from bot.replies.orders import order_expired
from carts.order_rules import OrderInfo
from carts.payment_rules import PaymentKind, PaymentMethod, check_payment_choice

ROOT = Path(__file__).resolve().parents[3]
REPLIES = ROOT / "bot" / "replies"
TEMPLATES = ROOT / "bot" / "web" / "templates"
PAGES = ("checkout.html", "order.html")
_T_CALL = re.compile(r"""\bt\(\s*(?:"((?:[^"\\]|\\.)*)"|'((?:[^'\\]|\\.)*)')""")
_NAMES = re.compile(r"\{(\w+)\}")


class _Msgids(ast.NodeVisitor):
    """The msgids of one module's gettext calls, following names to what they were assigned."""

    def __init__(self, tree: ast.Module, where: str) -> None:
        self.where = where
        self.assigned: dict[str, list[ast.expr]] = {}
        for node in ast.walk(tree):
            if isinstance(node, ast.Assign):
                for target in node.targets:
                    if isinstance(target, ast.Name):
                        self.assigned.setdefault(target.id, []).append(node.value)
        self.found: set[str] = set()
        self.visit(tree)

    def resolve(self, node: ast.expr) -> set[str]:
        if isinstance(node, ast.Constant):
            return {node.value} if isinstance(node.value, str) else set()
        if isinstance(node, ast.IfExp):
            return self.resolve(node.body) | self.resolve(node.orelse)
        if isinstance(node, ast.BoolOp):  # `table.get(key) or table.get(other)`: each side's values
            return set().union(*(self.resolve(value) for value in node.values))
        if isinstance(node, ast.Name) and node.id in self.assigned:
            return set().union(*(self.resolve(value) for value in self.assigned[node.id]))
        if isinstance(node, ast.Dict):
            return set().union(*(self.resolve(value) for value in node.values))
        if isinstance(node, ast.Subscript):
            return self.resolve(node.value)  # a label table's [key]: its values
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "get":
            return self.resolve(node.func.value)  # a label table's .get(key[, default]): its values
        raise AssertionError(f"{self.where}:{node.lineno}: a msgid the test cannot follow: {ast.dump(node)}")

    def visit_Call(self, node: ast.Call) -> None:
        if isinstance(node.func, ast.Name) and node.func.id == "gettext":
            assert len(node.args) >= 2, f"{self.where}:{node.lineno}: gettext(locale, msgid, ...)"
            self.found |= self.resolve(node.args[1])
        self.generic_visit(node)


def code_msgids() -> set[str]:
    msgids: set[str] = set()
    for path in sorted(REPLIES.glob("*.py")):
        if path.name == "i18n.py":
            continue
        msgids |= _Msgids(ast.parse(path.read_text(), str(path)), path.name).found
    for name in PAGES:
        path = TEMPLATES / name
        if path.exists():
            msgids |= {double or single for double, single in _T_CALL.findall(path.read_text())}
    methods = (PaymentMethod(PaymentKind.CASH_ON_PICKUP),)
    for chosen, delivery in (("nothing", "pickup"), ("cash_on_pickup", "delivery")):
        refusal = check_payment_choice(methods, chosen, delivery)
        assert refusal is not None
        msgids.add(refusal)
    return msgids


def catalog(locale: str) -> dict[str, str]:
    with (LOCALE_DIR / locale / "LC_MESSAGES" / "messages.po").open("rb") as file:
        return {message.id: message.string for message in read_po(file, locale=locale) if message.id}


def test_the_collector_sees_every_kind_of_text() -> None:
    found = code_msgids()
    assert "Bank transfer" in found  # a label table
    assert "Your order {number} is packed and will be on its way soon." in found  # a module constant
    assert any("Please pay within {hours} hours" in msgid for msgid in found)  # a conditional
    assert "How will you pay?" in found and "Tracking" in found  # the templates
    assert "Please choose how you will pay." in found  # the checkout's refusal


@pytest.mark.parametrize("msgid", sorted(code_msgids()))
def test_every_msgid_in_the_code_has_a_zh_hant_translation_with_its_parameters(msgid: str) -> None:
    translated = catalog("zh_Hant").get(msgid)
    assert translated, f"no zh_Hant translation of {msgid!r}"
    assert set(_NAMES.findall(translated)) == set(_NAMES.findall(msgid))
    list(string.Formatter().parse(translated))  # braces balanced
    assert re.search(r"[\u4e00-\u9fff]", translated) or msgid in {"FPS", "PayMe"}, f"{msgid!r} is not Chinese"


def test_the_shoppers_news_goes_out_in_the_shops_language() -> None:
    [english] = order_shipped("en", "PO-000009", "SF Express", "SF123")
    [chinese] = order_shipped("zh_Hant", "PO-000009", "SF Express", "SF123")
    assert english["text"].endswith("Tracking number: SF123")
    assert "PO-000009" in chinese["text"] and chinese["text"].endswith("追蹤編號：SF123")
    order = OrderInfo.__new__(OrderInfo)  # only the fields the notice reads
    object.__setattr__(order, "number", "PO-000010")
    assert order_expired("zh_Hant", order).startswith("你的訂單 PO-000010 ")
    assert order_expired("en", order).startswith("Your order PO-000010 was not paid in time")
