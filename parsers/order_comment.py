"""The comment order grammar (issue 4): `A+1, B+1` the way shoppers really type it. Pure, no I/O.

Build one `OrderParser` per campaign from its catalog (it compiles the codes into one pattern) and
call `parse_order_comment(text, parser)` for every comment. The result never invents an order:
anything that looked like one but could not be read is explained in `notes` (stable
`ParseNoteCode`s), so the comment handler can answer the shopper instead of staying silent.

The grammar, on the text after `normalize_text` (NFKC, case folded, whitespace runs as one space).
Issue 4's code grammar comes first; names, nicknames, natural Cantonese and Mandarin orders and the
product on screen (issue 20) are read around it, so that nothing it reads changes:

- Item: a product code, an optional space, a quantity marker (`+`, `x`, `×`, `*`), an optional space
  and a whole number 1-999: `A+1`, `a + 2`, `B x2`, `B×3`, `C*2`. The digits are read as one number, so
  `A+1000` is not `A+100` and `0`; a quantity of 0, above 999 or with decimals (`A+1.5`) is no item and
  gives an `invalid_quantity` note. Merged lines may exceed 999 (`A+999 A+999` is A×1998): stock
  checks belong to the cart.
- Codes match case-insensitively and results carry the configured code. The longest code that makes
  an item wins (`A1+1` is A1 when A and A1 exist; `BX2` is B×2 when B and BX exist, since BX has no
  marker after it). A code does not start inside a word of a space-separated alphabet (Latin, Greek,
  Cyrillic): `BA+1`, `Pizza+1`, `sunflower+1` order nothing. Han text, digits, emoji and punctuation
  are boundaries: `我要A+1`, `A+1B+1`, `❤️B+1`, `2A+1`. Codes start with a letter (`check_code`):
  a code `1` would make `1+1` mean two things.
- Items may be separated by anything; the same code and variant twice add up.
- Lone `+N`: a `+` not directly after a letter or digit and with no code before it (`+1`, `我要+1`,
  `hi +2`) orders N of the only product; with several products it is no item, its N goes to
  `ambiguous` with an `ambiguous_quantity` note. A `+N` that goes on like a phone number or a decimal
  (`+886 912...`, `+1-555`, `+1 (555)`, `+1.5`) is ignored, as are `+0` and `+1000`.
- Variants: after an item, the words up to the next match or separator (`, 、 / & ; | + ! ?`, `。`,
  a new line, or `.` before a space) pick that product's option values, case-insensitively, multi-word
  values included (`A+1 L red`, `A+1 light blue`). Han text has no spaces, so a Han value is also found
  inside a run of Han characters (`A+1紅色`, `A+1要紅色的`). Other words, and Han runs holding no
  value, are reported in `unknown_variant_words` (`A+1 XXL`), never guessed; the handler should use
  them when an item's options are not all chosen (`A+1 謝謝` reports `謝謝` too). For a product without
  options the words are ignored. Two different values for one option leave it unchosen
  (`conflicting_variant`). A product with options and no choice is an item with `variant=None`, so
  the bot can ask. `@mentions` and `#tags` are never variant words.
- Removals: `A-1` takes one A off; `cancel A`, `取消A`, `取消 A` remove all of A (`qty=None`);
  `cancel A+2` removes 2. Variant words work as for items. Removals are reported apart from items.
- Unknown codes: a code-like token (one letter and up to 3 digits, or 2-3 letters and 1-3 digits:
  `D`, `D12`, `AB1`) that is not in the catalog, used like an item (`D+1`, `Dx2`) or after a cancel
  word, is reported in `unknown`, upper-cased. Ordinary words (`pizza+1`, `me+1`) are not, to keep
  chatter quiet, and neither is a minus (`E-1`, `covid-19`).
- Names and nicknames (`CatalogEntry.keywords`, `check_keyword`): matched like codes (normalised, longest
  first, never starting inside a Latin word), so `紅色裙+1`, `rose bouquet x2`, `cancel 曲奇` work as
  codes do. A keyword two products share gives an `ambiguous_product` note with the `candidates` and
  the quantity, and no item. A keyword equal to another product's code is dropped: the code wins.
- Natural orders, read after the rules above on what they left (their matches and the words after
  them up to a separator are hidden), when the comment holds a digit, a Chinese numeral or an order
  word and mentions a code or keyword. Quantities: digits 1-999 or Chinese numerals 1-99 (`一`..`十`,
  `十一`..`九十九`, `廿`, `兩`), with an optional measure word (件 個 條 對 套 枝 盒 包 張 隻 pcs), or
  `x2`. In a phrase (a run without separators or unknown words), a mention takes the words around it:
  `我要兩件A`, `A要2件`, `A 一件`, `A兩個`, `我想要三盒曲奇`, `要A同B` (one each), `A同B各兩件`,
  `A唔要` / `唔要A` / `A 取消` (remove all), `A減一` / `A少一件` (remove 1), `加多件A` / `再加一件A` /
  `A加多一件` (one more), then option values (`我要花裙 紅色 M`, `A S碼 兩件`). A code or a Chinese
  keyword orders with a Chinese verb alone (`要曲奇`, `我都要A`); a Latin keyword, or an English verb,
  needs a number (`want A` and `I love this tote` order nothing). After a product, a keyword that is
  one of its option values is that value (`A+1 紅色` when 紅色 is also a nickname). A number glued to a
  word is part of it (`2點`, `一定`, `a1`). `A幾件`, `A好多`, `多少盒曲奇` give an `unreadable_quantity`
  note and no item; `曲奇幾多錢`, `A有冇貨`, `A同B` (no verb, no number) are chatter. Only the first
  `MAX_NATURAL_CHARS` characters are read this way.
- The product on screen (`now_selling`, a live's pointer): when the comment names no product (no code,
  no cancel of one, no unknown code), its lone `+N`s order the now-selling product, and so does a whole
  comment that is a bare order: a verb (`要`, `我要`, `我都要`, `want`, `i want`), a quantity 1-99 in
  digits or Chinese numerals with an optional measure word (`2`, `2件`, `兩件`, `2 pcs`), or both
  (`我要兩件`, `want 2`), then only that product's option values and politeness (`2 M`, `要紅色`,
  `要 XL 唔該`). These go to `pointed`, never to `items`: the handler decides whether the pointed
  product stands. Anything else in the comment (`我要問`, `1樓`, `10:30`, `want to see`) makes it
  chatter. A code in the comment always wins: `A+1 +1` reads as without a pointer. Without
  `now_selling`, `要`, `1` or `want 2` alone are chatter and a lone `+N` keeps the rules above.
- Bounds: a comment is read up to `MAX_FRAGMENTS` order-like fragments (then a `truncated` note), and
  at most `MAX_VARIANT_WORDS` words after an item count as variant words. Real comments are far below
  both; they keep any 10 KB comment well under 5 ms (bench/bench_parser.py).
"""

from __future__ import annotations

import enum
import functools
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from itertools import islice
from types import MappingProxyType
from typing import Any

import regex

from parsers.normalize import normalize_text

