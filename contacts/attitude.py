"""The customer's attitudinal summary, from the NLP results stored on their messages (inbox/enrich.py).

`await attitudinal_summary(contact_id)` →
    {
      "analysed_messages": 42,
      "sentiment": {"negative": 5, "neutral": 30, "positive": 7},
      "average_score": 0.04,                 # mean sentiment_score (−1…1), null without analysed messages
      "trend_30d": [{"date": "2026-10-27", "negative": 0, "neutral": 1, "positive": 0, "score": 0.0}, …],
      "trend": "improving" | "worsening" | "stable" | "unknown",   # last 15 days against the 15 before
      "last_complaint": {"message_id", "conversation_id", "text", "at", "sentiment", "intent"} | null,
      "top_intents": [{"intent": "ask_price", "count": 12}, …],    # at most 5, "other" left out
    }
Days in `trend_30d` are UTC dates, oldest first, 30 of them, today included; days without messages are zeros.
Phones, e-mails and addresses found in chats are offered by contacts/suggestions.py, which reads the same entities.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

from tortoise.functions import Count

from inbox.models import Message
from inbox.serialize import iso

SENTIMENTS = ("negative", "neutral", "positive")
TREND_DAYS = 30
TREND_DELTA = 0.15  # a change of mean score smaller than this is "stable"


def _day(value: datetime) -> str:
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).date().isoformat()


async def attitudinal_summary(
    contact_id: int, now: datetime | None = None, *, conversation_ids: set[int] | None = None
) -> dict[str, Any]:
    """Over every conversation of the customer, or only `conversation_ids` (those the reader may open: an agent
    must not read a complaint's text from another shop's inbox here)."""
    now = now or datetime.now(UTC)
    base = Message.filter(conversation__contact_id=contact_id, direction="in", sentiment__not_isnull=True)
    if conversation_ids is not None:
        base = base.filter(conversation_id__in=sorted(conversation_ids) or [-1])

    counts = {s: 0 for s in SENTIMENTS}
    rows = await base.annotate(n=Count("id")).group_by("sentiment").values("sentiment", "n")
    for row in rows:
        if row["sentiment"] in counts:
            counts[row["sentiment"]] = row["n"]
    total = sum(counts.values())

    intents = await (
        base.filter(intent__not_isnull=True).exclude(intent="other")
        .annotate(n=Count("id")).group_by("intent").values("intent", "n")
    )  # fmt: skip
    top = sorted(intents, key=lambda r: (-r["n"], r["intent"]))[:5]

    since = (now - timedelta(days=TREND_DAYS - 1)).replace(hour=0, minute=0, second=0, microsecond=0)
    recent = await base.filter(created_at__gte=since).values("created_at", "sentiment", "sentiment_score")
    days = [(since + timedelta(days=i)).date().isoformat() for i in range(TREND_DAYS)]
    per_day: dict[str, Counter] = {d: Counter() for d in days}
    scores: dict[str, list[float]] = {d: [] for d in days}
    for row in recent:
        d = _day(row["created_at"])
        if d in per_day:
            per_day[d][row["sentiment"]] += 1
            if row["sentiment_score"] is not None:
                scores[d].append(float(row["sentiment_score"]))
    trend_30d = [
        {
            **{s: per_day[d][s] for s in SENTIMENTS},
            "date": d,
            "score": round(sum(scores[d]) / len(scores[d]), 4) if scores[d] else None,
        }
        for d in days
    ]
    half = TREND_DAYS // 2
    early = [x for d in days[:half] for x in scores[d]]
    late = [x for d in days[half:] for x in scores[d]]
    if early and late:
        delta = sum(late) / len(late) - sum(early) / len(early)
        trend = "improving" if delta > TREND_DELTA else "worsening" if delta < -TREND_DELTA else "stable"
    else:
        trend = "unknown"

    all_scores = await base.filter(sentiment_score__not_isnull=True).values_list("sentiment_score", flat=True)
    average = round(sum(all_scores) / len(all_scores), 4) if all_scores else None

    complaint = await base.filter(intent="complaint").order_by("-created_at", "-id").first()
    last_complaint = (
        {
            "message_id": complaint.id,
            "conversation_id": complaint.conversation_id,
            "text": complaint.text,
            "at": iso(complaint.created_at),
            "sentiment": complaint.sentiment,
            "intent": complaint.intent,
        }
        if complaint
        else None
    )
    return {
        "analysed_messages": total,
        "sentiment": counts,
        "average_score": average,
        "trend_30d": trend_30d,
        "trend": trend,
        "last_complaint": last_complaint,
        "top_intents": [{"intent": r["intent"], "count": r["n"]} for r in top],
    }
