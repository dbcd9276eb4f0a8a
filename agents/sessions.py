"""Login sessions: one random token, used as a bearer token or as an HttpOnly cookie.

Only the token's SHA-256 is stored. Cookie-authenticated writes must also send the session's CSRF token in
`X-CSRF-Token` (a bearer token cannot be sent by another site, a cookie can).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

from agents.access import Viewer
from agents.models import AuthSession, User
from contacts.masking import can_view_pii
from inbox.db import connection
from inbox.sql import Sql, as_datetime, as_json, model_from_row, model_select

SESSION_COOKIE = "hopthu_session"
CSRF_HEADER = "X-CSRF-Token"
SESSION_LIFETIME = timedelta(days=14)


@dataclass(frozen=True, slots=True)
class Authenticated:
    user: User
    viewer: Viewer
    session_id: int
    csrf_token: str
    via_cookie: bool


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def create_session(user: User) -> tuple[str, AuthSession]:
    token = secrets.token_urlsafe(32)
    session = await AuthSession.create(
        token_hash=token_hash(token),
        csrf_token=secrets.token_urlsafe(24),
        user=user,
        expires_at=datetime.now(UTC) + SESSION_LIFETIME,
    )
    return token, session


async def resolve(token: str, *, via_cookie: bool) -> Authenticated | None:
    """The session of a token, with its user, in one raw query: every API request and socket starts here, and the
    ORM's select_related cost more than the query (its models also lingered for the life of a socket)."""
    conn = connection()
    sql = Sql(conn.capabilities.dialect)
    rows = await conn.execute_query_dict(
        f"SELECT s.id AS s_id, s.csrf_token AS s_csrf_token, s.expires_at AS s_expires_at, {model_select(User, 'u')} "
        f"FROM auth_sessions s JOIN users u ON u.id = s.user_id "
        f"WHERE s.token_hash = {sql.p(token_hash(token))} AND s.revoked = {sql.p(False)}",
        sql.params,
    )
    if not rows:
        return None
    row = rows[0]
    expires_at = as_datetime(row["s_expires_at"])
    user = model_from_row(User, row, "u_")
    if expires_at is None or expires_at < datetime.now(UTC) or not user.is_active:
        return None
    viewer = await viewer_for(user)
    return Authenticated(user, viewer, row["s_id"], row["s_csrf_token"], via_cookie)


_MEMBERSHIPS: dict[frozenset[int], frozenset[int]] = {}


def _shared(ids: frozenset[int]) -> frozenset[int]:
    """One set object per distinct membership: a socket keeps its viewer for hours, and the agents of one team
    (and one agent's tabs) have the same memberships."""
    if len(_MEMBERSHIPS) > 10_000:  # memberships change over months: a bound, not an eviction policy
        _MEMBERSHIPS.clear()
    return _MEMBERSHIPS.setdefault(ids, ids)


async def viewer_for(user: User) -> Viewer:
    if user.role in ("supervisor", "admin"):
        return Viewer(user.id, user.role, _shared(frozenset()), _shared(frozenset()))
    inboxes, teams = (await _memberships([user.id])).get(user.id, (frozenset(), frozenset()))
    return Viewer(user.id, user.role, _shared(inboxes), _shared(teams))


async def _memberships(user_ids: Sequence[int]) -> dict[int, tuple[frozenset[int], frozenset[int]]]:
    """Each agent's inboxes and teams, in one query for both (it keeps an agent's list page within three queries)."""
    conn = connection()
    sql = Sql(conn.capabilities.dialect)
    inbox_marks, team_marks = sql.marks(user_ids), sql.marks(user_ids)
    rows = await conn.execute_query_dict(
        f"SELECT 'i' AS kind, user_id, inbox_id AS ref FROM inbox_members WHERE user_id IN ({inbox_marks}) "
        f"UNION ALL SELECT 't' AS kind, user_id, team_id AS ref FROM team_members WHERE user_id IN ({team_marks})",
        sql.params,
    )
    found: dict[tuple[str, int], set[int]] = {}
    for row in rows:
        found.setdefault((row["kind"], row["user_id"]), set()).add(row["ref"])
    return {
        user_id: (frozenset(found.get(("i", user_id), ())), frozenset(found.get(("t", user_id), ())))
        for user_id in user_ids
    }


async def current_access(session_ids: Sequence[int]) -> dict[int, tuple[Viewer, bool]]:
    """What each session would get at a handshake now: its viewer, and whether it may see contacts' PII. Sessions
    no longer valid (revoked, expired, their user deactivated or gone) are absent. Two queries for any number of
    sessions: open sockets are checked against it periodically (inbox/realtime.py), to catch changes that never
    reached the bus."""
    if not session_ids:
        return {}
    conn = connection()
    sql = Sql(conn.capabilities.dialect)
    rows = await conn.execute_query_dict(
        "SELECT s.id AS session_id, s.expires_at, u.id AS user_id, u.role, u.permissions"
        f" FROM auth_sessions s JOIN users u ON u.id = s.user_id WHERE s.id IN ({sql.marks(session_ids)})"
        f" AND s.revoked = {sql.p(False)} AND u.is_active = {sql.p(True)}",
        sql.params,
    )
    now = datetime.now(UTC)
    rows = [r for r in rows if (as_datetime(r["expires_at"]) or now) > now]
    agents = sorted({r["user_id"] for r in rows if r["role"] not in ("supervisor", "admin")})
    memberships = await _memberships(agents) if agents else {}
    access = {}
    for row in rows:
        user_id, role = row["user_id"], row["role"]
        inboxes, teams = memberships.get(user_id, (frozenset(), frozenset()))
        inboxes, teams = _shared(inboxes), _shared(teams)
        pii = can_view_pii(SimpleNamespace(role=role, permissions=as_json(row["permissions"])))
        access[row["session_id"]] = (Viewer(user_id, role, inboxes, teams), pii)
    return access


async def revoke(session_id: int) -> None:
    await AuthSession.filter(id=session_id).update(revoked=True)


def csrf_ok(auth: Authenticated, header: str | None) -> bool:
    if not auth.via_cookie:
        return True
    return header is not None and hmac.compare_digest(header, auth.csrf_token)