__all__ = [
    "CANCEL_WORDS",
    "EMPTY_PARSE",
    "MAX_CODE_LENGTH",
    "MAX_FRAGMENTS",
    "MAX_KEYWORD_LENGTH",
    "MAX_QTY",
    "MAX_VARIANT_WORDS",
    "MEASURE_WORDS",
    "CatalogEntry",
    "OrderItem",
    "OrderParse",
    "OrderParser",
    "OrderRemoval",
    "ParseNote",
    "ParseNoteCode",
    "check_code",
    "check_keyword",
    "check_option_value",
    "chinese_number",
    "code_key",
    "option_value_key",
    "parse_order_comment",
    "product_keywords",
    "read_quantity",
]

MAX_QTY = 999
_QTY_DIGITS = len(str(MAX_QTY))
MAX_CODE_LENGTH = 32
# Work bounds for hostile comments (issue 4: any 10 KB comment in under 5 ms). Real comments stay far
# below them: past MAX_FRAGMENTS order-like fragments the rest of a comment is not read (a `truncated`
# note says so), and only the first MAX_VARIANT_WORDS words after an item are read as variant words.
MAX_FRAGMENTS = 200
MAX_VARIANT_WORDS = 16
# Normalised (case-folded) words that remove a product. The Latin ones must stand as words.
CANCEL_WORDS: tuple[str, ...] = ("cancel", "取消")


class ParseNoteCode(enum.StrEnum):
    """Why part of a comment was not read as an order. Stable: the comment handler maps these to replies."""

    UNKNOWN_CODE = "unknown_code"  # `D+1`, `cancel D`: a code-like token that is not in the catalog
    AMBIGUOUS_QUANTITY = "ambiguous_quantity"  # a lone `+1` while the campaign has several products
    INVALID_QUANTITY = "invalid_quantity"  # `A+0`, `A+1000`, `A+1.5`
    UNKNOWN_VARIANT = "unknown_variant"  # `A+1 XXL`: a word that is none of A's option values
    CONFLICTING_VARIANT = "conflicting_variant"  # `A+1 S M`: two values for one option, none chosen
    TRUNCATED = "truncated"  # more than MAX_FRAGMENTS order-like fragments: the rest was not read
    AMBIGUOUS_PRODUCT = "ambiguous_product"  # `玫瑰+1` when two products have the nickname 玫瑰
    UNREADABLE_QUANTITY = "unreadable_quantity"  # `A幾件`, `A好多`: an order with a quantity not read


@dataclass(frozen=True, slots=True)
class CatalogEntry:
    """One product as the parser needs it: its code, options (option name -> allowed values) and keywords.

    `keywords` are the product's name and the shop's nicknames (`紅色裙`, `rose bouquet`), matched like
    codes (see the module docstring); `check_keyword` says which words can be one.
    """

    code: str
    name: str = ""
    variants: Mapping[str, tuple[str, ...]] = field(default_factory=dict, hash=False)
    keywords: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class OrderItem:
    """`qty` of product `code` (as configured); `variant` maps option name -> value, None if none chosen."""

    code: str
    qty: int
    variant: Mapping[str, str] | None = field(default=None, hash=False)

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "qty": self.qty, "variant": _variant_dict(self.variant)}


@dataclass(frozen=True, slots=True)
class OrderRemoval:
    """Take `qty` of `code` off the cart; `qty=None` means all of it (`cancel A`)."""

    code: str
    qty: int | None
    variant: Mapping[str, str] | None = field(default=None, hash=False)

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "qty": self.qty, "variant": _variant_dict(self.variant)}


@dataclass(frozen=True, slots=True)
class ParseNote:
    """An explanation: `fragment` is the normalised piece of the comment, `product` the code concerned."""

    code: ParseNoteCode
    fragment: str
    product: str | None = None
    candidates: tuple[str, ...] = ()  # `ambiguous_product`: the codes the words could mean
    qty: int | None = None  # `ambiguous_product`: the quantity asked for, once the product is known

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"code": str(self.code), "fragment": self.fragment, "product": self.product}
        if self.candidates:
            out["candidates"] = list(self.candidates)
        if self.qty is not None:
            out["qty"] = self.qty
        return out


@dataclass(frozen=True, slots=True)
class OrderParse:
    """What one comment orders, removes, and what could not be read (see the module docstring)."""

    items: tuple[OrderItem, ...] = ()
    removals: tuple[OrderRemoval, ...] = ()
    unknown: tuple[str, ...] = ()  # code-like tokens not in the catalog, upper-cased: ("D",)
    unknown_variant_words: tuple[str, ...] = ()  # normalised words: ("xxl",)
    ambiguous: tuple[int, ...] = ()  # quantities of lone `+N` that could not be given a product
    notes: tuple[ParseNote, ...] = ()
    # Items ordered without naming a product (`+1`, `要`, `want 2`), given to the `now_selling` product.
    # Kept apart from `items`: the handler decides whether the pointed product stands.
    pointed: tuple[OrderItem, ...] = ()

    @property
    def is_empty(self) -> bool:
        """True for chatter: nothing ordered, removed or worth explaining."""
        return not (self.items or self.removals or self.notes or self.pointed)

    def to_dict(self, *, with_pointed: bool = False) -> dict[str, Any]:
        """The JSON-ready form printed by `plusone parse` (without the comment text).

        `pointed` is there with `with_pointed` (`plusone parse --now-selling`) or when there are some,
        so that the shape printed before the pointer existed stays the same.
        """
        out = {
            "items": [item.to_dict() for item in self.items],
            "removals": [removal.to_dict() for removal in self.removals],
            "unknown": list(self.unknown),
            "ambiguous": list(self.ambiguous),
            "unknown_variant_words": list(self.unknown_variant_words),
            "notes": [note.to_dict() for note in self.notes],
        }
        if with_pointed or self.pointed:
            out["pointed"] = [item.to_dict() for item in self.pointed]
        return out


EMPTY_PARSE = OrderParse()


def _variant_dict(variant: Mapping[str, str] | None) -> dict[str, str] | None:
    return None if variant is None else dict(variant)


# ---------------------------------------------------------------------------------------------------
# Catalog rules, shared with config/catalog_file.py so that a valid file always builds a parser.

# Letters of alphabets that separate words with spaces: a code never starts or ends inside such a word.
_WORD = r"\p{Latin}\p{Greek}\p{Cyrillic}"
_CODE_SHAPE = regex.compile(r"\p{L}[\p{L}\p{M}0-9]*+")
_HAN = regex.compile(r"\p{Han}")
# A word: a mention or tag (skipped), a run of Han characters, or a run of other letters and digits
# (with their combining marks, but never starting with one: `❤️` ends in a variation selector).
_TOKEN = regex.compile(
    r"[@#][\p{L}\p{M}\p{N}_.]*+|\p{Han}++|(?:(?!\p{Han})[\p{L}\p{N}])(?:(?!\p{Han})[\p{L}\p{M}\p{N}])*+"
)


def code_key(code: str) -> str:
    """The form a code is matched in (two codes with the same key are the same code)."""
    return normalize_text(code)


def check_code(code: str) -> str | None:
    """Why `code` cannot be a product code, or None when it can.

    A code is one word of letters and digits starting with a letter (`A`, `A1`, `Flower`, `玫瑰`), at
    most 32 characters. Starting with a letter keeps `1+1` and `A+1+1` unambiguous.
    """
    key = code_key(code)
    if not key:
        return "must not be empty"
    if len(key) > MAX_CODE_LENGTH:
        return f"must be at most {MAX_CODE_LENGTH} characters"
    if not _CODE_SHAPE.fullmatch(key):
        return "must be letters and digits only, starting with a letter (like A, A1, Flower, 玫瑰)"
    return None


