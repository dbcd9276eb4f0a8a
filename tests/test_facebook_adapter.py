"""The Facebook Messenger adapter: signatures, handshake, parsing, Graph client (against the local fake)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import aiohttp
import pytest

from channels import facebook as fb
from channels.base import Profile, SendError
from channels.events import (
    Attachment,
    InboundMessage,
    ParseError,
    Receipt,
    Referral,
    ThreadControl,
    Unrecognized,
    from_record,
    record_json,
    to_record,
)
from channels.fakes import (
    FakeGraphAPI,
    messenger_app_roles,
    messenger_attachment,
    messenger_batch,
    messenger_delivery,
    messenger_echo,
    messenger_handover,
    messenger_postback,
    messenger_read,
    messenger_text,
    running_fake_graph,
    signed,
    vietnamese_profile,
)
from inbox.sql import json_param

# Ids beyond 2^53 (9007199254740992): a float round-trip would corrupt them.
PAGE = "106123456789012345"
PSID = "24850189432165437"
TS = 1717225200123  # 2024-06-01 07:00:00.123 UTC = 14:00 in Hà Nội
AT = datetime(2024, 6, 1, 7, 0, 0, 123000, tzinfo=UTC)

VECTOR_SECRET = "test_app_secret"
VECTOR_BODY = (
    '{"object":"page","entry":[{"id":"PAGE_ID","time":1458692752478,"messaging":[{"sender":{"id":"PSID"},'
    '"recipient":{"id":"PAGE_ID"},"timestamp":1458692752478,"message":{"mid":"mid.1457764197618:41d102a3e1ae206a38",'
    '"text":"hello, world!"}}]}]}'
)
VECTOR_HEADER = "sha256=eec1906d2e5dc1a43a1014f196b421cf9d7b6696ead890eadf906dbbfe03f791"


def only(events: list) -> object:
    assert len(events) == 1, events
    return events[0]


# ---------------------------------------------------------------------------------------------- signature


def test_signature_matches_channels_md_vector() -> None:
    raw = VECTOR_BODY.encode()
    assert fb.sign(raw, VECTOR_SECRET) == VECTOR_HEADER
    assert fb.verify_signature(raw, VECTOR_HEADER, VECTOR_SECRET)


def test_tampered_body_fails() -> None:
    raw = VECTOR_BODY.replace("hello, world!", "hello, world?").encode()
    assert not fb.verify_signature(raw, VECTOR_HEADER, VECTOR_SECRET)
    assert not fb.verify_signature(VECTOR_BODY.encode() + b"\n", VECTOR_HEADER, VECTOR_SECRET)


def test_wrong_secret_fails() -> None:
    assert not fb.verify_signature(VECTOR_BODY.encode(), VECTOR_HEADER, "other_secret")
    assert not fb.verify_signature(VECTOR_BODY.encode(), VECTOR_HEADER, "")


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "sha256=",
        VECTOR_HEADER.removeprefix("sha256="),  # no algorithm prefix
        "sha1=" + VECTOR_HEADER.removeprefix("sha256="),  # legacy header value is not accepted here
        VECTOR_HEADER[:-2],
        "sha256=đây-không-phải-hex",
    ],
)
def test_missing_or_malformed_header_fails(header: str | None) -> None:
    assert not fb.verify_signature(VECTOR_BODY.encode(), header, VECTOR_SECRET)


def test_signed_helper_produces_verifiable_compact_bytes() -> None:
    body = messenger_text(PAGE, PSID, "m_1", "Chào shop, áo này còn size M không ạ?", TS)
    raw, headers = signed(body, "s3cret")
    assert headers["Content-Type"] == "application/json"
    assert fb.verify_signature(raw, headers["X-Hub-Signature-256"], "s3cret")
    assert b" " not in raw.split(b'"text"')[0]  # compact separators
    assert json.loads(raw) == body


# ---------------------------------------------------------------------------------------------- handshake


def test_handshake_ok_returns_challenge() -> None:
    params = {"hub.mode": "subscribe", "hub.verify_token": "tok-2", "hub.challenge": "1158201444"}
    assert fb.handshake_challenge(params, ["tok-1", "tok-2"]) == "1158201444"


@pytest.mark.parametrize(
    "params",
    [
        {"hub.mode": "subscribe", "hub.verify_token": "wrong", "hub.challenge": "c"},
        {"hub.mode": "unsubscribe", "hub.verify_token": "tok", "hub.challenge": "c"},
        {"hub.verify_token": "tok", "hub.challenge": "c"},
        {"hub.mode": "subscribe", "hub.challenge": "c"},
        {"hub.mode": "subscribe", "hub.verify_token": "tok"},
        {"hub.mode": "subscribe", "hub.verify_token": "mã-sai", "hub.challenge": "c"},
    ],
)
def test_handshake_refused(params: dict[str, str]) -> None:
    assert fb.handshake_challenge(params, ["tok"]) is None


def test_handshake_never_matches_empty_configured_token() -> None:
    params = {"hub.mode": "subscribe", "hub.verify_token": "", "hub.challenge": "c"}
    assert fb.handshake_challenge(params, [""]) is None
    assert fb.handshake_challenge(params, []) is None


# ---------------------------------------------------------------------------------------------- messages


def test_page_ids_are_strings_in_order_without_duplicates() -> None:
    raw = b'{"object":"page","entry":[{"id":106123456789012345,"messaging":[]},{"id":"2"},{"id":"106123456789012345"}]}'
    assert fb.page_ids(json.loads(raw)) == ["106123456789012345", "2"]
    assert fb.page_ids(None) == [] and fb.page_ids({"entry": "x"}) == []


def test_parse_vietnamese_text_message() -> None:
    body = messenger_text(PAGE, PSID, "m_AbC-123", "Chào shop, áo này còn size M không ạ? 😊", TS)
    msg = only(fb.parse(body))
    assert msg == InboundMessage(
        channel="facebook",
        account_id=PAGE,
        contact_external_id=PSID,
        external_id="m_AbC-123",
        occurred_at=AT,
        text="Chào shop, áo này còn size M không ạ? 😊",
    )
    assert msg.occurred_at.tzinfo is UTC and msg.direction == "in"


def test_numeric_ids_beyond_2_53_stay_exact() -> None:
    raw = (
        b'{"object":"page","entry":[{"id":106123456789012345,"time":1717225200123,"messaging":[{"sender":'
        b'{"id":24850189432165437},"recipient":{"id":106123456789012345},"timestamp":1717225200123,'
        b'"message":{"mid":"m_1","text":"\\u0110\\u00e3 nh\\u1eadn"}}]}]}'
    )
    msg = only(fb.parse(json.loads(raw)))
    assert isinstance(msg, InboundMessage)
    assert (msg.account_id, msg.contact_external_id) == (PAGE, PSID)
    assert msg.text == "Đã nhận" and msg.occurred_at == AT


def test_the_channels_md_sample_parses() -> None:
    msg = only(fb.parse(json.loads(VECTOR_BODY)))
    assert isinstance(msg, InboundMessage)
    assert msg.external_id == "mid.1457764197618:41d102a3e1ae206a38"
    assert msg.occurred_at == datetime(2016, 3, 23, 0, 25, 52, 478000, tzinfo=UTC)


def test_batched_entries_keep_order_and_pages() -> None:
    other_page = "987654321098765432"
    body = messenger_batch(
        messenger_text(PAGE, PSID, "m_1", "một", TS),
        messenger_text(other_page, "31000000000000001", "m_2", "hai", TS + 1),
        messenger_read(PAGE, PSID, TS + 2),
    )
    body["entry"][0]["messaging"].append(messenger_text(PAGE, PSID, "m_3", "ba", TS + 3)["entry"][0]["messaging"][0])
    events = fb.parse(body)
    assert [type(e) for e in events] == [InboundMessage, InboundMessage, InboundMessage, Receipt]
    assert [getattr(e, "external_id", None) for e in events] == ["m_1", "m_3", "m_2", None]
    assert [e.account_id for e in events] == [PAGE, PAGE, other_page, PAGE]
    assert fb.page_ids(body) == [PAGE, other_page]


@pytest.mark.parametrize("kind", ["image", "video", "audio", "file", "reel"])
def test_attachment_without_text(kind: str) -> None:
    url = f"https://scontent.xx.fbcdn.net/v/t1.15752-9/{kind}.bin?_nc_cat=1&oh=abc"
    msg = only(fb.parse(messenger_attachment(PAGE, PSID, "m_att", kind, url, TS)))
    assert isinstance(msg, InboundMessage)
    assert msg.text is None
    assert msg.attachments == (Attachment(kind=kind, url=url),)


def test_ig_reel_sticker_location_fallback_and_template_attachments() -> None:
    body = messenger_text(PAGE, PSID, "m_multi", "", TS)
    message = body["entry"][0]["messaging"][0]["message"]
    del message["text"]
    message["attachments"] = [
        {"type": "ig_reel", "payload": {"url": "https://lookaside.fbsbx.com/ig_reel", "title": "Review váy"}},
        {"type": "image", "payload": {"url": "https://scontent.xx.fbcdn.net/s.png", "sticker_id": 369239263}},
        {
            "type": "location",
            "title": "Vị trí của Lan",
            "url": "https://l.facebook.com/l.php?u=maps",
            "payload": {"coordinates": {"lat": 21.028511, "long": 105.804817}},
        },
        {"type": "fallback", "title": "Xem bài viết", "url": "https://fb.me/abc"},
        {"type": "fallback", "payload": None},
        {"type": "template", "payload": {"template_type": "button", "text": "Chọn size giúp em ạ"}},
        {"type": "something_new", "payload": {"url": "https://x.example/y"}},
        "not an attachment",
    ]
    msg = only(fb.parse(body))
    assert isinstance(msg, InboundMessage) and msg.text is None
    assert msg.attachments == (
        Attachment(kind="reel", url="https://lookaside.fbsbx.com/ig_reel", title="Review váy"),
        Attachment(kind="sticker", url="https://scontent.xx.fbcdn.net/s.png"),
        Attachment(
            kind="location", url="https://l.facebook.com/l.php?u=maps", latitude=21.028511,
            longitude=105.804817, title="Vị trí của Lan",
        ),
        Attachment(kind="fallback", url="https://fb.me/abc", title="Xem bài viết"),
        Attachment(kind="fallback"),
        Attachment(kind="template", title="Chọn size giúp em ạ"),
        Attachment(kind="fallback", url="https://x.example/y"),
    )  # fmt: skip


def test_sticker_builder_shape() -> None:
    msg = only(fb.parse(messenger_attachment(PAGE, PSID, "m_s", "sticker", "https://x/s.png", TS)))
    assert isinstance(msg, InboundMessage) and msg.attachments[0].kind == "sticker"


def test_quick_reply_reply_to_and_referral_on_message() -> None:
    body = messenger_text(PAGE, PSID, "m_q", "Size M", TS)
    message = body["entry"][0]["messaging"][0]["message"]
    message["quick_reply"] = {"payload": "SIZE_M"}
    message["reply_to"] = {"mid": "m_earlier"}
    message["referral"] = {"source": "ADS", "type": "OPEN_THREAD", "ad_id": "6045246247433"}
    msg = only(fb.parse(body))
    assert isinstance(msg, InboundMessage)
    assert msg.quick_reply_payload == "SIZE_M"
    assert msg.reply_to_external_id == "m_earlier"
    assert msg.referral == {"source": "ADS", "type": "OPEN_THREAD", "ad_id": "6045246247433"}


def test_echo_is_outgoing_to_the_recipient() -> None:
    body = messenger_echo(PAGE, PSID, "m_echo", "Dạ còn ạ, chị lấy màu gì?", TS, metadata="hopthu:42")
    msg = only(fb.parse(body))
    assert isinstance(msg, InboundMessage)
    assert msg.direction == "out"
    assert msg.account_id == PAGE and msg.contact_external_id == PSID
    assert msg.app_id == "1517776481860111" and msg.metadata == "hopthu:42"
    assert msg.text == "Dạ còn ạ, chị lấy màu gì?"


def test_echo_from_business_suite_without_metadata() -> None:
    msg = only(fb.parse(messenger_echo(PAGE, PSID, "m_bs", "ok", TS, app_id="263902037430900")))
    assert isinstance(msg, InboundMessage) and msg.metadata is None and msg.app_id == "263902037430900"


def test_standby_is_parsed_like_messaging() -> None:
    body = messenger_text(PAGE, PSID, "m_sb", "Alo", TS)
    entry = body["entry"][0]
    entry["standby"] = entry.pop("messaging")
    msg = only(fb.parse(body))
    assert isinstance(msg, InboundMessage) and msg.external_id == "m_sb"


# ---------------------------------------------------------------------------------------------- others


def test_delivery_with_and_without_mids() -> None:
    with_mids = only(fb.parse(messenger_delivery(PAGE, PSID, TS, mids=["m_1", "m_2"])))
    assert with_mids == Receipt(
        channel="facebook", account_id=PAGE, contact_external_id=PSID, status="delivered", watermark=AT,
        external_ids=("m_1", "m_2"),
    )  # fmt: skip
    without = only(fb.parse(messenger_delivery(PAGE, PSID, TS)))
    assert isinstance(without, Receipt) and without.external_ids == () and without.watermark == AT


def test_read_receipt() -> None:
    receipt = only(fb.parse(messenger_read(PAGE, PSID, TS, ts_ms=TS + 500)))
    assert receipt == Receipt(
        channel="facebook", account_id=PAGE, contact_external_id=PSID, status="read", watermark=AT
    )


def test_postback_with_mid() -> None:
    body = messenger_postback(PAGE, PSID, "Bắt đầu", "GET_STARTED", TS, mid="m_pb")
    msg = only(fb.parse(body))
    assert isinstance(msg, InboundMessage)
    assert (msg.external_id, msg.text) == ("m_pb", "Bắt đầu")
    assert (msg.postback_payload, msg.postback_title) == ("GET_STARTED", "Bắt đầu")


def test_postback_without_mid_gets_stable_synthetic_id() -> None:
    body = messenger_postback(PAGE, PSID, "Xem giỏ hàng", "CART", TS)
    first, again = only(fb.parse(body)), only(fb.parse(json.loads(json.dumps(body))))
    assert isinstance(first, InboundMessage) and isinstance(again, InboundMessage)
    assert first.external_id.startswith("postback:")
    assert first.external_id == again.external_id
    other = only(fb.parse(messenger_postback(PAGE, PSID, "Xem giỏ hàng", "CART", TS + 1)))
    assert isinstance(other, InboundMessage) and other.external_id != first.external_id


def test_postback_referral() -> None:
    ref = {"ref": "summer-sale", "source": "SHORTLINK", "type": "OPEN_THREAD"}
    msg = only(fb.parse(messenger_postback(PAGE, PSID, "Get Started", "GS", TS, referral=ref)))
    assert isinstance(msg, InboundMessage) and msg.referral == ref


def test_referral_without_message() -> None:
    ref = {"ref": "fb-ad-123", "source": "ADS", "type": "OPEN_THREAD", "ad_id": "6045246247433"}
    body = messenger_text(PAGE, PSID, "unused", "", TS)
    event = body["entry"][0]["messaging"][0]
    del event["message"]
    event["referral"] = ref
    assert only(fb.parse(body)) == Referral(
        channel="facebook", account_id=PAGE, contact_external_id=PSID, occurred_at=AT, referral=ref
    )


def test_feed_comments_are_parsed_as_comment_messages() -> None:
    """Page comments (issue 4): each `changes[]` item becomes a message in the post's thread, time in seconds."""
    change = {
        "field": "feed",
        "value": {
            "from": {"id": "2426000000000001", "name": "Lan Phạm"}, "message": "+1", "item": "comment",
            "post_id": "206070979425408_712750021053074", "comment_id": "712750021053074_1063824911537852",
            "created_time": 1707211876, "parent_id": "206070979425408_712750021053074", "verb": "add",
        },
    }  # fmt: skip
    body = {"object": "page", "entry": [{"id": PAGE, "time": 1707211877, "changes": [change, change]}]}
    events = fb.parse(body)
    assert len(events) == 2
    for event in events:
        assert isinstance(event, InboundMessage)
        assert (event.account_id, event.contact_external_id) == (PAGE, "2426000000000001")
        assert event.external_id == "712750021053074_1063824911537852" and event.text == "+1"
        assert event.thread_key == "post:206070979425408_712750021053074"
        assert event.occurred_at == datetime.fromtimestamp(1707211876, UTC)


