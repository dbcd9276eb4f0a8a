"""CSV import and export of contacts and orders (from a POS or shop system).

Every row is validated; a bad row is reported (row number, field, reason) and written to the rejects file with a
`_error` column, and the rest are imported. Nothing is silently dropped: imported + rejected = rows read.
Contacts: columns name, phone, email, city, gender, birthday, tags (separated by ;), address, external_id (the
shop system's customer code, kept as the profile attribute `external_id`: a row is the customer with that code,
else the one with its phone, else its e-mail, further phones and e-mails included: see contacts.lookup).
Orders: columns order_id, phone or email or contact_id (which customer), total (VND), status, ordered_at, items.
Files as Excel and shop systems write them: `,` `;` or tab separated, UTF-8 (BOM or not), UTF-16 or Windows-1258,
column names in any case and in Vietnamese ("Họ tên", "Số điện thoại"…, see COLUMN_ALIASES).
"""

from __future__ import annotations

import codecs
import csv
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from contacts.lookup import EXTERNAL_ID, FURTHER, KnownContacts, known_contact
from contacts.models import Contact, Order
from contacts.normalize import (
    InvalidValue,
    normalize_birthday,
    normalize_email,
    normalize_gender,
    normalize_name,
    normalize_phone,
)
from contacts.orders import MAX_AMOUNT, STATUSES, shop_time
from contacts.profile import _unique, reindex
from inbox.http import plausible
from inbox.search import fold

Progress = Callable[[int, int], None]


@dataclass
class Report:
    read: int = 0
    imported: int = 0
    updated: int = 0
    rejected: list[dict[str, Any]] = field(default_factory=list)  # {row, errors}

    def as_dict(self) -> dict[str, Any]:
        return {
            "read": self.read,
            "imported": self.imported,
            "updated": self.updated,
            "rejected": len(self.rejected),
            "problems": self.rejected[:100],
        }


class ImportFileError(ValueError):
    """The file as a whole cannot be read (not text, or an encoding we do not know): nothing was imported."""


# Column names as shops and POS systems write them (folded: lower case, no diacritics), to the names used here.
COLUMN_ALIASES = {
    "name": ("ho ten", "ho va ten", "ten", "ten khach hang", "ten khach", "khach hang", "full name", "customer name"),
    "phone": ("so dien thoai", "dien thoai", "sdt", "so dt", "dt", "di dong", "mobile", "phone number"),
    "email": ("e mail", "thu dien tu"),
    "city": ("thanh pho", "tinh thanh", "tinh thanh pho", "tinh"),
    "gender": ("gioi tinh",),
    "birthday": ("ngay sinh", "sinh nhat", "date of birth", "dob"),
    "tags": ("tag", "nhan", "the"),
    "address": ("dia chi",),
    "external_id": ("external id", "ma khach hang", "ma kh", "customer id"),
    "order_id": ("order id", "ma don", "ma don hang", "so don hang", "ma hoa don", "so hoa don", "order number"),
    "contact_id": ("contact id",),
    "total": ("tong tien", "thanh tien", "tong cong", "so tien", "amount"),
    "status": ("trang thai",),
    "ordered_at": ("ordered at", "ngay dat", "ngay dat hang", "ngay mua", "ngay tao", "order date"),
    "items": ("san pham", "hang hoa", "mat hang"),
    "channel": ("kenh", "kenh ban"),
}
_COLUMNS = {alias: key for key, aliases in COLUMN_ALIASES.items() for alias in (key, *aliases)}


def _decode(data: bytes) -> str:
    """Excel writes UTF-8 with a BOM, UTF-16 ("Unicode text") or the Windows code page (1258 in Vietnam, whose tone
    marks are combining characters: NFC puts them back on their letters, as typed text has them)."""
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        text = data.decode("utf-16")
    else:
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError:
            try:
                text = data.decode("cp1258")
            except UnicodeDecodeError:
                text = "\x00"
    if "\x00" in text:
        raise ImportFileError("the file is not a CSV text file (save it as CSV UTF-8)")
    return unicodedata.normalize("NFC", text)


def _column(raw: str) -> str:
    folded = fold(raw)
    return _COLUMNS.get(folded, folded or raw)


