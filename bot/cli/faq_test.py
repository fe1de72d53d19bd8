"""`plusone faq-test`: which FAQ rule of a shop file answers a message, and why (issue 6).

    plusone faq-test --shop config/samples/demo_shop.yaml "營業時間？" "delivery fee?"

For each TEXT (or each non-blank line of standard input when no TEXT is given) prints the message, the
rule that answers it and its reply (or that nothing does, so the fallback would answer), then one line
per rule: ✔ the winner with the keywords it matched, ✘ the others with why they lost or did not match.
Messages asking for a person (`agent`, `真人`, `人工`) say so: the bot hands those to a person before any
FAQ rule. Exit codes: 0 tried; 2 a missing or invalid shop file, a file without an FAQ, or a Page it
has no FAQ for, with one line on stderr naming the problem. Nothing touches the database; the shop file
loader and the matcher are imported when the command runs.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from config.faq_file import FaqConfig

__all__ = ["main", "register", "run_faq_test"]

PROG = "plusone faq-test"


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add the `faq-test` subcommand to `plusone`'s subparsers."""
    parser = subparsers.add_parser(
        "faq-test",
        help="show which FAQ rule of a shop file answers a message, and why",
        description="Match messages against the faq: section of a shop file the way the bot does, and show "
        "the answering rule and why every other rule lost or did not match.",
    )
    parser.add_argument("--shop", required=True, metavar="FILE", help="the shop file, with a faq: section")
    parser.add_argument("--page", metavar="PAGE_ID", help="the Page whose FAQ to use (default: the file's only one)")
    parser.add_argument("text", nargs="*", metavar="TEXT", help="messages to try (default: standard input)")
    parser.set_defaults(func=run_faq_test)


def _faq(path: str, page_id: str | None) -> FaqConfig:
    from config.catalog_file import CatalogFileError
    from config.shop_file import load_shop_file

    try:
        shop = load_shop_file(path)
    except CatalogFileError as exc:  # names the file, line and field
        raise ValueError(str(exc)) from None
    if not shop.faq:
        raise ValueError(f"{path}: has no faq: section (see config/samples/demo_shop.yaml)")
    if page_id is None:
        if len(shop.faq) > 1:
            pages = ", ".join(faq.page_id for faq in shop.faq)
            raise ValueError(f"{path}: has an FAQ for several Pages ({pages}): choose one with --page")
        return shop.faq[0]
    for faq in shop.faq:
        if faq.page_id == page_id:
            return faq
    raise ValueError(f"{path}: has no FAQ for Page {page_id}")


def run_faq_test(args: argparse.Namespace) -> int:
    """Run `plusone faq-test`; returns the exit code."""
    from parsers.faq import is_agent_request, match_faq

    try:
        faq = _faq(args.shop, args.page)
    except ValueError as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return 2
    texts: Iterable[str] = args.text if args.text else (line.rstrip("\r\n") for line in sys.stdin if line.strip())
    for text in texts:
        print(f"message: {text}")
        if is_agent_request(text):
            print("  → asks for a person: the bot hands the conversation over (no FAQ rule answers)")
            continue
        found = match_faq(faq.rules, text)
        if found.rule is None:
            print("  → no rule answers: the fallback would (at most once in a while)")
        else:
            reply = found.rule.reply.text.replace("\n", "\n    ")
            print(f"  → {found.rule.key}: {reply}")
        for line in found.explain():
            print(f"  {line}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """`plusone faq-test` on its own: `argv` is what follows `faq-test` on the command line."""
    from bot.cli.main import main as plusone

    return plusone(["faq-test", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    raise SystemExit(main())
