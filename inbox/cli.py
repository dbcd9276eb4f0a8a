"""The `hopthu` command: serve, demo, user add, inbox add."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from collections.abc import Sequence

from aiohttp import web

from inbox import db
from inbox.config import ConfigError, load_settings


def _serve(args: argparse.Namespace) -> int:
    from inbox.app import create_app

    settings = load_settings()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # Access lines cost ~8% of webhook throughput; the reverse proxy in front usually logs them already.
    access_log = logging.getLogger("aiohttp.access") if args.access_log else None
    web.run_app(create_app(settings), host=args.host, port=args.port, print=lambda *_: None, access_log=access_log)
    return 0


async def _add_user(args: argparse.Namespace) -> dict:
    from agents.models import User
    from agents.passwords import hash_password

    settings = load_settings()
    await db.connect(settings.database_url)
    try:
        email = args.email.strip().lower()
        if await User.exists(email=email):
            raise SystemExit(f"error: a user with e-mail {email} already exists")
        user = await User.create(
            email=email,
            name=args.name or email.split("@")[0],
            role=args.role,
            password_hash=hash_password(args.password),
        )
        return {"id": user.id, "email": user.email, "name": user.name, "role": user.role}
    finally:
        await db.disconnect()


def _inbox_fields(args: argparse.Namespace) -> tuple[str, dict]:
    if args.channel == "facebook":
        missing = [f for f in ("page_id", "page_token", "app_secret", "verify_token") if not getattr(args, f)]
        if missing:
            raise SystemExit(
                "error: --channel facebook needs " + ", ".join("--" + m.replace("_", "-") for m in missing)
            )
        return args.page_id, {
            "page_token": args.page_token,
            "app_secret": args.app_secret,
            "verify_token": args.verify_token,
        }
    raise SystemExit(f"error: the {args.channel} channel is not available yet in this version")


async def _add_inbox(args: argparse.Namespace) -> dict:
    from inbox.models import Inbox

    external_id, credentials = _inbox_fields(args)
    settings = load_settings()
    await db.connect(settings.database_url)
    try:
        if await Inbox.exists(channel=args.channel, external_id=external_id):
            raise SystemExit(f"error: a {args.channel} inbox for {external_id} already exists")
        inbox = await Inbox.create(
            name=args.name, channel=args.channel, external_id=external_id, credentials=credentials
        )
        return {
            "id": inbox.id,
            "name": inbox.name,
            "channel": inbox.channel,
            "external_id": inbox.external_id,
            "webhook_url": f"/webhooks/{args.channel}",
        }
    finally:
        await db.disconnect()


def _demo(args: argparse.Namespace) -> int:
    from inbox.demo import run_demo

    return run_demo(host=args.host, port=args.port, simulator=not args.no_simulator)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hopthu", description="Hộp thư hội thoại — conversational inbox")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the server")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8080)
    serve.add_argument("--access-log", action="store_true", help="log every HTTP request")
    serve.set_defaults(func=_serve)

    demo = sub.add_parser("demo", help="seed a fresh SQLite database and run the server with a live simulator")
    demo.add_argument("--host", default="127.0.0.1")
    demo.add_argument("--port", type=int, default=8080)
    demo.add_argument("--no-simulator", action="store_true")
    demo.set_defaults(func=_demo)

    user = sub.add_parser("user", help="manage staff users").add_subparsers(dest="action", required=True)
    user_add = user.add_parser("add")
    user_add.add_argument("--email", required=True)
    user_add.add_argument("--password", required=True)
    user_add.add_argument("--role", choices=["agent", "supervisor", "admin"], required=True)
    user_add.add_argument("--name")
    user_add.set_defaults(func=lambda a: _print(asyncio.run(_add_user(a))))

    inbox = sub.add_parser("inbox", help="manage channel inboxes").add_subparsers(dest="action", required=True)
    inbox_add = inbox.add_parser("add")
    inbox_add.add_argument("--channel", choices=["facebook", "zalo", "telegram", "webchat"], required=True)
    inbox_add.add_argument("--name", required=True)
    inbox_add.add_argument("--page-id")
    inbox_add.add_argument("--page-token")
    inbox_add.add_argument("--app-secret")
    inbox_add.add_argument("--verify-token", default=None)
    inbox_add.set_defaults(func=lambda a: _print(asyncio.run(_add_inbox(a))))
    return parser


def _print(data: dict) -> int:
    print(json.dumps(data, ensure_ascii=False))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
