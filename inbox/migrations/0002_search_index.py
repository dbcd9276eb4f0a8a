"""Full-text search over message text and contact names, without diacritics.

SQLite: two FTS5 tables keyed by rowid (message id / contact id). Postgres: GIN indexes over `to_tsvector`.
Both index `search_text`, which `inbox.search.fold` fills (lower case, no tone marks, đ → d).
"""

from tortoise import migrations
from tortoise.migrations import operations as ops

SQLITE_UP = [
    "CREATE VIRTUAL TABLE message_fts USING fts5(search_text, content='', tokenize='unicode61')",
    "CREATE VIRTUAL TABLE contact_fts USING fts5(search_text, content='', tokenize='unicode61')",
]
SQLITE_DOWN = ["DROP TABLE message_fts", "DROP TABLE contact_fts"]
POSTGRES_UP = [
    "CREATE INDEX messages_search_gin ON messages USING gin (to_tsvector('simple', search_text))",
    "CREATE INDEX contacts_search_gin ON contacts USING gin (to_tsvector('simple', search_text))",
]
POSTGRES_DOWN = ["DROP INDEX messages_search_gin", "DROP INDEX contacts_search_gin"]


def _runner(sqlite: list[str], postgres: list[str]):
    async def run(apps, schema_editor) -> None:
        client = schema_editor.client
        statements = sqlite if client.capabilities.dialect == "sqlite" else postgres
        for statement in statements:
            await client.execute_script(statement)

    return run


class Migration(migrations.Migration):
    dependencies = [("hopthu", "0001_initial")]

    initial = False

    operations = [
        ops.RunPython(_runner(SQLITE_UP, POSTGRES_UP), _runner(SQLITE_DOWN, POSTGRES_DOWN)),
    ]
