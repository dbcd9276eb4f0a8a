"""`hopthu demo`: a fresh SQLite database, seeded staff and Vietnamese conversations, the real server, and a
simulator posting signed Messenger webhooks to it. Replies go to a local fake Graph API, never to Facebook.

Everything a customer "says" enters through `POST /webhooks/facebook` and everything staff do goes through the
agent HTTP API, so the demo runs the same paths as production.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import secrets
import signal
import socket
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from channels import fakes
from channels.fakes import FakeGraphAPI, signed
from channels.fakes_zalo import FakeZaloAPI
from inbox import demo_channels

DB_FILE = "hopthu-demo.db"
PAGE_ID = "104392817265530"
PAGE_NAME = "Shop Thời Trang Mai Anh"
BUSINESS_SUITE_APP_ID = "263902037430900"  # echoes of messages typed in Meta Business Suite
STAFF = (  # key, role, name, e-mail
    ("admin", "admin", "Nguyễn Văn Quang", "admin@demo.hopthu.vn"),
    ("huong", "supervisor", "Trần Thu Hương", "huong@demo.hopthu.vn"),
    ("khoa", "agent", "Lê Minh Khoa", "khoa@demo.hopthu.vn"),
    ("lan", "agent", "Phạm Ngọc Lan", "lan@demo.hopthu.vn"),
)

# name, minutes ago, customer messages (a "postback:" prefix is a button tap), then what staff do:
# (agent key, reply) or None, customer follow-ups, assignee, labels, status.
SCRIPTS: tuple[tuple[Any, ...], ...] = (
    ("Nguyễn Thị Hồng Nhung", 190, ["Chào shop, áo sơ mi lụa trắng còn size M không ạ?",
     "Mình cao 1m58 nặng 50kg thì mặc size nào vừa ạ?"],
     ("khoa", "Dạ chào chị ạ, mẫu sơ mi lụa trắng size M vẫn còn ạ. 1m58, 50kg chị mặc size M là vừa đẹp ạ."),
     ["Ok shop, chốt cho mình 1 cái nhé"], "khoa", ["tư vấn size"], None),
    ("Trần Minh Quân", 175, ["ib gia giup e", "mau vay hoa nhi trong anh con ko shop"],
     ("lan", "Dạ váy hoa nhí giá 349.000đ ạ, hiện còn đủ size S, M, L ạ."), [], "lan", ["hỏi giá"], None),
    ("Lê Thu Hà", 160, ["Shop ơi ship ra Đà Nẵng mất mấy ngày vậy ạ? Phí ship bao nhiêu shop?"],
     ("khoa", "Dạ ship Đà Nẵng 2–3 ngày, phí 30.000đ, đơn từ 500.000đ shop freeship ạ."),
     ["Vậy mình lấy 2 cái quần jean ống suông size 27 nhé, địa chỉ 12 Lê Duẩn, Hải Châu, Đà Nẵng"],
     "khoa", ["vận chuyển", "chốt đơn"], None),
    ("Phạm Văn Hùng", 150, ["co ship cod ko shop", "minh o Can Tho"],
     ("lan", "Dạ shop có ship COD toàn quốc ạ, anh nhận hàng kiểm tra rồi mới thanh toán ạ."),
     ["ok cam on shop"], None, [], "resolved"),
    ("Hoàng Thị Mai", 140, ["Shop ơi mình nhận hàng rồi mà áo bị lỗi chỉ, đường may bung ở nách 😡",
     "Mình rất thất vọng, mua 3 lần rồi mà lần này chất lượng kém quá"],
     None, [], "lan", ["khiếu nại", "ưu tiên"], None),
    ("Vũ Ngọc Ánh", 120, ["Váy mình mua hôm trước hơi rộng, đổi sang size S được không shop?"],
     ("lan", "Dạ được ạ, shop hỗ trợ đổi size trong 7 ngày, chị gửi lại váy còn tem mác giúp shop nhé."),
     [], "lan", ["đổi trả"], "pending"),
    ("Đặng Quốc Bảo", 95, ["sp nay con ko shop", "image:ao-khoac-bomber.jpg"], None, [], None, [], None),
    ("Bùi Thanh Tâm", 80, ["Ship ra Hà Nội mất mấy ngày vậy shop? Mình ở Cầu Giấy"],
     ("khoa", "Dạ nội thành Hà Nội 1–2 ngày ạ, anh đặt trước 16h là hôm sau nhận ạ."),
     ["Ok cảm ơn shop"], None, [], "resolved"),
    ("Đỗ Khánh Linh", 65, ["Cho mình hỏi mã FREESHIP còn dùng được không ạ?"], None, [], None, [], None),
    ("Ngô Gia Huy", 50, ["đơn hàng DH240815 của mình giao chưa vậy shop, đặt từ thứ 2 rồi",
     "sđt mình 0912 345 678"], None, [], "khoa", ["đơn hàng"], None),
    ("Trịnh Phương Thảo", 40, ["postback:Bắt đầu", "Shop có cửa hàng ở TP.HCM không ạ? Mình muốn qua thử đồ"],
     ("khoa", "Dạ shop có cửa hàng ở 85 Nguyễn Trãi, Quận 1, mở cửa 9h–21h ạ."), [], None, [], "resolved"),
    ("Lý Hoàng Nam", 30, ["giao hang cham qua, hen thu 3 ma gio thu 6 chua thay dau. lan sau ko mua nua"],
     None, [], None, ["khiếu nại"], None),
    ("Phan Thị Kim Oanh", 22, ["Áo khoác dạ màu be còn không shop? Mình lấy 2 cái có giảm không?"],
     ("lan", "Dạ màu be còn ạ, mua 2 cái shop giảm 10% cho chị ạ."), ["Vậy giá 2 cái là bao nhiêu ạ?"],
     "lan", ["hỏi giá", "khách sỉ"], None),
    ("Cao Thùy Dung", 15, ["Cảm ơn shop nhé, áo đẹp lắm, vải mát, sẽ ủng hộ shop dài dài ❤️"],
     ("khoa", "Dạ shop cảm ơn chị nhiều ạ 🥰"), [], None, ["khen"], "resolved"),
    ("Dương Minh Tuấn", 8, ["ib e gia bo do the thao nam nha shop", "size XL"], None, [], None, [], None),
)  # fmt: skip

LIVE_MESSAGES = (
    "Shop ơi còn hàng không ạ?", "sp nay con ko shop", "ib gia giup e", "Giá bao nhiêu vậy shop?",
    "Áo này có màu đen không shop?", "Mình cao 1m65 nặng 55kg mặc size gì ạ?", "size L con ko ạ",
    "Ship về Đà Nẵng bao lâu ạ?", "Ship ra Hà Nội mất mấy ngày shop?", "Có ship COD không shop?",
    "co ship cod k shop", "Phí ship về Cần Thơ bao nhiêu ạ?", "Đơn hàng của mình giao chưa shop?",
    "don cua e den dau r shop", "Mình muốn đổi size được không ạ?", "Áo bị lỗi, mình muốn đổi trả",
    "Hàng giao thiếu 1 cái shop ơi", "Sao đặt 3 ngày rồi chưa thấy gọi xác nhận vậy?",
    "Shop tư vấn giúp mình mẫu đi tiệc với ạ", "Váy này chất liệu gì vậy shop?", "vai co nong ko shop",
    "Có mã giảm giá không shop?", "Mua 2 cái có được giảm không ạ?", "Mình chuyển khoản rồi nhé shop",
    "stk shop la gi vay", "Cửa hàng ở đâu vậy shop?", "Shop mở cửa đến mấy giờ ạ?",
    "Cảm ơn shop, hàng đẹp lắm ạ", "Giao nhanh quá, cảm ơn shop nhiều!", "hang dep, se ung ho tiep",
    "Chán quá, giao sai màu rồi shop ơi", "Liên hệ mãi không ai trả lời là sao vậy?",
    "Sđt mình 0987 654 321, shop gọi lại giúp mình", "Địa chỉ: 45 Trần Phú, Hải Châu, Đà Nẵng",
    "Còn mẫu nào giống mẫu này không shop?", "e lay 1 cai size M mau trang nha", "ok shop",
    "Chốt đơn giúp mình nhé", "Cho mình xem thêm ảnh thật được không?", "alo shop oi",
)  # fmt: skip
_FAMILY = ("Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Huỳnh", "Phan", "Vũ", "Võ", "Đặng", "Bùi", "Đỗ", "Hồ")
_MIDDLE = ("Văn", "Thị", "Minh", "Ngọc", "Thu", "Đức", "Thanh", "Hữu", "Gia", "Bảo", "Kim", "Quốc")
_GIVEN = ("An", "Bình", "Chi", "Dũng", "Giang", "Hà", "Hương", "Khánh", "Lan", "Long", "My", "Nam", "Phúc",
          "Quyên", "Sơn", "Trang", "Tuấn", "Vy", "Yến")  # fmt: skip


def _psid() -> str:
    return "2" + "".join(random.choices("0123456789", k=15))


def random_name() -> str:
    """A Vietnamese full name (family, middle, given) for a customer the simulator makes up."""
    return f"{random.choice(_FAMILY)} {random.choice(_MIDDLE)} {random.choice(_GIVEN)}"


def _mid() -> str:
    return "m_" + secrets.token_urlsafe(30)


def _now_ms() -> int:
    return int(time.time() * 1000)


@dataclass
class Demo:
    base_url: str
    http: aiohttp.ClientSession
    fake: FakeGraphAPI
    app_secret: str
    tokens: dict[str, str] = field(default_factory=dict)
    user_ids: dict[str, int] = field(default_factory=dict)
    customers: dict[str, str] = field(default_factory=dict)  # psid -> name
    widget_token: str = ""  # the website chat inbox (its sample shop page is served at /widget/<token>/demo)

    async def post_event(self, body: dict[str, Any]) -> None:
        raw, headers = signed(body, self.app_secret)
        async with self.http.post(f"{self.base_url}/webhooks/facebook", data=raw, headers=headers) as response:
            if response.status != 200:
                raise RuntimeError(f"webhook answered {response.status}: {await response.text()}")

    async def api(self, who: str, method: str, path: str, payload: dict | None = None) -> Any:
        headers = {"Authorization": f"Bearer {self.tokens[who]}"} if who in self.tokens else {}
        async with self.http.request(method, self.base_url + path, json=payload, headers=headers) as response:
            if response.status >= 400:
                raise RuntimeError(f"{method} {path} answered {response.status}: {await response.text()}")
            return await response.json()

    def customer(self, name: str | None = None) -> str:
        psid = _psid()
        name = name or random_name()
        family, _, given = name.rpartition(" ")
        self.fake.profiles[psid] = {"name": name, "first_name": given, "last_name": family.split(" ")[0]}
        self.customers[psid] = name
        return psid

    async def say(self, psid: str, text: str, ts_ms: int | None = None) -> None:
        ts = ts_ms or _now_ms()
        if text.startswith("postback:"):
            title = text.split(":", 1)[1]
            body = fakes.messenger_postback(PAGE_ID, psid, title, "GET_STARTED", ts, mid=_mid())
        elif text.startswith("image:"):
            url = f"https://scontent.fake-cdn.invalid/demo/{text.split(':', 1)[1]}"
            body = fakes.messenger_attachment(PAGE_ID, psid, _mid(), "image", url, ts)
        else:
            body = fakes.messenger_text(PAGE_ID, psid, _mid(), text, ts)
        await self.post_event(body)

    async def reply(self, who: str, conv_id: int, psid: str, text: str, *, receipts: str = "read") -> dict:
        """An agent's reply through the API, then what Messenger sends back: echo, delivery, read."""
        msg = await self.api(who, "POST", f"/api/conversations/{conv_id}/messages", {"text": text})
        if msg.get("external_id"):
            echo = fakes.messenger_echo(PAGE_ID, psid, msg["external_id"], text, _now_ms(), f"hopthu:{msg['id']}")
            await self.post_event(echo)
        if receipts in ("delivered", "read"):
            await self.post_event(fakes.messenger_delivery(PAGE_ID, psid, _now_ms() + 1000))
        if receipts == "read":
            await self.post_event(fakes.messenger_read(PAGE_ID, psid, _now_ms() + 1000))
        return msg


