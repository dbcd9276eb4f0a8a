"""Which middlewares a request goes through is decided by the route it matched: an agent API route goes through
every one (masking customers' details included), a webhook skips the agent-only ones, a socket skips them all —
and nothing a client sends changes that."""

from __future__ import annotations

from aiohttp import web

from inbox.http import for_agents, from_platforms, lets_sockets_through, long_lived


def recording(name: str, seen: list[tuple[str, str]]):
    @web.middleware
    async def middleware(request: web.Request, handler):
        seen.append((name, request.path))
        return await handler(request)

    return middleware


async def test_routes_choose_their_middlewares_and_clients_cannot(aiohttp_client) -> None:
    seen: list[tuple[str, str]] = []

    async def api(request: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    @from_platforms
    async def webhook(request: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    @long_lived
    async def socket(request: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    app = web.Application(
        middlewares=[lets_sockets_through(recording("errors", seen)), for_agents(recording("masking", seen))]
    )
    app.router.add_get("/api/me", api)
    app.router.add_post("/webhooks/facebook", webhook)
    app.router.add_get("/ws", socket)
    client = await aiohttp_client(app)

    for method, path in (("GET", "/api/me"), ("POST", "/webhooks/facebook"), ("GET", "/ws")):
        # Headers that look like a socket upgrade or a platform's signature skip nothing on their own.
        headers = {"Upgrade": "websocket", "Connection": "Upgrade", "X-Hub-Signature-256": "sha256=00"}
        response = await client.request(method, path, headers=headers)
        assert response.status == 200
    response = await client.get("/no-such-page")
    assert response.status == 404

    assert seen == [
        ("errors", "/api/me"),
        ("masking", "/api/me"),
        ("errors", "/webhooks/facebook"),
        ("errors", "/no-such-page"),
        ("masking", "/no-such-page"),
    ]