MAX_KEYWORD_LENGTH = 40
_KEYWORD_SHAPE = regex.compile(r"\p{L}[\p{L}\p{M}0-9]*+(?: [\p{L}\p{M}0-9]++)*+")


def check_keyword(keyword: str) -> str | None:
    """Why `keyword` cannot be a product's name or nickname keyword, or None when it can.

    Like a code it starts with a letter and holds letters and digits, but it may be several words
    (`rose bouquet`); a Latin keyword needs two letters at least (`S` would be a size).
    """
    key = code_key(keyword)
    if not key:
        return "must not be empty"
    if len(key) > MAX_KEYWORD_LENGTH:
        return f"must be at most {MAX_KEYWORD_LENGTH} characters"
    if not _KEYWORD_SHAPE.fullmatch(key):
        return "must be words of letters and digits, starting with a letter (like 紅色裙, rose bouquet)"
    if len(key) < 2 and not _HAN.match(key):
        return "must be at least 2 letters (or a Chinese word)"
    return None


def product_keywords(code: str, name: str, nicknames: Iterable[str], name_keyword: bool = True) -> tuple[str, ...]:
    """The words that order a product besides its code: its nicknames, and its name unless turned off.

    A name that cannot be a keyword (`玫瑰花束 (rose bouquet)`: brackets) is simply not one, and neither
    is a word equal to the code or listed twice; nicknames were checked when they were read.
    """
    words = [" ".join(name.split())] if name_keyword and check_keyword(name) is None else []
    words.extend(nicknames)
    seen = {code_key(code)}
    keywords = []
    for word in words:
        if code_key(word) not in seen:
            seen.add(code_key(word))
            keywords.append(word)
    return tuple(keywords)


def option_value_key(value: str) -> tuple[str, ...]:
    """The words an option value is matched as (`Light Blue` is ("light", "blue"))."""
    return tuple(t for t in _TOKEN.findall(normalize_text(value)) if t[0] not in "@#")


def check_option_value(value: str) -> str | None:
    """Why `value` cannot be an option value, or None when it can (it needs a letter or a digit)."""
    if not option_value_key(value):
        return "must contain a letter or a digit (and not start with @ or #)"
    return None


# ---------------------------------------------------------------------------------------------------
# The scanner.
#
# Speed matters (issue 4 asks for 100,000 comments/s and under 5 ms for any 10 KB comment), so the hot
# path is one stdlib `re` search per match over codes written as a trie. The first version, one `regex`
# pattern with Unicode word-boundary lookarounds and a `\L<codes>` list, took 7-16 ms on hostile 10 KB
# comments: every position paid for the lookarounds. Now word boundaries are checked in Python on the
# few candidates only. Cancels are rare, so their tail still uses `regex` with full Unicode classes.

_ADD = "+x×*"
_SUB = "-−"
_UNKNOWN_SHAPE = "[a-z][0-9]{0,3}|[a-z]{2,3}[0-9]{1,3}"
_SCAN_TEMPLATE = (
    "(?P<cancel>{cancel})"
    "|(?P<code>{codes}) ?(?P<op>[{add}{sub}]) ?(?P<qty>[0-9]+)(?P<frac>\\.[0-9]+)?"
    "|(?P<unk>{shape}) ?[{add}] ?(?P<uqty>[0-9]+)"
    "|\\+ ?(?P<lqty>[0-9]+)"
)
_NOT_IN_WORD = rf"(?!(?<=[{_WORD}])[{_WORD}])"  # the next character does not continue a word
_ENDS_WORD = rf"(?!(?<=[{_WORD}0-9])[{_WORD}0-9])"  # the token just read is not cut out of a longer one
_CANCEL_TAIL_TEMPLATE = rf"""
  \ ?{_NOT_IN_WORD}(?:(?P<code>{{codes}})|(?P<unk>{_UNKNOWN_SHAPE}))
  (?:\ ?[{_ADD}{_SUB}]\ ?(?P<qty>[0-9]++)(?P<frac>\.[0-9]+)?|{_ENDS_WORD})
"""
# Every match needs a digit or a cancel word: this one search turns away most chatter.
_MAY_ORDER = re.compile("|".join(["[0-9]", *map(re.escape, CANCEL_WORDS)]))
# Where a product's variant words end (a `.` only before a space or the end, so `2.5kg` stays whole).
_SEGMENT_END = re.compile(r"[,、/&;|+!?。\n]|\.(?!\S)")
# After a lone `+N`, what makes it part of a phone number or a decimal rather than a quantity.
_PHONE_TAIL = re.compile(r"\.[0-9]| ?[0-9(]|-[0-9]")
_NEVER = "(?!)"  # stands for the code list of an empty catalog
_DIGITS = frozenset("0123456789")


@functools.lru_cache(maxsize=4096)
def _is_word_letter_slow(char: str) -> bool:
    return regex.match(rf"[{_WORD}]", char) is not None


def _is_word_letter(char: str) -> bool:
    """True for a letter of a space-separated alphabet, inside which a code never starts."""
    if char < "\x80":
        return char.isalpha()
    return _is_word_letter_slow(char)


def _inside_word(text: str, start: int) -> bool:
    """True when `text[start]` continues a word: a code starting there would be cut out of it."""
    return start > 0 and _is_word_letter(text[start]) and _is_word_letter(text[start - 1])


def _alternation(words: Iterable[str]) -> str:
    """A `re` pattern matching any of `words`, longest first, written as a trie.

    A trie lets `re` reject a position after one character instead of trying every code; greedy
    optional tails make it try the longest code first and fall back to shorter ones (`A1+1` vs `A+1`).
    """
    trie: dict[str, Any] = {}
    for word in words:
        node = trie
        for char in word:
            node = node.setdefault(char, {})
        node[""] = {}

    def build(node: dict[str, Any]) -> str:
        leaves = sorted(re.escape(c) for c, child in node.items() if c and list(child) == [""])
        branches = [re.escape(c) + build(child) for c, child in sorted(node.items()) if c and list(child) != [""]]
        if len(leaves) > 1:
            branches.append("[" + "".join(leaves) + "]")
        else:
            branches.extend(leaves)
        pattern = branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"
        if "" in node:
            return f"(?:{pattern})?" if len(branches) > 1 or len(pattern) > 1 else pattern + "?"
        return pattern

    return build(trie)


@dataclass(frozen=True, slots=True)
class _Keyword:
    key: str
    product: _Product | None  # None when several products share the keyword
    candidates: tuple[str, ...]  # the codes of the products that have it
    word_start: bool
    han: bool  # a Chinese keyword orders with a verb alone (`要曲奇`); a Latin one needs a quantity


@dataclass(frozen=True, slots=True)
class _Product:
    code: str
    word_start: bool  # the code starts with a letter that may not continue a word (`BA+1` is no A)
    options: tuple[str, ...]  # option names in declared order
    phrases: Mapping[tuple[str, ...], tuple[str, str]]  # value words -> (option, configured value)
    longest_phrase: int
    han_values: regex.Pattern[str] | None  # finds single-word Han values inside a run of Han text


