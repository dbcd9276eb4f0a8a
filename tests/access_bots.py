"""Access-matrix cases for bot settings, the FAQ, saved replies and the bot report (see tests/matrix.py)."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient

from agents.models import FaqEntry, SavedReply
from tests.matrix import Case, World


async def prepare(world: World, client: TestClient) -> None:
    faq = await FaqEntry.create(inbox=world.inbox_a, questions=["Shop ở đâu?"], answer="Dạ 123 Lê Lợi ạ")
    reply = await SavedReply.create(inbox=world.inbox_a, shortcut="diachi", text="Dạ shop ở 123 Lê Lợi ạ")
    world.extra["bots"] = {"faq": faq.id, "reply": reply.id}


def _inbox(world: World) -> dict[str, Any]:
    return {"id": world.inbox_a.id}


def _faq(world: World) -> dict[str, Any]:
    return {"id": world.extra["bots"]["faq"]}


def _reply(world: World) -> dict[str, Any]:
    return {"id": world.extra["bots"]["reply"]}


def _new_shortcut(world: World, who: str) -> dict[str, Any]:
    return {"shortcut": f"ship-{who}", "text": "Dạ phí ship 30k ạ", "inbox_id": world.inbox_a.id}


CASES = [
    Case("GET", "/api/inboxes/{id}/bot", "supervisor", target=_inbox),
    Case("PUT", "/api/inboxes/{id}/bot", "admin", body=lambda w, who: {"faq_enabled": True}, target=_inbox),
    Case("GET", "/api/inboxes/{id}/faq", "supervisor", target=_inbox),
    Case(
        "POST",
        "/api/inboxes/{id}/faq",
        "admin",
        201,
        body=lambda w, who: {"questions": ["Có COD không?"], "answer": "Dạ có ạ", "intent": "payment"},
        target=_inbox,
    ),
    Case("POST", "/api/inboxes/{id}/faq/test", "supervisor", body=lambda w, who: {"text": "shop o dau"}, target=_inbox),
    Case("PATCH", "/api/faq/{id}", "admin", body=lambda w, who: {"answer": "Dạ 125 Lê Lợi ạ"}, target=_faq),
    Case("DELETE", "/api/faq/{id}", "admin", target=_faq),
    Case("GET", "/api/saved-replies", "agent"),
    Case("POST", "/api/saved-replies", "supervisor", 201, body=_new_shortcut),
    Case("PATCH", "/api/saved-replies/{id}", "supervisor", body=lambda w, who: {"title": "Địa chỉ"}, target=_reply),
    Case("DELETE", "/api/saved-replies/{id}", "supervisor", target=_reply),
    Case(
        "POST",
        "/api/saved-replies/{id}/render",
        "agent",
        body=lambda w, who: {"conversation_id": w.conv_a.id},
        target=_reply,
    ),
    Case("GET", "/api/reports/bots", "supervisor"),
]
