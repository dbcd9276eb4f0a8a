"""Property tests on every channel parser: whatever a platform (or an attacker with a valid signature) sends, a parser
returns events or raises `channels.events.ParseError` — nothing else may escape.

The parsers are found, not listed: every public function of every `channels.*` adapter module whose name starts with
`parse` or that documents raising ParseError, so a parser added with a new channel is fuzzed without an edit here.
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import pkgutil
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import channels
from channels import fakes
from channels.events import ParseError

NOT_ADAPTERS = ("events", "base")
PAYLOAD_NAMES = ("payload", "data", "change", "body", "update", "frame", "raw")
# Keys the platforms use, so generated objects reach deep into the parsers instead of failing at the first check.
KEYS = ["object", "entry", "id", "time", "messaging", "sender", "recipient", "timestamp", "message", "mid", "text",
        "attachments", "type", "payload", "url", "is_echo", "app_id", "metadata", "quick_reply", "reply_to",
        "postback", "title", "referral", "delivery", "mids", "watermark", "read", "changes", "field", "value", "item",
        "verb", "comment_id", "post_id", "parent_id", "from", "name", "created_time", "event_name", "oa_id",
        "user_id_by_app", "follower", "msg_id", "update_id", "chat", "message_id", "date", "photo", "file_id",
        "document", "caption", "edited_message", "callback_query", "echo_id", "coordinates", "lat", "long",
        "sticker", "voice", "location", "contact", "phone_number", "username"]  # fmt: skip

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=40),
    st.sampled_from(["", "0", "-1", "1e400", "null", "106001234567890", "\x00", "\ud800", "😀" * 5, "a" * 5000]),
)  # fmt: skip
json_like = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=5),
        st.dictionaries(st.one_of(st.sampled_from(KEYS), st.text(max_size=8)), children, max_size=6),
    ),
    max_leaves=40,
)


def _samples() -> list[Any]:
    """Real payloads of every channel's fakes (builders that need no arguments beyond ids and text)."""
    ts = 1_732_500_000_000
    out: list[Any] = [
        fakes.messenger_text("106001234567890", "2490000000000001", "m_1", "Shop ơi", ts),
        fakes.messenger_postback("106001234567890", "2490000000000001", "Bắt đầu", "GET_STARTED", ts),
        fakes.messenger_delivery("106001234567890", "2490000000000001", ts, ["m_1"]),
        fakes.messenger_read("106001234567890", "2490000000000001", ts),
        fakes.messenger_attachment("106001234567890", "2490000000000001", "m_2", "image", "https://x.vn/a.jpg", ts),
        fakes.messenger_handover("106001234567890", "2490000000000001", ts, metadata="chuyển cho nhân viên"),
        fakes.messenger_app_roles("106001234567890", ts, {"263902037430900": ["primary_receiver"]}),
    ]
    for name in ("fakes_zalo", "fakes_telegram"):
        try:
            module = importlib.import_module(f"channels.{name}")
        except ImportError:
            continue
        for fn_name, fn in inspect.getmembers(module, inspect.isfunction):
            if fn.__module__ != module.__name__ or fn_name.startswith("_"):
                continue
            try:
                value = fn(*[_simple(p) for p in _required(fn)])
            except Exception:
                continue
            if isinstance(value, dict) and len(str(value)) < 20_000:
                out.append(value)
    return out


def _required(fn: Callable) -> list[inspect.Parameter]:
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    params = inspect.signature(fn).parameters.values()
    return [p for p in params if p.default is inspect.Parameter.empty and p.kind in positional]


def _simple(param: inspect.Parameter) -> Any:
    annotation = str(param.annotation)
    if "int" in annotation and "str" not in annotation:
        return 1_732_500_000
    if "datetime" in annotation:
        return datetime.now(UTC)
    if "Visitor" in annotation:
        from channels.webchat import new_visitor

        return new_visitor("widget-token")
    if "Callable" in annotation or "FileUrl" in annotation or param.name.startswith(("normalize", "file_url")):
        return lambda *a: None
    return "1234567890"


def discover() -> list[tuple[str, Callable[[Any], Any]]]:
    """(name, call(payload)) for every parser of every adapter module."""
    found = []
    for info in sorted(pkgutil.iter_modules(channels.__path__), key=lambda i: i.name):
        if info.name.startswith("fakes") or info.name in NOT_ADAPTERS:
            continue
        module = importlib.import_module(f"channels.{info.name}")
        for name, fn in inspect.getmembers(module, inspect.isfunction):
            if fn.__module__ != module.__name__ or name.startswith("_"):
                continue
            doc = fn.__doc__ or ""
            if not (name.startswith("parse") or "ParseError" in doc):
                continue
            params = _required(fn)
            target = next((p for p in params if p.name in PAYLOAD_NAMES), params[0] if params else None)
            if target is None:
                continue

            def call(payload: Any, fn: Callable = fn, params: list = params, target: Any = target) -> Any:
                return fn(*[payload if p is target else _simple(p) for p in params])

            found.append((f"{info.name}.{name}", call))
    return found


PARSERS = discover()
SAMPLES = _samples()


def test_every_adapter_has_its_parsers_found() -> None:
    names = {n for n, _ in PARSERS}
    assert {"facebook.parse", "zalo.parse", "telegram.parse"} <= names, names
    assert len(SAMPLES) >= 5


def _mutate(sample: Any, path: list[int], value: Any) -> Any:
    """`sample` with the leaf or branch at `path` (indices into its dict/list children) replaced by `value`."""
    if not path or not isinstance(sample, dict | list) or not sample:
        return value
    if isinstance(sample, dict):
        keys = list(sample)
        key = keys[path[0] % len(keys)]
        return {**sample, key: _mutate(sample[key], path[1:], value)}
    index = path[0] % len(sample)
    return [*sample[:index], _mutate(sample[index], path[1:], value), *sample[index + 1 :]]


def _only_parse_errors(call: Callable[[Any], Any], payload: Any) -> None:
    try:
        result = call(payload)
    except ParseError:
        return
    # What comes back is the project's typed events (dataclasses), never raw platform dicts.
    items = result if isinstance(result, list | tuple) else [result]
    assert all(dataclasses.is_dataclass(item) for item in items), result


FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)


@pytest.mark.parametrize("name,call", PARSERS, ids=[n for n, _ in PARSERS])
@FUZZ
@given(payload=json_like)
def test_parser_only_raises_parse_error_on_anything(name: str, call: Callable, payload: Any) -> None:
    _only_parse_errors(call, payload)


@pytest.mark.parametrize("name,call", PARSERS, ids=[n for n, _ in PARSERS])
@FUZZ
@given(data=st.data())
def test_parser_only_raises_parse_error_on_broken_real_payloads(name: str, call: Callable, data: Any) -> None:
    sample = data.draw(st.sampled_from(SAMPLES))
    payload = _mutate(sample, data.draw(st.lists(st.integers(0, 50), max_size=8)), data.draw(json_like))
    _only_parse_errors(call, payload)
