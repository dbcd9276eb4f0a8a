"""The outbox shared by several server processes: a process holding a stale copy of an item (another process has
tried it meanwhile and it is due again) loses the claim instead of sending with an old attempt count."""

from __future__ import annotations

from datetime import UTC, datetime

from inbox.keys import BUS, OUTBOX
from inbox.models import Message, OutboxItem
from inbox.outbox import Outbox
from tests.test_outbox import agent, fake_graph, open_conversation  # noqa: F401 - fixtures


async def test_a_stale_copy_loses_the_claim_after_another_process_tried(client, agent, fake_graph):  # noqa: F811
    conv_id = await open_conversation(client, "PSID-9")
    await client.app[OUTBOX].stop()
    senders = client.app[OUTBOX]._senders
    process_a, process_b = Outbox(client.app[BUS], senders), Outbox(client.app[BUS], senders)
    msg = await Message.create(
        conversation_id=conv_id, inbox_id=1, direction="out", sender_type="agent", text="Dạ còn size M ạ",
        created_at=datetime.now(UTC), delivery_status="pending",
    )  # fmt: skip
    item = await OutboxItem.create(message_id=msg.id, inbox_id=1, next_attempt_at=datetime.now(UTC))
    seen_by_b = await OutboxItem.get(id=item.id)  # b read the due items ...

    seen_by_a = await OutboxItem.get(id=item.id)  # ... a claimed it, the platform failed, a rescheduled it ...
    assert await process_a._claim(seen_by_a)
    await OutboxItem.filter(id=item.id).update(attempts=1, next_attempt_at=datetime.now(UTC), last_error="503")

    assert not await process_b._claim(seen_by_b)  # ... and b's copy still says attempts=0: not b's to send
    fresh = await OutboxItem.get(id=item.id)
    assert await process_b._claim(fresh)  # a fresh read may claim the next attempt