class OrderParser:
    """A campaign's catalog compiled for parsing. Build once, reuse for every comment (thread-safe)."""

    def __init__(self, entries: Iterable[CatalogEntry]) -> None:
        products: dict[str, _Product] = {}
        entries_list = list(entries)
        for entry in entries_list:
            problem = check_code(entry.code)
            if problem:
                raise ValueError(f"code {entry.code!r}: {problem}")
            key = code_key(entry.code)
            if key in products:
                raise ValueError(f"code {entry.code!r}: duplicate of {products[key].code!r}")
            products[key] = _compile_product(entry)
        self._products = products
        self._only: _Product | None = next(iter(products.values())) if len(products) == 1 else None
        # Keywords (names, nicknames) -> the products that have them; two products may share one.
        owners: dict[str, list[_Product]] = {}
        for entry in entries_list:
            product = products[code_key(entry.code)]
            for keyword in entry.keywords:
                key = code_key(keyword)
                if products.get(key) is product:
                    continue  # the code itself: nothing to add
                problem = check_keyword(keyword)
                if problem:
                    raise ValueError(f"code {entry.code!r}: keyword {keyword!r}: {problem}")
                if key in products:
                    continue  # another product's code: the code wins (the shop file refuses this)
                if product not in owners.setdefault(key, []):
                    owners[key].append(product)
        self._keywords: dict[str, _Keyword] = {
            key: _Keyword(
                key,
                owner[0] if len(owner) == 1 else None,
                tuple(p.code for p in owner),
                _is_word_letter(key[0]),
                _HAN.match(key) is not None,
            )
            for key, owner in owners.items()
        }
        names = [*products, *self._keywords]
        self._scan = re.compile(
            _SCAN_TEMPLATE.format(
                cancel="|".join(map(re.escape, CANCEL_WORDS)),
                codes=_alternation(names) if names else _NEVER,
                add=re.escape(_ADD),
                sub=re.escape(_SUB),
                shape=_UNKNOWN_SHAPE,
            )
        )
        self._cancel_tail = regex.compile(
            _CANCEL_TAIL_TEMPLATE.replace("{codes}", r"\L<codes>" if names else _NEVER),
            regex.VERBOSE,
            codes=sorted(names, key=lambda k: (-len(k), k)),
            ignore_unused=True,
        )
        self._natural = _NaturalReader(products, self._keywords) if names else None
        self._gate = _MAY_ORDER if self._natural is None else _MAY_BE_NATURAL

    @classmethod
    def from_codes(cls, codes: Iterable[str]) -> OrderParser:
        """A parser for bare codes without options (`plusone parse --codes A,B`)."""
        return cls(CatalogEntry(code) for code in codes)

    @property
    def codes(self) -> tuple[str, ...]:
        """The configured codes."""
        return tuple(p.code for p in self._products.values())

    def parse(self, text: str, *, now_selling: str | None = None) -> OrderParse:
        """Parse one comment. Never raises on any str; see the module docstring for the grammar.

        `now_selling` is the code of the product on screen (a live's pointer): a comment that names no
        product and orders a bare quantity (`+1`, `2`, `要`, `want 2`) gets `pointed` items for it.
        An unknown `now_selling` code raises ValueError.
        """
        pointer = None if now_selling is None else self._pointer(now_selling)
        norm = normalize_text(text, keep_newlines=True)
        if pointer is None and self._gate.search(norm) is None:
            return EMPTY_PARSE  # most chatter: no digit, no order word, in one search
        result, named = self._read(norm, self._only)
        if pointer is None or named:
            return result
        # Nothing named: the bare quantities of the comment go to the product on screen.
        pointed, _ = self._read(norm, pointer)
        if pointed.items:
            return OrderParse(
                unknown_variant_words=pointed.unknown_variant_words,
                notes=pointed.notes,
                pointed=pointed.items,
            )
        bare = self._bare(norm, pointer)
        if bare is not None:
            return OrderParse(pointed=(bare,))
        return result

    def _mention_free(self, norm: str) -> bool:
        natural = self._natural
        return natural is None or not natural.may_order(norm)

    def _pointer(self, code: str) -> _Product:
        product = self._products.get(code_key(code))
        if product is None:
            raise ValueError(f"now_selling {code!r} is not a product code of this catalog")
        return product

    def _read(self, norm: str, only: _Product | None) -> tuple[OrderParse, bool]:
        """The scan of one normalised comment; `only` gets the lone `+N`s. Also: did it name a product?"""
        natural = self._natural
        if natural is None:
            m = self._scan.search(norm) if _MAY_ORDER.search(norm) else None
        elif _MAY_BE_NATURAL.search(norm) is None:  # no digit nor order word: chatter, in one search
            return EMPTY_PARSE, False
        else:
            m = self._scan.search(norm) if _MAY_ORDER.search(norm) else None
        if m is None:
            if natural is None or self._mention_free(norm):
                return EMPTY_PARSE, False
            out = _Collector()
            named = natural.read(norm, (), out)
            return out.result(), named
        search = self._scan.search
        products = self._products
        keywords = self._keywords
        out = _Collector()
        named = False
        spans: list[tuple[int, int]] = []  # what the scan read, hidden from the natural reading
        # An item of a product with options waits here until the next match (or the end of the
        # comment) closes the stretch of text where its variant words are.
        pending: tuple[_Product, int | None, bool, int] | None = None
        budget = MAX_FRAGMENTS
        while m is not None:
            budget -= 1
            if budget < 0:
                out.note(ParseNoteCode.TRUNCATED, norm[m.start() : m.start() + 20])
                break
            start, end = m.span()
            cancel, code, op, qty, frac, unk, uqty, lqty = m.groups()
            if code is not None:
                product = products.get(code)  # type: ignore[assignment]
                word_start = product.word_start if product is not None else keywords[code].word_start
                if start and word_start and _is_word_letter(norm[start - 1]):
                    m = search(norm, start + 1)
                    continue
            elif unk is not None:
                if start and _is_word_letter(norm[start - 1]):
                    m = search(norm, start + 1)
                    continue
            elif lqty is not None:
                if start and (norm[start - 1] in _DIGITS or _is_word_letter(norm[start - 1])):
                    m = search(norm, end)
                    continue
            else:  # a cancel word: read what follows with full Unicode boundaries
                tail = None if _inside_word(norm, start) else self._cancel_tail.match(norm, end)
                if tail is None:
                    m = search(norm, end)
                    continue
                code, unk, qty, frac = tail.group("code", "unk", "qty", "frac")
                end = tail.end()
                product = products.get(code)  # type: ignore[arg-type]
            if pending is not None:
                self._close(pending, norm, start, out)
                pending = None
            spans.append((start, end))

            if code is not None and product is None:  # a name or nickname
                keyword = keywords[code]
                named = True
                if keyword.product is None:
                    # What to order once the shopper says which; None for a removal (asked, never guessed).
                    removal = cancel is not None or op in _SUB
                    amount = None if removal or qty is None else _quantity(qty, frac)
                    out.note(ParseNoteCode.AMBIGUOUS_PRODUCT, code, None, keyword.candidates, amount)
                    m = search(norm, end)
                    continue
                product = keyword.product
            if code is not None:
                named = True
                if qty is None:
                    amount = None  # `cancel A`: all of it
                elif frac is None and len(qty) <= _QTY_DIGITS and qty[0] != "0":
                    amount = int(qty)  # the common case, without _quantity's call
                else:
                    amount = _quantity(qty, frac)
                    if amount is None:
                        out.note(ParseNoteCode.INVALID_QUANTITY, norm[start:end], product.code)
                        m = search(norm, end)
                        continue
                adding = cancel is None and op not in _SUB
                if product.options:
                    pending = (product, amount, adding, end)
                elif adding:
                    out.add(product.code, amount, None)  # type: ignore[arg-type]
                else:
                    out.remove(product.code, amount, None)
            elif unk is not None:
                if cancel is not None or _quantity(uqty, None) is not None:
                    named = True
                    out.unknown_code(unk, norm[start:end])
            elif _PHONE_TAIL.match(norm, end) is None:  # a lone +N
                amount = _quantity(lqty, None)
                if amount is None:
                    pass  # `+0`, `+5000`: no order, and not worth an answer either
                elif only is None:
                    out.ambiguous.append(amount)
                    out.note(ParseNoteCode.AMBIGUOUS_QUANTITY, norm[start:end])
                elif only.options:
                    pending = (only, amount, True, end)
                else:
                    out.add(only.code, amount, None)
            m = search(norm, end)
        if pending is not None:
            self._close(pending, norm, len(norm), out)
        if natural is not None and budget >= 0 and natural.read(norm, spans, out):
            named = True
        return out.result(), named

    def _bare(self, norm: str, pointer: _Product) -> OrderItem | None:
        """A whole comment that is a bare order (`2`, `要`, `我要兩件`, `want 2 M`) for `pointer`, else None."""
        if len(norm) > 60:  # a bare order is short; a long comment is talk
            return None
        flat = " ".join(_NOT_WORD.sub(" ", norm).split())
        m = _BARE.fullmatch(flat)
        if m is None or not (m["verb"] or m["qty"]) or (m["unit"] and not m["qty"]):
            return None
        qty = 1
        if m["qty"]:
            amount = read_quantity(m["qty"])
            if amount is None or amount > 99:
                return None
            qty = amount
        variant = self._bare_variant(pointer, m["rest"])
        if variant is False:
            return None
        return OrderItem(pointer.code, qty, variant or None)

    def _bare_variant(self, product: _Product, rest: str) -> Mapping[str, str] | bool | None:
        """The option values `rest` names, None for none, False when `rest` holds any other word."""
        words = [t for t in _TOKEN.findall(rest) if t[0] not in "@#"]
        chosen: dict[str, str] = {}
        i, n = 0, len(words)
        while i < n:
            for size in range(min(product.longest_phrase, n - i), 0, -1):
                hit = product.phrases.get(tuple(words[i : i + size]))
                if hit is not None:
                    if chosen.setdefault(hit[0], hit[1]) != hit[1]:
                        return False  # two sizes in a bare order: not read, never guessed
                    i += size
                    break
            else:
                word = words[i]
                if word in _FILLER_WORDS:
                    i += 1
                    continue
                if not _HAN.match(word):
                    return False
                if product.han_values is not None:
                    for value_match in product.han_values.finditer(word):
                        option, value = product.phrases[(value_match[0],)]
                        if chosen.setdefault(option, value) != value:
                            return False
                    word = product.han_values.sub("", word)
                if _FILLER_HAN.sub("", word):
                    return False
                i += 1
        if not chosen:
            return None
        return MappingProxyType({o: chosen[o] for o in product.options if o in chosen})

    def _close(self, pending: tuple[_Product, int | None, bool, int], norm: str, end: int, out: _Collector) -> None:
        product, amount, adding, start = pending
        variant = self._variant(product, norm, start, end, out)
        if adding:
            out.add(product.code, amount, variant)  # type: ignore[arg-type]
        else:
            out.remove(product.code, amount, variant)

    def _variant(self, product: _Product, norm: str, start: int, end: int, out: _Collector) -> Mapping[str, str] | None:
        if start >= end:
            return None
        stop = _SEGMENT_END.search(norm, start, end)
        if stop is not None:
            end = stop.start()
        # Variant words come right after the item; the cap bounds the work on a 10 KB comment.
        words = [w for w in islice(_TOKEN.finditer(norm, start, end), MAX_VARIANT_WORDS)]
        if not words:
            return None
        chosen: dict[str, str] = {}
        conflicted: set[str] = set()

        def choose(option: str, value: str, word: str) -> None:
            if option in conflicted:
                return
            if chosen.setdefault(option, value) != value:
                del chosen[option]
                conflicted.add(option)
                out.note(ParseNoteCode.CONFLICTING_VARIANT, word, product.code)

        tokens = [w[0] for w in words]
        i, n = 0, len(tokens)
        while i < n:
            word = tokens[i]
            if word[0] in "@#":
                i += 1
                continue
            for size in range(min(product.longest_phrase, n - i), 0, -1):
                hit = product.phrases.get(tuple(tokens[i : i + size]))
                if hit is not None:
                    choose(hit[0], hit[1], " ".join(tokens[i : i + size]))
                    i += size
                    break
            else:
                found = False
                if product.han_values is not None and _HAN.match(word):
                    for value_match in islice(product.han_values.finditer(word), MAX_VARIANT_WORDS):
                        option, value = product.phrases[(value_match[0],)]
                        choose(option, value, value_match[0])
                        found = True
                if not found:
                    out.unknown_variant(word, product.code)
                i += 1
        if not chosen:
            return None
        # Declared option order, so equal choices always give equal keys and equal JSON.
        return MappingProxyType({o: chosen[o] for o in product.options if o in chosen})


