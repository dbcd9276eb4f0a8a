"""`inbox.sql.model_from_row` builds models from raw rows on the hot paths (every customer message, every
authenticated request): what it builds must be what the ORM itself reads, on SQLite and on Postgres."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

from tortoise.transactions import in_transaction

from contacts.models import Contact, ContactIdentity
from inbox import db
from inbox.models import Conversation, Inbox
from inbox.sql import Statement, model_from_row, model_select, run_statements, update_many
from tests.conftest import make_inbox


def _fields(instance: Any) -> dict[str, Any]:
    return {name: getattr(instance, name) for name in type(instance)._meta.fields_db_projection}


async def _contact_and_conversation(inbox: Inbox) -> tuple[Contact, Conversation]:
    hanoi = timezone(timedelta(hours=7))
    contact = await Contact.create(
        name="Nguyễn Thị Hoa",
        phones=["+84901234567"],
        emails=["hoa@example.vn"],
        addresses=["12 Lý Thường Kiệt, Hà Nội"],
        tags=["vip", "hay hỏi giá"],
        attributes={"size": "M", "points": 120},
        source={"channel": "facebook"},
        birthday=date(1995, 3, 8),
        first_seen_at=datetime(2026, 11, 1, 8, 30, 15, 123456, tzinfo=hanoi),
        last_seen_at=datetime(2026, 11, 20, 23, 59, 59, tzinfo=UTC),
        do_not_store=True,
    )
    identity = await ContactIdentity.create(contact=contact, inbox=inbox, channel="facebook", external_id="psid-1")
    conversation = await Conversation.create(
        inbox=inbox,
        contact=contact,
        identity=identity,
        channel="facebook",
        labels=["đơn mới", "cần gọi lại"],
        thread_context={"post_id": "p_1", "text": "Áo thun 199k"},
        last_activity_at=datetime(2026, 11, 20, 23, 59, 59, 999999, tzinfo=UTC),
        snoozed_until=datetime(2026, 11, 21, 9, 0, tzinfo=hanoi),
        status="snoozed",
    )
    return contact, conversation


async def _raw_row() -> dict[str, Any]:
    selected = f"{model_select(Conversation, 'c')}, {model_select(Contact, 'ct')}"
    rows = await db.connection().execute_query_dict(
        f"SELECT {selected} FROM conversations c JOIN contacts ct ON ct.id = c.contact_id"
    )
    assert len(rows) == 1
    return rows[0]


async def test_a_row_builds_the_same_conversation_and_contact_as_the_orm_reads(client) -> None:
    inbox = await make_inbox()
    contact, conversation = await _contact_and_conversation(inbox)
    row = await _raw_row()

    built_conversation = model_from_row(Conversation, row, "c_")
    built_contact = model_from_row(Contact, row, "ct_")

    read_conversation = await Conversation.get(id=conversation.id)
    read_contact = await Contact.get(id=contact.id)
    assert _fields(built_conversation) == _fields(read_conversation)
    assert _fields(built_contact) == _fields(read_contact)
    # Same instants and the same zone as the ORM gives (the API writes them out with isoformat).
    for name in ("last_activity_at", "snoozed_until", "created_at"):
        built, read = getattr(built_conversation, name), getattr(read_conversation, name)
        assert built.isoformat() == read.isoformat()
    assert built_contact.birthday == date(1995, 3, 8)
    assert built_contact.do_not_store is True
    assert built_conversation.labels == ["đơn mới", "cần gọi lại"]


async def test_a_built_model_saves_and_compares_like_a_read_one(client) -> None:
    inbox = await make_inbox()
    _, conversation = await _contact_and_conversation(inbox)
    built = model_from_row(Conversation, await _raw_row(), "c_")
    assert built == conversation  # same primary key, same model

    built.status = "open"
    built.labels = [*built.labels, "đã chốt"]
    await built.save(update_fields=["status", "labels"])  # an update of a saved row, never an insert

    assert await Conversation.all().count() == 1
    reread = await Conversation.get(id=conversation.id)
    assert (reread.status, reread.labels) == ("open", ["đơn mới", "cần gọi lại", "đã chốt"])
    assert reread.snoozed_until == conversation.snoozed_until


async def test_statements_run_in_order_inside_the_transaction_and_fetch_in_place(client) -> None:
    """`run_statements` (the processor's flush: one hand-off to SQLite's thread, one by one on Postgres): rows,
    plain statements and queries in order, each query's rows where it stood, and all of it undone with the
    transaction."""
    inbox = await make_inbox()
    contact, _ = await _contact_and_conversation(inbox)
    dialect = db.connection().capabilities.dialect
    mark = "?" if dialect == "sqlite" else "$1"
    rename = Statement(update_many(dialect, "contacts", ("name",)), [["Hoa", contact.id], ["x", -1]], many=True)
    read = Statement(f"SELECT name FROM contacts WHERE id = {mark}", [contact.id], fetch=True)
    tag = Statement(update_many(dialect, "contacts", ("notes",)), ["khách quen", contact.id])
    async with in_transaction() as conn:
        results = await run_statements(conn, [rename, read, tag, read])
    assert results == [None, [{"name": "Hoa"}], None, [{"name": "Hoa"}]]
    stored = await Contact.get(id=contact.id)
    assert (stored.name, stored.notes) == ("Hoa", "khách quen")

    class Undone(Exception):
        pass

    try:
        async with in_transaction() as conn:
            await run_statements(conn, [Statement(rename.sql, [["Lan", contact.id]], many=True)])
            raise Undone
    except Undone:
        pass
    assert (await Contact.get(id=contact.id)).name == "Hoa"


async def test_a_statement_fills_in_the_next_ones_and_the_last_hand_off_commits(client) -> None:
    """`then` sees a query's rows before the next statement runs (the flush gives held messages their ids that
    way); `commit=True` commits with the last statements, and leaving the transaction then changes nothing. A
    `then` that raises undoes everything before it, as the flush's `AlreadyStored` must."""
    inbox = await make_inbox()
    contact, _ = await _contact_and_conversation(inbox)
    dialect = db.dialect()
    mark = "?" if dialect == "sqlite" else "$1"
    note = Statement(update_many(dialect, "contacts", ("notes",)), [None, contact.id])

    def give_id(rows: list[dict]) -> None:
        note.params[0] = f"id {rows[0]['id']}"

    read = Statement(f"SELECT id FROM contacts WHERE id = {mark}", [contact.id], fetch=True, then=give_id)
    async with in_transaction() as conn:
        await run_statements(conn, [read, note], commit=True)
    assert (await Contact.get(id=contact.id)).notes == f"id {contact.id}"

    class Refused(Exception):
        pass

    def refuse(rows: list[dict]) -> None:
        raise Refused

    rename = Statement(update_many(dialect, "contacts", ("name",)), [["Lan", contact.id]], many=True)
    refusing = Statement(f"SELECT id FROM contacts WHERE id = {mark}", [contact.id], fetch=True, then=refuse)
    try:
        async with in_transaction() as conn:
            await run_statements(conn, [rename, refusing, note], commit=True)
    except Refused:
        pass
    assert (await Contact.get(id=contact.id)).name == "Nguyễn Thị Hoa"


