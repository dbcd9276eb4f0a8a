"""`hopthu contacts import|export` and `hopthu orders import|export`: CSV with a progress bar, a validation report
(JSON on stdout) and rejected rows written to a file."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import Any


def progress_bar(done: int, total: int) -> None:
    if not total or (done % 200 and done != total):
        return
    width = 30
    filled = int(width * done / total)
    sys.stderr.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total}")
    if done == total:
        sys.stderr.write("\n")
    sys.stderr.flush()


async def _run(args: argparse.Namespace) -> dict[str, Any]:
    from contacts import importer
    from inbox import db
    from inbox.config import load_settings

    await db.connect(load_settings().database_url)
    try:
        if args.action == "check":
            return await importer.check_contacts(fix=args.fix)
        if args.action == "import":
            rejects = Path(args.rejects) if args.rejects else Path(args.file).with_suffix(".rejected.csv")
            fn = importer.import_contacts if args.what == "contacts" else importer.import_orders
            try:
                report = await fn(Path(args.file), rejects, progress_bar)
            except importer.ImportFileError as exc:
                return {"error": str(exc), "imported": 0}
            result = report.as_dict()
            if report.rejected:
                result["rejects_file"] = str(rejects)
            return result
        fn = importer.export_contacts if args.what == "contacts" else importer.export_orders
        return {"exported": await fn(Path(args.file)), "file": args.file}
    finally:
        await db.disconnect()


def _main(args: argparse.Namespace) -> int:
    result = asyncio.run(_run(args))
    print(json.dumps(result, ensure_ascii=False))
    return 1 if result.get("rejected") or result.get("problems") or result.get("error") else 0


def register(sub: Any) -> None:
    for what in ("contacts", "orders"):
        actions = sub.add_parser(what, help=f"CSV import/export of {what}").add_subparsers(dest="action", required=True)
        imp = actions.add_parser("import", help="import a CSV; bad rows are reported and written to --rejects")
        imp.add_argument("file", metavar="FILE")
        imp.add_argument("--rejects", help="where rejected rows go (default FILE.rejected.csv)")
        imp.set_defaults(func=_main, what=what)
        exp = actions.add_parser("export", help="export as CSV")
        exp.add_argument("file", metavar="FILE")
        exp.set_defaults(func=_main, what=what)
        if what == "contacts":
            check = actions.add_parser("check", help="report stored values that are not clean (--fix cleans them)")
            check.add_argument("--fix", action="store_true")
            check.set_defaults(func=_main, what=what)