# ---------------------------------------------------------------------------------------------------
# Bare orders for the product on screen (`now_selling`): `1`, `2件`, `要`, `我要兩件`, `want 2`, `要 M`.
# Only a WHOLE comment of this shape orders: a verb, a quantity or both, then only the product's option
# values and politeness. `我要問`, `1樓`, `10:30` or `want to see` are chatter and order nothing.

# Measure words after a number (Cantonese and Mandarin), and `pcs`.
MEASURE_WORDS: tuple[str, ...] = (
    "件",
    "個",
    "个",
    "條",
    "条",
    "對",
    "对",
    "套",
    "枝",
    "支",
    "盒",
    "包",
    "張",
    "张",
    "隻",
    "只",
    "份",
    # What flowers, shoes, drinks and snacks are counted in on a Hong Kong or Taiwan live.
    "扎",
    "束",
    "雙",
    "双",
    "瓶",
    "樽",
    "罐",
    "袋",
    "pcs",
    "pc",
)
_CN_DIGITS = {"一": 1, "二": 2, "兩": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9}
_CN_NUMBER = "[一二兩两三四五六七八九十廿]{1,3}"
# Words around a bare order that change nothing: politeness, particles, `size`.
_FILLER_WORDS = frozenset(
    ["thanks", "thank", "you", "thx", "ty", "please", "pls", "plz", "size", "ah", "la", "lah", "one", "pc"]
)
_FILLER_HAN = re.compile("唔該|唔该|謝謝|谢谢|多謝|多谢|感謝|麻煩|麻烦|[呀啊吖喔哦啦囉喇嘅的了呢哈號号碼码色]")
_BARE = regex.compile(
    r"(?:(?P<verb>(?:我|i)?\ ?(?:都|也|also)?\ ?(?:想|would\ like|wanna|'ll|will)?\ ?(?:要|want|take|買|买))\ ?)?"
    rf"(?:[x×*]\ ?(?=[0-9]))?(?P<qty>[0-9]{{1,2}}|{_CN_NUMBER})?"
    rf"\ ?(?P<unit>{'|'.join(MEASURE_WORDS)})?(?P<rest>.*)",
    regex.DOTALL,
)
# What a bare order may be wrapped in: emoji, punctuation, mentions (replaced by spaces before reading).
_NOT_WORD = regex.compile(r"[@#][\p{L}\p{M}\p{N}_.]*+|[^\p{L}\p{M}\p{N} ]+")


