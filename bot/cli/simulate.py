"""`plusone simulate`: play a shopper's comment or message against a running server and show the result.

    plusone simulate comment --text "A+1"   # demo mode: what the shopper received in Messenger
    plusone simulate message --text "hi" --url http://127.0.0.1:8080/webhook

When `plusone serve` runs in demo mode, the demo emulator delivers the action (as Meta would) and the
command prints what reached the shopper; otherwise it signs a webhook delivery with the app secret, posts
it and prints the server's answer. Standard library only (urllib), so it starts at once. Exit codes: 0
the webhook answered 200; 1 it did not, or the server cannot be reached; 2 no app secret or a bad setting.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import urllib.error
import urllib.request

from bot.emulator.config import local_webhook_url, running_demo_emulator
from bot.inbound import webhook_factory as wf

__all__ = ["register", "run_simulate"]


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add the `simulate` subcommand to `plusone`'s subparsers."""
    simulate = subparsers.add_parser("simulate", help="sign and post a realistic webhook to a running server")
    simulate.add_argument("kind", choices=["comment", "message"])
    simulate.add_argument("--text", required=True, help="the comment or message text")
    simulate.add_argument("--page-id", default="1000000000001")
    simulate.add_argument("--post-id", default="2000000000001")
    simulate.add_argument("--user-id", default="3000000000001", help="the shopper's id (PSID)")
    simulate.add_argument("--name", default="Chan Tai Man", help="the shopper's name")
    simulate.add_argument(
        "--url",
        help="post the signed webhook to this URL (default: through the demo emulator when `serve` runs in "
        "demo mode, else http://HOST:PORT/webhook from settings)",
    )
    simulate.add_argument("--wait", type=float, default=5.0, help="seconds to wait for the reply (demo mode)")
    simulate.set_defaults(func=run_simulate)


def _http_json(method: str, url: str, body: object | None = None, timeout: float = 10) -> tuple[int, object]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as exc:
        raw = exc.read()
        try:
            return exc.code, json.loads(raw)
        except ValueError:
            return exc.code, raw.decode(errors="replace")


def _reply_text(message: dict) -> str:
    if "text" in message:
        return str(message["text"])
    payload = message.get("attachment", {}).get("payload", {})
    return str(payload.get("text") or payload.get("template_type") or message)


def _simulate_via_emulator(args: argparse.Namespace, emulator: str) -> int:
    """Demo mode: Meta (the emulator) delivers the shopper's action; then show what the shopper received."""
    _, calls = _http_json("GET", f"{emulator}_emulator/calls?path_contains=/messages")
    seen = max((c["seq"] for c in calls), default=0) if isinstance(calls, list) else 0
    if args.kind == "comment":
        body = {
            "page_id": args.page_id,
            "post_id": args.post_id,
            "user_id": args.user_id,
            "user_name": args.name,
            "message": args.text,
        }
    else:
        body = {"page_id": args.page_id, "psid": args.user_id, "text": args.text}
    status, reply = _http_json("POST", f"{emulator}_emulator/webhooks/{args.kind}", body)
    if status != 200 or not isinstance(reply, dict):
        print(f"plusone simulate: the emulator refused the delivery ({status}): {reply}", file=sys.stderr)
        return 1
    target = reply.get("comment_id") if args.kind == "comment" else args.user_id
    received: list[str] = []
    deadline = time.monotonic() + args.wait
    while time.monotonic() < deadline:
        time.sleep(0.25)
        _, calls = _http_json("GET", f"{emulator}_emulator/calls?path_contains=/messages")
        received = [
            _reply_text(c["body"].get("message", {}))
            for c in (calls if isinstance(calls, list) else [])
            if c["seq"] > seen
            and c["status"] == 200
            and target in (c["body"].get("recipient", {}).get("id"), c["body"].get("recipient", {}).get("comment_id"))
        ]
        if received:
            break
    print(
        json.dumps(
            {
                "via": emulator,
                "webhook_status": reply.get("status"),
                "shopper": args.user_id,
                "sent": args.text,
                "received": received,
            },
            ensure_ascii=False,
        )
    )
    if not received:
        print(f"(no reply reached the shopper within {args.wait:g}s)", file=sys.stderr)
    return 0 if reply.get("status") == 200 else 1


def run_simulate(args: argparse.Namespace) -> int:
    """Run `plusone simulate`; returns the exit code."""
    from config.settings import load_settings  # pydantic: only once the command runs

    settings = load_settings()
    if not args.url and (emulator := running_demo_emulator(settings.data_dir)) is not None:
        return _simulate_via_emulator(args, emulator)
    if settings.app_secret is None:
        print(
            "plusone simulate: no app secret; run `plusone serve` once (it generates one) or set PLUSONE_APP_SECRET",
            file=sys.stderr,
        )
        return 2
    url = args.url or local_webhook_url(settings.host, settings.port)
    if args.kind == "comment":
        payload = wf.comment_delivery(
            page_id=args.page_id, post_id=args.post_id, message=args.text, user_id=args.user_id, user_name=args.name
        )
    else:
        payload = wf.message_delivery(page_id=args.page_id, psid=args.user_id, text=args.text)
    body, headers = wf.signed(payload, settings.app_secret.get_secret_value())
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    started = time.perf_counter()
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            status, reply = response.status, response.read().decode(errors="replace")
    except urllib.error.HTTPError as exc:
        status, reply = exc.code, exc.read().decode(errors="replace")
    except (urllib.error.URLError, OSError) as exc:
        print(f"plusone simulate: cannot reach {url}: {exc}", file=sys.stderr)
        return 1
    elapsed_ms = (time.perf_counter() - started) * 1000
    print(
        json.dumps(
            {"url": url, "status": status, "reply": reply.strip(), "ms": round(elapsed_ms, 1), "sent": payload},
            ensure_ascii=False,
        )
    )
    return 0 if status == 200 else 1
