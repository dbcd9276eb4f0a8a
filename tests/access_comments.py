"""Access-matrix cases for Page comment actions and Zalo token administration (see tests/matrix.py)."""

from __future__ import annotations

import time
from typing import Any

from aiohttp.test_utils import TestClient

from channels.fakes import page_comment
from inbox.models import Inbox, Message
from tests.conftest import PAGE_ID, eventually, post_webhook
from tests.matrix import Case, World

COMMENT_ID = "712750021053074_1063824911537899"


async def prepare(world: World, client: TestClient) -> None:
    body = page_comment(PAGE_ID, f"{PAGE_ID}_712750021053074", COMMENT_ID, "24260000000000009999", "Giá sao shop?",
                        int(time.time()))  # fmt: skip
    assert (await post_webhook(client, body)).status == 200
    comment = await eventually(lambda: Message.get_or_none(external_id=COMMENT_ID))
    zalo = await Inbox.create(
        name="Zalo OA", channel="zalo", external_id="388613280878808645",
        credentials={"app_id": "1", "oa_secret": "s", "access_token": "a", "refresh_token": "r", "app_secret": "x"},
    )  # fmt: skip
    world.extra["comments"] = {"message": comment.id, "zalo": zalo.id}


def _comment(world: World) -> dict[str, Any]:
    return {"id": world.extra["comments"]["message"]}


def _inbox(world: World) -> dict[str, Any]:
    return {"id": world.inbox_a.id}


def _zalo(world: World) -> dict[str, Any]:
    return {"id": world.extra["comments"]["zalo"]}


def _text(world: World, who: str) -> dict[str, Any]:
    return {"text": f"Dạ shop trả lời ({who})"}


CASES = [
    Case("POST", "/api/messages/{id}/comment/reply", "agent", 201, body=_text, target=_comment),
    Case("POST", "/api/messages/{id}/comment/private-reply", "agent", 201, body=_text, target=_comment),
    Case("POST", "/api/messages/{id}/comment/hide", "agent", body=lambda w, who: {"hidden": True}, target=_comment),
    Case("DELETE", "/api/messages/{id}/comment", "agent", target=_comment),
    Case("PUT", "/api/inboxes/{id}/comment-settings", "admin", body=lambda w, who: {"auto_hide": True}, target=_inbox),
    Case("GET", "/api/inboxes/{id}/zalo-tokens", "admin", target=_zalo),
    Case(
        "PUT",
        "/api/inboxes/{id}/zalo-tokens",
        "admin",
        body=lambda w, who: {"access_token": f"a-{who}", "refresh_token": f"r-{who}"},
        target=_zalo,
    ),
]
