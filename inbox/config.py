"""Settings from environment variables, optionally from `hopthu.toml`; the environment wins.

The secret key is generated on first run and kept in a file only its owner can read, so sessions and visitor
tokens survive restarts without anyone having to invent a secret.
"""

from __future__ import annotations

import os
import secrets
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

DEFAULTS: dict[str, str] = {
    "HOPTHU_DATABASE_URL": "sqlite://./hopthu.db",
    "HOPTHU_REDIS_URL": "",
    "HOPTHU_SECRET_KEY": "",
    "HOPTHU_FACEBOOK_GRAPH_URL": "https://graph.facebook.com",
    "HOPTHU_ZALO_OPENAPI_URL": "https://openapi.zalo.me",
    "HOPTHU_ZALO_OAUTH_URL": "https://oauth.zaloapp.com",
    "HOPTHU_TELEGRAM_API_URL": "https://api.telegram.org",
    "HOPTHU_NLP_BACKEND": "classic",
    "HOPTHU_NLP_MODEL_DIR": "",
    "HOPTHU_EVENT_LOOP": "auto",
    "HOPTHU_NLP_WORKER": "process",
    "HOPTHU_PUBLIC_URL": "",
}
EVENT_LOOPS = ("auto", "uvloop", "asyncio")  # HOPTHU_EVENT_LOOP's values (inbox/event_loop.py)
NLP_WORKERS = ("process", "thread")  # HOPTHU_NLP_WORKER's values (inbox/enrich.py)
SECRET_FILE_VARIABLE = "HOPTHU_SECRET_FILE"  # where the generated key lives; default `.hopthu_secret`


class ConfigError(ValueError):
    pass


@dataclass(frozen=True)
class Settings:
    database_url: str
    redis_url: str | None
    secret_key: str
    facebook_graph_url: str
    zalo_openapi_url: str
    zalo_oauth_url: str
    telegram_api_url: str
    nlp_backend: str
    nlp_model_dir: str | None
    event_loop: str = "auto"  # auto (uvloop when installed), uvloop, asyncio: see inbox/event_loop.py
    nlp_worker: str = "process"  # where the classifier runs: its own process, or a thread of this one
    # Knobs that are not part of the contract; tests and benchmarks shorten them.
    event_buffer_size: int = 10_000
    outbox_base_delay: float = 2.0
    outbox_max_attempts: int = 8
    profile_fetch: bool = True
    # This server's address as platforms and browsers reach it (https://chat.shop.vn): the webhook URLs and the
    # widget snippet shown when an inbox is added. Unset, the admin's request says where the server is.
    public_url: str | None = None
    extra: dict[str, str] = field(default_factory=dict)


def _read_toml(path: Path) -> dict[str, str]:
    if not path.exists():
        return {}
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: {exc}") from exc
    # Accept both `HOPTHU_DATABASE_URL = …` and `database_url = …`.
    values: dict[str, str] = {}
    for key, value in data.items():
        name = key.upper()
        if not name.startswith("HOPTHU_"):
            name = "HOPTHU_" + name
        values[name] = str(value)
    return values


def _secret_key(configured: str, secret_file: Path) -> str:
    if configured:
        return configured
    if secret_file.exists():
        key = secret_file.read_text(encoding="utf-8").strip()
        if key:
            return key
    key = secrets.token_urlsafe(48)
    # O_EXCL: two processes starting together must not both write different keys.
    try:
        fd = os.open(secret_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return secret_file.read_text(encoding="utf-8").strip()
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(key + "\n")
    return key


def load_settings(
    environ: dict[str, str] | None = None, toml_path: str | Path | None = None, **overrides: object
) -> Settings:
    env = dict(os.environ if environ is None else environ)
    toml_file = Path(toml_path or env.get("HOPTHU_CONFIG", "hopthu.toml"))
    values = {**DEFAULTS, **_read_toml(toml_file)}
    values.update({k: v for k, v in env.items() if k.startswith("HOPTHU_")})
    backend = values["HOPTHU_NLP_BACKEND"]
    if backend not in ("classic", "transformers"):
        raise ConfigError(f"HOPTHU_NLP_BACKEND must be classic or transformers, not {backend!r}")
    event_loop = values["HOPTHU_EVENT_LOOP"].strip().lower() or "auto"
    if event_loop not in EVENT_LOOPS:
        raise ConfigError(f"HOPTHU_EVENT_LOOP must be auto, uvloop or asyncio, not {event_loop!r}")
    nlp_worker = values["HOPTHU_NLP_WORKER"].strip().lower() or "process"
    if nlp_worker not in NLP_WORKERS:
        raise ConfigError(f"HOPTHU_NLP_WORKER must be process or thread, not {nlp_worker!r}")
    secret_file = Path(values.get(SECRET_FILE_VARIABLE) or ".hopthu_secret")
    settings = Settings(
        database_url=values["HOPTHU_DATABASE_URL"],
        redis_url=values["HOPTHU_REDIS_URL"] or None,
        secret_key=_secret_key(values["HOPTHU_SECRET_KEY"], secret_file),
        facebook_graph_url=values["HOPTHU_FACEBOOK_GRAPH_URL"].rstrip("/"),
        zalo_openapi_url=values["HOPTHU_ZALO_OPENAPI_URL"].rstrip("/"),
        zalo_oauth_url=values["HOPTHU_ZALO_OAUTH_URL"].rstrip("/"),
        telegram_api_url=values["HOPTHU_TELEGRAM_API_URL"].rstrip("/"),
        nlp_backend=backend,
        nlp_model_dir=values["HOPTHU_NLP_MODEL_DIR"] or None,
        event_loop=event_loop,
        nlp_worker=nlp_worker,
        public_url=values["HOPTHU_PUBLIC_URL"].strip().rstrip("/") or None,
    )
    if overrides:
        from dataclasses import replace

        settings = replace(settings, **overrides)  # type: ignore[arg-type]
    return settings