@pytest.mark.parametrize(
    "payload",
    [
        [],
        None,
        "page",
        42,
        {"object": "user", "entry": []},
        {"object": "instagram", "entry": []},
        {"object": "page"},
        {"object": "page", "entry": {"id": PAGE}},
        {"object": "page", "entry": None},
        {"entry": []},
    ],
)
def test_garbage_envelope_raises_parse_error(payload: object) -> None:
    with pytest.raises(ParseError):
        fb.parse(payload)


def test_empty_entry_list_is_fine() -> None:
    assert fb.parse({"object": "page", "entry": []}) == []


@pytest.mark.parametrize("standby", [False, True], ids=["messaging", "standby"])
def test_handover_events_are_thread_control_changes(standby: bool) -> None:
    bot, inbox_app = "1781234567890123", "263902037430900"
    passed = messenger_handover(
        PAGE, PSID, TS, new_owner_app_id=inbox_app, previous_owner_app_id=bot, metadata="Khách cần người thật",
        standby=standby,
    )  # fmt: skip
    assert only(fb.parse(passed)) == ThreadControl(
        channel="facebook", account_id=PAGE, contact_external_id=PSID, action="passed", occurred_at=AT,
        new_owner_app_id=inbox_app, previous_owner_app_id=bot, metadata="Khách cần người thật",
    )  # fmt: skip
    taken = only(fb.parse(messenger_handover(PAGE, PSID, TS, "take_thread_control", new_owner_app_id=bot)))
    assert isinstance(taken, ThreadControl)
    assert (taken.action, taken.new_owner_app_id, taken.previous_owner_app_id) == ("taken", bot, None)
    requested = only(fb.parse(messenger_handover(PAGE, PSID, TS, "request_thread_control", new_owner_app_id=bot)))
    assert isinstance(requested, ThreadControl)
    assert (requested.action, requested.new_owner_app_id, requested.metadata) == ("requested", bot, None)
    for event in (taken, requested):
        assert from_record(json.loads(json.dumps(to_record(event)))) == event
        _assert_same_record_json(event)
    assert len({e.dedupe_key() for e in fb.parse(messenger_batch(passed, passed))}) == 1


