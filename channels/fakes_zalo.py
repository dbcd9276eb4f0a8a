"""A local fake of the Zalo OA OpenAPI and OAuth server, plus signed webhook builders (tests, demo, benchmarks).

One server answers both base URLs (HOPTHU_ZALO_OPENAPI_URL and HOPTHU_ZALO_OAUTH_URL may point at it) and records
every request. Refresh tokens are single-use, as on Zalo: a second refresh with the same token is refused.
"""

from __future__ import annotations

import asyncio
import json
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from channels.fakes import RecordedRequest, vietnamese_profile
from channels.zalo import SIGNATURE_HEADER, sign


@dataclass(frozen=True, slots=True)
class _Failure:
    body: dict[str, Any]
    status: int


class FakeZaloAPI:
    """`access_token` / `refresh_token` are the pair the fake currently accepts; `refresh_delay` slows the OAuth
    answer (to make concurrent refreshes overlap); `refuse_refresh` makes every refresh fail. `hold`: while set,
    a send is taken (and recorded) but answered only once the event is set (a slow platform)."""

    def __init__(self, *, access_token: str = "zalo-access-0", refresh_token: str = "zalo-refresh-0",
                 app_secret: str | None = None, refresh_delay: float = 0.0, delay: float = 0.0) -> None:  # fmt: skip
        self.access_token, self.refresh_token = access_token, refresh_token
        self.app_secret = app_secret
        self.refresh_delay, self.delay = refresh_delay, delay
        self.refuse_refresh = False
        self.hold: asyncio.Event | None = None
        self.expires_in = "90000"
        self.requests: list[RecordedRequest] = []
        self.refresh_calls: list[dict[str, str]] = []
        self.used_refresh_tokens: set[str] = set()
        self.profiles: dict[str, dict[str, Any]] = {}  # user id → {display_name, avatar, shared_info…}
        self.base_url = ""
        self._failures: deque[_Failure] = deque()
        self._refresh_failures: deque[tuple[int, dict[str, Any] | str]] = deque()
        self._counter = 0
        self._generation = 0
        self._runner: web.AppRunner | None = None
        self.app = web.Application()
        self.app.router.add_post("/v3.0/oa/message/cs", self._send)
        self.app.router.add_get("/v3.0/oa/user/detail", self._detail)
        self.app.router.add_post("/v4/oa/access_token", self._refresh)

    def fail_next(self, n: int = 1, error: int = -32, message: str = "Exceed rate limit", status: int = 200) -> None:
        """The next `n` send / detail calls answer with Zalo error `error` (HTTP 200, as Zalo does)."""
        self._failures.extend(_Failure({"error": error, "message": message}, status) for _ in range(n))

    def fail_next_refresh(self, n: int = 1, *, status: int = 429, body: dict[str, Any] | str = "") -> None:
        """The next `n` refreshes answer `status` with `body` (JSON for a dict) and leave the refresh token unspent:
        a rate limit, a gateway's error page, a timeout answered by a proxy."""
        self._refresh_failures.extend((status, body) for _ in range(n))

    def expire_access_token(self) -> None:
        """The current access token stops working (the API answers -216) until a refresh."""
        self.access_token = f"expired-{self.access_token}"

    def sent_messages(self) -> list[dict[str, Any]]:
        return [r.json for r in self.requests if r.path == "/v3.0/oa/message/cs" and r.json is not None]

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        self._runner = web.AppRunner(self.app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, host, port).start()
        self.base_url = f"http://{host}:{self._runner.addresses[0][1]}"
        return self.base_url

    async def stop(self) -> None:
        if self.hold is not None:
            self.hold.set()  # a held answer must not keep the server from stopping
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _record(self, request: web.Request) -> RecordedRequest:
        body: dict[str, Any] | None = None
        if request.content_type == "application/json" and request.can_read_body:
            try:
                loaded = json.loads(await request.read())
                body = loaded if isinstance(loaded, dict) else None
            except ValueError:
                body = None
        elif request.can_read_body:
            body = dict(await request.post())
        recorded = RecordedRequest(request.method, request.path, dict(request.query), body, dict(request.headers))
        self.requests.append(recorded)
        if self.delay:
            await asyncio.sleep(self.delay)
        return recorded

    def _check(self, recorded: RecordedRequest) -> web.Response | None:
        if self._failures:
            failure = self._failures.popleft()
            return web.json_response(failure.body, status=failure.status)
        if recorded.headers.get("access_token") != self.access_token:
            return web.json_response({"error": -216, "message": "Access token is invalid"})
        return None

    async def _send(self, request: web.Request) -> web.Response:
        recorded = await self._record(request)
        if self.hold is not None:
            await self.hold.wait()
        refused = self._check(recorded)
        if refused is not None:
            return refused
        body = recorded.json or {}
        user = (body.get("recipient") or {}).get("user_id")
        text = (body.get("message") or {}).get("text")
        if not user or not text:
            return web.json_response({"error": -201, "message": "Parameters are invalid"})
        self._counter += 1
        data = {"message_id": f"zmsg{self._counter:016d}", "user_id": str(user),
                "quota": {"quota_type": "reply", "remain": "7", "total": "8"}}  # fmt: skip
        return web.json_response({"error": 0, "message": "Success", "data": data})

    async def _detail(self, request: web.Request) -> web.Response:
        recorded = await self._record(request)
        refused = self._check(recorded)
        if refused is not None:
            return refused
        try:
            user = str(json.loads(recorded.query.get("data", "{}")).get("user_id"))
        except (ValueError, AttributeError):
            return web.json_response({"error": -201, "message": "Parameters are invalid"})
        base = vietnamese_profile(user)
        pic = base["profile_pic"]
        data = {"user_id": user, "display_name": base["name"], "user_is_follower": True,
                "avatar": pic, "avatars": {"120": pic, "240": pic}}  # fmt: skip
        data |= self.profiles.get(user, {})
        return web.json_response({"error": 0, "message": "Success", "data": data})

    async def _refresh(self, request: web.Request) -> web.Response:
        recorded = await self._record(request)
        form = {k: str(v) for k, v in (recorded.json or {}).items()}
        self.refresh_calls.append(form)
        if self.refresh_delay:
            await asyncio.sleep(self.refresh_delay)
        if self._refresh_failures:
            status, body = self._refresh_failures.popleft()
            if isinstance(body, dict):
                return web.json_response(body, status=status)
            return web.Response(text=body, status=status, content_type="text/html")
        token = form.get("refresh_token", "")
        secret_ok = self.app_secret is None or recorded.headers.get("secret_key") == self.app_secret
        if self.refuse_refresh or not secret_ok or token != self.refresh_token or token in self.used_refresh_tokens:
            return web.json_response({"error": -14014, "error_name": "Invalid parameter",
                                      "error_reason": "Invalid refresh token",
                                      "error_description": "refresh_token is invalid or already used"})  # fmt: skip
        self.used_refresh_tokens.add(token)
        self._generation += 1
        self.access_token = f"zalo-access-{self._generation}"
        self.refresh_token = f"zalo-refresh-{self._generation}"
        return web.json_response({"access_token": self.access_token, "refresh_token": self.refresh_token,
                                  "expires_in": self.expires_in})  # fmt: skip


