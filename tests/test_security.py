"""Security: headers and CSP, WebSocket origins, login limits and lock-out, "log out everywhere", sessions revoked by a
password change, secrets kept out of logs, `/metrics`."""

from __future__ import annotations

import dataclasses
import io
import json
import logging
import re
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from agents.login_limits import LoginLimiter
from agents.models import AuditEntry, AuthSession, User
from inbox import logs, security
from inbox.api.auth_routes import LOGIN_LIMITER
from inbox.app import create_app
from inbox.config import Settings
from inbox.models import Inbox
from tests.conftest import PAGE_TOKEN, PASSWORD, make_user, quick_user, send_text
from tests.test_realtime import Socket, connected

# ---------------------------------------------------------------------------------------------- headers


async def test_api_responses_carry_the_security_headers(client: TestClient, inbox: Inbox) -> None:
    admin = await quick_user("admin")
    responses = [
        await client.get("/api/me", headers=admin.headers),
        await client.get("/api/me"),  # 401 raised as an exception
        await client.get("/api/no-such-route", headers=admin.headers),  # aiohttp's own 404
        await client.get("/healthz"),
    ]
    for response in responses:
        headers = response.headers
        assert headers["X-Content-Type-Options"] == "nosniff", response.url
        assert headers["X-Frame-Options"] == "DENY"
        assert headers["Referrer-Policy"] == "no-referrer"
        assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]
        assert "default-src 'none'" in headers["Content-Security-Policy"]  # JSON: nothing may run in it
    for response in responses[:3]:
        assert response.headers["Cache-Control"] == "no-store"  # personal data never cached


async def test_html_pages_get_a_strict_csp(client: TestClient) -> None:
    response = await client.get("/")
    if response.status == 404:
        pytest.skip("no web app page served")
    csp = response.headers["Content-Security-Policy"]
    directives = dict(d.strip().split(" ", 1) for d in csp.split(";") if " " in d.strip())
    assert directives["script-src"] == "'self'"
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert directives["object-src"] == "'none'" and directives["frame-ancestors"] == "'none'"


async def test_active_content_from_the_api_is_only_ever_a_download(aiohttp_client: Any) -> None:
    """An SVG or HTML "attachment" served from the API can never run as this origin's page (stored XSS)."""
    svg = '<svg xmlns="http://www.w3.org/2000/svg"><script>alert(document.cookie)</script></svg>'

    async def attachment(request: web.Request) -> web.Response:
        kind = request.match_info["kind"]
        content_type = {"svg": "image/svg+xml", "html": "text/html", "png": "image/png"}[kind]
        return web.Response(text=svg, content_type=content_type, headers={"Content-Disposition": "inline"})

    app = web.Application()
    app.router.add_get("/api/files/{kind}", attachment)
    security.install(app, _settings())
    client = await aiohttp_client(app)
    for kind in ("svg", "html"):
        response = await client.get(f"/api/files/{kind}")
        assert response.headers["Content-Disposition"].startswith("attachment"), kind
        assert "sandbox" in response.headers["Content-Security-Policy"]
        assert response.headers["X-Content-Type-Options"] == "nosniff"
    image = await client.get("/api/files/png")
    assert image.headers["Content-Disposition"] == "inline"  # harmless types keep their disposition


def _settings(**extra: str) -> Settings:
    return Settings(
        database_url="sqlite://:memory:",
        redis_url=None,
        secret_key="k",
        facebook_graph_url="http://127.0.0.1:9",
        zalo_openapi_url="http://127.0.0.1:9",
        zalo_oauth_url="http://127.0.0.1:9",
        telegram_api_url="http://127.0.0.1:9",
        nlp_backend="classic",
        nlp_model_dir=None,
        extra=dict(extra),
    )


# ---------------------------------------------------------------------------------------------- WebSocket origin


