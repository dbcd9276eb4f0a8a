"""Entities in real-world Vietnamese chat spellings: phones (→ E.164), prices, addresses, sizes, colours…"""

from __future__ import annotations

import json
import unicodedata

import pytest

from nlp.entities import extract, has_personal_data, phones

# (text, the E.164 numbers a person reading it would note down)
PHONE_CASES = [
    ("sdt em 0912345678 nha", ["+84912345678"]),
    ("0912 345 678", ["+84912345678"]),
    ("0912.345.678", ["+84912345678"]),
    ("0912-345-678", ["+84912345678"]),
    ("+84 912345678", ["+84912345678"]),
    ("+84912345678", ["+84912345678"]),
    ("84912345678", ["+84912345678"]),
    ("+84 912 345 678", ["+84912345678"]),
    ("(+84) 912 345 678", ["+84912345678"]),
    ("số của chị: 0987 654 321 gọi sau 5h", ["+84987654321"]),
    ("zalo 0357.123.456", ["+84357123456"]),
    ("0703 999 888 là số mới", ["+84703999888"]),
    ("liên hệ 0868-777-666", ["+84868777666"]),
    ("SĐT:0398765432", ["+84398765432"]),
    ("sdt0934567890", []),  # glued to letters: ambiguous, left alone
    ("gọi 0909 12 34 56 giúp em", ["+84909123456"]),
    ("0912345678 lấy 2 cái size M", ["+84912345678"]),
    ("em tên Lan, 0977123456, giao giờ hành chính", ["+84977123456"]),
    ("hai số: 0912345678 hoặc 0987654321", ["+84912345678", "+84987654321"]),
    ("0912345678/0987654321", ["+84912345678", "+84987654321"]),
    ("bàn 028 3822 1234", ["+842838221234"]),
    ("(028) 3822 1234", ["+842838221234"]),
    ("024.3825.1234", ["+842438251234"]),
    ("024 3825 1234", ["+842438251234"]),
    ("0236 3821 123 (Đà Nẵng)", ["+842363821123"]),
    ("hotline 1900 1234", ["+8419001234"]),
    ("tổng đài 1800 6789", ["+8418006789"]),
    ("+84 28 3822 1234", ["+842838221234"]),
    ("số em 0 9 1 2 3 4 5 6 7 8", ["+84912345678"]),
    ("0912 345 678.", ["+84912345678"]),
    ("SĐT 0961.234.567, đc 12 Lê Lợi", ["+84961234567"]),
    # not phones
    ("giá 1.200.000đ nhé", []),
    ("mã đơn DH2411250012", []),
    ("đơn 250.000 ship 30.000", []),
    ("em cao 1m58 nặng 50kg", []),
    ("ngày 12/11/2025", []),
    ("123456789", []),
    ("0123", []),
    ("stk 1903 4567 8901 23 techcombank", []),
]


@pytest.mark.parametrize("text", ["sdt 0168 234 5678 nha", "0168.234.5678", "+84 168 234 5678", "841682345678"])
def test_an_old_eleven_digit_mobile_number_is_the_number_it_became(text: str) -> None:
    """Renumbered in 2018 (0168 → 038): still a phone to extract, to offer as the contact's, and to hide."""
    assert phones(text) == ["+84382345678"]
    assert has_personal_data(text)


def test_phone_spellings_normalise_to_e164_with_f1_at_least_098() -> None:
    tp = fp = fn = 0
    misses = []
    for text, expected in PHONE_CASES:
        found = phones(text)
        tp += len(set(found) & set(expected))
        fp += len(set(found) - set(expected))
        fn += len(set(expected) - set(found))
        if set(found) != set(expected):
            misses.append((text, found, expected))
    precision = tp / (tp + fp) if tp + fp else 1.0
    recall = tp / (tp + fn) if tp + fn else 1.0
    f1 = 2 * precision * recall / (precision + recall)
    assert f1 >= 0.98, misses


@pytest.mark.parametrize(
    ("text", "amount"),
    [
        ("150k", 150_000),
        ("giá 199K ạ", 199_000),
        ("1tr2", 1_200_000),
        ("1tr250", 1_250_000),
        ("1.200.000đ", 1_200_000),
        ("1.200.000 đ", 1_200_000),
        ("1,200,000 VND", 1_200_000),
        ("2 triệu", 2_000_000),
        ("2 trieu", 2_000_000),
        ("1,5 triệu", 1_500_000),
        ("350 nghìn", 350_000),
        ("350 ngàn", 350_000),
        ("1k5", 1_500),
        ("450.000", 450_000),
        ("250000đ", 250_000),
        ("3 củ", 3_000_000),
        ("1 tỷ", 1_000_000_000),
    ],
)
def test_prices(text: str, amount: int) -> None:
    prices = [e for e in extract(text) if e["type"] == "price"]
    assert [p["normalized"] for p in prices] == [amount]


