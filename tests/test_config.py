"""Configuration: environment over hopthu.toml over defaults; the secret key is generated once, owner-only."""

import stat

import pytest

from inbox.config import ConfigError, load_settings
from inbox.db import database_url


def test_defaults_follow_the_contract(tmp_path):
    settings = load_settings(environ={"HOPTHU_SECRET_FILE": str(tmp_path / "secret")}, toml_path=tmp_path / "none")
    assert settings.database_url == "sqlite://./hopthu.db"
    assert settings.redis_url is None
    assert settings.facebook_graph_url == "https://graph.facebook.com"
    assert settings.zalo_openapi_url == "https://openapi.zalo.me"
    assert settings.zalo_oauth_url == "https://oauth.zaloapp.com"
    assert settings.telegram_api_url == "https://api.telegram.org"
    assert settings.nlp_backend == "classic"
    assert settings.nlp_model_dir is None


def test_toml_is_read_and_environment_wins(tmp_path):
    toml = tmp_path / "hopthu.toml"
    toml.write_text(
        'HOPTHU_DATABASE_URL = "postgres://db/hopthu"\nredis_url = "redis://cache:6379/0"\n'
        'HOPTHU_FACEBOOK_GRAPH_URL = "http://from-toml/"\n',
        encoding="utf-8",
    )
    env = {"HOPTHU_FACEBOOK_GRAPH_URL": "http://from-env", "HOPTHU_SECRET_KEY": "k"}
    settings = load_settings(environ=env, toml_path=toml)
    assert settings.database_url == "postgres://db/hopthu"
    assert settings.redis_url == "redis://cache:6379/0"
    assert settings.facebook_graph_url == "http://from-env"


def test_broken_toml_and_bad_backend_are_clear_errors(tmp_path):
    toml = tmp_path / "hopthu.toml"
    toml.write_text("this is = = not toml", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"hopthu\.toml"):
        load_settings(environ={"HOPTHU_SECRET_KEY": "k"}, toml_path=toml)
    with pytest.raises(ConfigError, match="HOPTHU_NLP_BACKEND"):
        load_settings(environ={"HOPTHU_SECRET_KEY": "k", "HOPTHU_NLP_BACKEND": "gpt"}, toml_path=tmp_path / "x")


def test_secret_key_generated_once_and_readable_only_by_owner(tmp_path):
    secret_file = tmp_path / ".hopthu_secret"
    env = {"HOPTHU_SECRET_FILE": str(secret_file)}
    first = load_settings(environ=env, toml_path=tmp_path / "none").secret_key
    second = load_settings(environ=env, toml_path=tmp_path / "none").secret_key
    assert first == second and len(first) >= 40
    assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600


def test_sqlite_urls_get_busy_timeout_and_durable_commits():
    url = database_url("sqlite://./hopthu.db")
    assert "busy_timeout=10000" in url and "synchronous=FULL" in url
    assert "busy_timeout=50" in database_url("sqlite://./x.db?busy_timeout=50")
    assert database_url("postgres://u@h/db") == "postgres://u@h/db"


async def test_sqlite_connection_runs_wal_with_busy_timeout(tmp_path):
    from inbox import db

    await db.connect(f"sqlite://{tmp_path / 'x.db'}")
    try:
        conn = db.connection()
        assert (await conn.execute_query_dict("PRAGMA journal_mode"))[0]["journal_mode"] == "wal"
        assert (await conn.execute_query_dict("PRAGMA busy_timeout"))[0]["timeout"] == 10000
        assert (await conn.execute_query_dict("PRAGMA synchronous"))[0]["synchronous"] == 2  # FULL
    finally:
        await db.disconnect()


async def test_postgres_statements_cost_one_round_trip_each(database_url):
    """asyncpg's pool would follow every statement outside a transaction with a reset query (`RESET ALL` …): hopthu
    keeps no session state on pooled connections, so none is sent. Pool options in the URL still apply."""
    if not database_url.startswith("postgres"):
        pytest.skip("PostgreSQL only (HOPTHU_TEST_DATABASE_URL)")
    from inbox import db

    await db.connect(database_url + "?maxsize=3", apply_migrations=False)
    try:
        await db.connection().execute_query_dict("SELECT 1 AS one")  # the pool opens on first use
        pool = db.connection()._pool
        assert pool.get_max_size() == 3
        sent: list[str] = []
        async with pool.acquire() as conn:
            conn.add_query_logger(lambda record: sent.append(record.query))
        for _ in range(3):
            await db.connection().execute_query_dict("SELECT 1 AS one")
        assert sent and all("RESET" not in query and "UNLISTEN" not in query for query in sent), sent
    finally:
        await db.disconnect()
