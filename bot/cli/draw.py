"""`plusone draw verify`: run a lucky draw again from its published seed and entrants, as anyone may.

    plusone draw verify --seed SEED --entrants FILE [--winners N] [--commitment HEX]

FILE holds the entrants' IDs, one a line (the draw page's "Download the list"); blank lines are skipped
and the list is put in the documented order (each once, sorted as text). Prints one JSON object:
{"commitment_ok", "entrants", "winners"}. Exit codes: 0 done (and the commitment, when given, is the
seed's); 1 the commitment is not sha256 of the seed; 2 bad arguments or an unreadable file, with one line
on stderr. The algorithm is `bot.inbox.draw_rules` (standard library only): nothing else is loaded.
"""

from __future__ import annotations

import argparse
import json
import sys

__all__ = ["register", "run_verify"]

PROG = "plusone draw verify"


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add the `draw` command (its `verify` subcommand) to `plusone`'s subparsers."""
    parser = subparsers.add_parser("draw", help="check a lucky draw from its seed and entrants")
    sub = parser.add_subparsers(dest="draw_command", required=True, metavar="ACTION")
    verify = sub.add_parser(
        "verify",
        help="run a lucky draw again and print its winners",
        description="Run a lucky draw again from its published seed and list of entrants, and print the winners.",
    )
    verify.add_argument("--seed", required=True, help="the seed the draw's page publishes")
    verify.add_argument("--entrants", required=True, metavar="FILE", help="the entrants' IDs, one a line")
    verify.add_argument("--winners", type=int, default=1, metavar="N", help="how many winners were drawn (1)")
    verify.add_argument("--commitment", metavar="HEX", help="the fingerprint shown before the draw, to check")
    verify.set_defaults(func=run_verify)


def run_verify(args: argparse.Namespace) -> int:
    from bot.inbox.draw_rules import commitment, draw_winners, order_entrants

    try:
        with open(args.entrants, encoding="utf-8") as handle:
            entrants = order_entrants(line.strip() for line in handle if line.strip())
    except OSError as exc:
        print(f"{PROG}: cannot read {args.entrants}: {exc.strerror}", file=sys.stderr)
        return 2
    if not 0 < args.winners <= len(entrants):
        print(f"{PROG}: --winners must be from 1 to the {len(entrants)} entrants", file=sys.stderr)
        return 2
    matches = args.commitment is None or commitment(args.seed) == args.commitment.strip().lower()
    winners = draw_winners(args.seed, entrants, args.winners)
    print(json.dumps({"commitment_ok": matches, "entrants": len(entrants), "winners": winners}))
    if not matches:
        print(f"{PROG}: sha256 of the seed is not the commitment given", file=sys.stderr)
        return 1
    return 0