async def test_socket_origin_is_checked_for_token_clients_too(client: TestClient, inbox: Inbox) -> None:
    agent = await quick_user("agent", inboxes=[inbox])
    params = {"token": agent.token}
    for origin in ("https://evil.example", "null", f"http://{client.host}.evil.example:{client.port}"):
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await client.ws_connect("/ws", params=params, headers={"Origin": origin})
        assert refused.value.status == 403, origin
    # A script or mobile app sends no Origin: not a browser, so another site cannot be driving it.
    socket = Socket(await client.ws_connect("/ws", params=params))
    await socket.ready()
    await socket.close()
    # The page's own origin, also as https behind a TLS-terminating proxy.
    for origin in (f"http://{client.host}:{client.port}", f"https://{client.host}:{client.port}"):
        socket = Socket(await client.ws_connect("/ws", params=params, headers={"Origin": origin}))
        await socket.ready()
        await socket.close()


async def test_configured_origins_may_open_the_socket(aiohttp_client: Any, settings: Settings) -> None:
    allowed = dataclasses.replace(settings, extra={"HOPTHU_ALLOWED_ORIGINS": "https://app.shop.vn, http://x.vn:81"})
    client = await aiohttp_client(create_app(allowed))
    agent = await quick_user("agent")
    for origin in ("https://app.shop.vn", "https://APP.shop.vn:443", "http://x.vn:81"):
        socket = Socket(await client.ws_connect("/ws", params={"token": agent.token}, headers={"Origin": origin}))
        await socket.ready()
        await socket.close()
    for origin in ("http://app.shop.vn", "https://app.shop.vn:8443", "http://x.vn"):
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await client.ws_connect("/ws", params={"token": agent.token}, headers={"Origin": origin})
        assert refused.value.status == 403, origin


# ---------------------------------------------------------------------------------------------- login limits


async def login(client: TestClient, email: str, password: str = PASSWORD) -> aiohttp.ClientResponse:
    client.session.cookie_jar.clear()
    return await client.post("/api/auth/login", json={"email": email, "password": password})


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_repeated_wrong_passwords_lock_the_account_for_a_while(client: TestClient) -> None:
    clock = Clock()
    client.app[LOGIN_LIMITER] = LoginLimiter(account_failures=5, lockout=900, clock=clock)
    victim = await quick_user("agent")
    bystander = await quick_user("agent")
    for attempt in range(5):
        response = await login(client, victim.user.email, f"đoán-{attempt}")
        assert response.status == 401, attempt
    # Locked: even the right password is refused, with a Retry-After, and no session is made.
    sessions = await AuthSession.filter(user_id=victim.user.id).count()
    locked = await login(client, victim.user.email.upper())
    assert locked.status == 429
    assert (await locked.json())["error"]["code"] == "too_many_attempts"
    assert 1 <= int(locked.headers["Retry-After"]) <= 900
    assert await AuthSession.filter(user_id=victim.user.id).count() == sessions
    # Another account is not affected.
    assert (await login(client, bystander.user.email)).status == 200
    clock.now += 901
    assert (await login(client, victim.user.email)).status == 200
    failed = await AuditEntry.filter(action="login_failed", target_id=str(victim.user.id)).order_by("id")
    assert len(failed) == 5 and failed[-1].data["locked"] is True
    assert all(victim.user.email not in json.dumps(e.data) for e in failed)


async def test_success_clears_earlier_failures(client: TestClient) -> None:
    client.app[LOGIN_LIMITER] = LoginLimiter(account_failures=3)
    agent = await quick_user("agent")
    for _ in range(2):
        assert (await login(client, agent.user.email, "sai")).status == 401
    assert (await login(client, agent.user.email)).status == 200
    for _ in range(2):
        assert (await login(client, agent.user.email, "sai")).status == 401
    assert (await login(client, agent.user.email)).status == 200


async def test_one_address_spraying_many_accounts_is_stopped(client: TestClient) -> None:
    client.app[LOGIN_LIMITER] = LoginLimiter(account_failures=5, address_failures=8)
    agent = await quick_user("agent")
    statuses = [(await login(client, f"guess-{n}@shop.vn", "123456")).status for n in range(8)]
    assert statuses == [401] * 8
    assert (await login(client, agent.user.email)).status == 429  # this address is locked out for now


def test_limiter_memory_stays_bounded() -> None:
    limiter = LoginLimiter(max_tracked=100)
    for n in range(1000):
        limiter.failed(f"user{n}@x.vn", f"10.0.{n // 250}.{n % 250}")
    assert len(limiter._accounts) <= 100 and len(limiter._addresses) <= 100