async def _settled() -> None:
    """Wait (up to 20 s) until the processor has turned every stored webhook into messages."""
    from inbox.models import InboundEvent

    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(20):
            while await InboundEvent.filter(processed=False, error=None).exists():  # noqa: ASYNC110 (a DB poll)
                await asyncio.sleep(0.05)


async def _conversation_id(psid: str) -> int:
    from inbox.models import Conversation

    await _settled()
    conv = await Conversation.filter(identity__external_id=psid).first()
    if conv is None:
        raise RuntimeError(f"no conversation was created for PSID {psid}")
    return conv.id


async def _seed_accounts(demo: Demo) -> dict[str, str]:
    from agents.models import InboxMember, Team, TeamMember, User
    from agents.passwords import hash_password
    from inbox import webchat
    from inbox.models import Inbox

    inbox = await Inbox.create(
        name=PAGE_NAME,
        channel="facebook",
        external_id=PAGE_ID,
        credentials={
            "page_token": "EAAdemo" + secrets.token_urlsafe(32),
            "app_secret": demo.app_secret,
            "verify_token": "hopthu-demo-" + secrets.token_hex(4),
        },
    )
    team = await Team.create(name="Chăm sóc khách hàng")
    # The website chat: its sample shop page is on this server, so no other origin needs allowing.
    website = await webchat.create_inbox(
        "Website " + PAGE_NAME, [], prechat=True, greeting="Xin chào 👋 Shop Mai Anh có thể giúp gì cho bạn ạ?"
    )
    demo.widget_token = website.external_id
    passwords = {}
    for key, role, name, email in STAFF:
        passwords[key] = secrets.token_urlsafe(9)
        user = await User.create(email=email, name=name, role=role, password_hash=hash_password(passwords[key]))
        demo.user_ids[key] = user.id
        if role == "agent":
            await InboxMember.create(inbox=inbox, user=user)
            await InboxMember.create(inbox=website, user=user)
            await TeamMember.create(team=team, user=user)
    for key, _, _, email in STAFF:
        login = await demo.api("-", "POST", "/api/auth/login", {"email": email, "password": passwords[key]})
        demo.tokens[key] = login["token"]
    return passwords