def chinese_number(text: str) -> int | None:
    """The number 1-99 that `text` writes in Chinese numerals (`一`, `兩`, `十一`, `廿三`, `九十九`), else None."""
    if not 0 < len(text) <= 3:
        return None
    if len(text) == 1:
        if text == "十":
            return 10
        if text == "廿":
            return 20
        return _CN_DIGITS.get(text)
    tens_part, sep, units_part = text.partition("十")
    if not sep:
        if text[0] != "廿":
            return None
        tens, units_part = 2, text[1:]
    elif tens_part == "":
        tens = 1
    else:
        tens = _CN_DIGITS.get(tens_part, 0) if tens_part not in ("兩", "两") else 0
        if not tens:
            return None
    if units_part == "":
        return tens * 10
    units = _CN_DIGITS.get(units_part)
    if units is None or units_part in ("兩", "两"):
        return None
    return tens * 10 + units


def read_quantity(word: str) -> int | None:
    """A quantity word: digits 1..MAX_QTY (full-width already folded) or Chinese 1-99, else None."""
    if word.isascii() and word.isdigit():
        return _quantity(word, None)
    return chinese_number(word)


# ---------------------------------------------------------------------------------------------------
# Natural orders: `我要兩件A`, `A要2件`, `要A同B`, `A同B各一`, `A唔要`, `A減一`, `加多件A`, `曲奇兩盒`.
#
# Read after the scan above, on what it left (its matches are hidden behind commas), and only when the
# comment holds a digit or a Chinese character and mentions a code or keyword. The text is cut into
# tokens by one `re` pattern; a phrase is a run of tokens without a separator or an unknown word; in a
# phrase each mention (or `A同B`, mentions joined by `同`/`and`) takes the verbs and quantity before it
# and the quantity, verbs and option values after it. A mention with nothing that orders it is chatter.

_HAN_CLASS = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
# Without one of these (a digit, a Chinese numeral, a verb) nothing orders naturally: a cheap first test.
_MAY_BE_NATURAL = re.compile("[0-9一二兩两三四五六七八九十廿要買买加減减少各幾几]|好多|多少|取消|cancel|delete|remove")
_HAN_START = re.compile(f"[{_HAN_CLASS}]")
_NATURAL_WORD = re.compile("[一二兩两三四五六七八九十廿要買买加減减少各幾几]|好多|多少|取消|cancel|delete|remove")
_DIGIT = re.compile("[0-9]")
# Only the start of a comment is read naturally: real orders are short, and this bounds the work.
MAX_NATURAL_CHARS = 500
_CN_NUMERAL = "[一二兩两三四五六七八九十廿]"
# Words that make a mention an order, a removal or a reduction (Cantonese, Mandarin, English).
ADD_WORDS: tuple[str, ...] = (
    "再加",
    "加多",
    "再要",
    "我都要",
    "我也要",
    "我想要",
    "我要",
    "想要",
    "要",
    "買",
    "买",
    "加",
)
REMOVE_WORDS: tuple[str, ...] = ("唔要", "不要", "取消", "刪除", "删除", "cancel", "delete", "remove")
LESS_WORDS: tuple[str, ...] = ("減", "减", "少")
AND_WORDS: tuple[str, ...] = ("同", "和", "跟", "及", "與", "与", "&", "and")
# Quantity words that cannot be read: an order it would be a guess to fill in.
UNREADABLE_WORDS: tuple[str, ...] = ("幾多", "幾", "几", "多少", "好多")
_SEP_CHARS = ",，、;；。!！?？\n|/"


def _words(words: Iterable[str]) -> str:
    return "|".join(re.escape(w) for w in sorted(words, key=lambda w: (-len(w), w)))


def _latin_words(words: Iterable[str]) -> str:
    return "|".join(re.escape(w) + "(?![a-z])" for w in sorted(words, key=lambda w: (-len(w), w)))


_UNITS = _words(MEASURE_WORDS)
_TOKEN_PARTS = [
    ("sp", r"\s+"),
    ("sep", f"[{re.escape(_SEP_CHARS)}]|\\.(?![0-9])"),
    ("skip", r"[@#][^\s,]*"),
    ("ques", "要唔要|要不要"),
    ("u", f"(?:{_words(UNREADABLE_WORDS)}) ?(?:{_UNITS})|好多(?= ?(?:$|[{re.escape(_SEP_CHARS)}]))"),
    (
        "rem",
        "|".join(
            [_words(w for w in REMOVE_WORDS if not w.isascii()), _latin_words(w for w in REMOVE_WORDS if w.isascii())]
        ),
    ),
    ("add", f"{_words(ADD_WORDS)}|(?:i )?want(?![a-z])|take(?![a-z])"),
    ("dec", f"(?:{_words(LESS_WORDS)})(?= ?(?:[0-9]|{_CN_NUMERAL}))"),
    ("each", "各"),
    ("and", _words(w for w in AND_WORDS if w != "and") + "|and(?![a-z])"),
    ("q", f"(?:[x×*] ?(?=[0-9]))?(?:[0-9]{{1,3}}|{_CN_NUMERAL}{{1,3}})(?![0-9]|[.:][0-9]) ?(?:{_UNITS})?"),
    ("q0", _UNITS),
]
_TOKEN_TAIL = [
    ("fill", "唔該|唔该|謝謝|谢谢|多謝|多谢|麻煩|麻烦|[呀啊吖喔哦啦囉喇嘅的了呢哈碼码號号]"),
    ("han", f"[{_HAN_CLASS}]"),
    ("word", f"(?:(?![{_HAN_CLASS}])[^\\W\\d_])+"),
    ("digits", "[0-9]+"),
    ("other", "."),
]
_QTY_IN_TOKEN = re.compile(f"([0-9]+|{_CN_NUMERAL}+)")
_BREAK = frozenset(["sep", "han", "digits", "ques"])


def _token_pattern(mentions: str | None, values: str | None) -> re.Pattern[str]:
    parts = list(_TOKEN_PARTS)
    if mentions:
        parts.insert(3, ("m", mentions))
    if values:
        parts.append(("val", values))
    parts.extend(_TOKEN_TAIL)
    return re.compile("|".join(f"(?P<{name}>{pattern})" for name, pattern in parts), re.DOTALL)


@dataclass(slots=True)
class _Mods:
    """What the words around a mention say: a verb, a quantity, a removal."""

    add: bool = False
    han_verb: bool = False
    rem: bool = False
    dec: int | None = None
    qty: int | None = None
    each: int | None = None
    unreadable: str | None = None

    def any(self) -> bool:
        return bool(self.add or self.rem or self.dec or self.qty or self.each or self.unreadable)


@dataclass(slots=True)
class _Group:
    mentions: list[tuple[str, _Product | None, tuple[str, ...], bool]]  # see _NaturalReader._target
    prefix: _Mods
    suffix: _Mods = field(default_factory=_Mods)
    words: list[str] = field(default_factory=list)  # option value words after the mention
    joining: bool = False  # `A同`: the next mention joins the group
    want: str | None = None  # a pending `dec` or `each` waiting for its quantity


