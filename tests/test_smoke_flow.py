"""One message end to end: signed webhook → stored → listed → replied through the fake Graph API."""

from inbox.models import Message
from tests.conftest import eventually, make_user, send_text


async def test_message_flows_from_webhook_to_reply(client, inbox, fake_graph):
    agent = await make_user(client, "agent", inboxes=[inbox])
    await send_text(client, "PSID-1", "mid.1", "Chào shop, áo này còn size M không ạ?")
    await eventually(lambda: Message.filter(external_id="mid.1").exists())

    listing = await (await client.get("/api/conversations", headers=agent.headers)).json()
    assert [c["last_message_preview"] for c in listing["items"]] == ["Chào shop, áo này còn size M không ạ?"]
    conv_id = listing["items"][0]["id"]

    reply = await client.post(
        f"/api/conversations/{conv_id}/messages", json={"text": "Dạ còn ạ"}, headers=agent.headers
    )
    assert reply.status == 201
    body = await reply.json()
    assert body["delivery_status"] == "sent"
    assert fake_graph.sent_messages()[-1]["message"]["text"] == "Dạ còn ạ"
