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
    from inbox import gc_pauses
    from inbox.app import create_app
    from inbox.event_loop import loop_factory, loop_name

    settings = load_settings()
    from inbox import logs

    logs.configure(logging.INFO, json_lines=args.log_format == "json")  # tokens and secrets are scrubbed
    # Access lines cost ~8% of webhook throughput; the reverse proxy in front usually logs them already.
    access_log = logging.getLogger("aiohttp.access") if args.access_log else None
    loop = loop_factory(settings.event_loop)()
    asyncio.set_event_loop(loop)
    logging.getLogger("inbox.cli").info("event loop: %s", loop_name(loop))
    app = create_app(settings)
    gc_pauses.install(app)
    web.run_app(app, host=args.host, port=args.port, print=lambda *_: None, access_log=access_log, loop=loop)
    return 0


async def _add_user(args: argparse.Namespace) -> dict:
    from tortoise.transactions import in_transaction

    from agents.models import InboxMember, User
    from agents.passwords import hash_password
    from inbox.models import Inbox

    settings = load_settings()
    await db.connect(settings.database_url)
    try:
        email = args.email.strip().lower()
        if await User.exists(email=email):
            raise SystemExit(f"error: a user with e-mail {email} already exists")
        inbox_ids = sorted(set(args.inbox))
        if missing := sorted(set(inbox_ids) - set(await Inbox.filter(id__in=inbox_ids).values_list("id", flat=True))):
            raise SystemExit(f"error: no inbox with id {', '.join(map(str, missing))} (hopthu inbox add prints ids)")
        async with in_transaction():
            user = await User.create(
                email=email,
                name=args.name or email.split("@")[0],
                role=args.role,
                password_hash=hash_password(args.password),
            )
            await InboxMember.bulk_create([InboxMember(inbox_id=i, user_id=user.id) for i in inbox_ids])
        return {"id": user.id, "email": user.email, "name": user.name, "role": user.role, "inbox_ids": inbox_ids}
    finally:
        await db.disconnect()


def _inbox_values(args: argparse.Namespace) -> dict:
    """The command line's flags as the channel fields `inbox.inboxes` takes."""
    from inbox import inboxes

    names = {f for fields in inboxes.REQUIRED.values() for f in fields} | {"secret_token"}
    values = {name: getattr(args, name, None) for name in names}
    values.update(allowed_origins=args.allowed_origin or [], prechat=args.prechat)
    return values


async def _add_inbox(args: argparse.Namespace) -> dict:
    """Facebook and Zalo print the webhook path; Telegram checks the bot with getMe and registers its webhook;
    webchat prints the widget's snippet. The rules are `inbox.inboxes`', shared with `POST /api/inboxes`."""
    from channels.telegram import TelegramClient
    from inbox import inboxes, webchat

    values = _inbox_values(args)
    required = inboxes.REQUIRED[args.channel] + (("secret_token",) if args.channel == "telegram" else ())
    if missing := [f for f in required if not values.get(f)]:
        raise SystemExit(f"error: --channel {args.channel} needs " + ", ".join(map(inboxes.cli_flag, missing)))
    settings = load_settings()
    public_url = args.public_url or settings.public_url or "http://127.0.0.1:8080"
    if args.channel == "telegram" and not public_url.startswith("https://"):
        print(f"warning: Telegram only delivers to https:// webhooks; pass --public-url (now {public_url})",
              file=sys.stderr)  # fmt: skip
    client = TelegramClient(settings.telegram_api_url) if args.channel == "telegram" else None
    await db.connect(settings.database_url)
    try:
        created = await inboxes.create(args.channel, args.name, values, public_url=public_url,
                                       telegram_client=client, name_of=inboxes.cli_flag)  # fmt: skip
    except inboxes.InboxRefused as exc:
        raise SystemExit(f"error: {exc}") from exc
    finally:
        if client is not None:
            await client.close()
        await db.disconnect()
    inbox = created.inbox
    shown = {"id": inbox.id, "name": inbox.name, "channel": inbox.channel, "external_id": inbox.external_id}
    if args.channel == "telegram":
        return {
            **shown,
            "username": created.extra["username"],
            "webhook_url": inboxes.webhook_url(public_url, inbox),
        }
    if args.channel != "webchat":
        return {**shown, "webhook_url": inboxes.webhook_path(inbox)}
    snippet = webchat.snippet(public_url, inbox.external_id)
    print(f"Dán đoạn mã này vào trang web / paste this into your site's pages:\n{snippet}", file=sys.stderr)
    return {
        **shown,
        "widget_token": inbox.external_id,
        "allowed_origins": inbox.settings["allowed_origins"],
        "identity_secret": inbox.credentials["identity_secret"],
        "snippet": snippet,
    }