class _NaturalReader:
    """The natural-order reading of one catalog (see the comment above)."""

    def __init__(self, products: Mapping[str, _Product], keywords: Mapping[str, _Keyword]) -> None:
        self._products = products
        self._keywords = keywords
        names = [*products, *keywords]
        mentions = _alternation(names)
        han_values = sorted(
            {key[0] for p in products.values() for key in p.phrases if len(key) == 1 and _HAN_START.match(key[0])}
        )
        values = _words(han_values) if han_values else None
        self._mention = re.compile(mentions)
        self._pattern = _token_pattern(mentions, values)
        self._plain = _token_pattern(None, values)  # when a mention is cut out of a word
        self._value_words = {p.code: frozenset(w for key in p.phrases for w in key) for p in products.values()}

    def may_order(self, norm: str) -> bool:
        return _MAY_BE_NATURAL.search(norm) is not None and self._mention.search(norm) is not None

    def read(self, norm: str, spans: Iterable[tuple[int, int]], out: _Collector) -> bool:
        """Add what `norm` orders naturally (outside `spans`) to `out`; True when it named a product."""
        text = norm
        if spans:
            if _NATURAL_WORD.search(norm) is None:
                # Most order comments (`A+1 L`): no order word, and every digit is in what the scan read.
                last = 0
                for start, end in spans:
                    if _DIGIT.search(norm, last, start) is not None:
                        break
                    last = end
                else:
                    if _DIGIT.search(norm, last) is None:
                        return False
            # Hidden: what the scan read, and the words after each of its matches up to a separator
            # (an item's variant words, or words the scan ignores after a product without options).
            pieces, last = [], 0
            bounds = [*[start for start, _ in spans][1:], len(norm)]
            for (start, end), limit in zip(spans, bounds, strict=True):
                stop = _SEGMENT_END.search(norm, end, limit)
                pieces.append(norm[last:start])
                pieces.append(",")
                last = limit if stop is None else stop.start()
            pieces.append(norm[last:])
            text = "".join(pieces)
        text = text[:MAX_NATURAL_CHARS]
        if not self.may_order(text):
            return False
        tokens = self._tokens(text)
        return self._groups(tokens, out)

    def _tokens(self, text: str) -> list[tuple[str, str, int, int]]:
        tokens = []
        pos, n = 0, len(text)
        match, plain = self._pattern.match, self._plain.match
        while pos < n:
            m = match(text, pos)
            assert m is not None  # `other` matches any character
            kind = m.lastgroup
            if kind == "m" and not self._mention_stands(text, m.start(), m.end()):
                m = plain(text, pos)
                assert m is not None
                kind = m.lastgroup
            if kind not in ("sp", "other", "skip", "fill"):
                tokens.append((kind or "other", m[0], m.start(), m.end()))
            pos = m.end()
        return tokens

    @staticmethod
    def _mention_stands(text: str, start: int, end: int) -> bool:
        """A mention is not cut out of a Latin word (`BA`, `sofa`); digits after it are a quantity."""
        if start and _is_word_letter(text[start]) and _is_word_letter(text[start - 1]):
            return False
        return not (
            end < len(text)
            and _is_word_letter(text[end])
            and (_is_word_letter(text[end - 1]) or text[end - 1] in _DIGITS)
        )

    def _target(self, key: str) -> tuple[str, _Product | None, tuple[str, ...], bool]:
        """(text, product or None if ambiguous, candidates, orders with a verb alone)."""
        product = self._products.get(key)
        if product is not None:
            return key, product, (product.code,), True  # a code is typed to order: `要A同B`
        keyword = self._keywords[key]
        # A Chinese name orders with a verb (`要曲奇`); a Latin one only with a number (`cookies x2`).
        return key, keyword.product, keyword.candidates, keyword.han

    def _groups(self, tokens: list[tuple[str, str, int, int]], out: _Collector) -> bool:
        named = False
        prefix = _Mods()
        cur: _Group | None = None
        n = len(tokens)

        def close() -> None:
            nonlocal cur, named
            if cur is not None and self._emit(cur, out):
                named = True
            cur = None

        def next_kind(i: int) -> str | None:
            return tokens[i + 1][0] if i + 1 < n else None

        for i, (kind, word, start, end) in enumerate(tokens):
            if kind == "q" and (cur is None or cur.want is None):
                # A number glued to a following word is part of it (`2點`, `一定`), not a quantity.
                after = tokens[i + 1] if i + 1 < n else None
                has_unit = _QTY_IN_TOKEN.fullmatch(word.lstrip("x×* ")) is None
                if not has_unit and after is not None and after[2] == end and after[0] in ("han", "word", "q0"):
                    kind = "han"
                # ... and so is one glued after a word (`a1`, `iphone15`).
                if i and tokens[i - 1][0] == "word" and tokens[i - 1][3] == start:
                    kind = "han"
            if kind == "m":
                target = self._target(word)
                if cur is not None and cur.joining:
                    cur.mentions.append(target)
                    cur.joining = False
                    continue
                if cur is not None and len(cur.mentions) == 1 and self._is_value(cur, word):
                    cur.words.extend(word.split())  # `A+1 紅色` when 紅色 is also a nickname
                    continue
                close()
                cur = _Group([target], prefix)
                prefix = _Mods()
            elif kind in _BREAK:
                close()
                prefix = _Mods()
            elif kind == "word":
                if word in _FILLER_WORDS:
                    continue
                if cur is not None and any(word in self._value_words[m[1].code] for m in cur.mentions if m[1]):
                    cur.words.append(word)
                    continue
                close()
                prefix = _Mods()
            elif kind == "val":
                if cur is not None:
                    cur.words.append(word)
            elif kind == "and":
                if cur is not None and not cur.suffix.any() and not cur.words:
                    cur.joining = True
                else:
                    close()
            elif kind == "q" or kind == "q0":
                qty = 1 if kind == "q0" else _read_qty(word)
                if qty is None:
                    close()
                    prefix = _Mods()
                    continue
                if cur is not None:
                    if cur.want == "dec":
                        cur.suffix.dec, cur.want = qty, None
                        continue
                    if cur.want == "each":
                        cur.suffix.each, cur.want = qty, None
                        continue
                    if kind == "q0" and not cur.suffix.add:
                        continue
                    if cur.suffix.qty is None and not cur.suffix.rem:
                        cur.suffix.qty = qty
                        continue
                    close()
                if kind == "q0" and not prefix.add:
                    continue
                prefix.qty = qty
            elif kind == "u":
                if cur is not None:
                    cur.suffix.unreadable = word
                else:
                    prefix.unreadable = word
            elif kind == "each":
                if cur is not None:
                    cur.want = "each"
            elif kind == "dec":
                if cur is not None:
                    cur.want = "dec"
                else:
                    close()
                    prefix = _Mods()
            elif kind == "rem":
                if cur is not None and not (cur.suffix.qty or cur.suffix.add or cur.prefix.any()):
                    cur.suffix.rem = True
                    cur.suffix.han_verb = not word.isascii()
                    continue
                close()
                prefix = _Mods(rem=True, han_verb=not word.isascii())
            elif kind == "add":
                nk = next_kind(i)
                if cur is not None and nk in ("q", "q0") and cur.suffix.qty is None and not cur.suffix.rem:
                    cur.suffix.add = True  # `A要2件`, `A加多一件`
                    cur.suffix.han_verb = not word.isascii()
                    continue
                close()
                prefix = _Mods(add=True, han_verb=not word.isascii(), qty=prefix.qty)
        close()
        return named

    def _is_value(self, group: _Group, word: str) -> bool:
        product = group.mentions[0][1]
        return product is not None and tuple(word.split()) in product.phrases

    def _emit(self, group: _Group, out: _Collector) -> bool:
        pre, suf = group.prefix, group.suffix
        unreadable = suf.unreadable or pre.unreadable
        removing = suf.rem or pre.rem
        reduce = suf.dec
        qty = suf.qty or suf.each or pre.qty
        adding = suf.add or pre.add
        han_verb = suf.han_verb or pre.han_verb
        if not (unreadable or removing or reduce or qty or adding):
            return False  # a mention alone: chatter (`A有冇貨`)
        emitted = False
        for text, product, candidates, verb_alone in group.mentions:
            strong = qty is not None or reduce is not None or unreadable is not None
            if not strong and not (verb_alone and han_verb):
                continue  # `want A`, `我要cookies`: a Latin verb or name needs a number next to it
            emitted = True
            if product is None:
                amount = None if removing or reduce is not None else (qty or 1)
                out.note(ParseNoteCode.AMBIGUOUS_PRODUCT, text, None, candidates, amount)
                continue
            if unreadable is not None and not removing:
                out.note(ParseNoteCode.UNREADABLE_QUANTITY, unreadable, product.code)
                continue
            variant = _read_words(product, group.words) if product.options else None
            if removing:
                out.remove(product.code, qty, variant)
            elif reduce is not None:
                out.remove(product.code, reduce, variant)
            else:
                out.add(product.code, qty or 1, variant)
        return emitted


