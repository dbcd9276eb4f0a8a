"""channels/webchat.py: visitor tokens, identity hashes, the pre-chat form and image checks (no server)."""

from __future__ import annotations

import time

import pytest

from channels import webchat
from channels.events import ParseError
from inbox.phones import normalize_phone

SECRET = "server-secret-key"


def test_visitor_token_round_trip_and_tampering() -> None:
    visitor = webchat.new_visitor("widget-A")
    token = webchat.sign_visitor(SECRET, visitor)
    assert webchat.verify_visitor(SECRET, token, "widget-A") == visitor
    payload, signature = token.split(".")
    forged = webchat.sign_visitor("another-secret", webchat.Visitor("widget-A", "u:admin@shop.vn"))
    for bad in (forged, payload + "." + signature[::-1], payload, "", "a.b", forged.split(".")[0] + "." + signature):
        with pytest.raises(webchat.InvalidVisitor):
            webchat.verify_visitor(SECRET, bad, "widget-A")
    with pytest.raises(webchat.InvalidVisitor, match="another widget"):
        webchat.verify_visitor(SECRET, token, "widget-B")  # one site's visitor is not another's
    old = webchat.sign_visitor(SECRET, visitor, now=time.time() - webchat.TOKEN_LIFETIME_SECONDS - 60)
    with pytest.raises(webchat.InvalidVisitor, match="expired"):
        webchat.verify_visitor(SECRET, old, "widget-A")


def test_identifier_hash_vector() -> None:
    # HMAC-SHA256(key="widget-secret", msg="khach-42@shop.vn"), hex (computed with Python's hmac module).
    digest = webchat.identifier_hash("widget-secret", "khach-42@shop.vn")
    assert digest == "07c486a70fb3d664549c07e81ad283cf3ef263f602577e43fdb9b14ba770c938"
    visitor = webchat.identified_visitor("w", "widget-secret", "khach-42@shop.vn", digest.upper())
    assert visitor.external_id == "u:khach-42@shop.vn" and visitor.identified
    for identifier, given in (("khach-42@shop.vn", "0" * 64), ("", digest), ("x" * 101, digest)):
        with pytest.raises(webchat.InvalidVisitor):
            webchat.identified_visitor("w", "widget-secret", identifier, given)
    with pytest.raises(webchat.InvalidVisitor):
        webchat.identified_visitor("w", "", "khach-42@shop.vn", digest)  # no secret configured: nobody verifies


def test_message_ids_name_their_visitor_exactly() -> None:
    visitor = webchat.Visitor("w", "u:a:b@c")
    external_id = webchat.message_external_id(visitor, "echo-1")
    assert webchat.split_external_id(external_id) == ("echo-1", "u:a:b@c")
    assert webchat.split_external_id("m_123") is None and webchat.split_external_id(None) is None
    event = webchat.visitor_message(visitor, {"echo_id": "echo-1", "text": "  Chào shop  "})
    assert (event.text, event.external_id, event.contact_external_id) == ("Chào shop", external_id, "u:a:b@c")
    for data in ({"echo_id": "a:b", "text": "x"}, {"echo_id": "e", "text": ""}, {"echo_id": "e", "text": 5}, []):
        with pytest.raises(ParseError):
            webchat.visitor_message(visitor, data)


def test_prechat_form() -> None:
    form = webchat.prechat_form(
        {"name": "  Lê   Thu Hà ", "phone": "0912 345 678", "email": "Ha@Shop.VN", "consent": True}, normalize_phone
    )
    assert form == webchat.PreChat("Lê Thu Hà", "+84912345678", "ha@shop.vn", True)
    for data, field in (
        ({"name": "A", "consent": "yes"}, "consent"),
        ({"phone": "12", "consent": True}, "phone"),
        ({"email": "not-an-email", "consent": True}, "email"),
        ({"email": "<script>@x.vn", "consent": True}, "email"),
        ({"consent": True}, "name"),
        ({"name": "x" * 201, "consent": True}, "name"),
    ):
        with pytest.raises(ParseError, match=f"^{field}:"):
            webchat.prechat_form(data, normalize_phone)


def test_images_are_recognised_by_their_bytes() -> None:
    assert webchat.sniff_image(b"\x89PNG\r\n\x1a\n....") == ("image/png", "png")
    assert webchat.sniff_image(b"\xff\xd8\xff\xe0....") == ("image/jpeg", "jpg")
    assert webchat.sniff_image(b"GIF89a...") == ("image/gif", "gif")
    assert webchat.sniff_image(b"RIFF\x00\x00\x00\x00WEBPVP8 ") == ("image/webp", "webp")
    for other in (b"<svg onload=alert(1)>", b"<html>", b"%PDF-1.4", b""):
        assert webchat.sniff_image(other) is None