async def _seed_conversations(demo: Demo) -> None:
    from agents.models import Team

    team = await Team.first()
    now = _now_ms()
    psids = [demo.customer(script[0]) for script in SCRIPTS]
    opening = []
    for psid, (_, minutes, texts, *_) in zip(psids, SCRIPTS, strict=True):
        opening += [(now - (minutes - i * 2) * 60_000, psid, text) for i, text in enumerate(texts)]
    for ts, psid, text in sorted(opening):
        await demo.say(psid, text, ts)
    await _settled()
    for psid, (_, _, _, reply, follow_ups, assignee, labels, status) in zip(psids, SCRIPTS, strict=True):
        conv = await _conversation_id(psid)
        if assignee:
            target = {"agent_id": demo.user_ids[assignee], "team_id": team.id if team else None}
            await demo.api("huong", "POST", f"/api/conversations/{conv}/assign", target)
        if reply:  # the agent opens the conversation (marking it read), then answers
            await demo.api(reply[0], "POST", f"/api/conversations/{conv}/read")
            await demo.reply(reply[0], conv, psid, reply[1], receipts=random.choice(("delivered", "read")))
        for text in follow_ups:
            await demo.say(psid, text)
        if labels:
            await demo.api("huong", "POST", f"/api/conversations/{conv}/labels", {"labels": labels})
        if "khiếu nại" in labels:
            note = "Khách đang bức xúc, ưu tiên gọi lại trong hôm nay và đề xuất đổi hàng miễn phí."
            await demo.api("huong", "POST", f"/api/conversations/{conv}/messages", {"text": note, "private": True})
        if status:
            await demo.api("huong", "POST", f"/api/conversations/{conv}/status", {"status": status})
    # The shop owner also answers from Meta Business Suite on her phone: an echo not sent by hopthu.
    kim_oanh = psids[12]
    echo = "Dạ 2 áo khoác dạ sau giảm là 1.242.000đ ạ, chị gửi địa chỉ giúp shop nhé 😊"
    await demo.post_event(fakes.messenger_echo(PAGE_ID, kim_oanh, _mid(), echo, _now_ms(), None, BUSINESS_SUITE_APP_ID))
    await _settled()