def test_app_roles_are_acknowledged_not_dead_lettered() -> None:
    assert fb.parse(messenger_app_roles(PAGE, TS, {"263902037430900": ["primary_receiver"]})) == []


def _event(**fields: object) -> dict:
    return {"sender": {"id": PSID}, "recipient": {"id": PAGE}, "timestamp": TS, **fields}


@pytest.mark.parametrize(
    ("entry", "reason_part"),
    [
        ("not an entry", "entry is not an object"),
        ({"id": PAGE, "time": TS}, "no messaging"),
        ({"id": PAGE, "messaging": {"oops": 1}}, "not a list"),
        ({"id": PAGE, "messaging": [None]}, "not an object"),
        ({"id": PAGE, "messaging": [_event(message="hi")]}, "message is not an object"),
        ({"id": PAGE, "messaging": [_event(message={"text": "no mid"})]}, "mid"),
        ({"id": PAGE, "messaging": [_event(message={"mid": "m"}, timestamp="hôm qua")]}, "timestamp"),
        ({"id": PAGE, "messaging": [{"message": {"mid": "m", "text": "x"}, "timestamp": TS}]}, "user"),
        ({"id": PAGE, "messaging": [_event(future_feature={"mid": "m_1"})]}, "unsupported"),
        ({"id": PAGE, "messaging": [_event(delivery={"mids": ["m_1"]})]}, "watermark"),
        ({"id": PAGE, "messaging": [_event(read={"watermark": "never"})]}, "watermark"),
        ({"id": PAGE, "messaging": [_event(postback="GET_STARTED")]}, "postback"),
        ({"id": PAGE, "messaging": [_event(referral=["ADS"])]}, "referral"),
        ({"id": PAGE, "messaging": [_event(pass_thread_control="263902037430900")]}, "pass_thread_control"),
    ],
)
def test_weird_events_become_unrecognized(entry: object, reason_part: str) -> None:
    good = messenger_text(PAGE, PSID, "m_ok", "vẫn nhận", TS)["entry"][0]
    events = fb.parse({"object": "page", "entry": [entry, good]})
    bad, ok = events
    assert isinstance(bad, Unrecognized), bad
    assert reason_part in bad.reason
    assert isinstance(bad.payload, dict)
    assert bad.account_id == (PAGE if isinstance(entry, dict) else None)
    assert isinstance(ok, InboundMessage) and ok.external_id == "m_ok"


