"""The web app in a real browser (Debian's Chromium driven by Playwright): what an agent and a supervisor see.

The server is the real app on a real port (the browser needs one), fed by signed webhooks; replies go to the
local fake Graph API. Screenshots land in tests/screenshots/ (git-ignored).
"""

from __future__ import annotations

import dataclasses
import os
import re
import socket
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from agents.models import InboxMember, SavedReply, Team, TeamMember, User
from agents.sessions import create_session
from channels.fakes import messenger_delivery, messenger_echo, messenger_reaction, messenger_text, page_comment
from channels.fakes_telegram import Updates, running_fake_bot_api
from contacts import rfm
from contacts.models import Contact, ContactScore, Order
from inbox import webchat
from inbox.app import create_app
from inbox.bus import Event
from inbox.config import Settings
from inbox.keys import BUS
from inbox.models import Conversation, Inbox, Mention, Message
from inbox.serialize import message_json
from tests.conftest import PAGE_ID, PASSWORD, eventually, make_inbox, now_ms, password_hash, post_webhook

CHROMIUM = os.environ.get("HOPTHU_TEST_CHROMIUM", "/usr/bin/chromium")
# CI (.ci/run) sets HOPTHU_TEST_BROWSER=required: there a missing browser is a failure, not a skip.
BROWSER_REQUIRED = os.environ.get("HOPTHU_TEST_BROWSER") == "required"
if BROWSER_REQUIRED:
    import playwright.async_api as playwright_api
else:
    playwright_api = pytest.importorskip("playwright.async_api")
async_playwright, expect = playwright_api.async_playwright, playwright_api.expect
SCREENSHOTS = Path(__file__).parent / "screenshots"
pytestmark = pytest.mark.skipif(
    not BROWSER_REQUIRED and not Path(CHROMIUM).exists(), reason=f"no Chromium at {CHROMIUM}"
)
expect.set_options(timeout=10_000)
TELEGRAM_TOKEN = "7012345678:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class LiveServer:
    """The whole app on 127.0.0.1:<port>; stop() and start() again is a server restart (same database)."""

    def __init__(self, settings: Settings, port: int | None = None) -> None:
        self.settings, self.port = settings, port or free_port()
        self.runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        self.runner = web.AppRunner(create_app(self.settings), handler_cancellation=True)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", self.port).start()

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()
            self.runner = None


@pytest.fixture
async def server(settings: Settings) -> AsyncIterator[LiveServer]:
    live = LiveServer(settings)
    await live.start()
    yield live
    await live.stop()


@pytest.fixture
async def http(server: LiveServer) -> AsyncIterator[aiohttp.ClientSession]:
    """Plays the platform: posts signed webhooks to whichever server is up at the URL."""
    async with aiohttp.ClientSession(base_url=server.url) as session:
        yield session


@pytest.fixture
async def browser() -> AsyncIterator[object]:
    async with async_playwright() as pw:
        # --no-sandbox: CI runs as root in a container; small /dev/shm there too.
        chromium = await pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-dev-shm-usage"])
        yield chromium
        await chromium.close()


@pytest.fixture
async def page(browser):
    """A page at 1366×768 that fails the test on any script error or CSP violation."""
    context = await browser.new_context(viewport={"width": 1366, "height": 768}, locale="vi-VN")
    tab = await context.new_page()
    problems: list[str] = []
    tab.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    tab.on(
        "console",
        lambda msg: msg.type == "error" and "Content Security Policy" in msg.text and problems.append(msg.text),
    )
    yield tab
    await context.close()
    assert problems == []


async def staff(role: str, inbox=None, email: str | None = None) -> User:
    user = await User.create(
        email=email or f"{role}-{time.monotonic_ns()}@shop.vn",
        name={"agent": "Phạm Ngọc Lan", "supervisor": "Trần Thu Hương", "admin": "Nguyễn Văn Quang"}[role],
        role=role,
        password_hash=password_hash(),
    )
    if inbox is not None:
        await InboxMember.create(user=user, inbox=inbox)
    return user


async def log_in(page, server: LiveServer, user: User) -> None:
    await page.goto(server.url + "/")
    await page.get_by_label("E-mail").fill(user.email)
    await page.locator("input[name=password]").fill(PASSWORD)
    await page.get_by_test_id("login-submit").click()
    await expect(page.get_by_test_id("inbox")).to_be_visible()
    await expect(page.get_by_test_id("connection")).to_have_attribute("class", "conn conn-online")


async def customer_writes(http, psid: str, mid: str, text: str) -> Message:
    response = await post_webhook(http, messenger_text(PAGE_ID, psid, mid, text, now_ms()))
    assert response.status == 200, await response.text()
    return await eventually(lambda: Message.get_or_none(external_id=mid))


def conversation_item(page, text: str):
    return page.get_by_test_id("conv-item").filter(has_text=text)