async def _enable_bot(demo: Demo) -> None:
    """The FAQ bot answers new customers from here on (after the scripted conversations, which people handle)."""
    from agents.faq_seed import install
    from inbox.models import Inbox

    inbox = await Inbox.get(channel="facebook", external_id=PAGE_ID)
    await install(inbox.id)
    _log("FAQ bot bật / FAQ bot on: thử hỏi 'phí ship bao nhiêu', 'shop ở đâu', 'gặp nhân viên'")


async def _simulate(demo: Demo) -> None:
    """Every 2–4 s: a new or returning customer writes, sends a photo, or reads a reply."""
    from inbox.models import Message

    while True:
        await asyncio.sleep(random.uniform(2.0, 4.0))
        try:
            roll = random.random()
            if roll < 0.12:
                pending = await Message.filter(
                    direction="out", private=False, delivery_status__in=["sent", "delivered"]
                )
                if pending:
                    msg = random.choice(pending)
                    await msg.fetch_related("conversation__identity")
                    psid = msg.conversation.identity.external_id
                    if msg.delivery_status == "sent":
                        await demo.post_event(fakes.messenger_delivery(PAGE_ID, psid, _now_ms()))
                        _log(f"✓ đã nhận / delivered → {demo.customers.get(psid, psid)}")
                    else:
                        await demo.post_event(fakes.messenger_read(PAGE_ID, psid, _now_ms()))
                        _log(f"✓✓ đã xem / read → {demo.customers.get(psid, psid)}")
                    continue
            new = roll > 0.65 or not demo.customers
            psid = demo.customer() if new else random.choice(list(demo.customers))
            text = "image:khach-gui-anh.jpg" if random.random() < 0.08 else random.choice(LIVE_MESSAGES)
            await demo.say(psid, text)
            _log(f"{'+ ' if new else '  '}{demo.customers[psid]}: {text.replace('image:', '[ảnh / photo] ')}")
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # keep simulating: a demo must not die on one bad round
            _log(f"(simulator) {exc}")