@asynccontextmanager
async def running_fake_zalo(**kwargs: Any) -> AsyncIterator[FakeZaloAPI]:
    fake = FakeZaloAPI(**kwargs)
    await fake.start()
    try:
        yield fake
    finally:
        await fake.stop()


# ---------------------------------------------------------------------------------------------- payloads


def user_text(app_id: str, oa_id: str, user_id: str, msg_id: str, text: str, ts_ms: int) -> dict[str, Any]:
    """`user_send_text` exactly as CHANNELS.md shows it: every id and the timestamp are strings."""
    return {
        "app_id": app_id, "sender": {"id": user_id}, "user_id_by_app": f"9{user_id[1:]}",
        "recipient": {"id": oa_id}, "event_name": "user_send_text",
        "message": {"text": text, "msg_id": msg_id}, "timestamp": str(ts_ms),
    }  # fmt: skip


def user_attachment(app_id: str, oa_id: str, user_id: str, msg_id: str, kind: str, ts_ms: int,
                    payload: dict[str, Any] | None = None, text: str | None = None) -> dict[str, Any]:  # fmt: skip
    """`user_send_<kind>` (image, gif, link, sticker, audio, video, file, location) with one attachment."""
    message: dict[str, Any] = {"msg_id": msg_id, "attachments": [{"type": kind, "payload": payload or {}}]}
    if text is not None:
        message["text"] = text
    return {"app_id": app_id, "sender": {"id": user_id}, "recipient": {"id": oa_id},
            "event_name": f"user_send_{kind}", "message": message, "timestamp": str(ts_ms)}  # fmt: skip


