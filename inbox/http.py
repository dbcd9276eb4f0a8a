"""HTTP helpers shared by the webhook and API handlers: the contract's error shape, bounded bodies, JSON."""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, NoReturn, TypeVar

import orjson
from aiohttp import web
from tortoise.exceptions import DBConnectionError, OperationalError, TransactionManagementError

MAX_BODY = 1024 * 1024  # 1 MiB: larger webhook bodies get 413
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Middleware = Callable[[web.Request, Handler], Awaitable[web.StreamResponse]]
H = TypeVar("H", bound=Handler)


class ApiError(web.HTTPException):
    """Raised anywhere in a handler; rendered as {"error": {"code", "message"}} with its status."""

    def __init__(self, status: int, code: str, message: str) -> None:
        self.status_code = status
        super().__init__(
            text=orjson.dumps({"error": {"code": code, "message": message}}).decode(),
            content_type="application/json",
        )
        self.code = code


def fail(status: int, code: str, message: str) -> NoReturn:
    raise ApiError(status, code, message)


def json_response(data: Any, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(data), status=status, content_type="application/json")


async def read_body(request: web.Request, limit: int = MAX_BODY) -> bytes:
    if request.content_length is not None and request.content_length > limit:
        fail(413, "payload_too_large", f"body larger than {limit} bytes")
    if request.content_length is not None and not request.headers.get("Transfer-Encoding"):
        return await request.read()  # the common case: one read of a body whose size is known and allowed
    chunks, size = [], 0
    async for chunk in request.content.iter_chunked(64 * 1024):
        size += len(chunk)
        if size > limit:
            fail(413, "payload_too_large", f"body larger than {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def parse_json(raw: bytes) -> Any:
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        fail(400, "malformed_json", f"body is not valid JSON: {exc}")


async def json_body(request: web.Request) -> dict[str, Any]:
    data = parse_json(await read_body(request))
    if not isinstance(data, dict):
        fail(400, "invalid_body", "expected a JSON object")
    return data


# Dates a person can mean: beyond them, converting to UTC or adding a period overflows Python's datetime (a 500
# on every later read of the row), so they are refused at the door.
EARLIEST, LATEST = datetime(1970, 1, 1, tzinfo=UTC), datetime(2100, 1, 1, tzinfo=UTC)


def plausible(moment: datetime) -> bool:
    """Between 1970 and 2100 (an aware datetime)."""
    return EARLIEST <= moment < LATEST


def moment(raw: object, name: str, *, code: str = "invalid_parameter", naive_is_utc: bool = False) -> datetime:
    """An ISO 8601 date-time between 1970 and 2100 from a query or body field, in UTC, or a 400 naming the field.
    Without a time zone it is refused, or read as UTC where `naive_is_utc` (report periods, where a date-time is a
    bound). In UTC because it may go to SQL as a parameter: SQLite compares the stored UTC text with it, so
    08:00+07:00 must arrive as 01:00+00:00."""
    try:
        value = datetime.fromisoformat(str(raw).replace("Z", "+00:00"))
    except ValueError:
        fail(400, code, f"{name} must be an ISO 8601 date-time")
    if value.tzinfo is None:
        if not naive_is_utc:
            fail(400, code, f"{name} needs a time zone (e.g. Z or +07:00)")
        value = value.replace(tzinfo=UTC)
    if not plausible(value):
        fail(400, code, f"{name} must be between 1970 and 2100")
    return value.astimezone(UTC)


MAX_ID = 2**63 - 1  # the largest database id: a larger number overflows SQLite's INTEGER (a 500, not a 400)


def is_id(value: object) -> bool:
    """A JSON body's id: an integer (not true/false, which Python counts as 1/0) from 1 to MAX_ID."""
    return isinstance(value, int) and not isinstance(value, bool) and 0 < value <= MAX_ID


def digits_id(text: str) -> int | None:
    """`text` as an id when it is ASCII digits, at most 18 of them (within MAX_ID); None otherwise. (`str.isdigit`
    alone also takes "²", which `int` refuses.)"""
    return int(text) if text.isascii() and text.isdigit() and len(text) <= 18 else None


def int_param(value: str | None, name: str, *, default: int | None = None, low: int = 1, high: int = 10**12) -> int:
    if value is None or value == "":
        if default is None:
            fail(400, "missing_parameter", f"{name} is required")
        return default
    try:
        number = int(value)
    except ValueError:
        fail(400, "invalid_parameter", f"{name} must be an integer")
    if not low <= number <= high:
        fail(400, "invalid_parameter", f"{name} must be between {low} and {high}")
    return number


def database_unavailable(exc: BaseException) -> bool:
    """The database could not do its part (locked, gone, read-only, out of resources), as opposed to a bug.

    tortoise's own subclasses (DoesNotExist, IntegrityError…) are the code's business, not an outage; asyncpg's
    errors that tortoise passes through untranslated are read by their SQLSTATE class.
    """
    state = _sqlstate(exc)
    if state is not None:
        return state[:2] in ("08", "40", "53", "57") or state in ("55P03", "25006")
    return type(exc) in (OperationalError, DBConnectionError, TransactionManagementError)


def _sqlstate(exc: BaseException) -> str | None:
    """PostgreSQL's SQLSTATE of the error, also when tortoise wrapped asyncpg's exception."""
    for candidate in (exc, exc.__cause__, exc.__context__):
        state = getattr(candidate, "sqlstate", None)
        if isinstance(state, str):
            return state
    return None


class ContractErrors:
    """`with ContractErrors(request):` — errors leave in the contract's shape, including aiohttp's own 404/405/413.
    The error middleware wraps every handler in it; a socket's handler wraps its handshake (`long_lived`)."""

    __slots__ = ("request",)

    def __init__(self, request: web.Request) -> None:
        self.request = request

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, _tb: object) -> None:
        if exc is None or isinstance(exc, ApiError) or not isinstance(exc, Exception):
            return
        if isinstance(exc, web.HTTPException):
            if exc.status < 400:
                return
            codes = {404: "not_found", 405: "method_not_allowed", 413: "payload_too_large", 403: "forbidden"}
            raise ApiError(exc.status, codes.get(exc.status, "http_error"), exc.reason) from exc
        state = _sqlstate(exc)
        if state is not None and state.startswith("22"):  # data exception: e.g. a NUL character PostgreSQL refuses
            raise ApiError(
                400, "invalid_input", "a value in the request cannot be stored (e.g. a NUL character)"
            ) from exc
        # The database is locked, gone or cannot commit: 503 (try again), never a 200 for an unsaved change.
        if not database_unavailable(exc):
            return
        request = self.request
        logging.getLogger(__name__).error("database unavailable during %s %s: %s", request.method, request.path, exc)
        raise ApiError(503, "storage_unavailable", "the database is unavailable right now; please retry") from exc


