"""A local fake of the Facebook Graph API plus webhook payload builders, for tests, the demo and benchmarks.

The builders produce bodies shaped like CHANNELS.md's captures: string ids, millisecond timestamps,
one event per `messaging` list.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, Literal

from aiohttp import web

from channels.facebook import SIGNATURE_HEADER, sign

DEFAULT_APP_ID = "1517776481860111"
STICKER_ID = 369239263222822  # Messenger's "thumbs up" sticker

_FAMILY = ("Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Vũ", "Đặng", "Bùi", "Đỗ", "Ngô")
_MIDDLE = ("Văn", "Thị", "Minh", "Ngọc", "Thu", "Đức", "Thanh", "Hữu")
_GIVEN = ("An", "Bình", "Chi", "Dũng", "Hà", "Hương", "Lan", "Minh", "Nam", "Trang", "Tuấn", "Yến")

FailOn = Literal["send", "profile", "any"]


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    method: str
    path: str
    query: dict[str, str]
    json: dict[str, Any] | None
    headers: dict[str, str]


@dataclass(frozen=True, slots=True)
class _Failure:
    status: int
    error: dict[str, Any]
    on: FailOn


def vietnamese_profile(psid: str) -> dict[str, str]:
    """A stable, plausible Vietnamese profile for a PSID (family name first, as Vietnamese names are)."""
    h = int(hashlib.sha256(psid.encode()).hexdigest(), 16)
    family, middle = _FAMILY[h % len(_FAMILY)], _MIDDLE[(h // 10) % len(_MIDDLE)]
    given = _GIVEN[(h // 100) % len(_GIVEN)]
    return {
        "id": psid,
        "name": f"{family} {middle} {given}",
        "first_name": given,
        "last_name": family,
        "profile_pic": f"https://fake-graph.invalid/pic/{psid}.jpg",
    }


class FakeGraphAPI:
    """The Send API and the profile endpoint, recording every request.

    `profiles` maps PSID -> profile dict (missing ones get `vietnamese_profile`). `valid_tokens`, when set,
    makes any other access token fail with Graph error 190. `delay` (seconds) slows every answer (benchmarks).
    `hold_comment_replies`: while set, a public comment reply is taken (and recorded) but answered only once the
    event is set (a slow platform).
    """

    def __init__(self, *, valid_tokens: set[str] | None = None, delay: float = 0.0) -> None:
        self.requests: list[RecordedRequest] = []
        self.profiles: dict[str, dict[str, Any]] = {}
        self.valid_tokens = valid_tokens
        self.delay = delay
        self.base_url = ""
        self._failures: deque[_Failure] = deque()
        self._counter = 0
        self._runner: web.AppRunner | None = None
        # Page comments: posts by id ({message, permalink_url}), who wrote which comment (→ the PSID a private
        # reply answers with), the hidden state the page set, deleted comments and comments privately answered.
        self.posts: dict[str, dict[str, Any]] = {}
        self.comment_authors: dict[str, str] = {}
        self.hidden: dict[str, bool] = {}
        self.deleted: set[str] = set()
        self.privately_answered: set[str] = set()
        self.hold_comment_replies: asyncio.Event | None = None
        self.app = web.Application()
        # One dynamic route covers both /me/messages and /{page_id}/messages.
        self.app.router.add_post("/{version}/{page}/messages", self._send)
        self.app.router.add_post("/{version}/{comment}/comments", self._comment_reply)
        self.app.router.add_post("/{version}/{comment}", self._comment_update)
        self.app.router.add_delete("/{version}/{comment}", self._comment_delete)
        self.app.router.add_get("/{version}/{psid}", self._profile)

    # -- scripting --------------------------------------------------------------------------------------

    def fail_next(
        self, n: int = 1, status: int = 500, error: dict[str, Any] | None = None, *, on: FailOn = "send"
    ) -> None:
        """Make the next `n` matching requests fail with `status` and Graph error body `error`."""
        error = error or {
            "message": "An unexpected error has occurred. Please retry your request later.",
            "type": "OAuthException", "code": 2, "is_transient": True, "fbtrace_id": "FakeTrace",
        }  # fmt: skip
        self._failures.extend(_Failure(status, error, on) for _ in range(n))

    def comment_replies(self) -> list[tuple[str, str]]:
        """(comment id, text) of every public reply, in order."""
        replies = (r for r in self.requests if r.method == "POST" and r.path.endswith("/comments"))
        return [(r.path.split("/")[-2], (r.json or {}).get("message", "")) for r in replies]

    def sent_messages(self) -> list[dict[str, Any]]:
        """The JSON bodies of every Send API call, failed ones included, in order."""
        sends = (r for r in self.requests if r.method == "POST" and r.path.endswith("/messages"))
        return [r.json for r in sends if r.json is not None]

    # -- lifecycle --------------------------------------------------------------------------------------

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Serve on host:port (0 = any free port) and return the base URL."""
        self._runner = web.AppRunner(self.app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        bound = self._runner.addresses[0][1]
        self.base_url = f"http://{host}:{bound}"
        return self.base_url

    async def stop(self) -> None:
        if self.hold_comment_replies is not None:
            self.hold_comment_replies.set()  # a held answer must not keep the server from stopping
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # -- handlers ---------------------------------------------------------------------------------------

    async def _record(self, request: web.Request) -> RecordedRequest:
        body: dict[str, Any] | None = None
        if request.can_read_body:
            try:
                loaded = json.loads(await request.read())
                body = loaded if isinstance(loaded, dict) else None
            except ValueError:
                body = None
        recorded = RecordedRequest(request.method, request.path, dict(request.query), body, dict(request.headers))
        self.requests.append(recorded)
        if self.delay:
            await asyncio.sleep(self.delay)
        return recorded

    def _failure(self, kind: FailOn, token: str | None) -> web.Response | None:
        if self._failures and self._failures[0].on in (kind, "any"):
            failure = self._failures.popleft()
            return web.json_response({"error": failure.error}, status=failure.status)
        if not token or (self.valid_tokens is not None and token not in self.valid_tokens):
            return _graph_error(400, 190, "Invalid OAuth access token - Cannot parse access token")
        return None

    async def _send(self, request: web.Request) -> web.Response:
        recorded = await self._record(request)
        failure = self._failure("send", recorded.query.get("access_token"))
        if failure is not None:
            return failure
        body = recorded.json or {}
        psid = (body.get("recipient") or {}).get("id")
        comment_id = (body.get("recipient") or {}).get("comment_id")
        if comment_id is not None:  # a private reply: once per comment, answered with the author's PSID
            if comment_id in self.privately_answered:
                return _graph_error(400, 10, "(#10) This comment has already been replied to privately", 2018278)
            self.privately_answered.add(comment_id)
            psid = self.comment_authors.get(comment_id, f"psid-of-{comment_id}")
        message = body.get("message") or {}
        has_content = isinstance(message, dict) and (message.get("text") or message.get("attachment"))
        if not psid or not has_content:
            return _graph_error(400, 100, "(#100) The parameter recipient and message are required")
        self._counter += 1
        return web.json_response({"recipient_id": str(psid), "message_id": f"m_{self._counter}"})

    async def _comment_reply(self, request: web.Request) -> web.Response:
        recorded = await self._record(request)
        if self.hold_comment_replies is not None:
            await self.hold_comment_replies.wait()
        failure = self._failure("send", recorded.query.get("access_token"))
        if failure is not None:
            return failure
        comment_id = request.match_info["comment"]
        if comment_id in self.deleted:
            return _graph_error(400, 100, "(#100) Unsupported post request: the comment does not exist")
        if not (recorded.json or {}).get("message"):
            return _graph_error(400, 100, "(#100) The parameter message is required")
        self._counter += 1
        post = comment_id.split("_")[0]
        return web.json_response({"id": f"{post}_9{self._counter:08d}"})

    async def _comment_update(self, request: web.Request) -> web.Response:
        recorded = await self._record(request)
        failure = self._failure("send", recorded.query.get("access_token"))
        if failure is not None:
            return failure
        comment_id = request.match_info["comment"]
        flag = recorded.query.get("is_hidden", (recorded.json or {}).get("is_hidden"))
        if comment_id in self.deleted or flag is None:
            return _graph_error(400, 100, "(#100) Unsupported post request")
        self.hidden[comment_id] = str(flag).lower() == "true"
        return web.json_response({"success": True})

    async def _comment_delete(self, request: web.Request) -> web.Response:
        recorded = await self._record(request)
        failure = self._failure("send", recorded.query.get("access_token"))
        if failure is not None:
            return failure
        comment_id = request.match_info["comment"]
        if comment_id in self.deleted:
            return _graph_error(400, 100, "(#100) Unsupported delete request: the comment does not exist")
        self.deleted.add(comment_id)
        return web.json_response({"success": True})

    async def _profile(self, request: web.Request) -> web.Response:
        recorded = await self._record(request)
        failure = self._failure("profile", recorded.query.get("access_token"))
        if failure is not None:
            return failure
        psid = request.match_info["psid"]
        if psid in self.posts:
            return web.json_response({"id": psid, **self.posts[psid]})
        profile = self.profiles.get(psid) or vietnamese_profile(psid)
        return web.json_response({"id": psid, **profile})


def _graph_error(status: int, code: int, message: str, subcode: int | None = None) -> web.Response:
    error: dict[str, Any] = {"message": message, "type": "OAuthException", "code": code, "fbtrace_id": "FakeTrace"}
    if subcode is not None:
        error["error_subcode"] = subcode
    return web.json_response({"error": error}, status=status)


@asynccontextmanager
async def running_fake_graph(**kwargs: Any) -> AsyncIterator[FakeGraphAPI]:
    """`async with running_fake_graph() as fake:` — a FakeGraphAPI served on 127.0.0.1, free port."""
    fake = FakeGraphAPI(**kwargs)
    await fake.start()
    try:
        yield fake
    finally:
        await fake.stop()


# ---------------------------------------------------------------------------------------------- payloads


def _envelope(page_id: str, time_ms: int, event: dict[str, Any]) -> dict[str, Any]:
    return {"object": "page", "entry": [{"id": str(page_id), "time": time_ms, "messaging": [event]}]}


def _from_user(page_id: str, psid: str) -> dict[str, Any]:
    return {"sender": {"id": str(psid)}, "recipient": {"id": str(page_id)}}


def messenger_text(page_id: str, psid: str, mid: str, text: str, ts_ms: int) -> dict[str, Any]:
    event = {**_from_user(page_id, psid), "timestamp": ts_ms, "message": {"mid": mid, "text": text}}
    return _envelope(page_id, ts_ms, event)


def messenger_echo(
    page_id: str, psid: str, mid: str, text: str, ts_ms: int, metadata: str | None = None,
    app_id: str = DEFAULT_APP_ID,
) -> dict[str, Any]:  # fmt: skip
    """The page's own message coming back (sent by hopthu, Business Suite, or another app)."""
    message: dict[str, Any] = {"is_echo": True, "app_id": int(app_id) if app_id.isdigit() else app_id}
    message |= {"mid": mid, "text": text}
    if metadata is not None:
        message["metadata"] = metadata
    event = {"sender": {"id": str(page_id)}, "recipient": {"id": str(psid)}, "timestamp": ts_ms}
    event["message"] = message
    return _envelope(page_id, ts_ms, event)


def messenger_delivery(page_id: str, psid: str, watermark_ms: int, mids: list[str] | None = None) -> dict[str, Any]:
    delivery: dict[str, Any] = {"watermark": watermark_ms}
    if mids is not None:
        delivery["mids"] = list(mids)
    return _envelope(page_id, watermark_ms, {**_from_user(page_id, psid), "delivery": delivery})


def messenger_read(page_id: str, psid: str, watermark_ms: int, ts_ms: int | None = None) -> dict[str, Any]:
    ts = ts_ms if ts_ms is not None else watermark_ms
    event = {**_from_user(page_id, psid), "timestamp": ts, "read": {"watermark": watermark_ms}}
    return _envelope(page_id, ts, event)


def messenger_edit(page_id: str, psid: str, mid: str, text: str, ts_ms: int, num_edit: int = 1) -> dict[str, Any]:
    """Webhook field `message_edits`: the customer changed the text of message `mid`."""
    event = {**_from_user(page_id, psid), "timestamp": ts_ms, "message_edit": {"mid": mid, "text": text}}
    event["message_edit"]["num_edit"] = num_edit
    return _envelope(page_id, ts_ms, event)


def messenger_reaction(
    page_id: str, psid: str, mid: str, ts_ms: int, reaction: str = "love", emoji: str | None = "❤️",
    action: str = "react",
) -> dict[str, Any]:  # fmt: skip
    """Webhook field `message_reactions`: the customer reacted to message `mid` (or took it back: "unreact")."""
    body: dict[str, Any] = {"reaction": reaction, "action": action, "mid": mid}
    if emoji is not None:
        body["emoji"] = emoji
    return _envelope(page_id, ts_ms, {**_from_user(page_id, psid), "timestamp": ts_ms, "reaction": body})


def messenger_handover(
    page_id: str, psid: str, ts_ms: int, action: str = "pass_thread_control", new_owner_app_id: str = DEFAULT_APP_ID,
    previous_owner_app_id: str | None = None, metadata: str | None = None, standby: bool = False,
) -> dict[str, Any]:  # fmt: skip
    """Webhook field `messaging_handovers`: `pass_thread_control`, `take_thread_control` (new and previous owner) or
    `request_thread_control` (the app asking, as `requested_owner_app_id`); in `standby` for an app not in control."""
    body: dict[str, Any] = {}
    if action == "request_thread_control":
        body["requested_owner_app_id"] = new_owner_app_id
    else:
        body |= {"previous_owner_app_id": previous_owner_app_id, "new_owner_app_id": new_owner_app_id}
    if metadata is not None:
        body["metadata"] = metadata
    envelope = _envelope(page_id, ts_ms, {**_from_user(page_id, psid), "timestamp": ts_ms, action: body})
    if standby:
        entry = envelope["entry"][0]
        entry["standby"] = entry.pop("messaging")
    return envelope


def messenger_app_roles(page_id: str, ts_ms: int, roles: dict[str, list[str]]) -> dict[str, Any]:
    """The page gave its apps new roles (`primary_receiver`, `secondary_receiver`): no sender, no customer."""
    return _envelope(page_id, ts_ms, {"recipient": {"id": str(page_id)}, "timestamp": ts_ms, "app_roles": roles})


def messenger_attachment(page_id: str, psid: str, mid: str, kind: str, url: str, ts_ms: int) -> dict[str, Any]:
    """A message with one attachment and no text; kind "sticker" gives the image-with-sticker_id shape."""
    if kind == "sticker":
        attachment = {"type": "image", "payload": {"url": url, "sticker_id": STICKER_ID}}
    else:
        attachment = {"type": kind, "payload": {"url": url}}
    message = {"mid": mid, "attachments": [attachment]}
    event = {**_from_user(page_id, psid), "timestamp": ts_ms, "message": message}
    return _envelope(page_id, ts_ms, event)


def messenger_postback(
    page_id: str, psid: str, title: str, payload: str, ts_ms: int, mid: str | None = None,
    referral: dict[str, Any] | None = None,
) -> dict[str, Any]:  # fmt: skip
    postback: dict[str, Any] = {"title": title, "payload": payload}
    if mid is not None:
        postback["mid"] = mid
    if referral is not None:
        postback["referral"] = referral
    return _envelope(page_id, ts_ms, {**_from_user(page_id, psid), "timestamp": ts_ms, "postback": postback})


def messenger_batch(*bodies: dict[str, Any]) -> dict[str, Any]:
    """Several webhook bodies as one batched delivery (all their entries in one `entry` list)."""
    return {"object": "page", "entry": [entry for body in bodies for entry in body["entry"]]}


def signed(body: dict[str, Any], app_secret: str) -> tuple[bytes, dict[str, str]]:
    """Compact JSON bytes as Facebook sends them (non-ASCII escaped) and headers carrying their signature."""
    raw = json.dumps(body, separators=(",", ":")).encode()
    return raw, {"Content-Type": "application/json", SIGNATURE_HEADER: sign(raw, app_secret)}


def page_comment(
    page_id: str,
    post_id: str,
    comment_id: str,
    user_id: str,
    text: str | None,
    created_s: int,
    *,
    name: str = "Khách hàng",
    verb: str = "add",
    parent_id: str | None = None,
    photo: str | None = None,
    item: str = "comment",
    entry_time_s: int | None = None,
) -> dict[str, Any]:
    """A `feed` change as Facebook sends it for a comment: times in **seconds**, ids as strings.

    `post_id` is PAGEID_POSTID and `comment_id` POSTID_COMMENTID; `user_id == page_id` is the page's own comment.
    """
    value: dict[str, Any] = {
        "from": {"id": str(user_id), "name": name},
        "post": {"status_type": "added_photos", "is_published": True, "id": post_id,
                 "permalink_url": f"https://www.facebook.com/{post_id}"},
        "post_id": post_id,
        "comment_id": comment_id,
        "created_time": created_s,
        "item": item,
        "parent_id": parent_id or post_id,
        "verb": verb,
    }  # fmt: skip
    if text is not None:
        value["message"] = text
    if photo is not None:
        value["photo"] = photo
    time_s = entry_time_s if entry_time_s is not None else created_s
    return {
        "object": "page",
        "entry": [{"id": str(page_id), "time": time_s, "changes": [{"field": "feed", "value": value}]}],
    }


def page_reaction(page_id: str, post_id: str, user_id: str, created_s: int, reaction: str = "like") -> dict[str, Any]:
    value = {"from": {"id": str(user_id), "name": "Khách"}, "post_id": post_id, "created_time": created_s,
             "item": "reaction", "parent_id": post_id, "reaction_type": reaction, "verb": "add"}  # fmt: skip
    return {
        "object": "page",
        "entry": [{"id": str(page_id), "time": created_s, "changes": [{"field": "feed", "value": value}]}],
    }