Row = tuple[list[str], dict[str, str]]  # the values as written (for the rejects file), and keyed by column name


def _rows(path: Path) -> tuple[list[str], list[Row]]:
    """The header as written and each row, whatever the separator and the column names (see COLUMN_ALIASES)."""
    lines = _decode(path.read_bytes()).splitlines(keepends=True)
    delimiter = None
    if lines and re.fullmatch(r"sep=[,;\t|]", lines[0].strip("\r\n")):
        delimiter = lines.pop(0)[4]  # Excel's own hint line
    first = lines[0] if lines else ""
    delimiter = delimiter or max(",;\t", key=lambda d: (first.count(d), d == ","))
    reader = csv.reader(lines, delimiter=delimiter)
    header = next(reader, [])
    keys: list[str] = []
    for raw in header:  # a second column with the same meaning keeps its own name
        key = _column(raw)
        keys.append(key if key not in keys else raw)
    return header, [(values, dict(zip(keys, values, strict=False))) for values in reader if values]


def _write_rejects(path: Path | None, header: list[str], bad: list[tuple[list[str], str]]) -> None:
    """The rejected rows as they were written (same columns, comma-separated, UTF-8), with the reason last. With a
    byte-order mark: the shop fixes them in Excel, which reads UTF-8 without one as ANSI (garbled Vietnamese), and
    the importer reads it back either way."""
    if path is None:
        return
    with path.open("w", newline="", encoding="utf-8-sig") as f:
        writer = csv.writer(f)
        writer.writerow([*header, "_error"])
        for values, error in bad:
            writer.writerow([*values[: len(header)], *[""] * (len(header) - len(values)), error])


def clean_contact_row(row: dict[str, str]) -> dict[str, Any]:
    errors: list[str] = []
    out: dict[str, Any] = {}

    def take(key: str, fn: Callable[[Any], Any]) -> None:
        raw = (row.get(key) or "").strip()
        if not raw:
            return
        try:
            out[key] = fn(raw)
        except InvalidValue as exc:
            errors.append(f"{exc.field}: {exc.message}")

    take("name", normalize_name)
    take("phone", normalize_phone)
    take("email", normalize_email)
    take("gender", normalize_gender)
    take("birthday", normalize_birthday)
    take("city", normalize_name)
    if (row.get("tags") or "").strip():
        out["tags"] = _unique([t.strip() for t in row["tags"].split(";")])
    if (row.get("address") or "").strip():
        out["addresses"] = [" ".join(row["address"].split())]
    if not errors and not (out.get("name") or out.get("phone") or out.get("email")):
        errors.append("row: needs at least a name, a phone or an e-mail")
    if errors:
        raise ValueError("; ".join(errors))
    return out


IMPORT_CHUNK = 100  # contact rows looked up together: at most 500 query parameters (SQLite's oldest limit: 999)


async def import_contacts(path: Path, rejects: Path | None = None, progress: Progress | None = None) -> Report:
    header, rows = _rows(path)
    report = Report(read=len(rows))
    bad: list[tuple[list[str], str]] = []
    for start in range(0, len(rows), IMPORT_CHUNK):  # row numbers from 2: line 1 is the header
        chunk = [(n, raw, *_cleaned(row)) for n, (raw, row) in enumerate(rows[start : start + IMPORT_CHUNK], start + 2)]
        valid = [(values, external_id) for _, _, values, external_id in chunk if isinstance(values, dict)]
        known = await KnownContacts.load(
            external_ids=[external_id for _, external_id in valid if external_id],
            phones=[values["phone"] for values, _ in valid if values.get("phone")],
            emails=[values["email"] for values, _ in valid if values.get("email")],
        )
        for n, raw, values, external_id in chunk:
            if isinstance(values, dict):
                await _import_contact(values, external_id, known, report)
            else:
                report.rejected.append({"row": n, "errors": values})
                bad.append((raw, values))
            if progress:
                progress(n - 1, len(rows))
    _write_rejects(rejects, header, bad)
    return report


def _cleaned(row: dict[str, str]) -> tuple[dict[str, Any] | str, str | None]:
    """The row's values and customer code, or why it is rejected."""
    try:
        values = clean_contact_row(row)
    except ValueError as exc:
        return str(exc), None
    return values, (row.get("external_id") or "").strip()[:128] or None


