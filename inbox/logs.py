"""Structured logs: one JSON object per line, with every token, secret and Authorization header scrubbed.

The scrubbing is a logging filter on the handler, so it covers every logger (aiohttp's access log with its
`?token=` query strings included), the formatted message, its arguments and the traceback text alike.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from datetime import UTC, datetime
from typing import Any, TextIO

REDACTED = "[redacted]"
# Key names whose values are secrets wherever they appear: query strings, JSON, key=value text, headers.
SECRET_KEYS = (
    r"access_token|refresh_token|page_token|bot_token|app_secret|oa_secret|secret_token|verify_token|"
    r"client_secret|secret_key|secret|password|passwd|token|csrf_token|api_key|apikey|session|hopthu_session|"
    r"x-csrf-token|x-hub-signature-256|x-hub-signature|x-telegram-bot-api-secret-token|x-zevent-signature"
)
_PATTERNS = [
    # Authorization: Bearer abc / Basic abc, as a header line or a dict repr.
    (re.compile(r"(?i)(authorization['\"]?\s*[:=]\s*['\"]?)(bearer|basic|token)?\s*[^\s'\",}&]+"), r"\1\2 " + REDACTED),
    (re.compile(r"(?i)\bbearer\s+[A-Za-z0-9._~+/=-]{8,}"), "Bearer " + REDACTED),
    # key=value (query strings, form bodies, log text) and "key": "value" (JSON, reprs).
    (re.compile(rf"(?i)\b({SECRET_KEYS})=([^&\s'\",;]+)"), r"\1=" + REDACTED),
    (re.compile(rf"(?i)(['\"]({SECRET_KEYS})['\"]\s*:\s*)(['\"])(.*?)(?<!\\)\3"), r"\1\3" + REDACTED + r"\3"),
    (re.compile(rf"(?i)\b({SECRET_KEYS})(\s*:\s+)(\S+)"), r"\1\2" + REDACTED),
    # Telegram bot tokens, also inside API URLs (/bot123456:ABC…/sendMessage).
    (re.compile(r"(?<!\d)\d{6,12}:[A-Za-z0-9_-]{30,}"), REDACTED),
    # Facebook/Zalo long-lived tokens seen bare in error texts (EAAG…).
    (re.compile(r"\bEAA[A-Za-z0-9]{20,}"), REDACTED),
]


def scrub(text: str) -> str:
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


_SECRET_KEY = re.compile(rf"(?i)^({SECRET_KEYS}|authorization|cookie|set-cookie)$")


def scrub_value(value: Any) -> Any:
    """`scrub` through dicts and lists; a value under a secret's key name is dropped whole."""
    if isinstance(value, str):
        return scrub(value)
    if isinstance(value, dict):
        return {k: REDACTED if _SECRET_KEY.match(str(k)) else scrub_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [scrub_value(v) for v in value]
    return value


class RedactingFilter(logging.Filter):
    """Formats the message once, scrubbed, so no formatter downstream can see the raw arguments."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a bad format string must not hide the log line
            message = f"{record.msg!r} {record.args!r}"
        record.msg, record.args = scrub(message), None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = scrub(record.exc_text)
        record.exc_info = None  # the scrubbed text is kept; the raw exception is not formatted again
        return True


class JsonFormatter(logging.Formatter):
    # Attributes every LogRecord has; anything else was passed in `extra=` and is logged as a field.
    _STANDARD = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime"}

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in self._STANDARD and not key.startswith("_"):
                entry[key] = scrub_value(value)  # `extra=` fields may be dicts with secrets in them
        if record.exc_text:
            entry["exc"] = record.exc_text
        elif record.exc_info:
            entry["exc"] = scrub(self.formatException(record.exc_info))
        return json.dumps(entry, ensure_ascii=False, default=lambda v: scrub(str(v)))


def configure(level: int | str = logging.INFO, *, json_lines: bool = True, stream: TextIO | None = None) -> None:
    """Root logging for `hopthu serve`: JSON lines (or plain text for a terminal), always scrubbed."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.addFilter(RedactingFilter())
    if json_lines:
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
