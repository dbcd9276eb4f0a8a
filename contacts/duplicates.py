"""Merge suggestions: profiles that share a phone or an e-mail, or carry the same full name, scored.

Candidates come from blocks (one per phone, e-mail and diacritics-free full name), never from all pairs, so
100,000 profiles take about a second. Score = 0.6 for a shared phone + 0.5 for a shared e-mail + 0.4 × name
similarity (0.35 × for a pair found by its name alone), at most 1.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass
from difflib import SequenceMatcher
from functools import lru_cache
from itertools import combinations

from contacts.models import DuplicateDismissal
from contacts.normalize import phone_key
from inbox.db import connection
from inbox.search import fold
from inbox.sql import as_json

NAME_BLOCK_LIMIT = 30  # a name this common says nothing by itself ("Nguyễn Văn Anh")
PHONE_BLOCK_LIMIT = 200  # a shop's own hotline typed into many profiles is not a person


@dataclass(slots=True)
class Suggestion:
    a: int
    b: int
    score: float
    reasons: list[str]


_fold = lru_cache(maxsize=100_000)(fold)  # names repeat a lot ("Nguyễn Thị Lan"): fold each once
_LOCAL_VN = re.compile(r"^0[1-9]\d{8}$")


def _phone_key(raw: str) -> str | None:
    """`phone_key` with a fast path for the common Vietnamese local form (0 + 9 digits)."""
    if raw[:1] == "+":
        return phone_key(raw)
    digits = raw.replace(" ", "").replace(".", "").replace("-", "")
    if _LOCAL_VN.match(digits):
        return "+84" + digits[1:]
    return phone_key(raw)


def name_similarity(x: str, y: str) -> float:
    if not x or not y:
        return 0.0
    if x == y:
        return 1.0
    return SequenceMatcher(None, x, y).ratio()


async def find_duplicates(min_score: float = 0.5, limit: int = 100, contact_id: int | None = None) -> list[Suggestion]:
    conn = connection()
    _, rows = await conn.execute_query(
        "SELECT id, name, phone, email, phones, emails FROM contacts WHERE merged_into_id IS NULL AND erased_at IS NULL"
    )
    names: dict[int, str] = {}
    by_phone: dict[str, list[int]] = defaultdict(list)
    by_email: dict[str, list[int]] = defaultdict(list)
    by_name: dict[str, list[int]] = defaultdict(list)
    for cid, name, phone, email, more_phones, more_emails in rows:
        folded = _fold(name)
        names[cid] = folded
        if phone:
            key = _phone_key(phone)
            if key:
                by_phone[key].append(cid)
        if more_phones and more_phones != "[]":
            for extra in as_json(more_phones) or []:
                key = _phone_key(extra)
                if key and cid not in by_phone[key]:
                    by_phone[key].append(cid)
        if email:
            by_email[email.strip().lower()].append(cid)
        if more_emails and more_emails != "[]":
            for extra in as_json(more_emails) or []:
                key = extra.strip().lower()
                if cid not in by_email[key]:
                    by_email[key].append(cid)
        if " " in folded:  # a full name, not "lan"
            by_name[folded].append(cid)
    pairs: dict[tuple[int, int], set[str]] = defaultdict(set)
    for reason, blocks, cap in (("phone", by_phone, PHONE_BLOCK_LIMIT), ("email", by_email, PHONE_BLOCK_LIMIT),
                                ("name", by_name, NAME_BLOCK_LIMIT)):  # fmt: skip
        for ids in blocks.values():
            if 1 < len(ids) <= cap:
                for a, b in combinations(sorted(set(ids)), 2):
                    if contact_id is None or contact_id in (a, b):
                        pairs[(a, b)].add(reason)
    dismissed = set(await DuplicateDismissal.all().values_list("low_id", "high_id")) if pairs else set()
    found: list[Suggestion] = []
    for (a, b), reasons in pairs.items():
        if (a, b) in dismissed:
            continue
        similarity = name_similarity(names[a], names[b])
        if reasons == {"name"}:
            score = 0.35 * similarity
        else:
            score = 0.6 * ("phone" in reasons) + 0.5 * ("email" in reasons) + 0.4 * similarity
            if similarity >= 0.8:
                reasons = reasons | {"name"}
        score = round(min(score, 1.0), 3)
        if score >= min_score:
            found.append(Suggestion(a, b, score, sorted(reasons)))
    found.sort(key=lambda s: (-s.score, s.a, s.b))
    return found[:limit]


async def dismiss(a: int, b: int, actor_id: int | None) -> None:
    low, high = min(a, b), max(a, b)
    await DuplicateDismissal.get_or_create(low_id=low, high_id=high, defaults={"actor_id": actor_id})
