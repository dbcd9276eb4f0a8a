"""The audit log: one function every module calls for sensitive actions (logins, exports, erasures, merges…)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from agents.models import AuditEntry


def client_ip(request: web.Request | None) -> str | None:
    return request.remote if request is not None else None


async def audit(
    action: str,
    *,
    actor_id: int | None,
    target_type: str | None = None,
    target_id: int | str | None = None,
    data: dict[str, Any] | None = None,
    request: web.Request | None = None,
) -> AuditEntry:
    """Record `action`; `data` must never hold personal data (ids and counts, not names or phones)."""
    return await AuditEntry.create(
        action=action,
        actor_id=actor_id,
        target_type=target_type,
        target_id=str(target_id) if target_id is not None else None,
        data=data or {},
        ip=client_ip(request),
    )
