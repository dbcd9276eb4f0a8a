"""The demo's Page comments and Zalo OA: a seeded post with comments (one auto-hidden for its phone number),
a Zalo OA served by the local fake Zalo API, and a simulator that keeps posting signed comment and Zalo webhooks
through the real endpoints (`/webhooks/facebook`, `/webhooks/zalo`)."""

from __future__ import annotations

import asyncio
import random
import secrets
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from channels import fakes, fakes_zalo
from channels.fakes_zalo import FakeZaloAPI

if TYPE_CHECKING:
    from inbox.demo import Demo

OA_ID = "4318650519027215123"  # ids beyond 2^53, as Zalo's are
ZALO_APP_ID = "3608465249409039671"
POST_NUMBER = "712750021053074"
POST_TEXT = "🌸 BST váy hoa mùa hè đã về! Chất voan lụa mát, đủ size S–XL, giá chỉ 349k. Comment để shop tư vấn nhé!"

COMMENTS = (
    ("Nguyễn Thị Thu Trang", "Váy hoa xanh còn size M không shop?"),
    ("Đỗ Văn Nam", "Giá bao nhiêu vậy ạ"),
    ("Bùi Ngọc Yến", "Mình lấy 1 cái, sđt 0912 345 678 gọi mình nhé"),  # auto-hidden: a phone number
    ("Phan Thị Ngọc", "Đẹp quá, có màu vàng không shop?"),
)
# Edited a moment later to add a phone number: the comment is hidden then, and its analysis read again.
EDITED_COMMENT = "Đẹp quá, có màu vàng không shop? Gọi mình 0934 567 890 nha"
LIVE_COMMENTS = (
    "Còn hàng không shop?", "Ib giá giúp mình", "Size L còn không ạ", "Ship về Hà Nội bao lâu shop?",
    "Chất vải có nhăn không ạ", "Em lấy 2 cái nhé, 0987.654.321", "Có freeship không shop",
)  # fmt: skip
ZALO_CUSTOMERS = (
    ("Lê Hoàng Phúc", ["Chào shop, mình muốn hỏi đơn hàng #DH10293 khi nào giao ạ?"]),
    ("Trịnh Mỹ Linh", ["Shop có bán sỉ không ạ?", "Mình muốn lấy 50 cái áo thun"]),
)
LIVE_ZALO = (
    "Shop ơi còn áo sơ mi trắng không", "Cho mình xin bảng giá sỉ", "Đơn của mình giao chưa shop?",
    "Mình muốn đổi size được không ạ", "Cảm ơn shop nhiều nha",
)  # fmt: skip


@dataclass
class ChannelsDemo:
    demo: Demo
    zalo: FakeZaloAPI
    oa_secret: str
    commenters: dict[str, str] = field(default_factory=dict)  # user id → name
    zalo_users: list[str] = field(default_factory=list)
    counter: int = 0

    @property
    def post_id(self) -> str:
        from inbox.demo import PAGE_ID

        return f"{PAGE_ID}_{POST_NUMBER}"

    def next_id(self) -> int:
        self.counter += 1
        return self.counter

    async def comment(self, user: str, name: str, text: str) -> tuple[str, int]:
        """Posts a new comment; returns its id and creation time (what an edit of it repeats)."""
        from inbox.demo import PAGE_ID

        comment_id = f"{POST_NUMBER}_{int(time.time() * 1000)}{self.next_id():04d}"
        created = int(time.time())
        # The fake Graph API answers for this person with the name they comment under (it makes one up otherwise)
        family, _, given = name.rpartition(" ")
        self.demo.fake.profiles.setdefault(user, {"name": name, "first_name": given, "last_name": family.split(" ")[0]})
        body = fakes.page_comment(PAGE_ID, self.post_id, comment_id, user, text, created, name=name)
        await self.demo.post_event(body)
        return comment_id, created

    async def edit_comment(self, user: str, name: str, comment: tuple[str, int], text: str) -> None:
        from inbox.demo import PAGE_ID

        comment_id, created = comment
        body = fakes.page_comment(PAGE_ID, self.post_id, comment_id, user, text, created, name=name, verb="edited",
                                  entry_time_s=int(time.time()))  # fmt: skip
        await self.demo.post_event(body)

    async def zalo_says(self, user: str, text: str) -> None:
        msg_id = secrets.token_hex(10)
        await self.post_zalo(fakes_zalo.user_text(ZALO_APP_ID, OA_ID, user, msg_id, text, int(time.time() * 1000)))

    async def post_zalo(self, body: dict[str, Any]) -> None:
        raw, headers = fakes_zalo.signed(body, self.oa_secret)
        async with self.demo.http.post(f"{self.demo.base_url}/webhooks/zalo", data=raw, headers=headers) as response:
            if response.status != 200:
                raise RuntimeError(f"Zalo webhook answered {response.status}: {await response.text()}")


