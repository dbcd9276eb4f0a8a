"""Concurrent webhooks share commits: durability without one fsync per request."""

import asyncio

from channels.fakes import messenger_text
from inbox.keys import INGEST
from inbox.models import InboundEvent, Message
from tests.conftest import PAGE_ID, eventually, now_ms, post_webhook


async def test_concurrent_webhooks_are_committed_together_and_all_stored(client, inbox):
    writer = client.app[INGEST]
    before = writer.commits
    bodies = [
        messenger_text(PAGE_ID, f"psid-{i % 7}", f"mid.group.{i}", f"Câu hỏi số {i}", now_ms()) for i in range(60)
    ]
    responses = await asyncio.gather(*(post_webhook(client, body) for body in bodies))
    assert [r.status for r in responses] == [200] * 60
    commits = writer.commits - before
    assert 1 <= commits < 60, f"{commits} commits for 60 concurrent webhooks: no grouping"
    assert await InboundEvent.filter(dedupe_key__startswith="msg:mid.group.").count() == 60
    await eventually(lambda: _count_is(60))


async def _count_is(expected: int) -> bool:
    return await Message.filter(external_id__startswith="mid.group.").count() == expected
