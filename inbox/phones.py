"""Phone numbers as Vietnamese customers write them, found and normalised with `phonenumbers` (E.164)."""

from __future__ import annotations

import phonenumbers

DEFAULT_REGION = "VN"
# Mobile prefixes renumbered in 2018 (11 → 10 digits), without the leading 0: old → new. Customers still write
# the old forms (0168…, 0123…) and old customer lists hold them.
OLD_MOBILE_PREFIXES = {
    "162": "32", "163": "33", "164": "34", "165": "35", "166": "36", "167": "37", "168": "38", "169": "39",  # Viettel
    "120": "70", "121": "79", "122": "77", "126": "76", "128": "78",  # MobiFone
    "123": "83", "124": "84", "125": "85", "127": "81", "129": "82",  # VinaPhone
    "186": "56", "188": "58",  # Vietnamobile
    "199": "59",  # Gmobile
}  # fmt: skip


def renumbered(number: phonenumbers.PhoneNumber) -> phonenumbers.PhoneNumber:
    """A Vietnamese mobile number in its pre-2018 11-digit form (0168…) as the 10-digit number it became (038…)."""
    national = str(number.national_number)
    if number.country_code != 84 or len(national) != 10 or national[:3] not in OLD_MOBILE_PREFIXES:
        return number
    return phonenumbers.parse("+84" + OLD_MOBILE_PREFIXES[national[:3]] + national[3:])


def normalize_phone(raw: str, region: str = DEFAULT_REGION) -> str | None:
    """E.164 (`+84912345678`) for a valid number, else None.

    `84912345678` (country code without the plus, common in Zalo's shared info) is read as international.
    """
    text = raw.strip()
    digits = "".join(ch for ch in text if ch.isdigit())
    candidates = [text]
    if not text.startswith("+") and digits.startswith("84") and len(digits) >= 11:
        candidates.insert(0, "+" + digits)
    for candidate in candidates:
        try:
            number = renumbered(phonenumbers.parse(candidate, region))
        except phonenumbers.NumberParseException:
            continue
        if phonenumbers.is_valid_number(number):
            return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    return None


def find_phones(text: str, region: str = DEFAULT_REGION) -> list[dict]:
    """Valid phone numbers in free text, as entity dicts ({type, value, normalized, start, end})."""
    found: list[dict] = []
    for match in phonenumbers.PhoneNumberMatcher(text, region, leniency=phonenumbers.Leniency.VALID):
        e164 = phonenumbers.format_number(match.number, phonenumbers.PhoneNumberFormat.E164)
        found.append({"type": "phone", "value": match.raw_string, "normalized": e164, "start": match.start,
                      "end": match.end})  # fmt: skip
    if not found:  # "84912345678": the matcher reads it as a national number and finds it invalid
        for start, token in _tokens(text):
            e164 = normalize_phone(token, region) if token.startswith("84") else None
            if e164:
                found.append({"type": "phone", "value": token, "normalized": e164, "start": start,
                              "end": start + len(token)})  # fmt: skip
    return found


def _tokens(text: str) -> list[tuple[int, str]]:
    out, start = [], None
    for i, ch in enumerate(text + " "):
        if ch.isdigit():
            start = i if start is None else start
        elif start is not None:
            out.append((start, text[start:i]))
            start = None
    return out
