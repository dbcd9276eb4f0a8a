"""Phone numbers as Vietnamese customers write them, found and normalised with `phonenumbers` (E.164)."""

from __future__ import annotations

import phonenumbers

DEFAULT_REGION = "VN"


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
            number = phonenumbers.parse(candidate, region)
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
