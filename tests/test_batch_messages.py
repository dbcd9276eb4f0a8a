"""A batch's customer messages are inserted together at its end (`Deferred._message_inserts`). The same platform
message may still reach the log twice under different log keys; it must then be stored once, and every other
event of that batch must still land, with its events and search entries pointing at the right message."""

from __future__ import annotations

import asyncio

from inbox.keys import PROCESSOR
from inbox.models import ConversationEvent, InboundEvent, Message
from inbox.processing import InboundProcessor, Outcome
from tests.conftest import quick_user, send_text

PSIDS = [f"71300422199990{n:02d}" for n in range(4)]
COLOURS = ["đỏ", "xanh", "vàng", "tím"]


async def _copy_under_another_key(mid: str) -> None:
    row = await InboundEvent.get(dedupe_key=f"msg:{mid}")
    await InboundEvent.create(
        inbox_id=row.inbox_id, channel=row.channel, dedupe_key=f"copy:{mid}", record=row.record, processed=False
    )


async def _apply_all() -> list[Outcome]:
    applied: list[Outcome] = []

    async def after_commit(out: Outcome) -> None:
        applied.append(out)

    processor = InboundProcessor(after_commit, asyncio.Event(), acks_waiting=lambda: False)
    while await processor.process_pending():
        pass
    return applied


async def test_a_message_twice_in_one_batch_is_stored_once_and_the_rest_of_the_batch_lands(client, inbox) -> None:
    await client.app[PROCESSOR].stop()  # the log fills; this test applies it
    for n, psid in enumerate(PSIDS):
        await send_text(client, psid, f"m_twice_{n}", f"Shop ơi áo màu {COLOURS[n]} còn không")
    await _copy_under_another_key("m_twice_1")  # the same message, later in the same batch

    applied = await _apply_all()

    assert not await InboundEvent.filter(processed=False).exists()
    assert not await InboundEvent.filter(error__isnull=False).exists()  # a repeat is no error
    stored = await Message.filter(direction="in").order_by("id").values_list("external_id", flat=True)
    assert stored == [f"m_twice_{n}" for n in range(len(PSIDS))]
    new = [msg for out in applied for _, _, msg in out.new_messages]
    assert sorted(msg.external_id for msg in new) == stored  # agents hear of each message once
    for msg in await Message.filter(direction="in"):
        events = await ConversationEvent.filter(message_id=msg.id, kind="message_in").count()
        assert events == 1, msg.external_id
    admin = await quick_user("admin")
    response = await client.get("/api/conversations", params={"q": "vàng"}, headers=admin.headers)
    assert response.status == 200
    found = [item["id"] for item in (await response.json())["items"]]
    assert found == [(await Message.get(external_id="m_twice_2")).conversation_id]  # indexed under its own id


async def test_a_message_already_stored_by_an_earlier_batch_is_skipped(client, inbox) -> None:
    await client.app[PROCESSOR].stop()
    await send_text(client, PSIDS[0], "m_once", "Cho mình hỏi giá")
    await _apply_all()
    await _copy_under_another_key("m_once")
    await send_text(client, PSIDS[1], "m_after", "Ship về Đà Nẵng bao lâu")

    await _apply_all()

    assert await Message.filter(external_id="m_once").count() == 1
    assert await Message.filter(external_id="m_after").count() == 1
    assert not await InboundEvent.filter(processed=False).exists()