def test_missing_event_timestamp_falls_back_to_entry_time() -> None:
    body = messenger_text(PAGE, PSID, "m_t", "x", TS)
    del body["entry"][0]["messaging"][0]["timestamp"]
    msg = only(fb.parse(body))
    assert isinstance(msg, InboundMessage) and msg.occurred_at == AT


def _assert_same_record_json(event: object) -> None:
    """What the ack path stores (`record_json`) is the text the general path would write, or fails alike."""
    try:
        expected = json_param(to_record(event))
    except TypeError:  # orjson refuses it (an integer beyond 64 bits in a payload): a dead letter either way
        with pytest.raises(TypeError):
            record_json(event)
    else:
        assert record_json(event) == expected


def test_parsed_events_survive_record_round_trip() -> None:
    body = messenger_batch(
        messenger_text(PAGE, PSID, "m_1", "Cho em xin giá", TS),
        messenger_attachment(PAGE, PSID, "m_2", "image", "https://x/a.jpg", TS + 1),
        messenger_delivery(PAGE, PSID, TS + 2, mids=["m_9"]),
        messenger_postback(PAGE, PSID, "Mua ngay", "BUY", TS + 3),
    )
    for event in fb.parse(body):
        record = json.loads(json.dumps(to_record(event), ensure_ascii=False))
        assert from_record(record) == event
        # The ack path stores `record_json`: the same record, key for key and in the same order.
        _assert_same_record_json(event)
    keys = [e.dedupe_key() for e in fb.parse(body)]
    assert keys == [e.dedupe_key() for e in fb.parse(json.loads(json.dumps(body)))]
    assert len(set(keys)) == len(keys)