async def _import_contact(
    values: dict[str, Any], external_id: str | None, known: KnownContacts, report: Report
) -> None:
    existing = known.find(external_id=external_id, phone=values.get("phone"), email=values.get("email"))
    if existing is not None:  # fill what the profile lacks; never overwrite what an agent typed
        changed: set[str] = set()
        if external_id and not (existing.attributes or {}).get(EXTERNAL_ID):
            existing.attributes = {**(existing.attributes or {}), EXTERNAL_ID: external_id}
            changed.add("attributes")
        for key, value in values.items():
            current = getattr(existing, key)
            if isinstance(value, list):
                setattr(existing, key, _unique([*(current or []), *value]))
                changed.add(key)
            elif not current:
                setattr(existing, key, value)
                changed.add(key)
            elif key in FURTHER and value != current:  # another phone / e-mail of theirs: kept as a further one
                setattr(existing, FURTHER[key], _unique([*(getattr(existing, FURTHER[key]) or []), value]))
                changed.add(FURTHER[key])
        # Only what the row changed: the copy was read with the chunk, and must not put back older values of the
        # fields staff or the channels wrote since.
        await existing.save(update_fields=[*sorted(changed), "updated_at"])
        await reindex(existing)
        known.add(existing)
        report.updated += 1
    else:
        attributes = {EXTERNAL_ID: external_id} if external_id else {}
        contact = await Contact.create(source={"channel": "import"}, attributes=attributes, **values)
        await reindex(contact)
        known.add(contact)
        report.imported += 1


def _parse_time(raw: str) -> datetime:
    """A shop system's time without a zone is the shop's local time (Vietnam), as its staff saw it."""
    text = raw.strip()
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        try:
            value = datetime.strptime(text, "%d/%m/%Y")
        except ValueError as exc:
            raise ValueError(f"ordered_at: '{text}' is not a date") from exc
    value = shop_time(value)
    if not plausible(value):
        raise ValueError("ordered_at: must be between 1970 and 2100")
    return value


_CURRENCY = re.compile(r"(vnđ|vnd|đồng|đ|₫)$")
_THOUSANDS = re.compile(r"\d{1,3}(?:([.,])\d{3})(?:\1\d{3})*")  # 1.500.000 or 1,500,000
_DECIMALS = re.compile(r"(\d+|\d{1,3}(?:([.,])\d{3})+)([.,])(\d{1,2})")  # 150000.00, 1,500,000.00, 150.000,00


def parse_vnd(raw: str) -> int:
    """An amount in VND as shops write it: '150000', '150.000', '1,500,000', '150000.00' (Excel), '150.000,00 đ'.
    VND has no minor unit: '.00' is a decimal part, not three more zeros, and a non-zero one is refused."""
    text = _CURRENCY.sub("", "".join(raw.split()).lower())
    if text.isdigit():
        value = int(text)
    elif _THOUSANDS.fullmatch(text):
        value = int(re.sub(r"[.,]", "", text))
    elif (m := _DECIMALS.fullmatch(text)) and m.group(2) != m.group(3):
        if int(m.group(4)):
            raise ValueError(f"total: '{raw}' is not a whole amount in VND")
        value = int(re.sub(r"[.,]", "", m.group(1)))
    else:
        raise ValueError(f"total: '{raw}' is not an amount in VND")
    if value > MAX_AMOUNT:
        raise ValueError(f"total: more than {MAX_AMOUNT:,} VND")
    return value


async def _order_contact(row: dict[str, str]) -> Contact:
    if (row.get("contact_id") or "").strip().isdigit():
        found = await Contact.get_or_none(id=int(row["contact_id"]))
        if found:
            return found
        raise ValueError("contact_id: no such contact")
    phone = (row.get("phone") or "").strip()
    email = (row.get("email") or "").strip()
    if phone:
        try:
            phone = normalize_phone(phone)
        except InvalidValue as exc:
            raise ValueError(f"phone: {exc.message}") from exc
    found = await known_contact(phone=phone or None, email=email.lower() or None)
    if found:
        return found
    if not phone and not email:
        raise ValueError("customer: needs contact_id, phone or email")
    name = normalize_name(row.get("name") or "")
    contact = await Contact.create(
        name=name, phone=phone or None, email=email.lower() or None, source={"channel": "import"}
    )
    await reindex(contact)
    return contact


