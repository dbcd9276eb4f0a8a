"""CSV import and export of contacts and orders: bad rows are reported and written to a file, the rest imported."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import unicodedata
from datetime import UTC, datetime

from contacts.importer import ImportFileError, import_contacts, import_orders
from contacts.lookup import known_contact
from contacts.models import Contact, Order


async def test_csv_import_reports_bad_rows_and_imports_the_rest(client, tmp_path) -> None:
    source = tmp_path / "khach.csv"
    source.write_text(
        "name,phone,email,birthday,gender\n"
        "  nguyễn  văn an ,0901 234 567,AN@Gmail.com,15/03/1990,nam\n"
        "Trần Bình,12345,,,\n"
        "Lê Chi,,not-an-email,,\n"
        "Phạm Dung,+84 912 345 678,,1992-02-30,\n"
        ",,,,\n"
        "Hoà,84987654321,hoa@shop.vn,,nữ\n",
        encoding="utf-8",
    )
    rejects = tmp_path / "rejected.csv"
    report = await import_contacts(source, rejects)
    assert (report.read, report.imported, len(report.rejected)) == (6, 2, 4)
    assert [p["row"] for p in report.rejected] == [3, 4, 5, 6]
    assert "phone" in report.rejected[0]["errors"] and "email" in report.rejected[1]["errors"]
    assert "birthday" in report.rejected[2]["errors"]
    lines = rejects.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 5 and lines[0].endswith("_error") and "Trần Bình" in lines[1]
    an = await Contact.get(phone="+84901234567")
    assert (an.name, an.email, an.gender, an.birthday.isoformat()) == (
        "Nguyễn Văn An",
        "an@gmail.com",
        "male",
        "1990-03-15",
    )
    assert (await Contact.get(phone="+84987654321")).gender == "female"


async def test_orders_import_matches_customers_and_rejects_bad_rows(client, tmp_path) -> None:
    known = await Contact.create(name="Lan", phone="+84901234567")
    source = tmp_path / "don.csv"
    source.write_text(
        "order_id,phone,email,name,total,status,ordered_at,items\n"
        "HD001,0901 234 567,,,350.000,completed,2026-05-01,Áo sơ mi;Quần tây\n"
        "HD002,,moi@shop.vn,Khách Mới,1200000,paid,15/05/2026,Váy\n"
        "HD003,0901234567,,,abc,completed,2026-05-02,\n"
        "HD004,0901234567,,,100000,lost,2026-05-02,\n"
        "HD005,,,,100000,completed,2026-05-02,\n"
        "HD001,0901234567,,,350000,completed,2026-05-01,\n",
        encoding="utf-8",
    )
    rejects = tmp_path / "don.rejected.csv"
    report = await import_orders(source, rejects)
    assert (report.read, report.imported, len(report.rejected)) == (6, 2, 4)
    reasons = [p["errors"].split(":")[0] for p in report.rejected]
    assert reasons == ["total", "status", "customer", "order_id"]
    assert len(rejects.read_text(encoding="utf-8").splitlines()) == 5
    first = await Order.get(external_id="HD001")
    assert (first.contact_id, first.total, [i["name"] for i in first.items]) == (
        known.id,
        350_000,
        ["Áo sơ mi", "Quần tây"],
    )
    new = await Contact.get(email="moi@shop.vn")
    assert new.name == "Khách Mới" and (await Order.get(external_id="HD002")).contact_id == new.id


async def test_cli_import_shows_progress_and_writes_rejects(client, settings, tmp_path) -> None:
    source = tmp_path / "khach.csv"
    source.write_text("name,phone\nAn,0901234567\nBình,123\n", encoding="utf-8")
    env = {**os.environ, "HOPTHU_DATABASE_URL": settings.database_url, "HOPTHU_SECRET_KEY": "x"}
    done = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "inbox.cli", "contacts", "import", str(source)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1, done.stderr  # some rows were rejected
    report = json.loads(done.stdout)
    assert (report["read"], report["imported"], report["rejected"]) == (2, 1, 1)
    assert "2/2" in done.stderr  # the progress bar reached the end
    rejected = (tmp_path / "khach.rejected.csv").read_bytes()
    assert rejected.startswith(b"\xef\xbb\xbf") and "Bình" in rejected.decode("utf-8-sig")  # Excel reads it as UTF-8
    out = tmp_path / "export.csv"
    done = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "inbox.cli", "contacts", "export", str(out)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "+84901234567" in out.read_text(encoding="utf-8")


async def test_check_reports_and_fixes_unclean_stored_values(client) -> None:
    from contacts.importer import check_contacts

    messy = await Contact.create(name="  lê   văn  tám ", phone="0901 234 567", email="Tam@Shop.VN")
    broken = await Contact.create(name="Ok Name", phone="12")
    report = await check_contacts()
    assert {(p["contact_id"], p["field"]) for p in report["problems"]} == {
        (messy.id, "name"),
        (messy.id, "phone"),
        (messy.id, "email"),
        (broken.id, "phone"),
    }
    assert all("12" not in p["problem"] and "Tam" not in p["problem"] for p in report["problems"])  # no values
    await check_contacts(fix=True)
    messy = await Contact.get(id=messy.id)
    assert (messy.name, messy.phone, messy.email) == ("Lê Văn Tám", "+84901234567", "tam@shop.vn")


TONE_MARKS = "\u0300\u0301\u0303\u0309\u0323"


def windows_1258(text: str) -> bytes:
    """As Windows writes Vietnamese: letters with their vowel marks (â, ơ, ư…), then the tone mark combining."""
    out = []
    for char in text:
        decomposed = unicodedata.normalize("NFD", char)
        tones = "".join(c for c in decomposed if c in TONE_MARKS)
        out.append(unicodedata.normalize("NFC", "".join(c for c in decomposed if c not in TONE_MARKS)) + tones)
    return "".join(out).encode("cp1258")


async def test_contacts_import_reads_files_as_shops_export_them(client, tmp_path) -> None:
    """Excel in a Vietnamese locale writes `;`-separated files (with a BOM, or as UTF-16 "Unicode text", or in
    Windows-1258); shop systems name columns in Vietnamese or capitalise them. All of them import."""
    files = {
        "excel.csv": (
            "\ufeffHọ tên;Số điện thoại;Email;Thành phố\nNguyễn An;0901 234 567;an@shop.vn;hà nội\n",
            "utf-8",
        ),
        "sep.csv": ("sep=;\nName;Phone\nTrần Bình;0912.345.678\n", "utf-8"),
        "unicode.txt": ("Tên khách hàng\tSĐT\nLê Chi\t0987654321\n", "utf-16"),
        "ansi.csv": ("Họ và tên,Điện thoại\nPhạm Dũng,0934567890\n", "windows-1258"),
    }
    for name, (text, encoding) in files.items():
        source = tmp_path / name
        source.write_bytes(windows_1258(text) if encoding == "windows-1258" else text.encode(encoding))
        report = await import_contacts(source, tmp_path / "rejected.csv")
        assert (report.imported, report.rejected) == (1, []), (name, report.as_dict())
    stored = {c.phone: (c.name, c.email, c.city) for c in await Contact.all()}
    assert stored == {
        "+84901234567": ("Nguyễn An", "an@shop.vn", "Hà Nội"),
        "+84912345678": ("Trần Bình", None, None),
        "+84987654321": ("Lê Chi", None, None),
        "+84934567890": ("Phạm Dũng", None, None),
    }


async def test_an_unreadable_file_is_refused_with_a_reason(client, tmp_path) -> None:
    source = tmp_path / "photo.csv"
    source.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x81\x8d\x8f\x90\x9d")
    try:
        await import_contacts(source, tmp_path / "rejected.csv")
    except ImportFileError as exc:
        assert "UTF-8" in str(exc)
    else:
        raise AssertionError("an unreadable file must be refused")
    assert await Contact.all().count() == 0


async def test_order_amounts_are_read_as_written_in_vnd(client, tmp_path) -> None:
    """A POS writes 150000.00 or 150.000,00 đ for 150 000 ₫ (not 15 million); a total no bank could hold is a
    rejected row, not an import that stops half-way."""
    await Contact.create(name="Lan", phone="+84901234567")
    source = tmp_path / "don.csv"
    source.write_text(
        "order_id,phone,total,ordered_at\n"
        "A1,0901234567,150000.00,2026-05-01\n"
        'A2,0901234567,"1,500,000",2026-05-01\n'
        "A3,0901234567,99999999999999999999,2026-05-01\n"
        'A4,0901234567,"150.000,00 đ",2026-05-01\n'
        "A5,0901234567,250.000 VND,2026-05-01\n"
        "A6,0901234567,1.5,2026-05-01\n"
        "A7,0901234567,99000,2026-05-01\n",
        encoding="utf-8",
    )
    report = await import_orders(source, tmp_path / "don.rejected.csv")
    assert [(p["row"], p["errors"].split(":")[0]) for p in report.rejected] == [(4, "total"), (7, "total")]
    stored = {o.external_id: o.total for o in await Order.all()}
    assert stored == {"A1": 150_000, "A2": 1_500_000, "A4": 150_000, "A5": 250_000, "A7": 99_000}


async def test_order_times_without_a_zone_are_vietnam_time(client, tmp_path) -> None:
    """An order the POS logged at 23:30 on 1 May happened on 1 May in Vietnam (16:30 UTC), not at 06:30 on 2 May."""
    source = tmp_path / "don.csv"
    source.write_text(
        "order_id,phone,total,ordered_at\n"
        "B1,0901234567,100000,2026-05-01 23:30\n"
        "B2,0901234567,100000,01/05/2026\n"
        "B3,0901234567,100000,2026-05-01T10:00:00Z\n"
        "B4,0901234567,100000,0001-01-01\n",
        encoding="utf-8",
    )
    report = await import_orders(source, tmp_path / "don.rejected.csv")
    assert [(p["row"], p["errors"].split(":")[0]) for p in report.rejected] == [(5, "ordered_at")]
    stored = {o.external_id: o.ordered_at.astimezone(UTC) for o in await Order.all()}
    assert stored == {
        "B1": datetime(2026, 5, 1, 16, 30, tzinfo=UTC),
        "B2": datetime(2026, 4, 30, 17, 0, tzinfo=UTC),
        "B3": datetime(2026, 5, 1, 10, 0, tzinfo=UTC),
    }


async def test_import_into_a_known_customer_keeps_a_second_phone_and_email(client, tmp_path) -> None:
    """The profile's own values stay first; a different phone or e-mail in the file is added, not dropped."""
    lan = await Contact.create(name="Lan", phone="+84901234567", email="lan@shop.vn")
    source = tmp_path / "khach.csv"
    source.write_text(
        "name,phone,email\nLan Nguyễn,0912 345 678,LAN@shop.vn\nLan,0901234567,lan.nguyen@gmail.com\n",
        encoding="utf-8",
    )
    report = await import_contacts(source, tmp_path / "rejected.csv")
    assert (report.imported, report.updated, report.rejected) == (0, 2, [])
    lan = await Contact.get(id=lan.id)
    assert (lan.name, lan.phone, lan.email) == ("Lan", "+84901234567", "lan@shop.vn")
    assert (lan.phones, lan.emails) == (["+84912345678"], ["lan.nguyen@gmail.com"])
    assert await import_contacts(source) and await Contact.all().count() == 1  # the same file again: no change
    assert (await Contact.get(id=lan.id)).phones == ["+84912345678"]


