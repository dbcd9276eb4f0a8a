"""Who may read what: one place that answers it for HTTP routes and WebSocket frames alike."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from inbox.bus import STAFF_ROLES, Event

ROLE_RANK = {role: rank for rank, role in enumerate(STAFF_ROLES)}
ACCESS_CHANGED = "access.changed"  # internal: addressed to no user, so never a frame (see `access_changed`)


@dataclass(frozen=True, slots=True)
class Viewer:
    user_id: int
    role: str
    inbox_ids: frozenset[int]
    team_ids: frozenset[int]

    @property
    def sees_everything(self) -> bool:
        return self.role in ("supervisor", "admin")

    def has_role(self, role: str) -> bool:
        return ROLE_RANK[self.role] >= ROLE_RANK[role]

    def can_read(self, inbox_id: int | None, team_id: int | None = None) -> bool:
        if self.sees_everything:
            return True
        return (inbox_id is not None and inbox_id in self.inbox_ids) or (
            team_id is not None and team_id in self.team_ids
        )

    def can_receive(self, event: Event) -> bool:
        if event.user_ids is not None and self.user_id not in event.user_ids:
            return False
        return self.reads_audience(event)

    def reads_audience(self, event: Event) -> bool:
        """The event's audience (role, inbox, team) includes this viewer's; `user_ids` is left to `can_receive`.
        Viewers with the same role and memberships decide alike: agent sockets share this decision."""
        if not self.has_role(event.min_role):
            return False
        if event.inbox_id is None and event.team_id is None:
            return True
        return self.can_read(event.inbox_id, event.team_id)


def access_changed(user_ids: Iterable[int], *, session_ids: Iterable[int] | None = None) -> Event:
    """The event that ends these users' open agent sockets (only those of `session_ids`, when given), on every
    server process: after a deactivation, a log-out, a password change, or a change of role, permissions or
    teams. A socket keeps the rights it had at its handshake, so it must connect again to get the new ones (or a
    401). Publish it after the change is committed."""
    data = {"user_ids": sorted(set(user_ids)), "session_ids": None if session_ids is None else sorted(session_ids)}
    return Event(ACCESS_CHANGED, data, user_ids=frozenset())
