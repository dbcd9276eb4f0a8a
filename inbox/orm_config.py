"""The tortoise config as a module attribute, for tortoise's own CLI (`scripts/makemigration NAME`)."""

from inbox.db import tortoise_config

TORTOISE_ORM = tortoise_config("sqlite://:memory:")
