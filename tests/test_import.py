"""CSV import and export of contacts and orders: bad rows are reported and written to a file, the rest imported."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys

from contacts.importer import import_contacts, import_orders
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
    assert "Bình" in (tmp_path / "khach.rejected.csv").read_text(encoding="utf-8")
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