def _log(line: str) -> None:
    print(f"  [{time.strftime('%H:%M:%S')}] {line}", flush=True)


def _banner(url: str, passwords: dict[str, str], conv_id: int, simulator: bool, widget_token: str = "") -> str:
    first_email, first_password = STAFF[0][3], passwords[STAFF[0][0]]
    auth = '-H "Authorization: Bearer $TOKEN"'
    take_token = f"{sys.executable} -c 'import json,sys; print(json.load(sys.stdin)[\"token\"])'"
    pretty = f"{sys.executable} -m json.tool --no-ensure-ascii"
    ws_url = url.replace("http://", "ws://") + "/ws?token=$TOKEN"
    try:
        import websockets  # noqa: F401  (only in the test extras)

        watch = f'{sys.executable} -m websockets "{ws_url}"'
    except ImportError:
        watch = (
            f"{sys.executable} -c 'import aiohttp,asyncio,sys\nasync def m():\n"
            "  async with aiohttp.ClientSession() as s, s.ws_connect(sys.argv[1]) as ws:\n"
            "    async for f in ws: print(f.data)\nasyncio.run(m())' " + f'"{ws_url}"'
        )
    lines = [
        "",
        "=" * 78,
        f" hopthu demo — {PAGE_NAME}",
        "=" * 78,
        f" Máy chủ đang chạy / Server running:  {url}",
        f" Cơ sở dữ liệu / Database:            {Path.cwd() / DB_FILE} (tạo mới mỗi lần / fresh each run)",
        " Trình mô phỏng / Simulator:          "
        + ("bật — khách nhắn mỗi 2–4 giây / on — a customer writes every 2–4 s" if simulator else "tắt / off"),
        "",
        " Tài khoản đăng nhập / Logins (role, e-mail, password, name):",
        *(f"   {role:<11} {email:<24} {passwords[key]:<14} {name}" for key, role, name, email in STAFF),
        "",
        " Thử API bằng curl / Try the API with curl (bash):",
        f"   TOKEN=$(curl -s -X POST {url}/api/auth/login -H 'Content-Type: application/json' "
        f"""-d '{{"email":"{first_email}","password":"{first_password}"}}' | {take_token})""",
        f"   curl -s {auth} '{url}/api/conversations?limit=5' | {pretty}",
        f"   curl -s {auth} {url}/api/conversations/{conv_id}/messages | {pretty}",
        f"   curl -s -X POST {auth} -H 'Content-Type: application/json' "
        f"""-d '{{"text":"Dạ shop chào bạn ạ"}}' {url}/api/conversations/{conv_id}/messages | {pretty}""",
        f"   {watch}",
        "",
        f" Tài liệu API / API docs: {url}/api/openapi.json",
        f" Giao diện web / Web app:  {url}/  (đăng nhập bằng một tài khoản ở trên / log in with a login above)",
        f" Trang shop mẫu có khung chat / Sample shop page with the chat widget:  {url}/widget/{widget_token}/demo",
        " Nhấn Ctrl-C để dừng / Press Ctrl-C to stop.",
        "=" * 78,
        "",
    ]
    return "\n".join(lines)