async def import_orders(path: Path, rejects: Path | None = None, progress: Progress | None = None) -> Report:
    header, rows = _rows(path)
    report = Report(read=len(rows))
    bad: list[tuple[list[str], str]] = []
    for n, (raw, row) in enumerate(rows, start=2):
        try:
            total = parse_vnd(row.get("total") or "")
            status = (row.get("status") or "completed").strip().lower()
            if status not in STATUSES:
                raise ValueError(f"status: must be one of {', '.join(STATUSES)}")
            ordered_at = _parse_time(row.get("ordered_at") or "")
            external_id = (row.get("order_id") or "").strip() or None
            if external_id and await Order.filter(source="import", external_id=external_id).exists():
                raise ValueError(f"order_id: {external_id} was already imported")
            contact = await _order_contact(row)
        except ValueError as exc:
            report.rejected.append({"row": n, "errors": str(exc)})
            bad.append((raw, str(exc)))
            if progress:
                progress(n - 1, len(rows))
            continue
        items = [
            {"name": i.strip(), "quantity": 1, "unit_price": 0}
            for i in (row.get("items") or "").split(";")
            if i.strip()
        ]
        await Order.create(
            contact=contact,
            status=status,
            total=total,
            ordered_at=ordered_at,
            items=items,
            source="import",
            external_id=external_id,
            channel=(row.get("channel") or "").strip() or None,
        )
        report.imported += 1
        if progress:
            progress(n - 1, len(rows))
    _write_rejects(rejects, header, bad)
    return report


CONTACT_COLUMNS = ["id", "name", "phone", "email", "phones", "emails", "city", "gender", "birthday", "tags"]
ORDER_COLUMNS = ["id", "contact_id", "external_id", "status", "total", "ordered_at", "channel", "source"]


async def export_contacts(path: Path) -> int:
    count = 0
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(CONTACT_COLUMNS)
        for c in await Contact.filter(merged_into_id=None, erased_at=None).order_by("id"):
            writer.writerow(
                [
                    c.id,
                    c.name,
                    c.phone or "",
                    c.email or "",
                    ";".join(c.phones or []),
                    ";".join(c.emails or []),
                    c.city or "",
                    c.gender or "",
                    c.birthday.isoformat() if c.birthday else "",
                    ";".join(c.tags or []),
                ]
            )
            count += 1
    return count


async def export_orders(path: Path) -> int:
    count = 0
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(ORDER_COLUMNS)
        for o in await Order.all().order_by("id"):
            writer.writerow(
                [
                    o.id,
                    o.contact_id,
                    o.external_id or "",
                    o.status,
                    o.total,
                    o.ordered_at.isoformat(),
                    o.channel or "",
                    o.source,
                ]
            )
            count += 1
    return count


async def check_contacts(fix: bool = False) -> dict[str, Any]:
    """Data cleansing over stored profiles: values written by other paths (imports of old, platform data) that are
    not clean. Reports each invalid value (contact id and field, never the value); with `fix`, rewrites the ones that
    can be cleaned (name spacing/case, phone to E.164, e-mail case)."""
    problems: list[dict[str, Any]] = []
    fixed = 0
    for contact in await Contact.filter(merged_into_id=None, erased_at=None).order_by("id"):
        changes: dict[str, Any] = {}
        for field_name, fn in (("phone", normalize_phone), ("email", normalize_email)):
            value = getattr(contact, field_name)
            if not value:
                continue
            try:
                clean = fn(value)
            except InvalidValue as exc:
                problems.append(
                    {"contact_id": contact.id, "field": field_name, "problem": exc.message.split(" is ")[-1]}
                )
                continue
            if clean != value:
                changes[field_name] = clean
        name = normalize_name(contact.name) if contact.name else contact.name
        if name != contact.name:
            changes["name"] = name
        if changes and fix:
            for key, value in changes.items():
                setattr(contact, key, value)
            await contact.save(update_fields=list(changes))
            await reindex(contact)
            fixed += 1
        elif changes:
            problems.extend({"contact_id": contact.id, "field": k, "problem": "not normalised"} for k in changes)
    return {"problems": problems, "fixed": fixed}