def test_addresses_with_parts_and_province_list() -> None:
    text = "giao về 123 Nguyễn Trãi, P. Bến Thành, Q.1, TP.HCM giúp em"
    (addr,) = [e for e in extract(text) if e["type"] == "address"]
    assert addr["value"] == "123 Nguyễn Trãi, P. Bến Thành, Q.1, TP.HCM"
    assert addr["parts"]["house"] == "123" and addr["parts"]["street"] == "Nguyễn Trãi"
    assert addr["parts"]["ward"] == "P. Bến Thành" and addr["parts"]["district"] == "Q.1"
    assert addr["parts"]["province"] == "Thành phố Hồ Chí Minh"

    (addr,) = [e for e in extract("dia chi: 45/12 le van sy, phuong 13, quan 3, hcm") if e["type"] == "address"]
    assert addr["parts"]["house"] == "45/12" and addr["parts"]["ward"] == "phuong 13"

    (addr,) = [e for e in extract("em ở xã Tân Phú, huyện Đồng Phú, Bình Phước") if e["type"] == "address"]
    # Bình Phước merged into Đồng Nai on 1 July 2025: both are reported
    assert addr["parts"]["province"] == "Bình Phước" and addr["parts"]["province_current"] == "Đồng Nai"

    (addr,) = [e for e in extract("số 12 ngõ 34 Tôn Đức Thắng, Đống Đa, Hà Nội") if e["type"] == "address"]
    assert addr["value"].endswith("Hà Nội")


def test_a_city_alone_is_a_location_not_personal_data() -> None:
    ents = extract("ship về Đà Nẵng bao lâu")
    assert [(e["type"], e["normalized"]) for e in ents] == [("location", "Đà Nẵng")]
    assert not has_personal_data("ship về Đà Nẵng bao lâu")
    assert has_personal_data("sdt 0912345678")
    assert has_personal_data("giao 12 Lê Lợi, Q1 nhé")
    assert has_personal_data("mail em: lan.nguyen@gmail.com")
    assert not has_personal_data("ship xa không shop")


def test_size_colour_quantity_order_code_email() -> None:
    got = {(e["type"], e["normalized"]) for e in extract("lấy 2 cái áo màu đen size XL, mã đơn DH2411250012")}
    assert {("quantity", 2), ("color", "đen"), ("size", "XL"), ("order_code", "DH2411250012")} <= got
    assert ("size", "M") in {(e["type"], e["normalized"]) for e in extract("còn size M không ạ")}
    assert ("color", "đỏ nhạt") in {(e["type"], e["normalized"]) for e in extract("mau do nhat co ko")}
    assert ("quantity", 2) in {(e["type"], e["normalized"]) for e in extract("hai hộp kem")}
    assert ("order_code", "88812") in {(e["type"], e["normalized"]) for e in extract("đơn #88812 của em")}
    assert ("email", "lan.nguyen@gmail.com") in {(e["type"], e["normalized"]) for e in extract("Lan.Nguyen@Gmail.com")}
    # words that are colours only with diacritics are not colours without them
    assert not [e for e in extract("không do shop đâu, den nha") if e["type"] == "color"]


@pytest.mark.parametrize(
    "text",
    [
        "Giao về 123 Nguyễn Trãi, Q.1, TP.HCM — sđt 0912 345 678, giá 1tr2, size XL màu đỏ 😍",
        "😍😍 sdt 0912345678 😍 giao 12 Lê Lợi, Q1",
    ],
)
@pytest.mark.parametrize("form", ["NFC", "NFD"])
def test_offsets_point_into_the_original_text(text: str, form: str) -> None:
    original = unicodedata.normalize(form, text)
    ents = extract(original)
    assert ents
    for e in ents:
        assert original[e["start"] : e["end"]] == e["value"]
    assert json.loads(json.dumps(ents, ensure_ascii=False)) == ents
    assert [e["start"] for e in ents] == sorted(e["start"] for e in ents)


def test_empty_and_odd_input() -> None:
    assert extract("") == []
    assert extract("???") == []
    assert extract("a" * 10_000) == []
