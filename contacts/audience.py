"""Who hears about a customer on the agents' sockets: the readers of each inbox it wrote to, and of each team its
conversations are in, the same agents `readable_contact_ids` lets read the profile. Never the whole staff: an
agent of another shop's inbox must not see the name, picture or phone."""

from __future__ import annotations

from typing import Any

from contacts.models import ContactIdentity
from inbox.bus import Event
from inbox.models import Conversation


async def contact_events(kind: str, data: dict[str, Any], contact_id: int) -> list[Event]:
    """One event per audience (an agent who reads several gets the same frame more than once: it is idempotent).
    A profile with no identity and no conversation (typed in by hand) is only the supervisors' to hear about."""
    inbox_ids = set(await ContactIdentity.filter(contact_id=contact_id).values_list("inbox_id", flat=True))
    rows = await Conversation.filter(contact_id=contact_id).distinct().values_list("inbox_id", "team_id")
    inbox_ids |= {inbox_id for inbox_id, _ in rows}
    team_ids = {team_id for _, team_id in rows if team_id is not None}
    events = [Event(kind, data, inbox_id=inbox_id) for inbox_id in sorted(inbox_ids)]
    events += [Event(kind, data, team_id=team_id) for team_id in sorted(team_ids)]
    return events or [Event(kind, data, min_role="supervisor")]
