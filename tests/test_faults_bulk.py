"""Bulk jobs (resolve / delete many conversations) run in chunks beside live ingest: webhooks keep being acknowledged
and stored while a job runs, and the job finishes with every conversation handled once. (Its effect on the ingest
p99 is measured in bench/bulk.py.)"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from tortoise.transactions import in_transaction

from agents.models import AuditEntry
from channels.fakes import messenger_batch, messenger_text
from inbox.api import bulk
from inbox.models import Conversation, ConversationEvent, InboundEvent, Inbox, Message
from tests.conftest import PAGE_ID, eventually, now_ms, post_webhook, quick_user

N = 240


async def many_conversations(client: TestClient, n: int, prefix: str) -> list[int]:
    ts = now_ms()
    for start in range(0, n, 60):
        bodies = [messenger_text(PAGE_ID, f"{prefix}-{i}", f"mid.{prefix}.{i}", f"Áo số {i}", ts + i)
                  for i in range(start, min(n, start + 60))]  # fmt: skip
        assert (await post_webhook(client, messenger_batch(*bodies))).status == 200
    await eventually(lambda: _processed(), timeout=30)
    return list(await Conversation.filter(contact__identities__external_id__startswith=f"{prefix}-")
                .order_by("id").values_list("id", flat=True))  # fmt: skip


async def _processed() -> bool:
    return not await InboundEvent.filter(processed=False).exists()


async def job_done(client: TestClient, job_id: int, headers: dict[str, str]) -> dict[str, Any]:
    async def finished() -> dict[str, Any] | None:
        job = await (await client.get(f"/api/bulk-jobs/{job_id}", headers=headers)).json()
        return job if job["state"] in ("done", "failed") else None

    return await eventually(finished, timeout=60)


async def test_bulk_resolve_runs_beside_live_ingest(client: TestClient, inbox: Inbox) -> None:
    ids = await many_conversations(client, N, "bulk")
    assert len(ids) == N
    supervisor = await quick_user("supervisor")
    response = await client.post("/api/bulk-jobs", json={"action": "resolve", "conversation_ids": [*ids, 99999999]},
                                 headers=supervisor.headers)  # fmt: skip
    assert response.status == 202, await response.text()
    job = await response.json()
    assert (job["action"], job["total"]) == ("resolve", N)  # ids that do not exist are not counted

    # Webhooks arrive while it runs: each is acknowledged (200) only once stored, and all are stored.
    live = [messenger_text(PAGE_ID, f"live-{i}", f"mid.live.{i}", "Còn hàng không?", now_ms() + i) for i in range(30)]
    statuses = await asyncio.gather(*(post_webhook(client, body) for body in live))
    assert [r.status for r in statuses] == [200] * len(live)

    finished = await job_done(client, job["id"], supervisor.headers)
    assert (finished["state"], finished["done"], finished["skipped"]) == ("done", N, 0)
    assert await Conversation.filter(id__in=ids, status="resolved").count() == N
    events = await ConversationEvent.filter(conversation_id__in=ids, kind="status_changed").count()
    assert events == N
    await eventually(lambda: _count(Message.filter(external_id__startswith="mid.live."), 30))
    entry = await AuditEntry.get(action="bulk.resolve")
    assert (entry.actor_id, entry.data) == (supervisor.user.id, {"conversations": N})
    # Running it again changes nothing: already resolved.
    again = await client.post("/api/bulk-jobs", json={"action": "resolve", "conversation_ids": ids},
                              headers=supervisor.headers)  # fmt: skip
    second = await job_done(client, (await again.json())["id"], supervisor.headers)
    assert (second["done"], second["skipped"]) == (0, N)
    assert await ConversationEvent.filter(conversation_id__in=ids, kind="status_changed").count() == N


async def _count(query: Any, n: int) -> bool:
    return await query.count() == n


async def test_bulk_delete_needs_an_admin_and_removes_everything(client: TestClient, inbox: Inbox) -> None:
    ids = await many_conversations(client, 130, "gone")
    keep = await many_conversations(client, 3, "keep")
    supervisor, admin = await quick_user("supervisor"), await quick_user("admin")
    body = {"action": "delete", "filter": {"status": "open", "inbox_id": inbox.id}}
    refused = await client.post("/api/bulk-jobs", json=body, headers=supervisor.headers)
    assert refused.status == 403
    assert await Conversation.filter(id__in=ids).count() == 130

    response = await client.post("/api/bulk-jobs", json={"action": "delete", "conversation_ids": ids},
                                 headers=admin.headers)  # fmt: skip
    assert response.status == 202
    finished = await job_done(client, (await response.json())["id"], admin.headers)
    assert (finished["state"], finished["done"]) == ("done", 130)
    assert await Conversation.filter(id__in=ids).count() == 0
    assert await Message.filter(conversation_id__in=ids).count() == 0
    assert await Conversation.filter(id__in=keep).count() == 3
    found = await client.get("/api/conversations", params={"q": "Áo số"}, headers=admin.headers)
    assert {c["id"] for c in (await found.json())["items"]} <= set(keep)


async def test_bad_bulk_requests_are_refused_clearly(client: TestClient, inbox: Inbox) -> None:
    supervisor = await quick_user("supervisor")
    cases = [
        ({"action": "explode", "conversation_ids": [1]}, 422),
        ({"action": "resolve"}, 400),
        ({"action": "resolve", "conversation_ids": [1], "filter": {}}, 400),
        ({"action": "resolve", "conversation_ids": ["1"]}, 400),
        ({"action": "resolve", "conversation_ids": "1,2"}, 400),
        ({"action": "resolve", "filter": {"status": "closed"}}, 422),
        ({"action": "resolve", "filter": {"inbox_id": "x"}}, 400),
        ({"action": "resolve", "filter": {"last_activity_before": "hôm qua"}}, 400),
        ({"action": "resolve", "conversation_ids": list(range(100_001))}, 413),
    ]
    for body, status in cases:
        response = await client.post("/api/bulk-jobs", json=body, headers=supervisor.headers)
        assert response.status == status, (body if len(str(body)) < 200 else "huge", await response.text())
        assert set((await response.json())["error"]) >= {"code", "message"}
    assert (await client.get("/api/bulk-jobs/424242", headers=supervisor.headers)).status == 404


async def test_bulk_resolve_waits_for_a_resolution_in_progress_and_does_not_repeat_it(
    client: TestClient, inbox: Inbox, database_url: str
) -> None:
    """PostgreSQL: while an agent's transaction resolves a conversation, the job reads that row only once the
    agent's change has committed, so it skips it instead of resolving it a second time (which reports would count
    twice, with a stale `previous`). SQLite has a single writer: the race cannot happen there."""
    if not database_url.startswith("postgres"):
        pytest.skip("PostgreSQL only: SQLite serialises every write transaction")
    ids = await many_conversations(client, 2, "race")
    supervisor = await quick_user("supervisor")
    job = bulk.BulkJob(id=1, action="resolve", created_by=supervisor.user.id, conversation_ids=ids)
    changed, commit = asyncio.Event(), asyncio.Event()

    async def agent_resolves() -> None:  # its own task: its own connection and transaction
        async with in_transaction() as agent:
            await agent.execute_query("UPDATE conversations SET status = 'resolved' WHERE id = $1", [ids[0]])
            changed.set()
            await commit.wait()

    agent = asyncio.create_task(agent_resolves())
    await changed.wait()
    resolving = asyncio.create_task(bulk._resolve(client.app, job, ids))
    await asyncio.sleep(0.3)
    assert not resolving.done()  # waiting for the agent's row
    commit.set()
    await agent
    assert await resolving == 1  # only the other conversation
    previous = await ConversationEvent.filter(conversation_id__in=ids, kind="status_changed").values_list(
        "conversation_id", "data"
    )
    assert [(cid, data["previous"]) for cid, data in previous] == [(ids[1], "open")]