async def test_agent_sees_a_new_chat_live_replies_assigns_labels_and_resolves(server, http, page, fake_graph):
    inbox = await make_inbox()
    agent = await staff("agent", inbox)
    await log_in(page, server, agent)
    await expect(page.get_by_test_id("conv-item")).to_have_count(0)

    # A signed webhook arrives: the conversation shows up without a refresh.
    msg = await customer_writes(http, "PSID-UI-1", "mid.ui.1", "Chào shop, áo sơ mi lụa còn size M không ạ?")
    item = page.locator(f"[data-testid=conv-item][data-id='{msg.conversation_id}']")
    await expect(item).to_contain_text("áo sơ mi lụa còn size M")
    await item.click()
    await expect(page.get_by_test_id("message-text").first).to_have_text("Chào shop, áo sơ mi lụa còn size M không ạ?")

    # Reply: the fake Graph API accepts it, then Messenger reports it delivered.
    await page.get_by_test_id("composer").fill("Dạ còn size M ạ, chị lấy màu nào ạ?")
    await page.get_by_test_id("composer").press("Enter")
    reply = page.get_by_test_id("message").filter(has_text="Dạ còn size M ạ")
    await expect(reply.get_by_test_id("delivery")).to_have_attribute("data-status", "sent")
    assert fake_graph.sent_messages()[-1]["message"]["text"] == "Dạ còn size M ạ, chị lấy màu nào ạ?"
    delivered = await post_webhook(http, messenger_delivery(PAGE_ID, "PSID-UI-1", now_ms() + 1000))
    assert delivered.status == 200
    await expect(reply.get_by_test_id("delivery")).to_have_attribute("data-status", "delivered")
    await expect(page.get_by_test_id("composer")).to_have_value("")

    # Assign to myself, label, resolve.
    await page.get_by_test_id("take").click()
    await expect(page.get_by_test_id("assignee")).to_have_value(str(agent.id))
    await page.get_by_test_id("label-input").fill("tư vấn size")
    await page.get_by_test_id("label-input").press("Enter")
    await expect(page.get_by_test_id("labels")).to_contain_text("tư vấn size")
    await expect(item).to_contain_text("tư vấn size")
    SCREENSHOTS.mkdir(exist_ok=True)
    await page.screenshot(path=str(SCREENSHOTS / "inbox.png"))
    await page.get_by_test_id("resolve").click()
    await expect(page.get_by_test_id("thread-status")).to_have_text("Đã xong")
    await expect(item).to_have_count(0)  # the list shows open conversations

    conv = await Conversation.get(id=msg.conversation_id)
    assert (conv.status, conv.assignee_id, conv.labels) == ("resolved", agent.id, ["tư vấn size"])


