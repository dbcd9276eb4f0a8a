"""The live-chat widget in a real browser (Playwright driving Debian's Chromium; never `playwright install`).

A shop on its own origin embeds the widget with its one-line snippet; a visitor writes in Vietnamese, an agent
answers through the agent API, and the answer shows in the widget; a reload keeps the history; markup is shown as
text and never runs; a page on an origin the inbox does not allow cannot open the socket.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from inbox.models import Inbox
from inbox.webchat import create_inbox, shop_page
from tests.conftest import eventually, quick_user

CHROMIUM = "/usr/bin/chromium"
playwright_api = pytest.importorskip("playwright.async_api")
pytestmark = pytest.mark.skipif(
    not os.path.exists(CHROMIUM), reason="needs Debian's chromium (apt-get install chromium)"
)
WAIT_MS = 15_000  # generous: the CI machine may be slow; nothing here measures speed

EVIL_PAGE = """<!doctype html><html><body><script>
window.socketResult = new Promise(function (resolve) {
  var ws = new WebSocket(%r);
  ws.onopen = function () { resolve("open"); };
  ws.onclose = function () { resolve("refused"); };
});
</script></body></html>"""


@asynccontextmanager
async def serve(html: str) -> AsyncIterator[str]:
    """A separate web server (its own origin) serving one page."""

    async def page(request: web.Request) -> web.Response:
        return web.Response(text=html, content_type="text/html")

    app = web.Application()
    app.router.add_get("/", page)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


@pytest.fixture
async def browser() -> AsyncIterator[object]:
    async with playwright_api.async_playwright() as p:
        chromium = await p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            yield chromium
        finally:
            await chromium.close()


async def webchat_conversation(client: TestClient, headers: dict[str, str]) -> dict:
    async def find() -> dict | None:
        items = (await (await client.get("/api/conversations?channel=webchat", headers=headers)).json())["items"]
        return items[0] if items else None

    return await eventually(find, timeout=WAIT_MS / 1000)


async def test_visitor_and_agent_talk_through_the_widget(client: TestClient, browser) -> None:
    server = str(client.make_url("")).rstrip("/")
    expect = playwright_api.expect
    # The shop's port is only known once it serves, so its page is rendered per request from the inbox.
    state: dict[str, Inbox] = {}

    async def shop(request: web.Request) -> web.Response:
        return web.Response(
            text=shop_page(f"{server}/widget/{state['inbox'].external_id}.js"), content_type="text/html"
        )

    shop_app = web.Application()
    shop_app.router.add_get("/", shop)
    runner = web.AppRunner(shop_app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    shop_url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    try:
        inbox = state["inbox"] = await create_inbox("Shop Mai Anh — website", [shop_url])
        agent = await quick_user("agent", inboxes=[inbox])
        page = await (await browser.new_context(locale="vi-VN")).new_page()
        dialogs: list[str] = []
        page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
        await page.goto(shop_url + "/")

        await page.locator(".launcher").click()  # Playwright's CSS locators reach into the open shadow root
        await expect(page.locator(".status")).to_have_text("Thường trả lời trong vài phút", timeout=WAIT_MS)
        question = "Chào shop, váy hoa nhí còn size S không ạ? Mình ở Đà Nẵng"
        await page.locator(".composer textarea").fill(question)
        await page.locator(".composer textarea").press("Enter")
        await expect(page.locator(".msg.me .text").filter(has_text=question)).to_be_visible(timeout=WAIT_MS)

        conv = await webchat_conversation(client, agent.headers)
        url = f"/api/conversations/{conv['id']}/messages"

        async def seen_by_agent() -> bool:
            items = (await (await client.get(url, headers=agent.headers)).json())["items"]
            return any(m["text"] == question for m in items)

        await eventually(seen_by_agent, timeout=WAIT_MS / 1000)
        answer = "Dạ váy hoa nhí size S vẫn còn ạ, ship Đà Nẵng 2–3 ngày ạ."
        assert (await client.post(url, json={"text": answer}, headers=agent.headers)).status == 201
        await expect(page.locator(".msg.them .text").filter(has_text=answer)).to_be_visible(timeout=WAIT_MS)

        await page.reload()
        if await page.locator(".panel").is_hidden():
            await page.locator(".launcher").click()
        await expect(page.locator(".msg.me .text").filter(has_text=question)).to_be_visible(timeout=WAIT_MS)
        await expect(page.locator(".msg.them .text").filter(has_text=answer)).to_be_visible(timeout=WAIT_MS)

        markup = "<img src=x onerror=alert(1)>"
        await page.locator(".composer textarea").fill(markup)
        await page.locator(".composer textarea").press("Enter")

        async def stored() -> bool:
            items = (await (await client.get(url, headers=agent.headers)).json())["items"]
            return any(m["text"] == markup for m in items)

        await eventually(stored, timeout=WAIT_MS / 1000)
        hostile = "<b>đậm</b><script>window.pwned = 1</script><img src=y onerror='window.pwned = 2'>"
        await client.post(url, json={"text": hostile}, headers=agent.headers)
        await expect(page.locator(".msg.them .text").filter(has_text=hostile)).to_be_visible(timeout=WAIT_MS)
        await expect(page.locator(".msg.me .text").filter(has_text=markup)).to_have_text(markup)
        images = await page.evaluate(
            "() => document.querySelector('[data-hopthu]').shadowRoot.querySelectorAll('.msg img').length"
        )
        assert images == 0  # shown as text: no element was made from it
        assert await page.evaluate("() => window.pwned") is None
        assert dialogs == []

        # The shop's own rough CSS does not reach the widget (Shadow DOM).
        send_colour = await page.locator(".send").evaluate("b => getComputedStyle(b).backgroundColor")
        assert send_colour == "rgb(11, 107, 203)"
    finally:
        await runner.cleanup()


async def test_socket_refused_from_an_origin_not_allowed(client: TestClient, browser) -> None:
    inbox = await create_inbox("Shop Mai Anh — website", ["https://shop.example"])
    socket_url = str(client.make_url(f"/widget/{inbox.external_id}/ws")).replace("http://", "ws://")
    async with serve(EVIL_PAGE % socket_url) as evil:
        page = await browser.new_page()
        await page.goto(evil + "/")
        assert await page.evaluate("() => window.socketResult") == "refused"
    async with serve(shop_page(str(client.make_url(f"/widget/{inbox.external_id}.js")))) as other_shop:
        page = await browser.new_page()
        await page.goto(other_shop + "/")
        await page.locator(".launcher").click()
        await page.wait_for_timeout(1000)  # give the widget time to try; it must still be reconnecting
        assert await page.locator(".status").text_content() == "Đang kết nối lại…"