def _read_qty(word: str) -> int | None:
    m = _QTY_IN_TOKEN.search(word)
    return None if m is None else read_quantity(m[1])


def _read_words(product: _Product, words: list[str]) -> Mapping[str, str] | None:
    """The option values that `words` name for `product` (longest phrases first); None for none."""
    chosen: dict[str, str] = {}
    conflicted: set[str] = set()
    i, n = 0, len(words)
    while i < n:
        for size in range(min(product.longest_phrase, n - i), 0, -1):
            hit = product.phrases.get(tuple(words[i : i + size]))
            if hit is not None:
                if hit[0] not in conflicted and chosen.setdefault(hit[0], hit[1]) != hit[1]:
                    del chosen[hit[0]]
                    conflicted.add(hit[0])
                i += size
                break
        else:
            i += 1
    if not chosen:
        return None
    return MappingProxyType({o: chosen[o] for o in product.options if o in chosen})


def parse_order_comment(text: str, parser: OrderParser, *, now_selling: str | None = None) -> OrderParse:
    """Parse one comment against a campaign's compiled catalog (`OrderParser`). Pure.

    `now_selling`: the code of the product on screen in a live; see `OrderParser.parse`.
    """
    return parser.parse(text, now_selling=now_selling)


def _compile_product(entry: CatalogEntry) -> _Product:
    phrases: dict[tuple[str, ...], tuple[str, str]] = {}
    han: list[str] = []
    for option, values in entry.variants.items():
        for value in values:
            problem = check_option_value(value)
            if problem:
                raise ValueError(f"code {entry.code!r}: option {option!r} value {value!r}: {problem}")
            key = option_value_key(value)
            if key in phrases:
                other = phrases[key]
                raise ValueError(
                    f"code {entry.code!r}: value {value!r} of option {option!r} is also "
                    f"{other[1]!r} of option {other[0]!r}"
                )
            phrases[key] = (option, value)
            if len(key) == 1 and _HAN.match(key[0]):
                han.append(key[0])
    han_values = None
    if han:
        han.sort(key=lambda v: (-len(v), v))
        han_values = regex.compile("|".join(map(regex.escape, han)))
    return _Product(
        code=entry.code,
        word_start=_is_word_letter(code_key(entry.code)[0]),
        options=tuple(o for o, values in entry.variants.items() if values),
        phrases=MappingProxyType(phrases),
        longest_phrase=max(map(len, phrases), default=0),
        han_values=han_values,
    )


def _quantity(digits: str, fraction: str | None) -> int | None:
    """The whole number 1..MAX_QTY that `digits` spells, else None."""
    if fraction is not None:
        return None
    digits = digits.lstrip("0")
    # Checked on length first: int() of a 10 KB digit string is slow and, past 4300 digits, raises.
    if not digits or len(digits) > len(str(MAX_QTY)):
        return None
    qty = int(digits)
    return qty if qty <= MAX_QTY else None


class _Collector:
    """Accumulates one comment's result; same code + variant add up (django-oscar's line reference)."""

    __slots__ = ("ambiguous", "items", "notes", "removals", "unknown", "unknown_words")

    def __init__(self) -> None:
        self.items: dict[tuple[str, tuple[tuple[str, str], ...] | None], list[Any]] = {}
        self.removals: dict[tuple[str, tuple[tuple[str, str], ...] | None], list[Any]] = {}
        self.unknown: dict[str, None] = {}
        self.unknown_words: dict[str, None] = {}
        self.ambiguous: list[int] = []
        self.notes: list[ParseNote] = []

    def add(self, code: str, qty: int, variant: Mapping[str, str] | None) -> None:
        key = (code, None if variant is None else tuple(variant.items()))
        line = self.items.get(key)
        if line is None:
            self.items[key] = [qty, variant]
        else:
            line[0] += qty

    def remove(self, code: str, qty: int | None, variant: Mapping[str, str] | None) -> None:
        key = (code, None if variant is None else tuple(variant.items()))
        line = self.removals.get(key)
        if line is None:
            self.removals[key] = [qty, variant]
        elif line[0] is not None:
            line[0] = None if qty is None else line[0] + qty

    def note(
        self,
        code: ParseNoteCode,
        fragment: str,
        product: str | None = None,
        candidates: tuple[str, ...] = (),
        qty: int | None = None,
    ) -> None:
        self.notes.append(ParseNote(code, fragment, product, candidates, qty))

    def unknown_code(self, token: str, fragment: str) -> None:
        self.unknown.setdefault(token.upper())
        self.note(ParseNoteCode.UNKNOWN_CODE, fragment)

    def unknown_variant(self, word: str, product: str) -> None:
        self.unknown_words.setdefault(word)
        self.note(ParseNoteCode.UNKNOWN_VARIANT, word, product)

    def result(self) -> OrderParse:
        if not (self.items or self.removals or self.notes):
            return EMPTY_PARSE
        # Positional arguments and skipped empties: this runs once per order comment.
        items = self.items
        removals = self.removals
        return OrderParse(
            tuple([OrderItem(code, qty, variant) for (code, _), (qty, variant) in items.items()]) if items else (),
            tuple([OrderRemoval(code, qty, variant) for (code, _), (qty, variant) in removals.items()])
            if removals
            else (),
            tuple(self.unknown) if self.unknown else (),
            tuple(self.unknown_words) if self.unknown_words else (),
            tuple(self.ambiguous),
            tuple(self.notes),
        )