# ---------------------------------------------------------------------------------------------- errors


WINDOW_ERROR = {
    "message": "(#10) This message is sent outside of allowed window.",
    "type": "OAuthException",
    "code": 10,
    "error_subcode": 2018278,
    "fbtrace_id": "A1b2C3",
}


@pytest.mark.parametrize(
    ("status", "error", "code", "retryable"),
    [
        (400, WINDOW_ERROR, "outside_window", False),
        (400, {"message": "(#10) outside of allowed window", "code": 10}, "outside_window", False),
        (400, {"message": "(#551) This person isn't available.", "code": 551}, "user_unavailable", False),
        (400, {"message": "x", "code": 100, "error_subcode": 1545041}, "user_unavailable", False),
        (400, {"message": "Session has expired", "code": 190, "error_subcode": 463}, "token_invalid", False),
        (400, {"message": "(#4) Application request limit reached", "code": 4}, "rate_limited", True),
        (400, {"message": "(#613) Calls exceeded the rate limit.", "code": 613}, "rate_limited", True),
        (400, {"message": "(#32) Page request limit reached", "code": 32}, "rate_limited", True),
        (429, None, "rate_limited", True),
        (500, {"message": "An unknown error has occurred.", "code": 1}, "platform_error", True),
        (503, None, "platform_error", True),
        (400, {"message": "An unexpected error has occurred.", "code": 2}, "platform_error", True),
        (400, {"message": "(#100) Invalid parameter", "code": 100}, "rejected", False),
        (400, {"message": "(#10) Requires pages_messaging permission", "code": 10, "error_subcode": 2018065},
         "rejected", False),
    ],
)  # fmt: skip
def test_classify_error(status: int, error: dict | None, code: str, retryable: bool) -> None:
    err = fb.classify_error(status, {"error": error} if error else "<html>Bad Gateway</html>")
    assert isinstance(err, SendError)
    assert (err.code, err.retryable) == (code, retryable)
    assert err.reason and "(" in err.reason  # Vietnamese first, English in parentheses