# ---------------------------------------------------------------------------------------------- sessions


async def test_log_out_everywhere_revokes_every_session_and_socket_logins(client: TestClient, inbox: Inbox) -> None:
    agent = await make_user(client, "agent", inboxes=[inbox])
    other = (await (await login(client, agent.user.email)).json())["token"]
    colleague = await quick_user("agent", inboxes=[inbox])
    response = await client.post("/api/auth/logout-all", headers=agent.headers)
    assert response.status == 200
    assert (await response.json())["revoked_sessions"] == 2
    for token in (agent.token, other):
        client.session.cookie_jar.clear()
        assert (await client.get("/api/me", headers={"Authorization": f"Bearer {token}"})).status == 401
        with pytest.raises(aiohttp.WSServerHandshakeError):
            await client.ws_connect("/ws", params={"token": token})
    assert (await client.get("/api/me", headers=colleague.headers)).status == 200
    entry = await AuditEntry.get(action="logout_all")
    assert (entry.actor_id, entry.data) == (agent.user.id, {"sessions": 2})


async def test_password_change_revokes_every_other_session(client: TestClient, inbox: Inbox) -> None:
    agent = await make_user(client, "agent", inboxes=[inbox])
    stolen = (await (await login(client, agent.user.email)).json())["token"]
    client.session.cookie_jar.clear()
    url, new = "/api/auth/password", "mật-khẩu-mới-rất-dài-2026"
    wrong = await client.post(url, json={"current_password": "sai", "new_password": new}, headers=agent.headers)
    assert wrong.status == 403
    short = await client.post(url, json={"current_password": PASSWORD, "new_password": "ngắn"}, headers=agent.headers)
    assert short.status == 422
    bad = await client.post(url, json={"current_password": PASSWORD}, headers=agent.headers)
    assert bad.status == 400
    assert (await client.get("/api/me", headers={"Authorization": f"Bearer {stolen}"})).status == 200

    changed = await client.post(url, json={"current_password": PASSWORD, "new_password": new}, headers=agent.headers)
    assert changed.status == 200, await changed.text()
    assert (await changed.json())["revoked_sessions"] == 1
    assert (await client.get("/api/me", headers={"Authorization": f"Bearer {stolen}"})).status == 401
    assert (await client.get("/api/me", headers=agent.headers)).status == 200  # the session that changed it
    assert (await login(client, agent.user.email)).status == 401
    assert (await login(client, agent.user.email, new)).status == 200
    user = await User.get(id=agent.user.id)
    assert user.password_changed_at is not None and user.password_hash.startswith("$argon2id$")
    actions = await AuditEntry.filter(actor_id=agent.user.id).values_list("action", flat=True)
    assert "password_change" in actions and "password_change_failed" in actions


# ---------------------------------------------------------------------------------------------- logs


@pytest.fixture
def log_lines() -> Any:
    buffer = io.StringIO()
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    logs.configure(logging.DEBUG, stream=buffer)
    access = logging.getLogger("aiohttp.access")
    access.setLevel(logging.INFO)
    yield buffer
    for handler in list(root.handlers):
        root.removeHandler(handler)
    for handler in saved[0]:
        root.addHandler(handler)
    root.setLevel(saved[1])


SECRETS = (
    "EAAGm0PX4ZCpsBAKZCZB7secretpagetoken123",
    "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw",
    "s3cr3t-app-secret-value",
    "sess-token-abcdefghijklmnop",
)