def _user_id() -> str:
    return "1" + "".join(random.choices("0123456789", k=18))


async def seed(demo: Demo, zalo: FakeZaloAPI) -> ChannelsDemo:
    """A Zalo OA inbox (same agents), a post with comments, Zalo conversations, one Zalo reply."""
    from agents.models import InboxMember, User
    from inbox.models import Conversation, Inbox

    oa_secret = secrets.token_hex(16)
    oa = await Inbox.create(
        name="Zalo OA Mai Anh", channel="zalo", external_id=OA_ID,
        credentials={"app_id": ZALO_APP_ID, "oa_secret": oa_secret, "access_token": zalo.access_token,
                     "refresh_token": zalo.refresh_token, "app_secret": zalo.app_secret or "demo-app-secret"},
    )  # fmt: skip
    for user in await User.filter(role="agent"):
        await InboxMember.create(inbox=oa, user=user)
    post = {"message": POST_TEXT, "permalink_url": f"https://facebook.com/{POST_NUMBER}"}
    demo.fake.posts[f"{_page_id()}_{POST_NUMBER}"] = post
    state = ChannelsDemo(demo, zalo, oa_secret)
    for name, text in COMMENTS:
        user = _user_id()
        state.commenters[user] = name
        last = await state.comment(user, name, text)
    await state.edit_comment(user, name, last, EDITED_COMMENT)
    for name, texts in ZALO_CUSTOMERS:
        user = _user_id()
        zalo.profiles[user] = {"display_name": name}
        state.zalo_users.append(user)
        for text in texts:
            await state.zalo_says(user, text)
    phone_user = state.zalo_users[0]
    await state.post_zalo(fakes_zalo.submit_info(ZALO_APP_ID, OA_ID, phone_user, int(time.time() * 1000),
                                                 phone="0903123456", name=ZALO_CUSTOMERS[0][0]))  # fmt: skip
    await asyncio.sleep(1.0)  # let the processor store them before an agent answers
    conv = await Conversation.filter(inbox_id=oa.id, identity__external_id=phone_user).first()
    if conv is not None and "khoa" in demo.tokens:
        text = "Dạ đơn #DH10293 đang được giao, dự kiến tới chiều mai ạ."
        await demo.api("khoa", "POST", f"/api/conversations/{conv.id}/messages", {"text": text})
    return state


def _page_id() -> str:
    from inbox.demo import PAGE_ID

    return PAGE_ID


async def simulate(state: ChannelsDemo, log: Any) -> None:
    """Every 5–9 s: a comment under the post, or a Zalo message."""
    from inbox.demo import random_name

    while True:
        await asyncio.sleep(random.uniform(5.0, 9.0))
        try:
            if random.random() < 0.5:
                user = random.choice([*state.commenters, _user_id()])
                name = state.commenters.setdefault(user, random_name())
                text = random.choice(LIVE_COMMENTS)
                await state.comment(user, name, text)
                log(f"💬 bình luận / comment — {name}: {text}")
            else:
                new = random.random() < 0.3 or not state.zalo_users
                user = _user_id() if new else random.choice(state.zalo_users)
                if new:
                    state.zalo_users.append(user)
                text = random.choice(LIVE_ZALO)
                await state.zalo_says(user, text)
                log(f"Zalo — {user[-4:]}: {text}")
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a demo must not die on one bad round
            log(f"(simulator) {exc}")
