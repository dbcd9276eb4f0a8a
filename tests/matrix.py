"""The access matrix's shared types, and the per-area case modules (`tests/access_<area>.py`) it collects.

An area module defines `CASES: list[Case]` for its routes and, when its paths name something other than a
conversation of inbox A, `async def prepare(world, client)` that creates it and stores ids in `world.extra`.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from inbox.models import Conversation, Inbox


@dataclass
class World:
    inbox_a: Inbox
    inbox_b: Inbox
    conv_a: Conversation
    conv_b: Conversation
    staff: dict[str, Any]
    extra: dict[str, Any] = field(default_factory=dict)

    def user_id(self, who: str) -> int:
        return self.staff["member" if who == "anonymous" else who].user.id


@dataclass(frozen=True)
class Case:
    method: str
    path: str  # aiohttp's canonical form
    role: str  # the least role that may call it
    ok: int = 200
    body: Callable[[World, str], Any] | None = None
    # Values for the path's {placeholders}: something of inbox A (by default its conversation).
    target: Callable[[World], dict[str, Any]] = lambda w: {"id": w.conv_a.id}

    @property
    def scoped(self) -> bool:
        """The path names one thing of inbox A, which an agent of another inbox must not learn exists."""
        return "{" in self.path

    def url(self, world: World) -> str:
        return self.path.format(**self.target(world)) if self.scoped else self.path

    def __str__(self) -> str:
        return f"{self.method} {self.path}"


AREA_MODULES = [
    importlib.import_module(f"tests.{info.name}")
    for info in sorted(pkgutil.iter_modules([str(Path(__file__).parent)]), key=lambda i: i.name)
    if info.name.startswith("access_")
]