def test_tokens_and_secrets_never_reach_the_log(log_lines: io.StringIO) -> None:
    log = logging.getLogger("hopthu.test")
    page, bot, app_secret, session = SECRETS
    log.info("graph call https://graph.facebook.com/v19.0/me/messages?access_token=%s&x=1 failed", page)
    log.warning("telegram https://api.telegram.org/bot%s/sendMessage timed out", bot)
    log.info("inbox credentials %s", {"page_token": page, "app_secret": app_secret, "name": "Shop"})
    log.info("headers: %s", {"Authorization": f"Bearer {session}", "X-Hub-Signature-256": "sha256=abcdef"})
    log.info("Authorization: Bearer %s", session)
    log.info("login body %s", json.dumps({"email": "a@b.vn", "password": "mật-khẩu-bí-mật"}))
    try:
        raise RuntimeError(f"send failed with token={page}")
    except RuntimeError:
        log.exception("outbox error", extra={"request_headers": {"authorization": f"Bearer {session}"}})
    text = log_lines.getvalue()
    for secret in (*SECRETS, "mật-khẩu-bí-mật", "sha256=abcdef"):
        assert secret not in text, secret
    lines = [json.loads(line) for line in text.splitlines()]
    assert len(lines) == 7
    assert {"ts", "level", "logger", "msg"} <= set(lines[0])
    assert lines[-1]["exc"].startswith("Traceback") and "RuntimeError" in lines[-1]["exc"]
    assert "Shop" in lines[2]["msg"] and "[redacted]" in lines[2]["msg"]


async def test_a_running_server_logs_no_tokens(client: TestClient, inbox: Inbox, log_lines: io.StringIO) -> None:
    agent = await quick_user("agent", inboxes=[inbox])
    await client.get("/api/me", headers=agent.headers)
    await client.get("/ws", params={"token": agent.token})  # no upgrade: answered (and logged) at once
    await client.get("/api/conversations", params={"q": "x"}, headers={"Authorization": f"Bearer {agent.token}"})
    text = log_lines.getvalue()
    assert agent.token not in text and PAGE_TOKEN not in text
    assert re.search(r"/ws\?token=\[redacted\]", text), text[-2000:]  # the access log line is there, scrubbed


# ---------------------------------------------------------------------------------------------- /metrics


def metric(text: str, name: str, labels: str = "") -> float:
    pattern = re.escape(name) + (r"\{" + re.escape(labels) + r"\}" if labels else "") + r" ([0-9.e+-]+)"
    found = re.search(pattern, text)
    return float(found.group(1)) if found else 0.0


async def test_metrics_report_ingest_latency_queue_backlog_and_sockets(client: TestClient, inbox: Inbox) -> None:
    admin = await quick_user("admin")
    agent = await quick_user("agent", inboxes=[inbox])
    before = await (await client.get("/metrics", headers=admin.headers)).text()
    for n in range(3):
        await send_text(client, "psid-m", f"mid.metrics.{n}", f"Tin {n}")
    socket = await connected(client, agent)
    response = await client.get("/metrics", headers=admin.headers)
    assert response.status == 200 and response.content_type == "text/plain"
    text = await response.text()
    ingested = 'channel="facebook"'
    assert (
        metric(text, "hopthu_ingested_events_total", ingested)
        - metric(before, "hopthu_ingested_events_total", ingested)
        == 3
    )
    acks = metric(text, "hopthu_webhook_ack_seconds_count", ingested)
    assert acks - metric(before, "hopthu_webhook_ack_seconds_count", ingested) == 3
    assert metric(text, "hopthu_webhook_requests_total", 'channel="facebook",status="200"') >= 3
    assert "hopthu_inbound_queue_length" in text and "hopthu_outbox_backlog" in text
    assert metric(text, "hopthu_websocket_clients") == 1
    await socket.close()


async def test_metrics_need_an_admin_or_the_scrapers_token(aiohttp_client: Any, settings: Settings) -> None:
    client = await aiohttp_client(
        create_app(dataclasses.replace(settings, extra={"HOPTHU_METRICS_TOKEN": "scrape-token-long-enough"}))
    )
    agent, supervisor = await quick_user("agent"), await quick_user("supervisor")
    assert (await client.get("/metrics")).status == 401
    assert (await client.get("/metrics", headers={"Authorization": "Bearer wrong"})).status == 401
    assert (await client.get("/metrics", headers=agent.headers)).status == 403
    assert (await client.get("/metrics", headers=supervisor.headers)).status == 403
    scraped = await client.get("/metrics", headers={"Authorization": "Bearer scrape-token-long-enough"})
    assert scraped.status == 200
    assert "hopthu_websocket_clients" in await scraped.text()