def _port_free(host: str, port: int) -> bool:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def _fresh_database() -> str:
    path = Path.cwd() / DB_FILE
    for suffix in ("", "-wal", "-shm", "-journal"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    return f"sqlite://{path}"


async def _main(host: str, port: int, simulator: bool) -> int:
    from inbox.app import create_app
    from inbox.config import load_settings

    if not _port_free(host, port):
        print(f"Lỗi: cổng {port} đang bận — thử: hopthu demo --port {port + 1}", file=sys.stderr)
        print(f"error: port {port} on {host} is in use — try: hopthu demo --port {port + 1}", file=sys.stderr)
        return 1
    if os.environ.get("HOPTHU_DATABASE_URL"):
        print(f"(HOPTHU_DATABASE_URL is ignored: the demo always uses its own {DB_FILE})")
    fake = FakeGraphAPI()
    graph_url = await fake.start("127.0.0.1", 0)
    zalo_fake = FakeZaloAPI(app_secret=secrets.token_hex(16))  # the demo's Zalo OA talks to this local fake
    zalo_url = await zalo_fake.start("127.0.0.1", 0)
    environ = {k: v for k, v in os.environ.items() if k.startswith("HOPTHU_")}
    environ |= {"HOPTHU_DATABASE_URL": _fresh_database(), "HOPTHU_FACEBOOK_GRAPH_URL": graph_url}
    environ |= {"HOPTHU_ZALO_OPENAPI_URL": zalo_url, "HOPTHU_ZALO_OAUTH_URL": zalo_url}
    environ |= {
        "HOPTHU_REDIS_URL": "",
        "HOPTHU_SECRET_KEY": environ.get("HOPTHU_SECRET_KEY") or secrets.token_urlsafe(48),
    }
    runner = web.AppRunner(create_app(load_settings(environ)), access_log=None, shutdown_timeout=3.0)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    tasks: list[asyncio.Task] = []
    try:
        await runner.setup()
        await web.TCPSite(runner, host, port).start()
        local = "127.0.0.1" if host in ("0.0.0.0", "", "::") else host
        url = f"http://{f'[{local}]' if ':' in local else local}:{port}"
        async with aiohttp.ClientSession() as http:
            demo = Demo(url, http, fake, app_secret=secrets.token_hex(16))
            print(f"Đang tạo dữ liệu mẫu / seeding demo data on {url} …", flush=True)
            passwords = await _seed_accounts(demo)
            await _seed_conversations(demo)
            from contacts.demo_data import seed_orders  # past orders: customer value and RFM segments

            await seed_orders()
            channels_demo = await demo_channels.seed(demo, zalo_fake)  # Page comments and the Zalo OA
            await _enable_bot(demo)
            conv_id = await _conversation_id(next(iter(demo.customers)))
            print(_banner(url, passwords, conv_id, simulator, demo.widget_token), flush=True)
            if simulator:
                tasks.append(asyncio.create_task(_simulate(demo), name="demo-simulator"))
                tasks.append(asyncio.create_task(demo_channels.simulate(channels_demo, _log), name="demo-channels"))
            await stop.wait()
            print("\nĐang dừng / shutting down …", flush=True)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
    finally:
        for task in tasks:
            task.cancel()
        await runner.cleanup()
        await fake.stop()
        await zalo_fake.stop()
    print("Đã dừng / stopped.", flush=True)
    return 0


def run_demo(host: str = "127.0.0.1", port: int = 8080, simulator: bool = True) -> int:
    with contextlib.suppress(AttributeError, ValueError):
        sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from inbox.event_loop import loop_factory

    try:
        with asyncio.Runner(loop_factory=loop_factory("auto")) as runner:  # uvloop when installed, as `serve`
            return runner.run(_main(host, port, simulator))
    except KeyboardInterrupt:  # a second Ctrl-C, or a platform without signal handlers
        return 130
