"""`plusone page-token`: a Facebook user's access token → the long-lived tokens of the Pages they manage.

    plusone page-token --user-token EAAB...      # the app id and secret come from the settings

Two steps, as Meta documents them ("Get Long-Lived Tokens", docs/meta-platform.md "Graph client"): the
user's short-lived token (from the Graph API Explorer or Facebook Login) becomes a long-lived one
(`GET /oauth/access_token?grant_type=fb_exchange_token`), then `GET /{user-id}/accounts` lists the user's
Pages with their Page tokens, which do not expire when they come from a long-lived user token. Standard
output gets one line for the shop's environment file, `PLUSONE_PAGE_TOKENS='{"<page id>": "<token>", ...}'`
(keep it as secret as the app secret); standard error gets one line per Page: id, name, the user's tasks.

This is where python-facebook-api still earns its place: a blocking exchange, run once by a person, that
its token helpers already do (`exchange_long_lived_user_access_token`,
`exchange_long_lived_page_access_token`). It is imported when the command runs, so `plusone --help` stays
fast. Exit codes: 0 printed; 1 Meta refused or cannot be reached (Meta's message is shown); 2 bad flags or
settings (no app id or app secret).
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from typing import Any

__all__ = ["register", "run_page_token"]

PROG = "plusone page-token"


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add the `page-token` subcommand to `plusone`'s subparsers."""
    parser = subparsers.add_parser(
        "page-token",
        help="turn a user access token into the long-lived Page tokens PlusOne needs (PLUSONE_PAGE_TOKENS)",
        description="Exchange a Facebook user access token for a long-lived one and list the Pages that user "
        "manages with their Page access tokens, printed as a PLUSONE_PAGE_TOKENS line for the shop's "
        "environment or secrets file. Uses the app id and app secret of the settings (PLUSONE_APP_ID, "
        "PLUSONE_APP_SECRET) and talks to PLUSONE_GRAPH_URL.",
    )
    parser.add_argument("--user-token", required=True, help="a user access token with pages_show_list")
    parser.add_argument("--page", action="append", metavar="PAGE_ID", help="keep only this Page (repeatable)")
    parser.set_defaults(func=run_page_token)


def run_page_token(args: argparse.Namespace) -> int:
    """Run `plusone page-token`; returns the exit code."""
    from config.settings import SettingsError, load_settings

    try:
        settings = load_settings()
    except SettingsError as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return 2
    if not settings.app_id or settings.app_secret is None:
        print(
            f"{PROG}: set PLUSONE_APP_ID and PLUSONE_APP_SECRET (the app's, from Meta's app dashboard)", file=sys.stderr
        )
        return 2
    if not args.user_token.strip():
        print(f"{PROG}: --user-token is empty", file=sys.stderr)
        return 2
    try:
        pages = _page_tokens(
            graph_url=settings.graph_url,
            version=settings.graph_version,
            app_id=settings.app_id,
            app_secret=settings.app_secret.get_secret_value(),
            user_token=args.user_token.strip(),
            timeout=settings.graph_timeout_s,
        )
    except _Refused as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return 1
    wanted = set(args.page or [])
    chosen = [p for p in pages if not wanted or str(p.get("id")) in wanted]
    missing = wanted - {str(p.get("id")) for p in chosen}
    if missing:
        print(f"{PROG}: the user manages no Page {', '.join(sorted(missing))}", file=sys.stderr)
        return 1
    if not chosen:
        print(f"{PROG}: the user manages no Page (the token needs pages_show_list)", file=sys.stderr)
        return 1
    for page in chosen:
        tasks = ",".join(str(t) for t in page.get("tasks") or []) or "no tasks listed"
        print(f"{page.get('id')}  {page.get('name')}  ({tasks})", file=sys.stderr)
    tokens = {str(p["id"]): str(p["access_token"]) for p in chosen}
    print(f"PLUSONE_PAGE_TOKENS={shlex.quote(json.dumps(tokens))}")
    return 0


class _Refused(Exception):
    pass


def _page_tokens(
    *, graph_url: str, version: str, app_id: str, app_secret: str, user_token: str, timeout: float
) -> list[dict[str, Any]]:
    from pyfacebook import GraphAPI
    from pyfacebook.exceptions import PyFacebookException

    base = graph_url.rstrip("/") + "/"
    api = GraphAPI(
        app_id=app_id,
        app_secret=app_secret,
        access_token=user_token,
        version=version,
        ignore_version_check=True,
        sleep_on_rate_limit=False,  # a person is waiting; Meta's refusal is shown instead
        base_url=base,
        access_token_url=f"{base}oauth/access_token",
        timeout=timeout,  # type: ignore[arg-type]  # requests takes a float
    )
    try:
        long_lived = api.exchange_long_lived_user_access_token()["access_token"]
        user = api.get_object("me", fields="id,name", access_token=long_lived)
        accounts = api.exchange_long_lived_page_access_token(str(user["id"]), access_token=long_lived)
    except PyFacebookException as exc:
        raise _Refused(f"Meta refused: {getattr(exc, 'message', exc)}") from None
    except (OSError, KeyError, TypeError) as exc:  # requests' errors are OSErrors: refused, timed out
        raise _Refused(f"no usable answer from {base}: {type(exc).__name__}") from None
    return [p for p in accounts.get("data", []) if isinstance(p, dict) and p.get("id") and p.get("access_token")]