async def test_reimporting_customers_with_only_a_name_matches_them_by_their_external_id(client, tmp_path) -> None:
    """A shop system's customer list keyed by its own customer code (Mã KH), some rows without phone or e-mail:
    importing it again updates those customers instead of creating them a second time."""
    from tests.conftest import quick_user

    lan = await Contact.create(name="Lan", phone="+84901234567")
    source = tmp_path / "khach.csv"
    source.write_text(
        "Mã KH,Họ tên,SĐT,Thành phố\nKH001,Nguyễn An,,Huế\nKH002,Trần Bình,,\nKH003,Lan,0901 234 567,\n",
        encoding="utf-8",
    )
    first = await import_contacts(source, tmp_path / "rejected.csv")
    assert (first.imported, first.updated, first.rejected) == (2, 1, [])
    again = await import_contacts(source, tmp_path / "rejected.csv")
    assert (again.imported, again.updated, again.rejected) == (0, 3, [])
    assert await Contact.all().count() == 3
    an = await Contact.get(name="Nguyễn An")
    assert an.city == "Huế"
    # The code is on the profile, where staff see it; a later row with the code alone finds Lan too.
    supervisor = await quick_user("supervisor")
    profile = await (await client.get(f"/api/contacts/{lan.id}", headers=supervisor.headers)).json()
    assert profile["attributes"] == {"external_id": "KH003"}
    source.write_text("customer id,name,email\nKH003,Lan,lan@shop.vn\nKH001,An,\n", encoding="utf-8")
    report = await import_contacts(source, tmp_path / "rejected.csv")
    assert (report.imported, report.updated) == (0, 2)
    assert (await Contact.get(id=lan.id)).email == "lan@shop.vn" and await Contact.all().count() == 3


