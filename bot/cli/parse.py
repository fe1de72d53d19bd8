"""`plusone parse`: try the comment order parser against a catalog (issue 4).

    plusone parse --catalog shop.yaml "A+1 L" "我要B+2"
    plusone parse --codes A,B,Flower < comments.txt
    plusone parse --catalog shop.yaml --now-selling A "+1" "我要兩件" "want 2 M"

Parses each TEXT, or each non-blank line of standard input when no TEXT is given, and prints one JSON
object per comment on its own line: {"text", "items", "removals", "unknown", "ambiguous",
"unknown_variant_words", "notes"}, and "pointed" with `--now-selling CODE` (the product on screen in
a live: what a comment naming no product orders, see `parsers.order_comment`). Exit codes: 0 parsed;
2 a missing or invalid catalog, an unknown --now-selling code or bad arguments, with one line on stderr
naming the problem. `bot.cli.main` registers the subcommand; `main`
runs it alone (`python -m bot.cli.parse --codes A,B "A+1"`). The parser and the catalog loader are
imported when the command runs.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from parsers.order_comment import OrderParser

__all__ = ["main", "register", "run_parse"]

PROG = "plusone parse"


class _UsageError(Exception):
    """Arguments or a catalog the command cannot work with (exit 2)."""


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add the `parse` subcommand to `plusone`'s subparsers."""
    parser = subparsers.add_parser(
        "parse",
        help="parse comments as orders against a catalog and print JSON lines",
        description="Parse comments the way the bot reads orders (A+1, B x2, 取消A) and print one JSON "
        "object per comment. Reads standard input, one comment per line, when no TEXT is given.",
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--catalog", metavar="FILE", help="catalog file (YAML or JSON with a products: list)")
    source.add_argument("--codes", metavar="A,B,C", help="product codes, for a quick try without a file")
    parser.add_argument(
        "--now-selling",
        metavar="CODE",
        help="read comments as during a live while CODE is on screen (bare +1, 2, 要, want 2 order it)",
    )
    parser.add_argument("text", nargs="*", metavar="TEXT", help="comments to parse (default: standard input)")
    parser.set_defaults(func=run_parse)


def run_parse(args: argparse.Namespace) -> int:
    """Run `plusone parse`; returns the exit code."""
    from parsers.order_comment import parse_order_comment

    try:
        parser = _order_parser(args.catalog, args.codes)
        now_selling = _now_selling(parser, args.now_selling)
    except _UsageError as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return 2
    texts: Iterable[str] = args.text if args.text else _stdin_lines()
    try:
        for text in texts:
            parse = parse_order_comment(text, parser, now_selling=now_selling)
            line = {"text": text, **parse.to_dict(with_pointed=now_selling is not None)}
            # Flushed per line so that typing comments into a terminal answers each one at once.
            print(json.dumps(line, ensure_ascii=False), flush=True)
    except BrokenPipeError:
        # `plusone parse ... | head`: the reader left; stop quietly (as the Python docs advise).
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """`plusone parse` on its own: `argv` is what follows `parse` on the command line."""
    from bot.cli.main import main as plusone

    return plusone(["parse", *(sys.argv[1:] if argv is None else argv)])


def _order_parser(catalog: str | None, codes: str | None) -> OrderParser:
    from config.catalog_file import CatalogFileError, catalog_entries, load_catalog_file
    from parsers.order_comment import OrderParser

    if catalog is not None:
        try:
            return OrderParser(catalog_entries(load_catalog_file(catalog)))
        except CatalogFileError as exc:  # names the file, line and field
            raise _UsageError(str(exc)) from None
        except ValueError as exc:  # a file that loads always builds a parser; name it all the same
            raise _UsageError(f"{catalog}: {exc}") from None
    names = [code for code in re.split(r"[\s,，、]+", codes or "") if code]
    if not names:
        raise _UsageError("--codes: give at least one product code, like --codes A,B,C")
    try:
        return OrderParser.from_codes(names)
    except ValueError as exc:
        raise _UsageError(f"--codes: {exc}") from None


def _now_selling(parser: OrderParser, code: str | None) -> str | None:
    from parsers.order_comment import code_key

    if code is None:
        return None
    codes = {code_key(c): c for c in parser.codes}
    if code_key(code) not in codes:
        known = ", ".join(parser.codes) or "none"
        raise _UsageError(f"--now-selling: {code!r} is not a product code of the catalog (codes: {known})")
    return codes[code_key(code)]


def _stdin_lines() -> Iterator[str]:
    stdin = sys.stdin
    if hasattr(stdin, "reconfigure"):
        # A stray invalid byte in a pasted export should not end the run.
        stdin.reconfigure(errors="replace")
    for line in stdin:
        text = line.rstrip("\r\n")
        if text.strip():
            yield text


if __name__ == "__main__":
    raise SystemExit(main())