def test_classify_error_messages_are_readable() -> None:
    assert fb.classify_error(400, {"error": WINDOW_ERROR}).reason == (
        "Ngoài khung 24 giờ của Messenger (outside the 24-hour window)"
    )
    rejected = fb.classify_error(400, {"error": {"message": "(#100) Invalid parameter", "code": 100}})
    assert "(#100) Invalid parameter" in rejected.reason
    assert "HTTP 418" in fb.classify_error(418, None).reason
    assert fb.classify_error(400, {"error": {"code": "190"}}).code == "token_invalid"


# ---------------------------------------------------------------------------------------------- Graph client


@pytest.fixture
async def graph():
    async with running_fake_graph() as fake, aiohttp.ClientSession() as session:
        yield fake, fb.GraphClient(fake.base_url, session)


async def test_send_text_returns_message_id_and_records_body(graph) -> None:
    fake, client = graph
    result = await client.send_message(
        "PAGE_TOKEN", PSID, text="Dạ shop gửi chị bảng giá ạ", messaging_type="MESSAGE_TAG",
        tag="HUMAN_AGENT", metadata="hopthu:msg:77",
    )  # fmt: skip
    assert result.external_id == "m_1"
    [request] = fake.requests
    assert (request.method, request.path) == ("POST", "/v25.0/me/messages")
    assert request.query == {"access_token": "PAGE_TOKEN"}
    assert request.json == {
        "recipient": {"id": PSID},
        "messaging_type": "MESSAGE_TAG",
        "tag": "HUMAN_AGENT",
        "message": {"text": "Dạ shop gửi chị bảng giá ạ", "metadata": "hopthu:msg:77"},
    }
    assert fake.sent_messages() == [request.json]


async def test_send_defaults_to_response_without_tag(graph) -> None:
    fake, client = graph
    await client.send_message("T", PSID, text="Chào chị")
    second = await client.send_message("T", PSID, text="Chị cần tư vấn gì ạ?")
    assert second.external_id == "m_2"
    body = fake.sent_messages()[0]
    assert body["messaging_type"] == "RESPONSE" and "tag" not in body
    assert body["message"] == {"text": "Chào chị"}


