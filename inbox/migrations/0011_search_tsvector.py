"""Search on Postgres: the folded text's tsvector stored in a generated column, with its own GIN index.

Matching rows were rechecked by recomputing `to_tsvector` on every candidate, which made a common word cost
about a second on a million messages; a stored tsvector makes both the set form and the walk form of
`inbox.search` cheap (milliseconds for common words, tens of ms for rare ones). The text stays folded by
`inbox.search.fold` (no tone marks, đ → d), so Vietnamese with or without diacritics matches alike; no
extension (unaccent / pg_trgm) is needed. SQLite keeps its FTS5 tables: nothing to do there.
"""

from tortoise import migrations
from tortoise.migrations import operations as ops

TSV = "tsvector GENERATED ALWAYS AS (to_tsvector('simple'::regconfig, search_text)) STORED"
POSTGRES_UP = [
    f"ALTER TABLE messages ADD COLUMN IF NOT EXISTS search_tsv {TSV}",
    "CREATE INDEX IF NOT EXISTS messages_search_tsv ON messages USING gin (search_tsv)",
    "DROP INDEX IF EXISTS messages_search_gin",  # replaced; contacts keep theirs (contacts.profile uses it)
    f"ALTER TABLE contacts ADD COLUMN IF NOT EXISTS search_tsv {TSV}",
    "CREATE INDEX IF NOT EXISTS contacts_search_tsv ON contacts USING gin (search_tsv)",
]
POSTGRES_DOWN = [
    "CREATE INDEX IF NOT EXISTS messages_search_gin ON messages USING gin (to_tsvector('simple', search_text))",
    "ALTER TABLE messages DROP COLUMN IF EXISTS search_tsv",
    "ALTER TABLE contacts DROP COLUMN IF EXISTS search_tsv",
]


def _runner(statements: list[str]):
    async def run(apps, schema_editor) -> None:
        client = schema_editor.client
        if client.capabilities.dialect != "postgres":
            return
        for statement in statements:
            await client.execute_script(statement)

    return run


class Migration(migrations.Migration):
    dependencies = [("hopthu", "0010_nlp_conversation_sentiment")]

    initial = False

    operations = [
        ops.RunPython(_runner(POSTGRES_UP), _runner(POSTGRES_DOWN)),
    ]