async def test_reimport_after_a_merge_updates_the_survivor_through_either_code(client, tmp_path) -> None:
    """Two profiles of one customer, each with its shop code, merged by staff: the shop's next export still has
    both codes, and a row with the absorbed profile's code updates the merged customer instead of creating them
    again. Undoing the merge gives each profile its own code back, and the rows find them apart again."""
    from contacts.merge import merge_contacts, undo_merge

    source = tmp_path / "khach.csv"
    source.write_text("Mã KH,Họ tên\nKH001,Nguyễn An\nKH002,An Nguyễn\n", encoding="utf-8")
    assert (await import_contacts(source)).imported == 2
    an, other = await Contact.all().order_by("id")
    merge = await merge_contacts(an.id, other.id, actor_id=None)
    assert (await known_contact(external_id="KH002")).id == an.id  # as the orders import asks, one row at a time
    source.write_text("Mã KH,Họ tên,Thành phố\nKH002,An Nguyễn,Huế\n", encoding="utf-8")
    report = await import_contacts(source, tmp_path / "rejected.csv")
    assert (report.imported, report.updated, report.rejected) == (0, 1, [])
    assert await Contact.all().count() == 2 and (await Contact.get(id=an.id)).city == "Huế"
    await undo_merge(merge.id, actor_id=None)
    an, other = await Contact.get(id=an.id), await Contact.get(id=other.id)
    assert (an.attributes, other.attributes) == ({"external_id": "KH001"}, {"external_id": "KH002"})
    source.write_text("Mã KH,Họ tên,Giới tính\nKH002,An Nguyễn,nam\n", encoding="utf-8")
    assert (await import_contacts(source)).updated == 1
    assert ((await Contact.get(id=other.id)).gender, (await Contact.get(id=an.id)).gender) == ("male", None)