@web.middleware
async def error_middleware(request: web.Request, handler: Any) -> web.StreamResponse:
    """Every error leaves in the contract's shape (`ContractErrors`)."""
    with ContractErrors(request):
        return await handler(request)


def long_lived(handler: H) -> H:
    """Marks a handler that holds its connection open for hours (a WebSocket): see `lets_sockets_through`. Every
    middleware lets it through, the error middleware included: the handler puts its handshake in `ContractErrors`."""
    handler.long_lived = True  # type: ignore[attr-defined]
    return handler


async def prepare_socket(ws: web.WebSocketResponse, request: web.Request) -> None:
    """`ws.prepare(request)` for a long-lived socket, then let go of the connection's HTTP parser.

    aiohttp's parser keeps its copy of the upgrade request's headers (as parsed pairs and as raw bytes), its path
    with the query and its buffers until a next request begins, which on an upgraded connection never happens: ≈ 2
    KiB for each open socket, kept all day, for a parser that is not fed again (frames go to the WebSocket reader).
    aiohttp drops it itself when the connection is lost; this does the same as soon as the upgrade is accepted. Only
    when the protocol says so: a declined upgrade, or an aiohttp whose protocol differs, keeps its parser."""
    await ws.prepare(request)
    protocol = request.protocol
    if getattr(protocol, "_upgraded", False) is True and getattr(protocol, "_payload_parser", None) is not None:
        protocol._parser = None  # type: ignore[attr-defined]  # aiohttp 3.14's name (pyproject asks for 3.14+)


def from_platforms(handler: H) -> H:
    """Marks a webhook handler: called by Facebook, Zalo or Telegram, never with an agent's session, and answering
    nothing about a customer. The agent-facing middlewares (masking, activity) let it through (`for_agents`): on
    the busiest route of all they would each cost a coroutine frame per request for nothing."""
    handler.from_platforms = True  # type: ignore[attr-defined]
    return handler


def _skipping(middleware: Middleware, marks: tuple[str, ...]) -> Middleware:
    """`middleware`, except for handlers carrying one of `marks`, which are called directly. Decided by the
    matched route, never by a header a client could add to an API request to skip the middleware."""

    @functools.wraps(middleware)
    def dispatch(request: web.Request, handler: Handler) -> Awaitable[web.StreamResponse]:
        route_handler = request.match_info.handler
        for mark in marks:
            if getattr(route_handler, mark, False):
                return handler(request)  # awaited by the middleware outside this one, with no frame of ours
        return middleware(request, handler)

    dispatch.__middleware_version__ = 1  # type: ignore[attr-defined]  # aiohttp's new-style middleware
    return dispatch


def lets_sockets_through(middleware: Middleware) -> Middleware:
    """`middleware`, except for `long_lived` handlers. A middleware that awaits its handler keeps a coroutine frame
    alive while the handler runs: for a socket open all day, ≈ 300 bytes per middleware per socket, spent on
    middlewares that do nothing to a WebSocket."""
    return _skipping(middleware, ("long_lived",))


def for_agents(middleware: Middleware) -> Middleware:
    """`middleware`, except for `long_lived` and `from_platforms` handlers: for what only concerns agents' API
    requests (masking customers' details in answers, counting an agent's activity)."""
    return _skipping(middleware, ("long_lived", "from_platforms"))
