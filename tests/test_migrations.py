"""The committed migrations describe the models exactly: a model change without its migration fails here."""

from tortoise.cli.cli import tortoise_cli_context
from tortoise.migrations.autodetector import MigrationAutodetector

from inbox.db import APP, tortoise_config


async def test_models_have_no_unmigrated_changes(tmp_path):
    config = tortoise_config(f"sqlite://{tmp_path / 'check.db'}")
    async with tortoise_cli_context(config) as ctx:
        writers = await MigrationAutodetector(ctx.apps, config["apps"]).changes()
    pending = [w for w in writers if w.app_label == APP] if writers else []
    assert not pending, "models changed without a migration: run `tortoise makemigrations` (see README)"