def _demo(args: argparse.Namespace) -> int:
    from inbox.demo import run_demo

    return run_demo(host=args.host, port=args.port, simulator=not args.no_simulator)


def _backup(args: argparse.Namespace) -> int:
    from inbox import backup

    url = load_settings().database_url
    try:
        if args.every:
            keep = args.keep if args.keep is not None else 7

            def report(summary: backup.Summary) -> None:
                print(json.dumps(summary.as_dict(), ensure_ascii=False), flush=True)

            every = backup.parse_interval(args.every)
            asyncio.run(backup.run_schedule(url, args.file, every=every, keep=keep, on_backup=report))
            return 0
        return _print(asyncio.run(backup.backup(url, args.file, logical=args.logical)).as_dict())
    except backup.BackupError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


def _restore(args: argparse.Namespace) -> int:
    from inbox import backup

    try:
        return _print(asyncio.run(backup.restore(load_settings().database_url, args.file, force=args.force)).as_dict())
    except backup.BackupError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hopthu", description="Hộp thư hội thoại — conversational inbox")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the server")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8080)
    serve.add_argument("--access-log", action="store_true", help="log every HTTP request")
    serve.add_argument("--log-format", choices=["json", "text"], default="json", help="structured (default) or plain")
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
    inbox_help = "an inbox the user works in (repeat for several; agents see only their inboxes)"
    user_add.add_argument("--inbox", type=int, action="append", default=[], metavar="ID", help=inbox_help)
    user_add.set_defaults(func=lambda a: _print(asyncio.run(_add_user(a))))

    inbox = sub.add_parser("inbox", help="manage channel inboxes").add_subparsers(dest="action", required=True)
    inbox_add = inbox.add_parser("add")
    inbox_add.add_argument("--channel", choices=["facebook", "zalo", "telegram", "webchat"], required=True)
    inbox_add.add_argument("--name", required=True)
    inbox_add.add_argument("--page-id")
    inbox_add.add_argument("--page-token")
    inbox_add.add_argument("--app-secret")
    inbox_add.add_argument("--verify-token", default=None)
    for flag in ("--oa-id", "--app-id", "--oa-secret", "--access-token", "--refresh-token"):  # zalo
        inbox_add.add_argument(flag)
    inbox_add.add_argument("--bot-token", help="telegram: the token from @BotFather")
    inbox_add.add_argument("--secret-token", help="telegram: Telegram sends it with every update")
    inbox_add.add_argument("--public-url", help="this server's public https URL (default $HOPTHU_PUBLIC_URL)")
    inbox_add.add_argument("--allowed-origin", action="append", help="webchat: a site that may embed the widget")
    inbox_add.add_argument("--prechat", action="store_true", help="webchat: ask name/phone/e-mail with consent")
    inbox_add.set_defaults(func=lambda a: _print(asyncio.run(_add_inbox(a))))

    backup = sub.add_parser("backup", help="consistent online backup of the whole database into FILE")
    backup.add_argument("file", metavar="FILE", help="the backup file (with --every: a directory of backups)")
    backup.add_argument("--every", help="keep running: one backup per interval into the FILE directory (6h, 1d…)")
    backup.add_argument("--keep", type=int, help="with --every: how many backups to keep (default 7)")
    backup.add_argument("--logical", action="store_true", help="PostgreSQL: COPY every table instead of pg_dump")
    backup.set_defaults(func=_backup)
    restore = sub.add_parser("restore", help="restore a backup FILE into the configured (empty) database")
    restore.add_argument("file", metavar="FILE")
    restore.add_argument("--force", action="store_true", help="restore even though the database holds data")
    restore.set_defaults(func=_restore)

    from nlp.cli import register as register_nlp  # hopthu nlp analyze|eval|train

    register_nlp(sub)
    from contacts.cli import register as register_contacts  # hopthu contacts|orders import|export

    register_contacts(sub)
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