async def test_send_attachment(graph) -> None:
    fake, client = graph
    url = "https://cdn.example/bang-gia.png"
    await client.send_message("T", PSID, attachment_url=url, attachment_kind="image")
    assert fake.sent_messages()[0]["message"] == {
        "attachment": {"type": "image", "payload": {"url": url, "is_reusable": True}}
    }


async def test_send_needs_exactly_one_of_text_or_attachment(graph) -> None:
    _, client = graph
    with pytest.raises(ValueError):
        await client.send_message("T", PSID)
    with pytest.raises(ValueError):
        await client.send_message("T", PSID, text="x", attachment_url="https://x/y.png")


async def test_window_error_is_not_retryable(graph) -> None:
    fake, client = graph
    fake.fail_next(1, status=400, error=WINDOW_ERROR)
    with pytest.raises(SendError) as info:
        await client.send_message("T", PSID, text="Chị ơi")
    assert info.value.code == "outside_window" and info.value.retryable is False
    assert "24 giờ" in info.value.reason
    assert (await client.send_message("T", PSID, text="lại")).external_id == "m_1"  # only one failure queued


async def test_server_error_is_retryable(graph) -> None:
    fake, client = graph
    fake.fail_next(2)
    for _ in range(2):
        with pytest.raises(SendError) as info:
            await client.send_message("T", PSID, text="x")
        assert info.value.retryable is True and info.value.code == "platform_error"
    assert len(fake.sent_messages()) == 2


async def test_invalid_token(graph) -> None:
    fake, client = graph
    fake.valid_tokens = {"GOOD"}
    with pytest.raises(SendError) as info:
        await client.send_message("EXPIRED", PSID, text="x")
    assert info.value.code == "token_invalid" and not info.value.retryable


async def test_network_error_is_retryable() -> None:
    fake = FakeGraphAPI()
    base_url = await fake.start()
    await fake.stop()  # nothing listens there any more
    async with aiohttp.ClientSession() as session:
        with pytest.raises(SendError) as info:
            await fb.GraphClient(base_url, session).send_message("T", PSID, text="x")
    assert info.value.retryable is True and info.value.code == "network_error"
    assert info.value.reason == fb.NETWORK_REASON


async def test_fetch_profile_default_and_custom(graph) -> None:
    fake, client = graph
    profile = await client.fetch_profile("T", PSID)
    expected = vietnamese_profile(PSID)
    assert profile == Profile(name=expected["name"], picture_url=expected["profile_pic"])
    [request] = fake.requests
    assert (request.method, request.path) == ("GET", f"/v25.0/{PSID}")
    assert request.query == {"fields": "first_name,last_name,name,profile_pic", "access_token": "T"}

    fake.profiles["42"] = {"first_name": "Hương", "last_name": "Trần"}
    assert await client.fetch_profile("T", "42") == Profile(name="Hương Trần", picture_url=None)


async def test_fetch_profile_failure(graph) -> None:
    fake, client = graph
    fake.fail_next(1, status=400, error={"message": "(#551) unavailable", "code": 551}, on="profile")
    with pytest.raises(SendError) as info:
        await client.fetch_profile("T", PSID)
    assert info.value.code == "user_unavailable"


async def test_fake_page_id_route_and_validation(graph) -> None:
    fake, client = graph
    async with client.session.post(
        f"{fake.base_url}/v25.0/{PAGE}/messages", params={"access_token": "T"},
        json={"recipient": {"id": PSID}, "message": {}},
    ) as resp:  # fmt: skip
        assert resp.status == 400
        assert (await resp.json())["error"]["code"] == 100
    assert fake.requests[0].path == f"/v25.0/{PAGE}/messages"


# ---------------------------------------------------------------------------------------------- property

try:  # optional: the property tests need hypothesis, the rest of this module does not
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st
except ImportError:  # pragma: no cover
    st = None