async def test_the_thread_shows_who_took_and_who_resolved_it_between_the_messages(server, http, page):
    inbox = await make_inbox()
    agent = await staff("agent", inbox)
    await log_in(page, server, agent)
    msg = await customer_writes(http, "PSID-UI-A", "mid.ui.a", "Shop ơi váy hoa còn không ạ?")
    await page.locator(f"[data-testid=conv-item][data-id='{msg.conversation_id}']").click()
    lines = page.get_by_test_id("activity")
    await expect(lines).to_have_text(["Khách bắt đầu cuộc trò chuyện · " + await clock_of(page, msg.created_at)])

    await page.get_by_test_id("take").click()
    await expect(lines.nth(1)).to_have_text(re.compile(r"^Phạm Ngọc Lan đã nhận xử lý · \d\d:\d\d$"))
    await page.get_by_test_id("composer").fill("Dạ còn ạ")
    await page.get_by_test_id("composer").press("Enter")
    await expect(page.get_by_test_id("message").filter(has_text="Dạ còn ạ")).to_have_count(1)
    await page.get_by_test_id("resolve").click()
    await expect(lines.nth(2)).to_have_text(re.compile(r"^Phạm Ngọc Lan đánh dấu xong · "))
    # One time line: each line between the messages at its time.
    order = page.locator("[data-testid=messages] > [data-testid]")
    await expect(order).to_have_text(
        [
            re.compile("^Khách bắt đầu"),
            re.compile("^Shop ơi váy hoa"),
            re.compile("^Phạm Ngọc Lan đã nhận xử lý"),
            re.compile("^Dạ còn ạ"),
            re.compile("^Phạm Ngọc Lan đánh dấu xong"),
        ]
    )

    SCREENSHOTS.mkdir(exist_ok=True)
    await page.screenshot(path=str(SCREENSHOTS / "activity.png"))

    # What a supervisor does elsewhere reaches the open thread by itself.
    boss = await staff("supervisor")
    token, _ = await create_session(boss)
    reopened = await http.post(
        f"/api/conversations/{msg.conversation_id}/status",
        json={"status": "open"},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert reopened.status == 200, await reopened.text()
    await expect(lines.nth(3)).to_have_text(re.compile(r"^Trần Thu Hương mở lại · "))


async def clock_of(page, at: datetime) -> str:
    """The time as the page shows it (the browser's time zone)."""
    return await page.evaluate(
        "(iso) => new Date(iso).toLocaleTimeString('vi-VN', {hour: '2-digit', minute: '2-digit'})", at.isoformat()
    )


async def test_a_message_that_is_an_xss_payload_renders_as_text(server, http, page):
    inbox = await make_inbox()
    agent = await staff("agent", inbox)
    await log_in(page, server, agent)
    payload = '<img src=x onerror="window.__pwned=1"><script>window.__pwned=2</script>"><svg onload=alert(1)>'
    await customer_writes(http, "PSID-XSS", "mid.xss", payload)
    item = conversation_item(page, "<img src=x")
    await expect(item).to_be_visible()
    await item.click()
    text = page.get_by_test_id("message-text").first
    await expect(text).to_have_text(payload)
    assert await text.locator("img, script, svg").count() == 0
    assert await page.evaluate("window.__pwned") is None
    assert await page.locator("[data-testid=conv-list] img").count() == 0


async def test_labels_switch_between_vietnamese_and_english(server, page):
    inbox = await make_inbox()
    agent = await staff("agent", inbox)
    await page.goto(server.url + "/")
    await expect(page.get_by_test_id("login-submit")).to_have_text("Đăng nhập")
    await page.get_by_test_id("lang-switch").click()
    await expect(page.get_by_test_id("login-submit")).to_have_text("Log in")
    await page.get_by_test_id("lang-switch").click()
    await log_in(page, server, agent)
    await expect(page.get_by_test_id("nav-inbox")).to_have_text("Hộp thư")
    await expect(page.get_by_test_id("tab-unassigned")).to_have_text("Chưa giao")
    await page.get_by_test_id("lang-switch").click()
    await expect(page.get_by_test_id("nav-inbox")).to_have_text("Inbox")
    await expect(page.get_by_test_id("tab-unassigned")).to_have_text("Unassigned")
    await expect(page.locator("html")).to_have_attribute("lang", "en")
    await page.reload()  # the choice is remembered in this browser
    await expect(page.get_by_test_id("tab-unassigned")).to_have_text("Unassigned")
    await page.get_by_test_id("lang-switch").click()
    await expect(page.get_by_test_id("tab-unassigned")).to_have_text("Chưa giao")


async def test_after_a_server_restart_the_page_catches_up_by_itself(server, page, settings):
    inbox = await make_inbox()
    agent = await staff("agent", inbox)
    await log_in(page, server, agent)
    await server.stop()
    await expect(page.get_by_test_id("connection")).not_to_have_class("conn conn-online")

    # While the page's server is down, a message arrives through another server process on the same database:
    # its event never reaches this page's socket, so only catching up after the restart can show it.
    other = LiveServer(settings)
    await other.start()
    async with aiohttp.ClientSession(base_url=other.url) as session:
        await customer_writes(session, "PSID-RESTART", "mid.restart", "Shop ơi đơn của em tới đâu rồi ạ?")
    await other.stop()

    await server.start()
    await expect(page.get_by_test_id("connection")).to_have_class("conn conn-online", timeout=20_000)
    await expect(conversation_item(page, "đơn của em tới đâu")).to_be_visible()


async def test_supervisor_sees_the_queue_grow_and_drills_down_to_the_conversation(server, http, page):
    inbox = await make_inbox()
    supervisor = await staff("supervisor")
    await customer_writes(http, "PSID-Q1", "mid.q1", "Cho mình hỏi giá áo khoác dạ")
    await log_in(page, server, supervisor)
    await page.get_by_test_id("nav-dashboard").click()
    queue = page.get_by_test_id("tile-queue")
    await expect(queue.get_by_test_id("value")).to_have_text("1")

    await customer_writes(http, "PSID-Q2", "mid.q2", "Giao hàng chậm quá, em hủy đơn nhé")
    await expect(queue.get_by_test_id("value")).to_have_text("2")
    SCREENSHOTS.mkdir(exist_ok=True)
    await page.screenshot(path=str(SCREENSHOTS / "dashboard.png"), full_page=True)

    await queue.click()
    drill = page.get_by_test_id("drill")
    await expect(drill.get_by_test_id("drill-item")).to_have_count(2)
    conv_id = (await Message.get(external_id="mid.q2")).conversation_id
    await drill.locator(f"a[href='#/inbox/{conv_id}']").click()
    await expect(page.get_by_test_id("message-text").first).to_have_text("Giao hàng chậm quá, em hủy đơn nhé")
    assert inbox.id


async def test_on_a_phone_the_list_and_the_thread_take_turns(server, http, browser):
    inbox = await make_inbox()
    agent = await staff("agent", inbox)
    context = await browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    phone = await context.new_page()
    try:
        msg = await customer_writes(http, "PSID-PHONE", "mid.phone", "Shop ơi váy hoa còn size S không?")
        await log_in(phone, server, agent)
        item = phone.locator(f"[data-testid=conv-item][data-id='{msg.conversation_id}']")
        await item.click()
        await expect(phone.get_by_test_id("message-text").first).to_be_visible()
        await expect(item).to_be_hidden()  # one pane at a time
        await expect(phone.get_by_test_id("composer")).to_be_visible()
        SCREENSHOTS.mkdir(exist_ok=True)
        await phone.screenshot(path=str(SCREENSHOTS / "inbox-phone.png"))
        await phone.get_by_role("button", name="← Quay lại").click()
        await expect(item).to_be_visible()
    finally:
        await context.close()


async def test_slash_shortcut_inserts_a_saved_reply_with_the_customers_name(server, http, page):
    inbox = await make_inbox()
    agent = await staff("agent", inbox)
    await SavedReply.create(inbox=inbox, shortcut="ship", title="Phí ship", text="Dạ {contact.name} ơi, ship 30.000đ ạ")
    msg = await customer_writes(http, "PSID-SHIP", "mid.ship", "Ship về Cần Thơ bao nhiêu vậy shop?")
    await log_in(page, server, agent)
    await page.locator(f"[data-testid=conv-item][data-id='{msg.conversation_id}']").click()
    composer = page.get_by_test_id("composer")
    await composer.fill("/sh")
    await expect(page.get_by_test_id("saved-option")).to_contain_text("/ship")
    await composer.press("Enter")
    contact = await (await Conversation.get(id=msg.conversation_id)).contact
    await expect(composer).to_have_value(f"Dạ {contact.name} ơi, ship 30.000đ ạ")

    # Keyboard: Esc leaves the composer, "n" comes back to it as a private note, "e" (outside it) resolves.
    await composer.press("Escape")
    await page.keyboard.press("n")
    await expect(page.get_by_test_id("mode-note")).to_have_class("tab active")
    await expect(composer).to_be_focused()
    await composer.press("Escape")
    await page.keyboard.press("e")
    await expect(page.get_by_test_id("thread-status")).to_have_text("Đã xong")


async def test_comment_thread_public_reply_and_hide(server, http, page, fake_graph):
    inbox = await make_inbox()
    agent = await staff("agent", inbox)
    post_id, comment_id = f"{PAGE_ID}_555", "555_777"
    fake_graph.comment_authors[comment_id] = "USER-C1"
    body = page_comment(PAGE_ID, post_id, comment_id, "USER-C1", "Giá bao nhiêu vậy shop?", int(time.time()))
    assert (await post_webhook(http, body)).status == 200
    comment = await eventually(lambda: Message.get_or_none(external_id=comment_id))
    await log_in(page, server, agent)
    await page.locator(f"[data-testid=conv-item][data-id='{comment.conversation_id}']").click()
    await expect(page.locator(".thread-title .ch")).to_have_text("Bình luận Facebook")  # as in the list, not Messenger
    actions = page.get_by_test_id("message").filter(has_text="Giá bao nhiêu").get_by_test_id("comment-actions")
    await actions.get_by_role("button", name="Trả lời công khai").click()
    await page.get_by_test_id("composer").fill("Dạ shop inbox bạn rồi ạ")
    await page.get_by_test_id("composer").press("Enter")
    answer = page.get_by_test_id("message").filter(has_text="Dạ shop inbox bạn rồi ạ")
    await expect(answer.get_by_test_id("delivery")).to_have_attribute("data-status", "sent")
    assert fake_graph.comment_replies()[-1] == (comment_id, "Dạ shop inbox bạn rồi ạ")
    await actions.get_by_test_id("comment-hide").click()
    await expect(actions.get_by_test_id("comment-hide")).to_have_text("Hiện bình luận")
    assert fake_graph.hidden[comment_id] is True


async def test_admin_sees_webhook_urls_dead_letters_and_the_audit_log(server, http, page):
    await make_inbox()
    admin = await staff("admin")
    await log_in(page, server, admin)
    await page.get_by_test_id("nav-admin").click()
    await expect(page.get_by_test_id("admin")).to_contain_text(admin.email)
    await page.get_by_test_id("admin-inboxes").click()
    await expect(page.get_by_test_id("webhook-url")).to_have_text(server.url + "/webhooks/facebook")
    await page.get_by_test_id("admin-saved").click()
    await page.get_by_test_id("saved-shortcut").fill("camon")
    await page.get_by_test_id("saved-text").fill("Dạ shop cảm ơn bạn nhiều ạ")
    await page.get_by_test_id("saved-add").click()
    await expect(page.get_by_test_id("admin")).to_contain_text("/camon")
    assert await SavedReply.filter(shortcut="camon").exists()
    for section in ("bots", "hours", "routing", "dead", "audit"):
        await page.get_by_test_id("admin-" + section).click()
        await expect(page.get_by_test_id("admin").locator("h1")).to_be_visible()
    await expect(page.get_by_test_id("admin")).not_to_contain_text("Có lỗi")


async def test_inbox_cards_show_the_public_url_like_the_set_up_box_not_the_browsers_address(server, page):
    """Behind a proxy (here: the admin reaches 127.0.0.1, the platforms https://chat.shop.vn) the URL an admin copies
    from an inbox's card is the one HOPTHU_PUBLIC_URL names, the same as the set-up box showed."""
    await server.stop()
    server.settings = dataclasses.replace(server.settings, public_url="https://chat.shop.vn")
    await server.start()
    await make_inbox()
    chat = await webchat.create_inbox("Website Mai Anh", ["https://shop.example"])
    admin = await staff("admin")
    await log_in(page, server, admin)
    await page.goto(server.url + "/#/admin/inboxes")
    cards = page.get_by_test_id("inbox-list").get_by_test_id("inbox-card")
    await expect(cards.get_by_test_id("webhook-url")).to_have_text(["https://chat.shop.vn/webhooks/facebook"])
    snippet = f'<script src="https://chat.shop.vn/widget/{chat.external_id}.js" async></script>'
    await expect(cards.get_by_test_id("widget-snippet")).to_have_text([snippet])

    form = page.get_by_test_id("new-inbox")
    await form.get_by_test_id("new-inbox-channel").select_option("zalo")
    await form.locator("input[name=name]").fill("Zalo Mai Anh")
    for field in ("oa_id", "app_id", "oa_secret", "access_token", "refresh_token", "app_secret"):
        await form.locator(f"input[name={field}]").fill(field + "-4318")
    await page.get_by_test_id("add-inbox").click()
    await expect(page.get_by_test_id("setup-webhook-url")).to_have_text("https://chat.shop.vn/webhooks/zalo")
    added = cards.filter(has_text="Zalo Mai Anh").get_by_test_id("webhook-url")
    await expect(added).to_have_text("https://chat.shop.vn/webhooks/zalo")
    await page.reload()
    await expect(added).to_have_text("https://chat.shop.vn/webhooks/zalo")


async def test_window_warnings_and_a_refused_reply_shows_why(server, http, page):
    inbox = await make_inbox()
    agent = await staff("agent", inbox)
    hour_ms = 3600 * 1000
    closing = await post_webhook(
        http, messenger_text(PAGE_ID, "PSID-W1", "mid.w1", "Áo này còn không ạ?", now_ms() - 23 * hour_ms)
    )
    closed = await post_webhook(
        http, messenger_text(PAGE_ID, "PSID-W2", "mid.w2", "Shop ơi", now_ms() - 8 * 24 * hour_ms)
    )
    assert closing.status == closed.status == 200
    first = await eventually(lambda: Message.get_or_none(external_id="mid.w1"))
    second = await eventually(lambda: Message.get_or_none(external_id="mid.w2"))
    await log_in(page, server, agent)
    await page.goto(f"{server.url}/#/inbox/{first.conversation_id}")
    await expect(page.get_by_test_id("window-closing")).to_contain_text("HUMAN_AGENT")
    await page.goto(f"{server.url}/#/inbox/{second.conversation_id}")
    await expect(page.get_by_test_id("window-closed")).to_be_visible()
    await page.get_by_test_id("composer").fill("Dạ shop chào bạn")
    await page.get_by_test_id("send").click()
    refused = page.get_by_test_id("message").filter(has_text="Dạ shop chào bạn")
    await expect(refused.get_by_test_id("delivery")).to_have_attribute("data-status", "failed")
    await expect(refused.get_by_test_id("failure")).to_contain_text("7 ngày")


async def test_supervisor_drills_from_an_agents_first_response_to_the_conversation(server, http, page):
    inbox = await make_inbox()
    supervisor = await staff("supervisor")
    agent = await staff("agent", inbox)
    token, _ = await create_session(agent)
    msg = await customer_writes(http, "PSID-FR", "mid.fr", "Cho em hỏi áo len cổ lọ còn màu đen không ạ?")
    # Metrics belong to the agent holding the conversation (agents/metrics.py): the agent takes it, then answers.
    taken = await http.post(
        f"/api/conversations/{msg.conversation_id}/assign",
        json={"agent_id": agent.id},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert taken.status == 200, await taken.text()
    reply = await http.post(
        f"/api/conversations/{msg.conversation_id}/messages",
        json={"text": "Dạ còn màu đen ạ"},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert reply.status == 201, await reply.text()
    # Another customer answered from the page's phone app: a reply outside hopthu, counted to no agent
    other = await customer_writes(http, "PSID-OUT", "mid.out", "Shop ơi ship Đà Nẵng mấy ngày?")
    echo = await post_webhook(http, messenger_echo(PAGE_ID, "PSID-OUT", "mid.out.echo", "Dạ 2-3 ngày ạ", now_ms()))
    assert echo.status == 200
    await eventually(lambda: Message.get_or_none(external_id="mid.out.echo"))
    openapi = await (await http.get("/api/openapi.json")).json()
    if "/api/reports/agents/conversations" not in openapi["paths"]:
        pytest.skip("this server has no agent reports")

    await log_in(page, server, supervisor)
    await page.get_by_test_id("nav-dashboard").click()
    outside = page.get_by_test_id("agents-table").locator("tr").filter(has_text="Ngoài hopthu")
    await expect(outside).to_contain_text("Ngoài hopthu (trả lời từ ứng dụng khác)")
    assert other.conversation_id != msg.conversation_id
    row = page.get_by_test_id("agents-table").locator("tr").filter(has_text=agent.name)
    await expect(row.get_by_test_id("metric-conversations_handled")).to_have_text("1")
    await row.get_by_test_id("metric-first_response_time").click()
    drill = page.get_by_test_id("drill")
    await drill.locator(f"a[href='#/inbox/{msg.conversation_id}']").click()
    await expect(page.get_by_test_id("message-text").last).to_have_text("Dạ còn màu đen ạ")


async def test_a_colleague_typing_shows_in_the_thread(server, http, page):
    inbox = await make_inbox()
    agent = await staff("agent", inbox)
    colleague = await staff("agent", inbox, email="khoa@shop.vn")
    token, _ = await create_session(colleague)
    msg = await customer_writes(http, "PSID-TYPE", "mid.type", "Shop ơi cho mình đổi size")
    await log_in(page, server, agent)
    await page.locator(f"[data-testid=conv-item][data-id='{msg.conversation_id}']").click()
    await expect(page.get_by_test_id("message-text").first).to_be_visible()
    async with http.ws_connect(f"/ws?token={token}") as ws:
        await ws.send_json({"type": "typing", "data": {"conversation_id": msg.conversation_id, "on": True}})
        await expect(page.get_by_test_id("typing")).to_have_text(f"{colleague.name} đang soạn tin…")
        await ws.send_json({"type": "typing", "data": {"conversation_id": msg.conversation_id, "on": False}})
        await expect(page.get_by_test_id("typing")).to_have_text("")


async def test_a_late_sent_frame_never_moves_a_delivered_reply_back(server, http, page):
    """Frames about one reply come from different writers: the outbox announces "sent" after its send, the processor
    "delivered" on the receipt. When the outbox's frame arrives last, the thread keeps "delivered"."""
    inbox = await make_inbox()
    agent = await staff("agent", inbox)
    first = await customer_writes(http, "PSID-LATE", "mid.late.1", "Shop ơi áo còn không")
    reply = await Message.create(
        conversation_id=first.conversation_id,
        inbox_id=inbox.id,
        direction="out",
        sender_type="agent",
        sender_user_id=agent.id,
        origin="hopthu",
        text="Dạ còn ạ",
        delivery_status="sent",
        external_id="m_late",
        created_at=first.created_at,
    )
    await log_in(page, server, agent)
    await page.locator(f"[data-testid=conv-item][data-id='{first.conversation_id}']").click()
    badge = page.get_by_test_id("message").filter(has_text="Dạ còn ạ").get_by_test_id("delivery")
    await expect(badge).to_have_attribute("data-status", "sent")

    bus = server.runner.app[BUS]
    stale = message_json(reply)
    reply.delivery_status = "delivered"
    await reply.save(update_fields=["delivery_status"])
    await bus.publish(Event("message.updated", message_json(reply), inbox_id=inbox.id))
    await expect(badge).to_have_attribute("data-status", "delivered")
    await bus.publish(Event("message.updated", stale, inbox_id=inbox.id))
    # A message written after the stale frame shows once the page has read that frame too.
    await customer_writes(http, "PSID-LATE", "mid.late.2", "Vậy chị lấy size M nhé")
    await expect(page.get_by_test_id("message-text").filter(has_text="size M")).to_be_visible()
    await expect(badge).to_have_attribute("data-status", "delivered")

    # The customer loves the reply (webhook field `message_reactions`): the heart shows under it.
    loved = await post_webhook(http, messenger_reaction(PAGE_ID, "PSID-LATE", "m_late", now_ms()))
    assert loved.status == 200
    reply_view = page.get_by_test_id("message").filter(has_text="Dạ còn ạ")
    await expect(reply_view.get_by_test_id("reaction")).to_have_text("❤️")


async def test_a_demoted_supervisors_page_drops_the_supervisor_views_by_itself(server, http, page):
    """A supervisor demoted to agent while the inbox is open: the server ends the socket (it had a supervisor's
    rights) and the page starts again from the session, now an agent's: no dashboard, no admin."""
    await make_inbox()
    supervisor, admin = await staff("supervisor"), await staff("admin")
    await log_in(page, server, supervisor)
    await expect(page.get_by_test_id("nav-dashboard")).to_be_visible()
    token, _ = await create_session(admin)
    response = await http.patch(f"/api/users/{supervisor.id}", json={"role": "agent"},
                                headers={"Authorization": f"Bearer {token}"})  # fmt: skip
    assert response.status == 200, await response.text()
    await expect(page.get_by_test_id("nav-dashboard")).to_have_count(0, timeout=10_000)
    await expect(page.get_by_test_id("connection")).to_have_attribute("class", "conn conn-online")


async def test_a_conversation_moved_to_another_team_leaves_the_old_teams_page(server, http, page):
    """An agent who reads a conversation only through its team has it open when a supervisor moves it to another
    team: it leaves the list and the thread closes, without a reload."""
    await make_inbox()
    old, new = await Team.create(name="Đội đổi trả"), await Team.create(name="Đội VIP")
    agent, supervisor = await staff("agent"), await staff("supervisor")
    await TeamMember.create(team=old, user=agent)
    msg = await customer_writes(http, "PSID-MOVE", "mid.move", "Shop ơi đổi size giúp em")
    await Conversation.filter(id=msg.conversation_id).update(team_id=old.id)
    await log_in(page, server, agent)
    item = page.locator(f"[data-testid=conv-item][data-id='{msg.conversation_id}']")
    await item.click()
    await expect(page.get_by_test_id("message-text").first).to_be_visible()
    token, _ = await create_session(supervisor)
    response = await http.post(f"/api/conversations/{msg.conversation_id}/assign", json={"team_id": new.id},
                               headers={"Authorization": f"Bearer {token}"})  # fmt: skip
    assert response.status == 200, await response.text()
    await expect(item).to_have_count(0)
    await expect(page.get_by_test_id("message-text")).to_have_count(0)
    assert not page.url.endswith(f"/{msg.conversation_id}")


async def test_telegram_photo_location_and_contact_card_show_what_they_are(server, page):
    """Stored attachments name their `kind`: a photo shows as a picture, a place with its coordinates, a shared
    contact card with its phone number, a voice note as a player — not a bare link or "📎 file"."""
    async with running_fake_bot_api() as bot_api:
        bot_api.add_bot(TELEGRAM_TOKEN)
        bot_api.files["AgACAgIAAxkBAAMElarge"] = b"\x89PNG\r\n\x1a\n" + b"\x00" * 40
        bot_api.files["AwACAgIAAxkBAAMGvoice"] = b"OggS\x00\x02" + b"\x00" * 40
        await server.stop()  # the same server, now reaching the fake Bot API
        server.settings = dataclasses.replace(server.settings, telegram_api_url=bot_api.base_url)
        await server.start()
        inbox = await Inbox.create(
            name="Shop — Telegram", channel="telegram", external_id=TELEGRAM_TOKEN.split(":")[0],
            credentials={"bot_token": TELEGRAM_TOKEN, "secret_token": "bi-mat", "username": "shop_bot"},
        )  # fmt: skip
        agent = await staff("agent", inbox)
        u = Updates(first_name="Hà", last_name="Lê")
        async with aiohttp.ClientSession(base_url=server.url) as http:
            for update in (u.photo(), u.location(), u.contact("84912345678", own=False), u.voice()):
                response = await http.post(
                    f"/webhooks/telegram/{inbox.id}", json=update, headers={"X-Telegram-Bot-Api-Secret-Token": "bi-mat"}
                )
                assert response.status == 200
        conv = await eventually(lambda: Conversation.get_or_none(inbox_id=inbox.id))

        async def all_four() -> bool:
            return await Message.filter(conversation_id=conv.id).count() == 4

        await eventually(all_four)
        await log_in(page, server, agent)
        await page.locator(f"[data-testid=conv-item][data-id='{conv.id}']").click()
        messages = page.get_by_test_id("message")
        await expect(messages).to_have_count(4)
        await expect(messages.nth(0).locator("img.attachment-img")).to_have_count(1)
        await expect(messages.nth(1)).to_contain_text("16.0544")
        await expect(messages.nth(2)).to_contain_text("84912345678")
        await expect(messages.nth(3).locator("audio[controls]")).to_have_count(1)  # a voice note plays in place
        # The list names what came, in the reader's language, not the server's "[audio]"
        preview = page.locator(f"[data-testid=conv-item][data-id='{conv.id}'] [data-testid=conv-preview]")
        await expect(preview).to_have_text("🎤 Âm thanh")
        await page.get_by_test_id("lang-switch").click()
        await expect(preview).to_have_text("🎤 Audio")


async def test_the_customer_panel_names_the_segment_and_order_status_in_the_readers_language(server, http, page):
    """contacts/rfm.py and the orders API speak English ("Champions", "completed"); an agent reads Vietnamese."""
    inbox = await make_inbox()
    agent = await staff("agent", inbox)
    msg = await customer_writes(http, "psid-rfm", "m_rfm_1", "Shop ơi mình muốn đặt thêm")
    conv = await Conversation.get(id=msg.conversation_id)
    # Scores are quintiles of the shop's customers: this one buys the most, the most often and the latest.
    # (contact, days since the last order, orders, revenue in VND)
    plan = [(conv.contact_id, 2, 10, 20_000_000)]
    for n, (days, count, revenue) in enumerate(
        [(10, 6, 5_000_000), (40, 3, 2_000_000), (100, 2, 800_000), (300, 1, 300_000)]
    ):
        plan.append(((await Contact.create(name=f"Khách {n}")).id, days, count, revenue))
    for contact_id, days, count, revenue in plan:
        for i in range(count):
            ordered_at = datetime.now(UTC) - timedelta(days=days + 30 * i)
            await Order.create(contact_id=contact_id, status="completed", total=revenue // count, ordered_at=ordered_at)
    await rfm.refresh()
    assert (await ContactScore.get(contact_id=conv.contact_id)).segment == "Champions"
    await log_in(page, server, agent)
    await page.locator(f"[data-testid=conv-item][data-id='{conv.id}']").click()
    panel = page.locator(".kv", has_text="Phân khúc")
    await expect(panel).to_contain_text("Khách tốt nhất")
    await expect(page.get_by_test_id("orders").locator("li").first).to_contain_text("Hoàn tất")
    await page.get_by_test_id("lang-switch").click()
    await expect(page.get_by_test_id("orders").locator("li").first).to_contain_text("Completed")


async def test_an_admin_adds_an_agent_from_the_staff_screen_and_moves_them_between_inboxes(server, http, page, browser):
    """No shell needed to staff the shop: the new agent logs in and sees the inbox ticked for them, and only it."""
    shop = await make_inbox()
    shoes = await Inbox.create(name="Shop Giày", channel="facebook", external_id="106009999999999",
                               credentials={"page_token": "t", "app_secret": "s", "verify_token": "v"})  # fmt: skip
    await customer_writes(http, "psid-staff", "m_staff_ui", "Áo sơ mi còn size L không?")
    admin = await staff("admin")
    await log_in(page, server, admin)
    await page.goto(server.url + "/#/admin/users")
    form = page.get_by_test_id("new-staff")
    await form.locator("input[name=email]").fill("lan@shop.vn")
    await form.locator("input[name=name]").fill("Phạm Ngọc Lan")
    await form.locator("input[name=new-password]").fill("mật-khẩu-dài-2026")
    await form.get_by_label("Shop Thời Trang").check()
    await page.get_by_test_id("add-staff").click()
    row = page.locator("tr", has_text="lan@shop.vn")
    await expect(row).to_contain_text("Phạm Ngọc Lan")
    lan = await User.get(email="lan@shop.vn")
    assert sorted(await InboxMember.filter(user_id=lan.id).values_list("inbox_id", flat=True)) == [shop.id]

    context = await browser.new_context(viewport={"width": 1366, "height": 768}, locale="vi-VN")
    tab = await context.new_page()
    await tab.goto(server.url + "/")
    await tab.get_by_label("E-mail").fill("lan@shop.vn")
    await tab.locator("input[name=password]").fill("mật-khẩu-dài-2026")
    await tab.get_by_test_id("login-submit").click()
    await expect(tab.get_by_test_id("conv-item")).to_have_count(1)
    await expect(tab.get_by_test_id("conv-item")).to_contain_text("Áo sơ mi còn size L không?")

    await row.get_by_label("Shop Thời Trang").uncheck()  # moved to the shoe shop: her page reloads with its chats
    await row.get_by_label("Shop Giày").check()
    await eventually(lambda: InboxMember.exists(user_id=lan.id, inbox_id=shoes.id))
    assert not await InboxMember.exists(user_id=lan.id, inbox_id=shop.id)
    await expect(tab.get_by_test_id("conv-item")).to_have_count(0)

    # She forgot her password: the admin sets a new one, and her open page is logged out
    await row.get_by_test_id("user-password").fill("mật-khẩu-mới-2027")
    await row.get_by_test_id("user-password-set").click()
    await expect(tab.get_by_test_id("login-submit")).to_be_visible()
    login = await http.post("/api/auth/login", json={"email": "lan@shop.vn", "password": "mật-khẩu-mới-2027"})
    assert login.status == 200
    await context.close()


async def test_a_colleague_mentioned_in_a_note_is_told_live_and_opens_it_from_the_list(server, http, page, browser):
    inbox = await make_inbox()
    author = await staff("agent", inbox)
    colleague = await staff("agent", inbox, email="khoa@shop.vn")
    colleague.name = "Lê Minh Khoa"
    await colleague.save(update_fields=["name"])
    msg = await customer_writes(http, "PSID-MENTION", "mid.mention", "Shop ơi đơn của mình giao chưa?")
    await log_in(page, server, colleague)
    await expect(page.get_by_test_id("mentions-badge")).to_be_hidden()

    # The author, in another browser, writes a note and picks the colleague after "@kho" (no diacritics typed).
    context = await browser.new_context(viewport={"width": 1366, "height": 768}, locale="vi-VN")
    author_page = await context.new_page()
    await log_in(author_page, server, author)
    await author_page.locator(f"[data-testid=conv-item][data-id='{msg.conversation_id}']").click()
    await author_page.get_by_test_id("mode-note").click()
    composer = author_page.get_by_test_id("composer")
    await composer.fill("Nhờ @kho")
    await expect(author_page.get_by_test_id("mention-option")).to_have_text(["@Lê Minh Khoa Nhân viên"])
    await composer.press("Enter")
    await expect(composer).to_have_value("Nhờ @Lê Minh Khoa ")
    await composer.press_sequentially("gọi lại khách giúp em")
    await composer.press("Enter")
    sent = author_page.get_by_test_id("message").filter(has_text="gọi lại khách giúp em")
    await expect(sent.get_by_test_id("mention")).to_have_text("@Lê Minh Khoa")
    await context.close()

    # The colleague's open page: the badge and the list item come without a reload; the item opens the chat.
    badge = page.get_by_test_id("mentions-badge")
    await expect(badge).to_have_text("1")
    await page.get_by_test_id("nav-mentions").click()
    item = page.get_by_test_id("mention-item")
    await expect(item).to_contain_text("Phạm Ngọc Lan nhắc bạn")
    await expect(item).to_contain_text("Nhờ @Lê Minh Khoa gọi lại khách giúp em")
    await item.click()
    await expect(page).to_have_url(re.compile(f"#/inbox/{msg.conversation_id}$"))
    note = page.get_by_test_id("message").filter(has_text="gọi lại khách giúp em")
    await expect(note.get_by_test_id("mention")).to_have_text("@Lê Minh Khoa")
    await expect(badge).to_be_hidden()
    mention = await Mention.get(user_id=colleague.id)
    assert mention.read_at is not None and mention.conversation_id == msg.conversation_id


async def test_mark_all_read_clears_the_mentions_badge_including_mentions_not_yet_loaded(server, http, page):
    """Two unread mentions, the older one on the list's second page: "Xem thêm" shows it, "Đánh dấu đã đọc tất cả"
    clears both and the badge without a reload."""
    inbox = await make_inbox()
    author = await staff("agent", inbox)
    colleague = await staff("agent", inbox, email="khoa@shop.vn")
    token, _ = await create_session(author)
    msg = await customer_writes(http, "PSID-MENTIONS", "mid.mentions", "Shop ơi đơn của mình giao chưa?")
    for n in range(21):  # newest first, 20 a page: the first two notes are the older ones
        body = {"text": f"Nhờ xem đơn số {n}", "private": True, "mention_ids": [colleague.id]}
        headers = {"Authorization": f"Bearer {token}"}
        sent = await http.post(f"/api/conversations/{msg.conversation_id}/messages", json=body, headers=headers)
        assert sent.status == 201, await sent.text()
    unread = await Mention.filter(user_id=colleague.id).order_by("id").limit(2).values_list("id", flat=True)
    await Mention.filter(user_id=colleague.id).exclude(id__in=unread).update(read_at=datetime.now(UTC))
    await log_in(page, server, colleague)

    badge = page.get_by_test_id("mentions-badge")
    await expect(badge).to_have_text("2")
    await page.get_by_test_id("nav-mentions").click()
    items = page.get_by_test_id("mention-item")
    await expect(items).to_have_count(20)
    await page.get_by_test_id("mentions-more").click()
    await expect(items).to_have_count(21)
    await expect(page.get_by_test_id("mentions-more")).to_be_hidden()
    await expect(page.locator("[data-testid=mention-item].unread")).to_have_count(2)
    await page.get_by_test_id("mentions-read-all").click()
    await expect(badge).to_be_hidden()
    await expect(page.locator("[data-testid=mention-item].unread")).to_have_count(0)
    await expect(page.get_by_test_id("mentions-read-all")).to_be_hidden()
    await expect(items).to_have_count(21)  # the `mention.read` frame's reload keeps the page loaded
    assert not await Mention.filter(user_id=colleague.id, read_at__isnull=True).exists()


async def test_a_customer_without_a_name_is_told_apart_by_channel_and_number(server, http, page):
    """A website visitor who skipped the form, or a customer whose profile the platform did not give: each reads as
    "Khách Messenger #12" in the list, the thread and the customer panel, not a row of "—"."""
    inbox = await make_inbox()
    agent = await staff("agent", inbox)
    first = await customer_writes(http, "PSID-UI-NONAME-1", "mid.ui.noname.1", "Shop ơi cho mình hỏi giá")
    second = await customer_writes(http, "PSID-UI-NONAME-2", "mid.ui.noname.2", "Còn hàng không shop")
    convs = [await Conversation.get(id=m.conversation_id) for m in (first, second)]
    for conv in convs:  # the profile fetch may have named them; the platform gave nothing in this story
        await eventually(lambda conv=conv: Contact.filter(id=conv.contact_id, name__not="").exists())
        await Contact.filter(id=conv.contact_id).update(name="")
    await log_in(page, server, agent)
    for conv in convs:
        item = page.locator(f"[data-testid=conv-item][data-id='{conv.id}']")
        await expect(item.get_by_test_id("conv-name")).to_have_text(f"Khách Messenger #{conv.contact_id}")
    await page.locator(f"[data-testid=conv-item][data-id='{convs[1].id}']").click()
    await expect(page.get_by_test_id("thread-name")).to_have_text(f"Khách Messenger #{convs[1].contact_id}")
    await expect(page.get_by_test_id("customer-name")).to_have_text(f"Khách Messenger #{convs[1].contact_id}")


async def test_an_admin_adds_the_website_chat_from_the_inboxes_screen_and_gets_the_snippet(server, page):
    """No shell needed to connect a channel: the form creates the inbox, shows the snippet to paste and the
    identity secret once, and the inbox joins the list without a reload."""
    await make_inbox()
    admin = await staff("admin")
    await log_in(page, server, admin)
    await page.goto(server.url + "/#/admin/inboxes")
    form = page.get_by_test_id("new-inbox")
    await form.get_by_test_id("new-inbox-channel").select_option("webchat")
    await form.locator("input[name=allowed_origins]").fill("https://shop.example")
    await page.get_by_test_id("add-inbox").click()  # no name yet
    await expect(page.get_by_test_id("new-inbox-error")).to_contain_text("Tên hộp thư cần từ 1 đến 200 ký tự.")
    await form.locator("input[name=name]").fill("Website Mai Anh")
    await page.get_by_test_id("add-inbox").click()
    inbox = await eventually(lambda: Inbox.get_or_none(channel="webchat"))
    snippet = f'<script src="{server.url}/widget/{inbox.external_id}.js" async></script>'
    await expect(page.get_by_test_id("setup-snippet")).to_have_text(snippet)
    await expect(page.get_by_test_id("setup-identity-secret")).to_have_text(inbox.credentials["identity_secret"])
    cards = page.get_by_test_id("inbox-list").get_by_test_id("inbox-card")
    await expect(cards).to_have_count(2)
    await expect(cards.filter(has_text="Website Mai Anh").get_by_test_id("widget-snippet")).to_have_text(snippet)
    assert inbox.settings["allowed_origins"] == ["https://shop.example"]

    # A second page with the same Page id is refused inline, in the reader's language.
    await form.get_by_test_id("new-inbox-channel").select_option("facebook")
    await form.locator("input[name=name]").fill("Trùng trang")
    for field, value in {"page_id": PAGE_ID, "page_token": "t", "app_secret": "s", "verify_token": "v"}.items():
        await form.locator(f"input[name={field}]").fill(value)
    assert await form.locator("input[name=page_token]").get_attribute("type") == "password"
    await page.get_by_test_id("add-inbox").click()
    await expect(page.get_by_test_id("new-inbox-error")).to_contain_text("Tài khoản này đã có hộp thư")
    await expect(cards).to_have_count(2)