async def test_a_long_customer_list_is_looked_up_a_chunk_of_rows_at_a_time(client, tmp_path, monkeypatch) -> None:
    """A shop's whole customer list: the customers its rows name are looked up together, not with a query per row
    and key; a row still finds the customer an earlier row of the file created or gave a code, phone or e-mail,
    in the same chunk of rows or an earlier one."""
    from tests.test_conversations_api import _QUERIES, count_every_backend

    lan = ["Mã KH,Họ tên,SĐT,Email", ",Lan,0901234567,", "KH9,Lan,0901 234 567,lan@shop.vn", "KH9,Lan Nguyễn,,"]
    others = [f"KH{n:03d},Khách {n},09{n:08d},khach{n}@shop.vn" for n in range(150)]
    again = ["KH9,,,", ",,,lan@shop.vn", "KH001,Khách 1,,", ",Khách 2,0900000002,"]
    source = tmp_path / "khach.csv"
    source.write_text("\n".join([*lan, *others, *again]) + "\n", encoding="utf-8")
    statements: list[str] = []
    count_every_backend(monkeypatch)
    token = _QUERIES.set(statements)
    try:
        report = await import_contacts(source, tmp_path / "rejected.csv")
    finally:
        _QUERIES.reset(token)
    assert (report.read, report.imported, report.updated, len(report.rejected)) == (157, 151, 5, 1)  # "KH9,,,"
    assert await Contact.all().count() == 151
    lan = await Contact.get(name="Lan")
    assert (lan.attributes, lan.email, lan.phones) == ({"external_id": "KH9"}, "lan@shop.vn", [])
    lookups = [s for s in statements if "FROM contacts WHERE merged_into_id" in s]
    assert len(lookups) <= 4, len(lookups)  # two chunks of rows: the profiles, then codes on merged profiles


async def test_import_finds_a_customer_by_any_of_their_phones_and_emails(client, tmp_path) -> None:
    """A profile keeps further phones and e-mails beside the primary ones; a row with one of them is that
    customer, for contacts and for orders alike."""
    lan = await Contact.create(
        name="Lan", phone="+84901234567", phones=["+84912345678"], email="lan@shop.vn", emails=["lan.nguyen@gmail.com"]
    )
    source = tmp_path / "khach.csv"
    source.write_text(
        "name,phone,email\nLan Nguyễn,0912 345 678,\nLan,,Lan.Nguyen@gmail.com\n",
        encoding="utf-8",
    )
    report = await import_contacts(source, tmp_path / "rejected.csv")
    assert (report.imported, report.updated, report.rejected) == (0, 2, [])
    assert await Contact.all().count() == 1
    lan = await Contact.get(id=lan.id)
    assert (lan.phone, lan.phones, lan.email, lan.emails) == (
        "+84901234567",
        ["+84912345678"],
        "lan@shop.vn",
        ["lan.nguyen@gmail.com"],
    )
    orders = tmp_path / "don.csv"
    orders.write_text(
        "order_id,phone,email,total,ordered_at\nC1,0912345678,,100000,2026-05-01\n"
        "C2,,lan.nguyen@gmail.com,200000,2026-05-02\n",
        encoding="utf-8",
    )
    report = await import_orders(orders, tmp_path / "don.rejected.csv")
    assert (report.imported, report.rejected) == (2, [])
    assert {o.contact_id for o in await Order.all()} == {lan.id} and await Contact.all().count() == 1