if st is not None:
    _scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12)
    json_values = st.recursive(
        _scalars,
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
        max_leaves=12,
    )

    def _mostly(strategy: st.SearchStrategy) -> st.SearchStrategy:
        """Usually the plausible shape, sometimes any JSON at all: random enough to find crashes, plausible
        enough that parsing gets past the first check and into attachments, receipts and postbacks."""
        return st.integers(0, 9).flatmap(lambda roll: json_values if roll == 0 else strategy)

    def _obj(required: dict | None = None, **optional: st.SearchStrategy) -> st.SearchStrategy:
        return _mostly(st.fixed_dictionaries(required or {}, optional=optional))

    _ids = _mostly(st.text(min_size=1, max_size=20) | st.integers(min_value=-(2**70), max_value=2**70))
    _stamps = _mostly(
        st.integers(min_value=0, max_value=2**45)
        | st.integers(min_value=-(2**70), max_value=2**70)
        | st.floats(allow_nan=True, allow_infinity=True)
        | st.text(alphabet="0123456789-", max_size=24)
    )
    _party = _obj({"id": _ids})
    _attachment = _obj(
        {"type": _mostly(st.sampled_from([*fb._ATTACHMENT_KINDS, "sticker"]))},
        payload=_obj(
            url=json_values, sticker_id=json_values, name=json_values, title=json_values, text=json_values,
            coordinates=_obj(lat=st.floats() | json_values, long=st.floats() | json_values),
            elements=st.lists(_obj(title=json_values), max_size=2) | json_values,
        ),
        url=json_values,
        title=json_values,
    )  # fmt: skip
    _message = _obj(
        {"mid": _ids},
        text=json_values, is_echo=st.booleans() | json_values, app_id=_ids, metadata=json_values,
        attachments=_mostly(st.lists(_attachment, max_size=3)), quick_reply=_obj(payload=json_values),
        reply_to=_obj(mid=_ids), referral=json_values,
    )  # fmt: skip
    _receipt = _obj({"watermark": _stamps}, mids=_mostly(st.lists(_ids, max_size=3)))
    _handover = _obj(new_owner_app_id=_ids, previous_owner_app_id=_ids, metadata=json_values) | json_values
    _kinds = {
        "message": _message,
        "delivery": _receipt,
        "read": _receipt,
        "postback": _obj(mid=_ids, title=json_values, payload=json_values, referral=json_values),
        "referral": _mostly(st.dictionaries(st.text(max_size=8), json_values, max_size=3)),
        "reaction": _obj(mid=_ids, reaction=json_values, emoji=json_values, action=json_values) | json_values,
        "message_edit": _obj(mid=_ids, text=json_values, num_edit=json_values) | json_values,
        "pass_thread_control": _handover,
        "take_thread_control": _handover,
        "request_thread_control": _obj(requested_owner_app_id=_ids, metadata=json_values) | json_values,
        "app_roles": json_values,
    }
    _event = st.sampled_from(sorted(_kinds)).flatmap(
        lambda kind: _obj({"sender": _party, "recipient": _party, "timestamp": _stamps, kind: _kinds[kind]})
    )
    _entry = _obj(
        {"id": _ids, "time": _stamps, "messaging": _mostly(st.lists(_event, max_size=3))},
        standby=_mostly(st.lists(_event, max_size=2)), changes=json_values,
    )  # fmt: skip
    _payloads = st.one_of(
        st.fixed_dictionaries({"object": st.just("page"), "entry": st.lists(_entry, max_size=3)}),
        st.fixed_dictionaries({}, optional={"object": st.just("page") | json_values, "entry": json_values}),
    )

    _PROPERTY = settings(
        max_examples=400,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow],
    )

    def _check_parse(payload: object) -> None:
        try:
            events = fb.parse(payload)
        except ParseError:
            return
        for event in events:
            assert isinstance(event, fb.ParsedEvent)
            if isinstance(event, Unrecognized):
                # The catch-all in the parser is a safety net; random input must never need it.
                assert not event.reason.startswith("could not parse event"), event.reason
                assert isinstance(event.payload, dict)
                continue
            assert isinstance(event.account_id, str) and isinstance(event.contact_external_id, str)
            assert isinstance(event.dedupe_key(), str)
            json.dumps(to_record(event))
            _assert_same_record_json(event)
            stamp = event.watermark if isinstance(event, Receipt) else event.occurred_at
            assert stamp.tzinfo is not None and stamp.utcoffset() == timedelta(0)

    @_PROPERTY
    @given(json_values)
    def test_random_json_never_raises_anything_but_parse_error(payload: object) -> None:
        _check_parse(payload)

    @_PROPERTY
    @given(_payloads)
    def test_random_messenger_shaped_payloads_never_raise_anything_but_parse_error(payload: object) -> None:
        _check_parse(payload)
        fb.page_ids(payload)

else:

    def test_parse_property_tests_need_hypothesis() -> None:
        pytest.skip("pip install hypothesis to run the parse property tests")