def oa_echo(app_id: str, oa_id: str, user_id: str, msg_id: str, text: str, ts_ms: int) -> dict[str, Any]:
    """The OA's own message (sent from Zalo's tools or another app) reported back: sender = OA."""
    return {"app_id": app_id, "sender": {"id": oa_id}, "recipient": {"id": user_id}, "event_name": "oa_send_text",
            "message": {"text": text, "msg_id": msg_id}, "timestamp": str(ts_ms)}  # fmt: skip


def follow(app_id: str, oa_id: str, user_id: str, ts_ms: int, *, unfollow: bool = False) -> dict[str, Any]:
    return {"oa_id": oa_id, "follower": {"id": user_id}, "user_id_by_app": f"9{user_id[1:]}", "source": "oa_profile",
            "event_name": "unfollow" if unfollow else "follow", "app_id": app_id, "timestamp": str(ts_ms)}  # fmt: skip


def received(app_id: str, oa_id: str, user_id: str, msg_id: str, ts_ms: int) -> dict[str, Any]:
    return {"app_id": app_id, "sender": {"id": user_id}, "recipient": {"id": oa_id},
            "event_name": "user_received_message", "message": {"msg_id": msg_id}, "timestamp": str(ts_ms)}  # fmt: skip


def reacted(app_id: str, oa_id: str, user_id: str, msg_id: str, icon: str, ts_ms: int) -> dict[str, Any]:
    return {"app_id": app_id, "sender": {"id": user_id}, "recipient": {"id": oa_id},
            "event_name": "user_reacted_message", "message": {"react_icon": icon, "msg_id": msg_id},
            "timestamp": str(ts_ms)}  # fmt: skip


def seen(app_id: str, oa_id: str, user_id: str, msg_ids: list[str], ts_ms: int) -> dict[str, Any]:
    return {"app_id": app_id, "sender": {"id": user_id}, "recipient": {"id": oa_id},
            "event_name": "user_seen_message", "message": {"msg_ids": list(msg_ids)},
            "timestamp": str(ts_ms)}  # fmt: skip


def submit_info(app_id: str, oa_id: str, user_id: str, ts_ms: int, phone: str, name: str = "Nguyễn Văn An",
                address: str | None = None) -> dict[str, Any]:  # fmt: skip
    """`user_submit_info`: the user shared their details with the OA."""
    info = {"name": name, "phone": phone, **({"address": address} if address else {})}
    return {"app_id": app_id, "oa_id": oa_id, "sender": {"id": user_id}, "recipient": {"id": oa_id},
            "event_name": "user_submit_info", "info": info, "timestamp": str(ts_ms)}  # fmt: skip


def signed(body: dict[str, Any], oa_secret: str) -> tuple[bytes, dict[str, str]]:
    """Compact JSON bytes and the headers Zalo sends with them (signature over app id + body + timestamp)."""
    raw = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
    mac = sign(str(body.get("app_id", "")), raw, str(body.get("timestamp", "")), oa_secret)
    return raw, {"Content-Type": "application/json", SIGNATURE_HEADER: mac}
