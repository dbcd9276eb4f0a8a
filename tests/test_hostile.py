"""Hostile requests against every HTTP route of the app's router: malformed JSON, deep nesting, huge strings, wrong
types, bad UTF-8, NUL characters, hostile query strings and path ids. No request may get a 5xx.

Routes are read from the router at run time (nothing is listed here), so routes added by any area are covered.
Each body is sent as an admin (so it reaches the handler past the role checks) and, for the public routes, as
nobody; Messenger webhook bodies are also correctly signed, so they reach the parser.
"""

from __future__ import annotations

import itertools
import traceback

from aiohttp.test_utils import TestClient

from channels.facebook import SIGNATURE_HEADER, sign
from inbox.models import Inbox, Message
from tests.conftest import APP_SECRET, eventually, quick_user, send_text

DEEP = 5_000
HOSTILE_BODIES: list[tuple[str, bytes]] = [
    ("empty", b""),
    ("not json", b"{not json"),
    ("truncated", b'{"text": "D\xe1\xba\xa1'),
    ("bad utf-8", b'{"text": "\xff\xfe\xc3\x28"}'),
    ("utf-16", '{"text": "xin chào"}'.encode("utf-16")),
    ("bom", b'\xef\xbb\xbf{"text": "a"}'),
    ("deep arrays", b"[" * DEEP + b"]" * DEEP),
    ("deep objects", b'{"a":' * DEEP + b"1" + b"}" * DEEP),
    ("huge string", b'{"text": "' + b"a" * 900_000 + b'"}'),
    ("huge number", b'{"id": 1' + b"0" * 400 + b', "agent_id": 1e999}'),
    ("NaN", b'{"limit": NaN, "status": Infinity}'),
    ("null", b"null"),
    ("number", b"42"),
    ("string", b'"resolved"'),
    ("array", b'[{"text": "x"}]'),
    ("NUL in strings", b'{"text": "a\\u0000b", "name": "\\u0000", "status": "open\\u0000", "email": "\\u0000@x.vn"}'),
    ("lone surrogate", b'{"text": "\\ud800", "name": "\\udfff"}'),
    (
        "wrong types",
        b'{"text": 1, "status": [], "labels": "vip", "agent_id": "1", "team_id": {}, "private": "yes",'
        b' "email": 5, "password": null, "name": true, "other_id": "x", "ids": 3, "action": 0}',
    ),
    (
        "huge ints",
        b'{"agent_id": 99999999999999999999, "team_id": -1, "other_id": 9223372036854775808,'
        b' "conversation_ids": [1e308, -0, 99999999999999]}',
    ),
    ("huge array", b'{"labels": [' + b",".join([b'"x"'] * 50_000) + b'], "conversation_ids": []}'),
    ("many keys", b"{" + b",".join(b'"k%d": %d' % (i, i) for i in range(20_000)) + b"}"),
    ("prototype", b'{"__proto__": {"admin": true}, "constructor": {"prototype": {}}}'),
    ("sql", b'{"text": "\'; DROP TABLE messages; --", "q": "\\" OR 1=1 --", "name": "Robert\'); --"}'),
    ("xss", b'{"text": "<script>alert(1)</script>", "name": "<img src=x onerror=alert(1)>"}'),
    ("dates", b'{"snoozed_until": "9999-99-99T99:99:99", "from": "0000-00-00", "at": 1e30, "status": "snoozed"}'),
    ("emoji and combining", '{"text": "Ạ̸̢̛̜̩̈́̓ 😀👨‍👩‍👧 ﷽", "labels": ["🙂"]}'.encode()),
]
HOSTILE_QUERIES = [
    "limit=-1", "limit=0", "limit=99999999999999999999", "limit=abc", "cursor=%00%ff", "cursor=eyJ4IjoxfQ",
    "before=-5", "before=1e99", "q=%00", "q=" + "a" * 5000, "q=%22%20OR%201%3D1", "status=%00", "since=abc",
    "from=hôm-qua", "to=9999-99-99", "inbox_id=-1", "assignee=%00", "label=" + "x" * 3000, "agent_id=1.5",
    "channel=%ff%fe", "sentiment=[]", "id=1&id=2", "q=%E0%A4%A", "page=-1",
]  # fmt: skip
PATH_VALUES = ["0", "-1", "99999999999999999999", "abc", "1.5", "%00", "%ff", "..%2f..", "9223372036854775808"]


def fill(path: str, value: str) -> str:
    out, depth = [], 0
    for ch in path:
        if ch == "{":
            depth += 1
            out.append(value)
        elif ch == "}":
            depth -= 1
        elif depth == 0:
            out.append(ch)
    return "".join(out)


async def test_hostile_requests_never_get_a_5xx(client: TestClient, inbox: Inbox) -> None:
    admin = await quick_user("admin")
    await send_text(client, "PSID-H", "mid.hostile.1", "Shop ơi")
    message = await eventually(lambda: Message.get_or_none(external_id="mid.hostile.1"))
    conv_id = str(message.conversation_id)  # ids of real things and junk ids both
    routes = sorted(
        {(r.method, r.resource.canonical) for r in client.app.router.routes() if r.method not in ("HEAD", "*")}
    )
    sent, failures, per_route = 0, [], {}
    bodies = itertools.cycle(HOSTILE_BODIES)
    queries = itertools.cycle(HOSTILE_QUERIES)
    paths = itertools.cycle(["1", conv_id, *PATH_VALUES])

    async def attempt(method: str, url: str, raw: bytes | None, headers: dict[str, str], label: str) -> None:
        nonlocal sent
        sent += 1
        per_route[(method, url.split("?")[0])] = per_route.get((method, url.split("?")[0]), 0) + 1
        try:
            response = await client.request(method, url, data=raw, headers=headers)
            status, text = response.status, (await response.text())[:500]
        except Exception:
            failures.append((method, url, label, "client error", traceback.format_exc()[-800:]))
            return
        if status >= 500:
            failures.append((method, url, label, status, text))

    for method, path in routes:
        if path == "/ws" or (method == "GET" and path.endswith(".js")):
            continue
        rounds = 14 if method in ("POST", "PUT", "PATCH", "DELETE") else 8
        for _ in range(rounds):
            url = fill(path, next(paths)) if "{" in path else path
            if method in ("GET", "DELETE"):
                url = f"{url}?{next(queries)}"
            label, raw = next(bodies)
            headers = {**admin.headers, "Content-Type": "application/json"}
            await attempt(method, url, raw if method != "GET" else None, headers, label)
            if path.startswith("/webhooks/facebook") and method == "POST":
                sig = {SIGNATURE_HEADER: sign(raw, APP_SECRET), "Content-Type": "application/json"}
                await attempt(method, url, raw, sig, f"signed {label}")
            if path.startswith(("/webhooks/", "/widget/", "/api/auth/login")):
                await attempt(method, url, raw, {"Content-Type": "application/json"}, f"anonymous {label}")
    print(f"\nHOSTILE: {sent} requests ({len(HOSTILE_BODIES)} body kinds, {len(HOSTILE_QUERIES)} query kinds) over "
          f"{len(routes)} routes; 5xx: {len(failures)}")  # fmt: skip
    for failure in failures[:20]:
        print("  5xx:", failure)
    assert sent >= 1000
    assert not failures, failures[:10]
