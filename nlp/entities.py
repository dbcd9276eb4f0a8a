"""Entities in Vietnamese chat: phone, e-mail, order code, price, quantity, size, colour, address, location.

`extract(text)` returns a list of dicts `{type, value, normalized, start, end}` sorted by `start`; `value` is
`text[start:end]` (offsets into the ORIGINAL text, whatever its diacritics or Unicode form).

`normalized` per type:
- phone: E.164 string (`+84912345678`), via `phonenumbers`;
- email: lower-cased address;
- order_code: upper-cased code without `#`;
- price: integer amount in VND (`1tr2` → 1200000);
- quantity: integer count; `unit` holds the unit word when there is one;
- size: upper-cased size (`M`, `XL`, `39`);
- colour (`color`): the colour in Vietnamese with diacritics (`xanh dương`);
- address: the address text tidied up; `parts` holds `house`, `street`, `ward`, `district`, `province`
  (and `province_current`, the province after the 2025 merger, when the text used an old name);
- location: a province or city on its own (`ship về Đà Nẵng`) — not an address, so not personal data.

Most matching runs on folded text (lower case, no diacritics), because a quarter of real chat has no diacritics.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field

import phonenumbers

from inbox.phones import renumbered
from nlp.text import Folded, fold

# ---------------------------------------------------------------------------------------------------------------
# Provinces: the 34 provincial units in force since 1 July 2025, and the old names people still write, mapped to
# the unit they were merged into.
CURRENT_PROVINCES = [
    "Hà Nội", "Huế", "Hải Phòng", "Đà Nẵng", "Thành phố Hồ Chí Minh", "Cần Thơ",
    "Lai Châu", "Điện Biên", "Sơn La", "Lạng Sơn", "Quảng Ninh", "Thanh Hóa", "Nghệ An", "Hà Tĩnh", "Cao Bằng",
    "Tuyên Quang", "Lào Cai", "Thái Nguyên", "Phú Thọ", "Bắc Ninh", "Hưng Yên", "Ninh Bình", "Quảng Trị",
    "Quảng Ngãi", "Gia Lai", "Khánh Hòa", "Lâm Đồng", "Đắk Lắk", "Đồng Nai", "Tây Ninh", "Vĩnh Long",
    "Đồng Tháp", "Cà Mau", "An Giang",
]  # fmt: skip
MERGED_PROVINCES = {
    "Hà Giang": "Tuyên Quang", "Yên Bái": "Lào Cai", "Bắc Kạn": "Thái Nguyên", "Vĩnh Phúc": "Phú Thọ",
    "Hòa Bình": "Phú Thọ", "Bắc Giang": "Bắc Ninh", "Thái Bình": "Hưng Yên", "Hải Dương": "Hải Phòng",
    "Hà Nam": "Ninh Bình", "Nam Định": "Ninh Bình", "Quảng Bình": "Quảng Trị", "Quảng Nam": "Đà Nẵng",
    "Kon Tum": "Quảng Ngãi", "Bình Định": "Gia Lai", "Ninh Thuận": "Khánh Hòa", "Đắk Nông": "Lâm Đồng",
    "Bình Thuận": "Lâm Đồng", "Phú Yên": "Đắk Lắk", "Bình Dương": "Thành phố Hồ Chí Minh",
    "Bà Rịa - Vũng Tàu": "Thành phố Hồ Chí Minh", "Bình Phước": "Đồng Nai", "Long An": "Tây Ninh",
    "Sóc Trăng": "Cần Thơ", "Hậu Giang": "Cần Thơ", "Bến Tre": "Vĩnh Long", "Trà Vinh": "Vĩnh Long",
    "Tiền Giang": "Đồng Tháp", "Bạc Liêu": "Cà Mau", "Kiên Giang": "An Giang", "Thừa Thiên Huế": "Huế",
}  # fmt: skip
# Other spellings → canonical name. Short abbreviations (hn, sg, hcm) are safe only inside an address chain.
PROVINCE_ALIASES = {
    "tp hcm": "Thành phố Hồ Chí Minh", "tphcm": "Thành phố Hồ Chí Minh", "tp.hcm": "Thành phố Hồ Chí Minh",
    "tp. hcm": "Thành phố Hồ Chí Minh", "ho chi minh": "Thành phố Hồ Chí Minh", "hcm": "Thành phố Hồ Chí Minh",
    "sai gon": "Thành phố Hồ Chí Minh", "saigon": "Thành phố Hồ Chí Minh", "hcmc": "Thành phố Hồ Chí Minh",
    "ha noi": "Hà Nội", "hanoi": "Hà Noi", "da nang": "Đà Nẵng", "danang": "Đà Nẵng", "hai phong": "Hải Phòng",
    "can tho": "Cần Thơ", "vung tau": "Bà Rịa - Vũng Tàu", "ba ria vung tau": "Bà Rịa - Vũng Tàu",
    "ba ria - vung tau": "Bà Rịa - Vũng Tàu", "brvt": "Bà Rịa - Vũng Tàu", "dak lak": "Đắk Lắk",
    "daklak": "Đắk Lắk", "dac lac": "Đắk Lắk", "dak nong": "Đắk Nông", "thua thien hue": "Thừa Thiên Huế",
    "thanh hoa": "Thanh Hóa", "khanh hoa": "Khánh Hòa", "hoa binh": "Hòa Bình",
}  # fmt: skip
SHORT_PROVINCES = {"hn": "Hà Nội", "sg": "Thành phố Hồ Chí Minh", "dn": "Đà Nẵng", "hp": "Hải Phòng"}
PROVINCE_ALIASES["hanoi"] = "Hà Nội"


def _province_table() -> dict[str, str]:
    table: dict[str, str] = {}
    for name in [*CURRENT_PROVINCES, *MERGED_PROVINCES]:
        table[fold(name)] = name
    table[fold("Hồ Chí Minh")] = "Thành phố Hồ Chí Minh"
    table.update(PROVINCE_ALIASES)
    return table


PROVINCES = _province_table()
_PROVINCE_RE = re.compile(
    r"(?<![\w.])(?:(?:tinh|thanh pho|tp\.?)\s*)?("
    + "|".join(sorted((re.escape(k) for k in PROVINCES), key=len, reverse=True))
    + r")(?![\w])"
)
_SHORT_PROVINCE_RE = re.compile(r"(?<![\w.])(?:tp\.?\s*)?(hn|sg|dn|hp)(?![\w])")


def current_province(name: str) -> str:
    return MERGED_PROVINCES.get(name, name)


# ---------------------------------------------------------------------------------------------------------------
@dataclass(slots=True)
class Entity:
    type: str
    start: int
    end: int
    normalized: object
    extra: dict = field(default_factory=dict)

    def to_dict(self, text: str) -> dict:
        return {
            "type": self.type,
            "value": text[self.start : self.end],
            "normalized": self.normalized,
            "start": self.start,
            "end": self.end,
            **self.extra,
        }


# ---------------------------------------------------------------------------------------------------------------
# Phones. A run of digit groups joined by single separators; the longest prefix of groups that is a valid
# Vietnamese number wins, so "0912345678 2 cái" yields the phone and leaves "2 cái" alone.
_PHONE_RUN = re.compile(r"(?<![\w+])\+?\(?\+?\d+\)?(?:(?:[ .\-]|\s?[.\-]\s?)\(?\d+\)?)*")
_GROUP = re.compile(r"\d+")


def _phone_digits_ok(digits: str) -> bool:
    if digits.startswith("0"):
        return len(digits) in (10, 11)
    if digits.startswith("84"):
        return len(digits) in (11, 12)
    return digits.startswith(("1800", "1900")) and len(digits) in (8, 10)


def _parse_phone(digits: str) -> str | None:
    if not _phone_digits_ok(digits):
        return None
    candidate = "+" + digits if digits.startswith("84") and len(digits) >= 11 else digits
    try:
        num = renumbered(phonenumbers.parse(candidate, "VN"))  # 0168… is the 038… it became
    except phonenumbers.NumberParseException:
        return None
    if num.country_code != 84 or not phonenumbers.is_valid_number(num):
        return None
    return phonenumbers.format_number(num, phonenumbers.PhoneNumberFormat.E164)


def _phones(text: str) -> Iterator[Entity]:
    for run in _PHONE_RUN.finditer(text):
        groups = [(m.start() + run.start(), m.end() + run.start(), m.group()) for m in _GROUP.finditer(run.group())]
        i = 0
        while i < len(groups):
            found = False
            for j in range(len(groups), i, -1):
                digits = "".join(g[2] for g in groups[i:j])
                if len(digits) > 12:
                    continue
                e164 = _parse_phone(digits)
                if e164:
                    start = groups[i][0]
                    if start > 0 and text[start - 1] == "+":
                        start -= 1
                    elif start > 0 and text[start - 1] == "(":
                        start -= 1
                        if start > 0 and text[start - 1] == "+":
                            start -= 1
                    end = groups[j - 1][1]
                    if end < len(text) and text[end] == ")" and "(" in text[start:end]:
                        end += 1
                    yield Entity("phone", start, end, e164)
                    i, found = j, True
                    break
            if not found:
                i += 1


# ---------------------------------------------------------------------------------------------------------------
_EMAIL = re.compile(r"(?<![\w.+-])[A-Za-z0-9][A-Za-z0-9._%+-]*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")


def _emails(text: str) -> Iterator[Entity]:
    for m in _EMAIL.finditer(text):
        yield Entity("email", m.start(), m.end(), m.group().lower())


# ---------------------------------------------------------------------------------------------------------------
# Order codes: after a keyword ("mã đơn DH1234", "đơn #88812"), a hash number, or a carrier-style code.
_ORDER_KW = re.compile(
    r"(?<!\w)(?:ma\s*(?:don(?:\s*hang)?|van\s*don|dh|order)|madon|mvd|don\s*hang|don\s*so|don|order(?:\s*id)?|"
    r"tracking)\s*(?:so\s*|la\s*)?[:#]?\s*(#?[a-z0-9][a-z0-9\-]{3,24})(?!\w)"
)
_ORDER_HASH = re.compile(r"(?<![\w&])#(\d{4,12})(?!\w)")
_ORDER_CODE = re.compile(r"(?<![\w])([A-Z]{2,6}\d{5,}[A-Z]{0,3}|[A-Z]{2,5}-\d{4,}[A-Z0-9-]*)(?![\w])")


def _order_codes(text: str, f: Folded) -> Iterator[Entity]:
    for m in _ORDER_KW.finditer(f.folded):
        code = m.group(1)
        if not any(c.isdigit() for c in code) or (code.lstrip("#").isdigit() and len(code.lstrip("#")) > 12):
            continue
        start, end = f.orig(m.start(1), m.end(1))
        yield Entity("order_code", start, end, text[start:end].lstrip("#").upper())
    for m in _ORDER_HASH.finditer(text):
        yield Entity("order_code", m.start(), m.end(), m.group(1))
    for m in _ORDER_CODE.finditer(text):
        yield Entity("order_code", m.start(), m.end(), m.group(1).upper())


# ---------------------------------------------------------------------------------------------------------------
# Prices.
_NUM = r"\d+(?:[.,]\d+)*"
_PRICE_UNIT = re.compile(
    rf"(?<![\w.,])({_NUM})\s?(trieu|tr|cu|ty|ti|k|nghin|ngan|canh|xi|vnd|dong|d|₫)(\d{{1,3}})?(?![\w])"
)
_PRICE_BARE = re.compile(r"(?<![\w.,])(\d{1,3}(?:[.,]\d{3}){1,3})(?![\w.,]?\d)")
_UNIT_SCALE = {
    "trieu": 6, "tr": 6, "cu": 6, "ty": 9, "ti": 9, "k": 3, "nghin": 3, "ngan": 3, "canh": 3, "xi": 3,
    "vnd": 0, "dong": 0, "d": 0, "₫": 0,
}  # fmt: skip
_PRICE_CONTEXT = re.compile(r"(gia|bao nhieu|tien|phi|ship|het|tong|con|giam|chi|tra|ck|chuyen)\W*$")


def _parse_number(raw: str) -> float:
    if re.fullmatch(r"\d{1,3}(?:[.,]\d{3})+", raw):
        return float(re.sub(r"[.,]", "", raw))
    if raw.count(",") + raw.count(".") > 1:
        return float(re.sub(r"[.,]", "", raw))
    return float(raw.replace(",", "."))


def _prices(text: str, f: Folded) -> Iterator[Entity]:
    s = f.folded
    for m in _PRICE_UNIT.finditer(s):
        raw, unit, tail = m.group(1), m.group(2), m.group(3)
        scale = _UNIT_SCALE[unit]
        try:
            value = _parse_number(raw)
        except ValueError:
            continue
        if scale == 0 and value < 1000:  # "2 đồng", "5d" are not prices in chat
            continue
        if unit in ("d", "dong") and raw.isdigit() and len(raw) < 4:
            continue
        amount = value * 10**scale
        if tail:
            if scale < 3:
                continue
            amount += int(tail) * 10 ** (scale - len(tail))
        start, end = f.orig(m.start(), m.end())
        yield Entity("price", start, end, round(amount))
    for m in _PRICE_BARE.finditer(s):
        amount = int(re.sub(r"[.,]", "", m.group(1)))
        if amount < 1000:
            continue
        start, end = f.orig(m.start(), m.end())
        yield Entity("price", start, end, amount)


# ---------------------------------------------------------------------------------------------------------------
# Quantities: "2 cái", "hai hộp", "x3", "sl: 5", "số lượng 4".
_NUMBER_WORDS = {
    "mot": 1, "hai": 2, "ba": 3, "bon": 4, "tu": 4, "nam": 5, "sau": 6, "bay": 7, "tam": 8, "chin": 9, "muoi": 10,
}  # fmt: skip
_QTY_UNITS = (
    "san pham|cai|chiec|doi|bo|hop|chai|lo|tuyp|goi|tui|thung|kg|set|cap|ly|coc|suat|phan|combo|sp|cuon|quyen|"
    "hu|vi|lon|cay|mon|tam|vien|bich|hu|con|cuc|qua|trai|mieng|lit|met|m2|pcs|pc"
)
_QTY_UNIT_RE = re.compile(rf"(?<![\w.,])(\d{{1,4}}|{'|'.join(_NUMBER_WORDS)})\s?({_QTY_UNITS})(?![\w])")
_QTY_X = re.compile(r"(?<![\w])(?:x\s?(\d{1,3})|(\d{1,3})\s?x)(?![\w])")
_QTY_KW = re.compile(r"(?<![\w])(?:so luong|sl)\s*[:=]?\s*(\d{1,4})(?![\w])")


def _quantities(text: str, f: Folded) -> Iterator[Entity]:
    s = f.folded
    for m in _QTY_UNIT_RE.finditer(s):
        raw = m.group(1)
        n = int(raw) if raw.isdigit() else _NUMBER_WORDS[raw]
        start, end = f.orig(m.start(), m.end())
        yield Entity("quantity", start, end, n, {"unit": text[f.orig(m.start(2), m.end(2))[0] : end]})
    for m in _QTY_X.finditer(s):
        n = int(m.group(1) or m.group(2))
        start, end = f.orig(m.start(), m.end())
        yield Entity("quantity", start, end, n)
    for m in _QTY_KW.finditer(s):
        start, end = f.orig(m.start(), m.end())
        yield Entity("quantity", start, end, int(m.group(1)))


# ---------------------------------------------------------------------------------------------------------------
# Sizes: after "size/sz/cỡ/sai" any size; bare multi-letter sizes (XL, 2XL) anywhere.
_SIZE_VALUE = r"(?:xxxl|xxl|xl|xs|[2-5]xl|s|m|l|\d{2}(?:[.,]5)?|free\s?size|freesize|bigsize)"
_SIZE_KW = re.compile(rf"(?<![\w])(?:size|sz|sai|co|kich thuoc|kich co)\s*[:=]?\s*({_SIZE_VALUE})(?![\w])")
_SIZE_BARE = re.compile(r"(?<![\w])(XXXL|XXL|XL|XS|[2-5]XL|[Ff]ree\s?[Ss]ize)(?![\w])")
_SIZE_LIST = re.compile(rf"(?<![\w])({_SIZE_VALUE})(?=\s*(?:,|hay|hoac|voi|va|/)\s*$)")


def _sizes(text: str, f: Folded) -> Iterator[Entity]:
    s = f.folded
    for m in _SIZE_KW.finditer(s):
        # "co" is also "có"/"cô": only the word "cỡ" (or unaccented text followed by a size) counts.
        kw_start = m.start()
        if s.startswith("co", kw_start):
            orig_kw = text[f.orig(kw_start, kw_start + 2)[0] : f.orig(kw_start, kw_start + 2)[1]]
            if orig_kw.lower() not in ("cỡ", "co") or not re.fullmatch(r"\d{2}(?:[.,]5)?|[2-5]?x*[sml]", m.group(1)):
                continue
            if orig_kw.lower() == "co" and not m.group(1)[0].isdigit():
                continue
        start, end = f.orig(m.start(1), m.end(1))
        yield Entity("size", start, end, re.sub(r"\s", "", text[start:end]).upper())
    for m in _SIZE_BARE.finditer(text):
        yield Entity("size", m.start(), m.end(), re.sub(r"\s", "", m.group(1)).upper())
    # "còn M không", "lấy L nhé": a lone upper-case S/M/L next to a shopping verb.
    for m in re.finditer(r"(?<![\w])(?:con|lay|mac|dat|doi|size|sz)\s+([sml])(?=\s|$|[,.?!])", s):
        start, end = f.orig(m.start(1), m.end(1))
        if text[start:end].isupper():
            yield Entity("size", start, end, text[start:end])


# ---------------------------------------------------------------------------------------------------------------
# Colours. Unambiguous words match with diacritics as written; words that mean something else without diacritics
# ("do" = because, "den" = to, "cam" = "cảm") need the keyword "màu/mau" before them.
_COLOURS = [
    "xanh dương", "xanh lá", "xanh lá cây", "xanh navy", "xanh rêu", "xanh ngọc", "xanh lam", "xanh biển",
    "xanh nước biển", "xanh mint", "xanh than", "xanh bơ", "xanh da trời", "xanh", "đỏ đô", "đỏ mận", "đỏ tươi",
    "đỏ", "đen", "trắng", "vàng", "hồng phấn", "hồng đất", "hồng cánh sen", "hồng", "tím than", "tím", "cam",
    "nâu", "xám", "ghi", "be", "kem", "bạc", "kaki", "navy", "nude", "trắng kem", "xám tro", "vàng nghệ",
    "vàng chanh", "đồng", "gold", "hồng pastel", "xanh pastel", "tím pastel", "đen nhám", "beige",
]  # fmt: skip
_COLOUR_SAFE = {"xanh", "đỏ", "đen", "trắng", "hồng", "tím", "nâu", "xám", "navy", "kaki", "beige", "nude"}
_COLOUR_MODS = r"(?:\s(?:nhạt|đậm|sữa|pastel|nhat|dam|sua))?"
_COLOUR_BY_FOLD = {fold(c): c for c in _COLOURS}
_COLOUR_ALT = "|".join(sorted((re.escape(fold(c)) for c in _COLOURS), key=len, reverse=True))
_COLOUR_KW = re.compile(rf"(?<![\w])mau\s*[:=]?\s*({_COLOUR_ALT})(?:\s(nhat|dam|sua|pastel))?(?![\w])")
_COLOUR_SAFE_ALT = "|".join(
    sorted((re.escape(c) for c in _COLOURS if c.split()[0] in _COLOUR_SAFE), key=len, reverse=True)
)
_COLOUR_SAFE_RE = re.compile(rf"(?<![\w])({_COLOUR_SAFE_ALT}){_COLOUR_MODS}(?![\w])", re.IGNORECASE)


def _colour_name(folded_match: str, written: str) -> str:
    written = written.lower()
    if written in _COLOUR_BY_FOLD.values():
        return written
    words = folded_match.split()
    base = _COLOUR_BY_FOLD.get(" ".join(words), None)
    if base is None and len(words) > 1:
        base = _COLOUR_BY_FOLD.get(" ".join(words[:-1]), words[0])
        mods = {"nhat": "nhạt", "dam": "đậm", "sua": "sữa", "pastel": "pastel"}
        return f"{base} {mods.get(words[-1], words[-1])}"
    return base or written


def _colours(text: str, f: Folded) -> Iterator[Entity]:
    for m in _COLOUR_KW.finditer(f.folded):
        start, end = f.orig(m.start(1), m.end())
        yield Entity("color", start, end, _colour_name(f.folded[m.start(1) : m.end()], text[start:end]))
    for m in _COLOUR_SAFE_RE.finditer(text):
        written = m.group().lower()
        yield Entity("color", m.start(), m.end(), _colour_name(fold(written), written))


# ---------------------------------------------------------------------------------------------------------------
# Addresses: components found separately, then chained when only separators lie between them.
_STOP = (
    r"(?:thi|bao|ship|giao|nhe|nha|a|ko|khong|k|co|duoc|dc|nhan|gui|ve|toi|den|o|la|may|voi|va|hay|hoac|cho|"
    r"shop|ban|minh|em|anh|chi|oi|vay|the|ah|ha|luon|ngay|mat|bn|lau|phi|free|nhanh|roi|di|nhi|sdt|so|dt|giup|"
    r"gium|dum|nhe|nha|nhen|oke|ok|trong|sang|chieu|toi|mai|hom|nay|nao|dau|ne|kia|do)"
)
_NAME_LOWER = rf"(?:\d{{1,2}}[a-z]?(?![\w])|(?!{_STOP}(?![\w]))[a-z]+(?:\s(?!{_STOP}(?![\w]))[a-z]+){{0,2}})"
_WARD_RE = re.compile(rf"(?<![\w])(phuong|p\.\s?|p(?=\d)|xa|thi tran|tt\.\s?)\s?({_NAME_LOWER})(?![\w])")
_DISTRICT_RE = re.compile(
    rf"(?<![\w])(quan|q\.\s?|q(?=\d)|huyen|h\.\s?|thi xa|tx\.?\s?|tp\.?\s?|thanh pho)\s?({_NAME_LOWER})(?![\w])"
)
_HOUSE_RE = re.compile(
    r"(?<![\w/])(?:(?:so|so nha|sn)\s?)?(\d{1,4}[a-z]?(?:/\d{1,4}[a-z]?){0,3}(?:\s?bis)?)\s?,?\s+"
    r"(?:(?:ngo|hem|kiet|ngach)\s?\d{1,4}[a-z]?(?:/\d{1,4})*,?\s+)*"
    r"(?:(duong|pho)\s+)?(?!(?:quan|phuong|huyen|xa|tp|thanh pho|tinh|q|p|ngo|hem|kiet|ngach)(?![a-z]))"
    r"([a-z]+(?:\s[a-z0-9]+){0,3}?)"
    r"(?=\s*(?:,|$|\.|\s(?:phuong|p\.|p\d|xa|quan|q\.|q\d|huyen|tp|thanh pho|tinh)))"
)
_ALLEY_RE = re.compile(r"(?<![\w])(ngo|hem|kiet|ngach)\s?(\d{1,4}[a-z]?(?:/\d{1,4})*)(?![\w])")
_ADDRESS_KW = re.compile(
    r"(?:dia chi|d/c|dchi|dia chj|add|address|giao (?:ve|toi|den)|gui (?:ve|toi|den))\s*[:\-]?\s*$"
)
_SEPARATORS = re.compile(r"[\s,;\-–]*")


@dataclass(slots=True)
class _Part:
    kind: str  # house | alley | ward | district | province
    start: int  # folded offsets
    end: int
    name: str
    canonical: str | None = None


def _capitalised(text: str) -> bool:
    words = [w for w in text.split() if w[:1].isalpha()]
    return bool(words) and all(w[:1].isupper() for w in words)


def _address_parts(text: str, f: Folded) -> list[_Part]:
    s = f.folded
    parts: list[_Part] = []
    for m in _PROVINCE_RE.finditer(s):
        parts.append(_Part("province", m.start(), m.end(), m.group(1), PROVINCES[m.group(1)]))
    for m in _SHORT_PROVINCE_RE.finditer(s):
        parts.append(_Part("province_short", m.start(), m.end(), m.group(1), SHORT_PROVINCES[m.group(1)]))
    for m in _WARD_RE.finditer(s):
        kw = m.group(1).strip()
        if kw == "xa":  # "xa" is also "far": only "xã" as written, or a capitalised name, makes it a ward
            o = f.orig(m.start(1), m.end(1))
            name_o = f.orig(m.start(2), m.end(2))
            if text[o[0] : o[1]].lower() != "xã" and not _capitalised(text[name_o[0] : name_o[1]]):
                continue
        parts.append(_Part("ward", m.start(), m.end(), m.group(2)))
    for m in _DISTRICT_RE.finditer(s):
        first = m.group(2).split()
        if m.group(1).startswith(("tp", "thanh pho")) and (
            m.group(2) in PROVINCES
            or first[0] in PROVINCES
            or first[0] in SHORT_PROVINCES
            or " ".join(first[:2]) in PROVINCES
        ):
            continue  # "TP Đà Nẵng" is the province, found above
        parts.append(_Part("district", m.start(), m.end(), m.group(2)))
    for m in _ALLEY_RE.finditer(s):
        parts.append(_Part("alley", m.start(), m.end(), m.group(2)))
    for m in _HOUSE_RE.finditer(s):
        parts.append(_Part("house", m.start(), m.end(), m.group(1), m.group(3)))
    # Longest first, then drop parts overlapping an accepted one.
    parts.sort(key=lambda p: (-(p.end - p.start), p.start))
    kept: list[_Part] = []
    for p in parts:
        if all(p.end <= k.start or p.start >= k.end for k in kept):
            kept.append(p)
    kept.sort(key=lambda p: p.start)
    return kept


_AREA_NAME = r"[^\W\d_]+(?:\s[^\W\d_]+){0,3}"
_AREA_GAP = re.compile(rf"[\s,;\-–]*,\s*({_AREA_NAME}(?:\s*,\s*{_AREA_NAME}){{0,2}})\s*,[\s,;\-–]*")


def _joins(text: str, f: Folded, a: _Part, b: _Part) -> bool:
    """Parts chain when only separators lie between them, or a capitalised area name between commas."""
    if _SEPARATORS.fullmatch(f.folded[a.end : b.start]):
        return True
    gap_start, gap_end = f.orig(a.end, b.start)
    m = _AREA_GAP.fullmatch(text[f.orig(a.start, a.end)[1] : f.orig(b.start, b.end)[0]])
    return bool(m) and all(_capitalised(n) for n in m.group(1).split(",")) and gap_end > gap_start


def _addresses(text: str, f: Folded, taken: list[tuple[int, int]]) -> Iterator[Entity]:
    s = f.folded
    parts = []
    for p in _address_parts(text, f):
        o = f.orig(p.start, p.end)
        if not any(o[0] < e and o[1] > b for b, e in taken):
            parts.append(p)
    chains: list[list[_Part]] = []
    for p in parts:
        if chains and _joins(text, f, chains[-1][-1], p):
            chains[-1].append(p)
        else:
            chains.append([p])
    for chain in chains:
        kinds = {p.kind for p in chain}
        start, end = f.orig(chain[0].start, chain[-1].end)
        written = text[start:end]
        if len(chain) == 1:
            p = chain[0]
            if p.kind == "province":
                yield Entity("location", start, end, p.canonical, {"province_current": current_province(p.canonical)})
                continue
            if p.kind == "house":
                street_o = f.orig(p.start, p.end)
                keyword = _ADDRESS_KW.search(s[: p.start])
                if not (
                    keyword or _capitalised(re.sub(r"^[\d/a-zA-Z]*\d[\w/]*\s*", "", text[street_o[0] : street_o[1]]))
                ):
                    continue
            elif p.kind in ("ward", "district", "alley"):
                if not _ADDRESS_KW.search(s[: p.start]):
                    continue
            else:
                continue
        elif kinds <= {"province", "province_short"}:
            continue
        parts_out: dict[str, str] = {}
        for p in chain:
            o = f.orig(p.start, p.end)
            if p.kind in ("province", "province_short"):
                parts_out["province"] = p.canonical or ""
                if current_province(p.canonical or "") != p.canonical:
                    parts_out["province_current"] = current_province(p.canonical or "")
            elif p.kind == "house":
                words = text[o[0] : o[1]]
                hm = re.match(
                    r"\s*(?:(?:[Ss]ố|[Ss]o|[Ss]ố nhà|SN|sn)\s?)?([\d/]+[A-Za-z]?(?:\s?bis)?)\s*,?\s*(.*)$", words
                )
                if hm:
                    parts_out["house"] = hm.group(1)
                    parts_out["street"] = hm.group(2).strip(" ,")
            else:
                parts_out[p.kind] = text[o[0] : o[1]].strip(" ,")
        normalized = re.sub(r"\s*,\s*", ", ", re.sub(r"\s+", " ", written)).strip(" ,")
        yield Entity("address", start, end, normalized, {"parts": parts_out})


# ---------------------------------------------------------------------------------------------------------------
_HAS_DIGIT = re.compile(r"\d")


def extract(text: str) -> list[dict]:
    """All entities in `text`, sorted by start offset; see the module docstring for the fields."""
    if not text:
        return []
    f = Folded(text)
    accepted: list[Entity] = []

    def take(candidates: Iterator[Entity]) -> None:
        for ent in candidates:
            if ent.end <= ent.start:
                continue
            if all(ent.end <= a.start or ent.start >= a.end for a in accepted):
                accepted.append(ent)

    digits = _HAS_DIGIT.search(text) is not None  # most chat lines have none: skip what needs them
    if digits:
        take(_phones(text))
    if "@" in text:
        take(_emails(text))
    if digits:
        take(_order_codes(text, f))
        take(_prices(text, f))
    take(_sizes(text, f))
    take(_colours(text, f))
    take(_addresses(text, f, [(a.start, a.end) for a in accepted]))
    take(_quantities(text, f))
    accepted.sort(key=lambda e: e.start)
    return [e.to_dict(text) for e in accepted]


def phones(text: str) -> list[str]:
    """E.164 numbers found in `text` (convenience for callers that only need phones)."""
    return [e["normalized"] for e in extract(text) if e["type"] == "phone"]


def has_personal_data(text: str) -> bool:
    """True when `text` holds a phone, an e-mail or an address (used to hide public comments)."""
    return any(e["type"] in ("phone", "email", "address") for e in extract(text))