async def test_a_sqlite_transaction_costs_two_trips_to_the_database_thread(client) -> None:
    """hopthu's SQLite client (`inbox.sqlite_client`) begins a transaction in one trip to aiosqlite's thread, and
    `run_statements(commit=True)` commits in the statements' trip: while a transaction is open, webhooks wait for
    the connection, and each trip waits for the event loop to come round. tortoise's own client takes three trips
    for an empty transaction."""
    connection = db.connection()
    if connection.capabilities.dialect != "sqlite":
        return  # Postgres has a pool: a transaction holds one connection of several
    inbox = await make_inbox()
    contact, _ = await _contact_and_conversation(inbox)
    raw = connection._connection
    trips = 0
    original = raw._execute

    async def counted(fn: Any, *args: Any, **kwargs: Any) -> Any:
        nonlocal trips
        trips += 1
        return await original(fn, *args, **kwargs)

    raw._execute = counted
    try:
        async with in_transaction():
            pass
        assert trips == 2  # BEGIN, COMMIT
        trips = 0
        rename = Statement(update_many("sqlite", "contacts", ("name",)), [["Lan", contact.id]], many=True)
        async with in_transaction() as conn:
            await run_statements(conn, [rename], commit=True)
        assert trips == 2  # BEGIN, then the statements with the COMMIT
    finally:
        del raw._execute
    assert (await Contact.get(id=contact.id)).name == "Lan"


async def test_statements_in_a_savepoint_leave_the_commit_to_the_outer_transaction(client) -> None:
    """`commit=True` inside a nested `in_transaction()` (a savepoint) must not commit the outer transaction: its
    writes are still undone when the outer one fails."""
    inbox = await make_inbox()
    contact, _ = await _contact_and_conversation(inbox)
    rename = Statement(update_many(db.dialect(), "contacts", ("name",)), [["Lan", contact.id]], many=True)

    class Undone(Exception):
        pass

    try:
        async with in_transaction():
            async with in_transaction() as savepoint:
                await run_statements(savepoint, [rename], commit=True)
            raise Undone
    except Undone:
        pass
    assert (await Contact.get(id=contact.id)).name == "Nguyễn Thị Hoa"
