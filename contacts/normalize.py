"""Data cleansing on write: names in title case with single spaces, phones in E.164, e-mails in lower case.

Each function returns the clean value or raises `InvalidValue` with a message an agent (or an import report) can
act on; nothing is silently dropped.
"""

from __future__ import annotations

import re
from datetime import date

import phonenumbers

from inbox.phones import renumbered
from inbox.search import fold

DEFAULT_REGION = "VN"
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_E164 = re.compile(r"^\+[1-9]\d{7,14}$")
_SPACES = re.compile(r"\s+")
GENDERS = ("male", "female", "other")
_GENDER_WORDS = {
    "male": "male", "m": "male", "nam": "male", "trai": "male",
    "female": "female", "f": "female", "nu": "female", "gai": "female",
    "other": "other", "khac": "other",
}  # fmt: skip


class InvalidValue(ValueError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def normalize_name(raw: str | None) -> str:
    """'  nguyễn   văn AN ' → 'Nguyễn Văn An'."""
    text = _SPACES.sub(" ", (raw or "").strip())
    if len(text) > 200:
        raise InvalidValue("name", "longer than 200 characters")
    return " ".join(word[:1].upper() + word[1:].lower() for word in text.split(" ")) if text else ""


def normalize_phone(raw: str | None, region: str = DEFAULT_REGION) -> str:
    """Any way of writing a phone number ('0901 234 567', '84901234567', '+84 90-123-4567') → '+84901234567'."""
    text = (raw or "").strip()
    if not text:
        raise InvalidValue("phone", "empty")
    if _E164.match(text):
        candidate = text
    else:
        digits = re.sub(r"[^\d+]", "", text)
        if digits.startswith("84") and len(digits) >= 11 and region == "VN":
            digits = "+" + digits
        candidate = digits
    try:
        number = phonenumbers.parse(candidate, region)
    except phonenumbers.NumberParseException as exc:
        raise InvalidValue("phone", f"'{text}' is not a phone number") from exc
    number = renumbered(number)
    if not phonenumbers.is_valid_number(number):
        raise InvalidValue("phone", f"'{text}' is not a valid phone number")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def phone_key(raw: str | None) -> str | None:
    """A cheap match key for duplicate detection over many rows: E.164 when it parses, else None."""
    if not raw:
        return None
    if _E164.match(raw) and not (raw.startswith("+841") and len(raw) == 13):  # +841…: an old 11-digit mobile
        return raw
    try:
        return normalize_phone(raw)
    except InvalidValue:
        return None


def normalize_email(raw: str | None) -> str:
    text = (raw or "").strip().lower()
    if not text:
        raise InvalidValue("email", "empty")
    if len(text) > 254 or not _EMAIL.match(text):
        raise InvalidValue("email", f"'{raw}' is not an e-mail address")
    return text


def normalize_gender(raw: str | None) -> str | None:
    if raw is None or not str(raw).strip():
        return None
    value = _GENDER_WORDS.get(fold(str(raw)))
    if value is None:
        raise InvalidValue("gender", "must be male, female or other (nam, nữ, khác)")
    return value


def normalize_birthday(raw: str | date | None) -> date | None:
    if raw is None or raw == "":
        return None
    if isinstance(raw, date):
        return raw
    text = str(raw).strip()
    for pattern in (r"^(\d{4})-(\d{1,2})-(\d{1,2})$", r"^(\d{1,2})/(\d{1,2})/(\d{4})$"):
        m = re.match(pattern, text)
        if m:
            parts = [int(x) for x in m.groups()]
            year, month, day = parts if pattern.startswith(r"^(\d{4})") else (parts[2], parts[1], parts[0])
            try:
                value = date(year, month, day)
            except ValueError:
                break
            if not 1900 <= value.year <= date.today().year:
                break
            return value
    raise InvalidValue("birthday", f"'{text}' is not a date (YYYY-MM-DD or DD/MM/YYYY)")


def name_key(name: str | None) -> str:
    """Diacritics-insensitive form used for name similarity."""
    return fold(name)
