"""Bulk jobs: resolve or delete many conversations in the background, in small chunks that yield to ingest.

`POST /api/bulk-jobs {"action": "resolve"|"delete", "conversation_ids": [...]}` or `{"action", "filter": {"status",
"inbox_id", "last_activity_before"}}` answers 202 with the job; `GET /api/bulk-jobs/{id}` shows its progress.
Resolving needs a supervisor, deleting an admin. Each chunk is one short transaction; before each one the job waits
while webhooks are waiting for a commit (up to `MAX_YIELD` per chunk, so ingest cannot starve it either), which keeps
the ingest p99 close to what it is without the job (`bench/bulk.py`). Jobs live in the server process that runs them.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiohttp import web
from tortoise.transactions import in_transaction

from agents import reports
from agents.access import ROLE_RANK
from agents.audit import audit
from inbox import db
from inbox.api.guard import auth_of, requires
from inbox.api.openapi import PATH_ID, document, json_response_of, op, ref
from inbox.bus import Event
from inbox.db import dialect
from inbox.http import fail, int_param, is_id, json_body, json_response, moment
from inbox.keys import BUS, INGEST
from inbox.models import STATUSES, Conversation, Message
from inbox.processing import append_events, event_row, load_conversations
from inbox.serialize import conversation_json, iso
from inbox.sql import Sql

log = logging.getLogger(__name__)
routes = web.RouteTableDef()
CHUNK = 100
MAX_IDS = 100_000
MAX_YIELD = 0.05  # seconds a chunk waits at most for webhooks waiting on a commit
DUTY = 0.5  # the share of time a running job may use
ACTIONS = {"resolve": "supervisor", "delete": "admin"}
_ids = itertools.count(1)


@dataclass
class BulkJob:
    id: int
    action: str
    created_by: int
    conversation_ids: list[int]
    state: str = "queued"  # queued | running | done | failed
    done: int = 0
    skipped: int = 0
    error: str | None = None
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    finished_at: datetime | None = None
    task: asyncio.Task[None] | None = field(default=None, repr=False)

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "action": self.action,
            "state": self.state,
            "total": len(self.conversation_ids),
            "done": self.done,
            "skipped": self.skipped,
            "error": self.error,
            "created_by": self.created_by,
            "created_at": iso(self.created_at),
            "finished_at": iso(self.finished_at) if self.finished_at else None,
        }


JOBS = web.AppKey("bulk_jobs", dict)


def _jobs(app: web.Application) -> dict[int, BulkJob]:
    if JOBS not in app:
        app[JOBS] = {}
    return app[JOBS]


async def _select(body: dict[str, Any]) -> list[int]:
    ids, filters = body.get("conversation_ids"), body.get("filter")
    if (ids is None) == (filters is None):
        fail(400, "invalid_body", "give either conversation_ids or filter")
    if ids is not None:
        if isinstance(ids, list) and len(ids) > MAX_IDS:
            fail(413, "payload_too_large", f"at most {MAX_IDS} conversations per job")
        if not isinstance(ids, list) or not all(is_id(i) for i in ids):
            fail(400, "invalid_body", "conversation_ids must be a list of conversation ids")
        wanted = sorted({i for i in ids if 0 < i < 2**31})
        found: list[int] = []
        for s in range(0, len(wanted), 1000):
            found += await Conversation.filter(id__in=wanted[s : s + 1000]).values_list("id", flat=True)
        return found
    if not isinstance(filters, dict):
        fail(400, "invalid_body", "filter must be an object")
    query = Conversation.all()
    status = filters.get("status")
    if status is not None:
        if status not in STATUSES:
            fail(422, "invalid_status", f"status must be one of {', '.join(STATUSES)}")
        query = query.filter(status=status)
    if filters.get("inbox_id") is not None:
        inbox_id = filters["inbox_id"]
        if not isinstance(inbox_id, int) or isinstance(inbox_id, bool) or not 0 < inbox_id < 2**31:
            fail(400, "invalid_body", "filter.inbox_id must be an integer id")
        query = query.filter(inbox_id=inbox_id)
    if filters.get("last_activity_before") is not None:
        before = moment(filters["last_activity_before"], "filter.last_activity_before", code="invalid_body")
        query = query.filter(last_activity_at__lt=before)
    ids = await query.order_by("id").limit(MAX_IDS + 1).values_list("id", flat=True)
    if len(ids) > MAX_IDS:
        fail(413, "payload_too_large", f"the filter selects more than {MAX_IDS} conversations; narrow it")
    return list(ids)


@routes.post("/api/bulk-jobs")
@requires("supervisor")
async def create_job(request: web.Request) -> web.Response:
    auth = auth_of(request)
    body = await json_body(request)
    action = body.get("action")
    if action not in ACTIONS:
        fail(422, "invalid_action", f"action must be one of {', '.join(ACTIONS)}")
    if ROLE_RANK[auth.user.role] < ROLE_RANK[ACTIONS[action]]:
        fail(403, "forbidden", f"{action} needs the {ACTIONS[action]} role")
    ids = await _select(body)
    job = BulkJob(next(_ids), action, auth.user.id, ids)
    jobs = _jobs(request.app)
    jobs[job.id] = job
    await audit(f"bulk.{action}", actor_id=auth.user.id, target_type="bulk_job", target_id=job.id,
                data={"conversations": len(ids)}, request=request)  # fmt: skip
    job.task = asyncio.create_task(run(request.app, job), name=f"bulk-job-{job.id}")
    return json_response(job.as_json(), status=202)


@routes.get("/api/bulk-jobs/{id}")
@requires("supervisor")
async def show_job(request: web.Request) -> web.Response:
    job = _jobs(request.app).get(int_param(request.match_info["id"], "id"))
    if job is None:
        fail(404, "not_found", "no such bulk job")
    return json_response(job.as_json())


async def _yield_to_ingest(app: web.Application) -> None:
    """Let waiting webhook commits go first (bounded), then give the loop a turn."""
    writer = app.get(INGEST)
    deadline = time.monotonic() + MAX_YIELD
    while writer is not None and writer.waiting() and time.monotonic() < deadline:  # noqa: ASYNC110 (no event)
        await asyncio.sleep(0.002)
    await asyncio.sleep(0)


async def run(app: web.Application, job: BulkJob) -> None:
    job.state = "running"
    try:
        for start in range(0, len(job.conversation_ids), CHUNK):
            await _yield_to_ingest(app)
            chunk = job.conversation_ids[start : start + CHUNK]
            began = time.monotonic()
            changed = await (_resolve(app, job, chunk) if job.action == "resolve" else _delete(app, chunk))
            job.done += changed
            job.skipped += len(chunk) - changed
            # Pace: the job takes at most DUTY of the process's time, so ingest (and what the job's events set off
            # in other listeners) always has the rest.
            await asyncio.sleep((time.monotonic() - began) * (1 - DUTY) / DUTY)
        job.state = "done"
    except Exception as exc:  # the job's state says so; what was done stays done
        log.exception("bulk job %s failed", job.id)
        job.state, job.error = "failed", str(exc)[:500]
    finally:
        job.finished_at = datetime.now(UTC)


async def _resolve(app: web.Application, job: BulkJob, chunk: list[int]) -> int:
    at = datetime.now(UTC)
    # Raw and short: on SQLite this transaction holds the only connection while webhooks may be waiting to commit.
    async with in_transaction() as conn:
        sql = Sql(conn.capabilities.dialect)
        marks = sql.marks(chunk)
        # On PostgreSQL the rows are locked as they are read: a conversation an agent (or a customer's message) is
        # changing right now is read once that change commits, so the job neither records a stale `previous`
        # nor resolves again what was just resolved (a second resolution in the reports). SQLite has one writer.
        lock = " FOR UPDATE" if sql.dialect == "postgres" else ""
        rows = await conn.execute_query_dict(
            f"SELECT id, inbox_id, status FROM conversations WHERE id IN ({marks}) AND status != 'resolved'{lock}",
            sql.params,
        )
        if not rows:
            return 0
        ids = [row["id"] for row in rows]
        update = Sql(sql.dialect)
        marks = update.marks(ids)
        await conn.execute_query(
            f"UPDATE conversations SET status = 'resolved', snoozed_until = NULL WHERE id IN ({marks})", update.params
        )
        facts = [
            event_row(row["id"], row["inbox_id"], "status_changed", "agent", job.created_by, at, None,
                      {"previous": row["status"], "status": "resolved", "bulk_job": job.id})
            for row in rows
        ]  # fmt: skip
        await append_events(conn, facts)
    convs = await load_conversations(db.connection(), ids)  # raw: the ORM's row parsing was the job's main cost
    bus = app[BUS]
    for conv in convs.values():
        data = conversation_json(conv, conv.contact)
        await bus.publish(Event("conversation.updated", data, inbox_id=conv.inbox_id, team_id=conv.team_id))
    return len(rows)


async def _delete(app: web.Application, chunk: list[int]) -> int:
    """Delete conversations with their messages, events and labels (the foreign keys cascade), and their search
    index rows (SQLite's FTS5 table is outside the foreign keys)."""
    async with in_transaction() as conn:
        where = await Conversation.filter(id__in=chunk).using_db(conn).values_list("id", "inbox_id", "team_id")
        existing = [row[0] for row in where]
        if not existing:
            return 0
        if dialect() == "sqlite":
            indexed = await Message.filter(conversation_id__in=existing).using_db(conn).values_list("id", "search_text")
            rows = [(mid, text) for mid, text in indexed if text]
            if rows:  # a contentless FTS5 table forgets a row when given its old values back
                await conn.execute_many(
                    "INSERT INTO message_fts(message_fts, rowid, search_text) VALUES ('delete', ?, ?)", rows
                )
        await reports.forget_facts(conn, existing)
        await Conversation.filter(id__in=existing).using_db(conn).delete()
    for conv_id, inbox_id, team_id in where:
        await app[BUS].publish(Event("conversation.deleted", {"id": conv_id}, inbox_id=inbox_id, team_id=team_id))
    return len(existing)


async def cancel_jobs(app: web.Application) -> None:
    """On shutdown: stop running jobs between chunks (what is committed stays; the job shows how far it got)."""
    tasks = [job.task for job in _jobs(app).values() if job.task is not None and not job.task.done()]
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


document(
    {
        "/api/bulk-jobs": {
            "post": op(
                "Start a bulk job: resolve (supervisor) or delete (admin) many conversations, in the background",
                json_response_of(ref("BulkJob"), "Accepted"),
                status="202",
                body={
                    "type": "object",
                    "required": ["action"],
                    "properties": {
                        "action": {"type": "string", "enum": list(ACTIONS)},
                        "conversation_ids": {"type": "array", "items": {"type": "integer"}, "maxItems": MAX_IDS},
                        "filter": {
                            "type": "object",
                            "properties": {
                                "status": {"type": "string", "enum": list(STATUSES)},
                                "inbox_id": {"type": "integer"},
                                "last_activity_before": {"type": "string", "format": "date-time"},
                            },
                        },
                    },
                },
                role="supervisor",
                tag="admin",
            )
        },
        "/api/bulk-jobs/{id}": {
            "get": op(
                "A bulk job's progress",
                json_response_of(ref("BulkJob")),
                params=[PATH_ID],
                role="supervisor",
                tag="admin",
            )
        },
    },
    {
        "BulkJob": {
            "type": "object",
            "required": ["id", "action", "state", "total", "done", "skipped", "error", "created_by", "created_at"],
            "properties": {
                "id": {"type": "integer"},
                "action": {"type": "string", "enum": list(ACTIONS)},
                "state": {"type": "string", "enum": ["queued", "running", "done", "failed"]},
                "total": {"type": "integer"},
                "done": {"type": "integer"},
                "skipped": {"type": "integer"},
                "error": {"type": ["string", "null"]},
                "created_by": {"type": "integer"},
                "created_at": {"type": "string", "format": "date-time"},
                "finished_at": {"type": ["string", "null"], "format": "date-time"},
            },
        }
    },
)
